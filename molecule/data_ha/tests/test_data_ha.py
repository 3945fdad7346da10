"""High availability of the data tier on three Debian 12 hosts (same image,
so the same Redis and RabbitMQ versions on every member).

Redis: one primary, two replicas, three Sentinels, over TLS with a password.
RabbitMQ: a cluster of three nodes; the workload's queue is a quorum queue.
The failover tests stop a container (docker stop) under load, print one JSON
line with what the clients saw, start the container again and wait until it
has rejoined. Traffic goes only to the scenario's own containers.
"""

import json
import pathlib
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

import pika
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "workloads" / "common"))
import quizcommon  # noqa: E402  pylint: disable=wrong-import-position

HOSTS = ["data_ha-1", "data_ha-2", "data_ha-3"]
NODES = {"data_ha-1": "rabbit@data1", "data_ha-2": "rabbit@data2", "data_ha-3": "rabbit@data3"}
NETWORK = "data_ha-net"
REDIS_PW = "molecule-redis-ha-password"
AMQP_USER, AMQP_PW = "quiz", "molecule-amqp-password"
MASTER = "aiquiz"
QUEUE = "quiz.events"


def docker(*args, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=True).stdout


def address(host):
    info = json.loads(docker("inspect", host))[0]
    return info["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def rabbitmqctl(host, *args):
    return docker("exec", host, "rabbitmqctl", "-q", *args)


@pytest.fixture(scope="module")
def addresses():
    return {host: address(host) for host in HOSTS}


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory):
    ca = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.write_text(docker("exec", HOSTS[0], "cat", "/etc/aiquiz/tls/redis/ca.pem"))
    context = ssl.create_default_context(cafile=str(ca))
    return context


class Resp:
    """A minimal Redis client (RESP2 over TLS) with AUTH: enough for SET, GET, INFO, SENTINEL."""

    def __init__(self, context, host, port, timeout=2.0):
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname=host)
        self.file = self.sock.makefile("rb")
        self.call("AUTH", REDIS_PW)

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for arg in args:
            data = str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(out)
        return self._read()

    def _read(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)[:-2]
            return data.decode()
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read() for _item in range(size)]
        raise ConnectionError("unexpected reply %r" % line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def info(context, host, section="replication"):
    client = Resp(context, host, 6379)
    try:
        text = client.call("INFO", section)
    finally:
        client.close()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def sentinel_primary(context, host):
    client = Resp(context, host, 26379, timeout=1.0)
    try:
        reply = client.call("SENTINEL", "get-master-addr-by-name", MASTER)
    finally:
        client.close()
    return reply[0] if reply else None


def primary_from_sentinels(context, addresses):
    """The primary most reachable Sentinels name (the writer's view)."""
    said = []
    for host in addresses.values():
        try:
            said.append(sentinel_primary(context, host))
        except (OSError, ConnectionError, RuntimeError):
            continue
    said = [answer for answer in said if answer]
    return max(set(said), key=said.count) if said else None


@pytest.fixture
def report(capsys):
    """Print one JSON line in the log whatever pytest captures."""
    def emit(fields):
        with capsys.disabled():
            print(json.dumps(fields), flush=True)
    return emit


def wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ConnectionError, RuntimeError, subprocess.CalledProcessError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError("%s: not within %d s (last: %r)" % (what, timeout, last))


def redis_group_healthy(context, addresses):
    """One master with two connected, up-to-date replicas, and every Sentinel naming it."""
    roles = {host: info(context, ip) for host, ip in addresses.items()}
    masters = [host for host, fields in roles.items() if fields["role"] == "master"]
    if len(masters) != 1 or roles[masters[0]].get("connected_slaves") != "2":
        return None
    primary = addresses[masters[0]]
    if not all(fields.get("master_host") == primary and fields.get("master_link_status") == "up"
               for host, fields in roles.items() if host != masters[0]):
        return None
    if any(sentinel_primary(context, ip) != primary for ip in addresses.values()):
        return None
    return masters[0]


def test_redis_one_primary_two_connected_replicas(tls_context, addresses):
    roles = {host: info(tls_context, ip) for host, ip in addresses.items()}
    masters = [host for host, fields in roles.items() if fields["role"] == "master"]
    assert len(masters) == 1, roles
    assert roles[masters[0]]["connected_slaves"] == "2"
    for host, fields in roles.items():
        if host != masters[0]:
            assert fields["role"] == "slave"
            assert fields["master_host"] == addresses[masters[0]]
            assert fields["master_link_status"] == "up"


def test_sentinels_agree_on_the_primary(tls_context, addresses):
    answers = {host: sentinel_primary(tls_context, ip) for host, ip in addresses.items()}
    masters = [host for host in HOSTS if info(tls_context, addresses[host])["role"] == "master"]
    assert set(answers.values()) == {addresses[masters[0]]}, answers


def test_redis_refuses_clients_without_the_password(tls_context, addresses):
    raw = socket.create_connection((addresses[HOSTS[0]], 6379), timeout=2)
    sock = tls_context.wrap_socket(raw, server_hostname=addresses[HOSTS[0]])
    sock.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert sock.recv(200).startswith(b"-NOAUTH")
    sock.close()


def raw_reply(sock, *args):
    """One RESP command on an open socket; the first line of what came back (or why nothing did)."""
    out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    try:
        sock.sendall(out)
        return sock.recv(200).split(b"\r\n")[0].decode(errors="replace") or "closed"
    except OSError as exc:
        return "refused: %s" % exc


def test_sentinels_take_no_orders_without_the_password(tls_context, addresses):
    """A caller on the private network (the controller, no member) tells each Sentinel to fail
    over, to lower the quorum, to forget the primary and to watch another one: over plain TCP
    and over TLS without AUTH. Sentinel's word decides who the primary is."""
    orders = [("SENTINEL", "FAILOVER", MASTER), ("SENTINEL", "SET", MASTER, "quorum", "1"),
              ("SENTINEL", "REMOVE", MASTER), ("SENTINEL", "MONITOR", "evil", "192.0.2.1", "6379", "1")]
    obeyed = {}
    for host, ip in addresses.items():
        plain = socket.create_connection((ip, 26379), timeout=2)
        answer = raw_reply(plain, "PING")
        plain.close()
        if answer.startswith("+"):
            obeyed[(host, "plain PING")] = answer
        for order in orders:
            sock = tls_context.wrap_socket(socket.create_connection((ip, 26379), timeout=2), server_hostname=ip)
            answer = raw_reply(sock, *order)
            sock.close()
            if not answer.startswith("-NOAUTH"):
                obeyed[(host, " ".join(order))] = answer
    assert not obeyed, obeyed
    # Nothing changed: every Sentinel watches the one primary, with its quorum.
    for ip in addresses.values():
        client = Resp(tls_context, ip, 26379)
        try:
            masters = client.call("SENTINEL", "MASTERS")
        finally:
            client.close()
        names = [dict(zip(m[::2], m[1::2]))["name"] for m in masters]
        assert names == [MASTER], masters
        assert dict(zip(masters[0][::2], masters[0][1::2]))["quorum"] == "2", masters


def test_rabbitmq_cluster_has_three_running_nodes():
    for host in HOSTS:
        status = json.loads(rabbitmqctl(host, "cluster_status", "--formatter", "json"))
        assert sorted(status["running_nodes"]) == sorted(NODES.values()), status
        assert status["cluster_name"] == "data-ha"


def test_workload_queue_is_a_quorum_queue_on_every_node():
    queues = json.loads(rabbitmqctl(HOSTS[1], "list_queues", "name", "type", "members", "--formatter", "json"))
    queue = [item for item in queues if item["name"] == QUEUE]
    assert queue and queue[0]["type"] == "quorum", queues
    assert sorted(queue[0]["members"]) == sorted(NODES.values())


def test_the_workloads_declaration_of_its_queue_is_accepted(addresses):
    """The workload declares its queue with QUIZ_EVENTS_QUEUE_TYPE=quorum: accepted on any node; a plain
    durable declare (the workload without it) is refused, as the data guide says."""
    for host in HOSTS:
        connection = amqp(addresses[host])
        channel = connection.channel()
        channel.queue_declare(QUEUE, durable=True, arguments=quizcommon.events_queue_arguments("quorum"))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare(QUEUE, durable=True)
        assert refused.value.reply_code == 406
        connection.close()


def test_erlang_distribution_listens_on_the_private_address_only(addresses):
    for host, ip in addresses.items():
        listening = docker("exec", host, "ss", "-Hltn")
        locals_ = {line.split()[3] for line in listening.splitlines()}
        for port in ("4369", "25672"):
            bound = {local.rsplit(":", 1)[0] for local in locals_ if local.rsplit(":", 1)[1] == port}
            assert bound and bound <= {ip, "127.0.0.1"}, (host, port, bound)


# Ping a node, then ask it to run a function: what any Erlang node that completes the handshake may do.
ERL_PROBE = ("R = net_adm:ping('%s'), Q = (catch rpc:call('%s', os, getpid, [], 5000)), "
             "io:format(\"~p ~p~n\", [R, Q]), halt().")


def erl_probe(host, node, user, home, cookie=None):
    """An Erlang node started on host as user (its home: home) that connects to node: 'pong ...' when the node
    took it in, 'pang {badrpc,nodedown}' when it refused the handshake."""
    args = ["exec", "-u", user, "-e", "HOME=" + home, host, "erl", "-noshell", "-sname", "probe" + secrets.token_hex(4)]
    if cookie:
        args += ["-setcookie", cookie]
    return docker(*args, "-eval", ERL_PROBE % (node, node), timeout=90).strip()


def test_erlang_distribution_takes_no_orders_without_the_cluster_cookie():
    """Any node that completes the distribution handshake may run anything as rabbitmq (rpc:call). A process on a
    member host that cannot read the cookie (every local user but rabbitmq and root), with a guessed cookie or
    none, asks each node to run a function: each refuses the handshake. The same probe with the cluster's cookie
    (root, reading the file) gets in: the refusals are the nodes', not a broken probe."""
    attacker = HOSTS[0]
    for host in HOSTS:
        assert docker("exec", host, "stat", "-c", "%U %a", "/var/lib/rabbitmq/.erlang.cookie").split() == [
            "rabbitmq", "400"], host
        read = subprocess.run(["docker", "exec", "-u", "nobody", host, "cat", "/var/lib/rabbitmq/.erlang.cookie"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert read.returncode != 0 and not read.stdout, host
    taken = {}
    for host in HOSTS:
        for cookie in ("guessed-" + secrets.token_hex(8), None):
            answer = erl_probe(attacker, NODES[host], "nobody", "/tmp", cookie)
            if not answer.startswith("pang {badrpc,nodedown}"):
                taken[(host, "guessed cookie" if cookie else "own cookie")] = answer
    assert not taken, taken
    control = erl_probe(attacker, NODES[HOSTS[1]], "root", "/var/lib/rabbitmq")
    assert control.startswith("pong "), control


def test_definitions_export_holds_the_quorum_queue_and_imports_again():
    exported = docker("exec", HOSTS[0], "rabbitmqctl", "-q", "export_definitions", "-")
    definitions = json.loads(exported)
    queue = [item for item in definitions["queues"] if item["name"] == QUEUE]
    assert queue and queue[0]["arguments"]["x-queue-type"] == "quorum"
    subprocess.run(["docker", "exec", "-i", HOSTS[2], "sh", "-c",
                    "cat > /tmp/definitions.json && rabbitmqctl -q import_definitions /tmp/definitions.json"],
                   input=exported, text=True, check=True, capture_output=True, timeout=120)


def test_redis_primary_lost_under_writes(tls_context, addresses, report):
    """Numbered keys written to the primary Sentinel names; its container stopped; the writer follows
    Sentinel to the promoted replica. Prints the write downtime and the acknowledged keys lost."""
    old_primary_ip = primary_from_sentinels(tls_context, addresses)
    old_primary = [host for host, ip in addresses.items() if ip == old_primary_ip][0]
    run = uuid.uuid4().hex[:8]
    acked, stopper, client = [], None, None
    first_failure = downtime = None
    started = time.monotonic()
    number = 0
    # Bounded: at most 90 s and 20000 writes.
    while time.monotonic() - started < 90 and number < 20000:
        if stopper is None and len(acked) >= 200:
            stopper = subprocess.Popen(["docker", "stop", "-t", "2", old_primary], stdout=subprocess.DEVNULL)
        try:
            if client is None:
                target = primary_from_sentinels(tls_context, addresses)
                if target is None:
                    raise ConnectionError("no Sentinel answered")
                client = Resp(tls_context, target, 6379, timeout=1.0)
            assert client.call("SET", "ha:%s:%d" % (run, number), number) == "OK"
            acked.append(number)
            number += 1
            if first_failure is not None and downtime is None:
                downtime = time.monotonic() - first_failure
            if downtime is not None and len(acked) > 200 and time.monotonic() - first_failure > downtime + 3:
                break
        except (OSError, ConnectionError, RuntimeError, AssertionError):
            if stopper is not None and first_failure is None:
                first_failure = time.monotonic()
            if client is not None:
                client.close()
            client = None
            time.sleep(0.2)
        time.sleep(0.005)
    if client is not None:
        client.close()
    stopper.wait(timeout=60)
    new_primary_ip = primary_from_sentinels(tls_context, {h: ip for h, ip in addresses.items() if h != old_primary})
    reader = Resp(tls_context, new_primary_ip, 6379)
    lost = [key for key in acked if reader.call("GET", "ha:%s:%d" % (run, key)) is None]
    reader.close()
    report({"test": "redis_primary_lost", "acknowledged": len(acked), "lost": len(lost),
            "downtime_s": round(downtime, 2) if downtime is not None else None,
            "old_primary": old_primary_ip, "new_primary": new_primary_ip})

    docker("start", old_primary)
    assert address(old_primary) == old_primary_ip, "the restarted container got another address"
    healthy = wait_for(lambda: redis_group_healthy(tls_context, addresses), 120, "the old primary rejoins")
    report({"test": "redis_rejoined", "primary": healthy, "old_primary_now": "replica"})

    assert first_failure is not None, "the writes never failed: the primary was not stopped"
    assert downtime is not None and downtime < 30
    assert new_primary_ip != old_primary_ip
    assert healthy != old_primary
    # Asynchronous replication: a few acknowledged writes may be lost; min-replicas-to-write bounds it.
    assert len(lost) <= 50, lost[:20]


def rabbitmq_leader():
    queues = json.loads(rabbitmqctl(HOSTS[0], "list_queues", "name", "leader", "--formatter", "json"))
    return [item["leader"] for item in queues if item["name"] == QUEUE][0]


def amqp(ip):
    params = pika.ConnectionParameters(host=ip, port=5672, virtual_host="/",
                                       credentials=pika.PlainCredentials(AMQP_USER, AMQP_PW),
                                       heartbeat=10, blocked_connection_timeout=60, socket_timeout=5)
    return pika.BlockingConnection(params)


def test_rabbitmq_node_lost_under_publish_and_consume(tls_context, addresses, report):
    """Publisher confirms and manual acks on a node that stays; the queue's leader node stopped
    meanwhile. Every confirmed message is consumed at least once; prints the counts."""
    leader = rabbitmq_leader()
    stopped = [host for host, node in NODES.items() if node == leader][0]
    connected = [host for host in HOSTS if host != stopped][0]
    rabbitmqctl(connected, "purge_queue", QUEUE)
    run = uuid.uuid4().hex[:8]
    consumed, done = [], threading.Event()

    def consume():
        connection = amqp(addresses[connected])
        channel = connection.channel()
        channel.basic_qos(prefetch_count=50)
        for method, _props, body in channel.consume(QUEUE, inactivity_timeout=0.5):
            if method is not None:
                text = body.decode()
                if text.startswith(run + ":"):
                    consumed.append(int(text.split(":")[1]))
                channel.basic_ack(method.delivery_tag)
            elif done.is_set():
                break
        channel.cancel()
        connection.close()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    connection = amqp(addresses[connected])
    channel = connection.channel()
    channel.confirm_delivery()
    confirmed, failed, stopper = [], 0, None
    started = time.monotonic()
    number = 0
    # Bounded: 25 s of publishing, at most 5000 messages.
    while time.monotonic() - started < 25 and number < 5000:
        if stopper is None and time.monotonic() - started > 5:
            stopper = subprocess.Popen(["docker", "stop", "-t", "2", stopped], stdout=subprocess.DEVNULL)
        try:
            channel.basic_publish("", QUEUE, ("%s:%d" % (run, number)).encode(),
                                  pika.BasicProperties(delivery_mode=2), mandatory=True)
            confirmed.append(number)
        except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
            failed += 1
        number += 1
        time.sleep(0.005)
    connection.close()
    stopper.wait(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(confirmed) <= set(consumed):
        time.sleep(0.5)
    done.set()
    consumer.join(timeout=30)
    lost = sorted(set(confirmed) - set(consumed))
    duplicates = len(consumed) - len(set(consumed))
    report({"test": "rabbitmq_node_lost", "stopped": NODES[stopped], "connected": NODES[connected],
            "published": number, "confirmed": len(confirmed), "not_confirmed": failed,
            "consumed": len(set(consumed)), "lost": len(lost), "duplicates": duplicates})

    docker("start", stopped)
    assert address(stopped) == addresses[stopped], "the restarted container got another address"

    def three_running():
        status = json.loads(rabbitmqctl(connected, "cluster_status", "--formatter", "json"))
        return len(status["running_nodes"]) == 3
    wait_for(three_running, 180, "the stopped node rejoins the cluster")
    # The host also runs a Redis replica and a Sentinel: they are back too.
    wait_for(lambda: redis_group_healthy(tls_context, addresses), 120, "the host's Redis rejoins")
    queues = json.loads(rabbitmqctl(connected, "list_queues", "name", "online", "--formatter", "json"))
    report({"test": "rabbitmq_rejoined", "node": NODES[stopped], "running_nodes": 3})

    assert len(confirmed) > 100
    assert not lost, lost[:20]
    assert [item for item in queues if item["name"] == QUEUE]
