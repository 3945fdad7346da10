"""Behaviour of the rabbitmq role on Debian 12 (RabbitMQ 3.10) and Debian 13.

The tests talk AMQP 0-9-1 with python3-pika (installed by the scenario's
prepare) on each host's loopback, over TLS (a certificate of the tls role's
own CA, checked against it and its SANs 127.0.0.1 and 127.0.0.2) unless
they say otherwise.
"""

import json
import os
import pathlib
import re
import secrets
import sys
import time

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
from secret_sampler import Sampler, traces  # noqa: E402  pylint: disable=wrong-import-position
import rogue_tls  # noqa: E402  pylint: disable=wrong-import-position
CONVERGE = ROOT / "molecule" / "rabbitmq" / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("rabbitmq-debian12", "rabbitmq-debian13")
CA = "/etc/aiquiz/tls/rabbitmq/ca.pem"

# Publish one message to a fresh queue, read it back; prints what happened.
# With a CA file: TLS, the certificate checked against it and the address.
ROUNDTRIP = """
import ssl, sys, uuid, pika
user, password, vhost, address, port, ca = sys.argv[1:7]
tls = None
if ca != "-":
    ctx = ssl.create_default_context(cafile=ca)
    tls = pika.SSLOptions(ctx, server_hostname=address)
try:
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=address, port=int(port), virtual_host=vhost, credentials=pika.PlainCredentials(user, password),
        ssl_options=tls, connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5))
except pika.exceptions.ProbableAuthenticationError:
    print("auth-refused"); sys.exit(0)
except pika.exceptions.ProbableAccessDeniedError:
    print("access-refused"); sys.exit(0)
except (pika.exceptions.AMQPConnectionError, ssl.SSLError, OSError) as exc:
    print("connect-error %r" % exc); sys.exit(0)
ch = conn.channel()
body = uuid.uuid4().hex.encode()
try:
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish(exchange="", routing_key=q, body=body)
    for _ in range(50):
        method, _props, got = ch.basic_get(q, auto_ack=True)
        if method:
            break
        conn.sleep(0.1)
    print("roundtrip" if got == body else "lost")
except pika.exceptions.ChannelClosedByBroker as exc:
    print("channel-refused %s" % exc.reply_code)
conn.close()
"""


# Connects over TLS, waits for /tmp/rotation-client.go, then publishes on the
# same connection.
LONG_CLIENT = """
import os, ssl, time, pika
ctx = ssl.create_default_context(cafile="%(ca)s")
conn = pika.BlockingConnection(pika.ConnectionParameters(
    host="127.0.0.1", port=5671, virtual_host="orders", ssl_options=pika.SSLOptions(ctx, "127.0.0.1"),
    credentials=pika.PlainCredentials("app", "molecule-amqp-password"), heartbeat=0))
ch = conn.channel()
q = ch.queue_declare(queue="", exclusive=True).method.queue
print("connected", flush=True)
deadline = time.time() + 300
while not os.path.exists("/tmp/rotation-client.go") and time.time() < deadline:
    conn.sleep(0.2)
try:
    ch.basic_publish(exchange="", routing_key=q, body=b"after")
    method, _p, body = ch.basic_get(q, auto_ack=True)
    print("published" if body == b"after" else "lost", flush=True)
except Exception as exc:
    print("error %%r" %% exc, flush=True)
"""


# Declares the durable queue metrics-probe in orders and publishes three
# messages to it (argument "fill"), or deletes it (argument "delete").
PROBE_QUEUE = """
import ssl, sys, pika
ctx = ssl.create_default_context(cafile="%(ca)s")
conn = pika.BlockingConnection(pika.ConnectionParameters(
    host="127.0.0.1", port=5671, virtual_host="orders", ssl_options=pika.SSLOptions(ctx, "127.0.0.1"),
    credentials=pika.PlainCredentials("app", "molecule-amqp-password")))
ch = conn.channel()
if sys.argv[1] == "fill":
    ch.queue_declare(queue="metrics-probe", durable=True)
    for n in range(3):
        ch.basic_publish(exchange="", routing_key="metrics-probe", body=b"m%%d" %% n)
else:
    ch.queue_delete(queue="metrics-probe")
conn.close()
print("ok")
"""

# The rabbitmq_prometheus metrics the alert rules (roles/prometheus/files/rules/rabbitmq.yml) read.
RULE_METRICS = ("rabbitmq_identity_info", "rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked",
                "rabbitmq_alarms_memory_used_watermark", "rabbitmq_alarms_free_disk_space_watermark")


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def private_address(host):
    """The IPv4 address of the host's default route (what prometheus_host_address falls back to here)."""
    return re.search(r"\bsrc (\S+)", host.check_output("ip -4 route get 192.0.2.1")).group(1)


def metric_sum(text, name):
    """Sum of the samples of one metric in Prometheus' text format (None: no sample)."""
    values = [float(m.group(2)) for m in re.finditer(r"^%s(\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)]
    return sum(values) if values else None


def said(out, text):
    """Whether the playbook output holds text, however the output wrapped and coloured it."""
    return "".join(text.split()) in "".join(re.sub(r"\x1b\[[0-9;]*m", "", out).split())


def roundtrip(host, user, password, vhost="orders", address="127.0.0.1", port=5671, ca=CA):
    return host.check_output("python3 -c %s %s %s %s %s %s %s", ROUNDTRIP, user, password, vhost, address,
                             str(port), ca).strip()


def listening(host):
    """The TCP listen addresses of the host, as address:port."""
    return set(line.split()[3] for line in host.check_output("ss -Hltn").splitlines())


def serial(host, port):
    """Serial of the certificate the server on 127.0.0.1:port presents."""
    return host.check_output("openssl s_client -connect 127.0.0.1:%d </dev/null 2>/dev/null"
                             " | openssl x509 -noout -serial" % port).strip()


@pytest.mark.parametrize("name", HOSTS)
def test_node_runs_under_a_stable_name(name):
    host = get(name)
    service = host.service("rabbitmq-server")
    assert service.is_running and service.is_enabled
    status = json.loads(host.check_output("rabbitmqctl status --formatter json"))
    assert status["data_directory"] == "/var/lib/rabbitmq/mnesia/rabbit@localhost"
    for path in ("/etc/rabbitmq/rabbitmq-env.conf", "/etc/rabbitmq/rabbitmq.conf"):
        conf = host.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", "root", 0o644), path


@pytest.mark.parametrize("name", HOSTS)
def test_listeners_are_tls_and_erlang_distribution_stays_on_loopback(name):
    host = get(name)
    ports = listening(host)
    # AMQP over TLS and the management API over TLS on the addresses of
    # rabbitmq_bind / rabbitmq_management_address only.
    assert {"127.0.0.1:5671", "127.0.0.2:5671", "127.0.0.1:15671"} <= ports, ports
    # Plaintext: nowhere on Debian 12; on 127.0.0.1 only on Debian 13 (rabbitmq_plaintext_loopback).
    plain = {p for p in ports if p.endswith((":5672", ":15672"))}
    assert plain == ({"127.0.0.1:5672", "127.0.0.1:15672"} if name.endswith("13") else set()), ports
    # epmd and the node's distribution port on loopback only, never on every address.
    dist = {p for p in ports if p.endswith((":4369", ":25672"))}
    assert dist == {"127.0.0.1:4369", "127.0.0.1:25672"}, ports
    # The listener a CLI tool opens while it runs (35672-35682) too.
    out = host.check_output("rabbitmqctl -q eval 'timer:sleep(4000).' >/dev/null & sleep 3; ss -Hltn; wait")
    cli = {line.split()[3] for line in out.splitlines() if ":356" in line.split()[3]}
    assert cli and all(p.startswith("127.0.0.1:") for p in cli), out


@pytest.mark.parametrize("name", HOSTS)
def test_plaintext_clients_are_refused(name):
    host = get(name)
    # AMQP without TLS: no listener on the service addresses, and the TLS port does not speak it.
    assert roundtrip(host, "app", "molecule-amqp-password", address="127.0.0.2", port=5672, ca="-") \
        .startswith("connect-error")
    assert roundtrip(host, "app", "molecule-amqp-password", port=5671, ca="-").startswith("connect-error")
    # Plain HTTP to the management listener: nothing answers but TLS.
    assert host.run("curl -sS -m 5 -o /dev/null http://127.0.0.2:15672/api/overview").rc != 0
    assert host.run("curl -sS -m 5 -o /dev/null http://127.0.0.1:15671/api/overview").rc != 0


@pytest.mark.parametrize("name", HOSTS)
def test_management_api_over_tls_verifies(name):
    host = get(name)
    out = host.check_output("curl -sS -m 10 --cacert %s -u watcher:molecule-watcher-password "
                            "https://127.0.0.1:15671/api/whoami", CA)
    assert json.loads(out)["name"] == "watcher", out
    # The same request to a name the certificate does not carry is refused by curl.
    cmd = host.run("curl -sS -m 10 --cacert %s --resolve wrong.name:15671:127.0.0.1 "
                   "https://wrong.name:15671/api/whoami", CA)
    assert cmd.rc != 0 and "no alternative certificate subject name matches" in cmd.stderr, cmd.stderr


@pytest.mark.parametrize("name", HOSTS)
def test_metrics_answer_on_the_private_address_only(name):
    host = get(name)
    address = private_address(host)
    assert not address.startswith("127."), address
    # One listener, on the private address: not on every address, not on loopback.
    metrics = {p for p in listening(host) if p.endswith(":15692")}
    assert metrics == {"%s:15692" % address}, metrics
    assert host.run("curl -sS -m 5 -o /dev/null http://127.0.0.1:15692/metrics").rc != 0
    plugins = host.check_output("rabbitmq-plugins list -e -m")
    assert "rabbitmq_prometheus" in plugins.split(), plugins
    # Three messages wait in a queue: the endpoint's rabbitmq_queue_messages_ready
    # (aggregated over the node's queues) counts them within the stats interval.
    script = PROBE_QUEUE % {"ca": CA}
    assert host.check_output("python3 -c %s fill", script).strip() == "ok"
    try:
        text, ready = "", None
        for _attempt in range(30):
            text = host.check_output("curl -sS -m 10 http://%s:15692/metrics" % address)
            ready = metric_sum(text, "rabbitmq_queue_messages_ready")
            if ready is not None and ready >= 3:
                break
            time.sleep(2)
        assert ready is not None and ready >= 3, text[:2000]
        for metric in RULE_METRICS:
            assert metric_sum(text, metric) is not None, "%s missing from the metrics of %s" % (metric, name)
        assert metric_sum(text, "rabbitmq_alarms_memory_used_watermark") == 0
        assert metric_sum(text, "rabbitmq_alarms_free_disk_space_watermark") == 0
    finally:
        host.run("python3 -c %s delete", script)


@pytest.mark.parametrize("name", HOSTS)
def test_client_refuses_a_server_with_a_certificate_from_another_ca(name):
    host = get(name)
    # Someone answers at 127.0.0.1 with a certificate for that very address,
    # signed by another CA: the client configuration we ship (our CA) refuses it.
    rogue_tls.start(host, 5699, ["IP:127.0.0.1", "DNS:localhost"])
    out = roundtrip(host, "app", "molecule-amqp-password", port=5699)
    assert out.startswith("connect-error") and "CERTIFICATE_VERIFY_FAILED" in out, out


def test_rotation_reloads_without_dropping_connections():
    host = get("rabbitmq-debian12")
    before = serial(host, 5671)
    # A client connected over TLS before the rotation publishes after it on the same connection.
    client = host.check_output(
        "nohup python3 -c %s >/tmp/rotation-client.out 2>&1 & echo $!", LONG_CLIENT % {"ca": CA}).strip()
    for _attempt in range(100):
        if "connected" in host.run("cat /tmp/rotation-client.out").stdout:
            break
        time.sleep(0.1)
    rc, out = ansible_playbook(ROOT / "playbooks" / "rotate-certs.yml",
                               {"rotate_certs_names": ["rabbitmq"], "rotate_certs_force": True},
                               limit="rabbitmq-debian12")
    assert rc == 0, out
    assert said(out, "rabbitmq-server.service") and said(out, "Reload the consumers"), out
    after = serial(host, 5671)
    assert after != before and serial(host, 15671) == after
    host.check_output("touch /tmp/rotation-client.go")
    for _attempt in range(100):
        result = host.run("cat /tmp/rotation-client.out").stdout
        if "published" in result or "error" in result:
            break
        time.sleep(0.1)
    assert "connected" in result and "published" in result, result
    assert client


@pytest.mark.parametrize("name", HOSTS)
def test_guest_is_gone(name):
    host = get(name)
    users = {u["user"] for u in json.loads(host.check_output("rabbitmqctl list_users --formatter json"))}
    assert users == {"app", "watcher"}
    assert roundtrip(host, "guest", "guest", vhost="/") == "auth-refused"
    assert roundtrip(host, "app", "molecule-amqp-password", address="127.0.0.2") == "roundtrip"


@pytest.mark.parametrize("name", HOSTS)
def test_declared_user_publishes_and_consumes(name):
    host = get(name)
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
    assert roundtrip(host, "app", "molecule-amqp-password", address="127.0.0.2") == "roundtrip"
    assert roundtrip(host, "app", "not-the-password") == "auth-refused"
    # No permission on the default vhost.
    assert roundtrip(host, "app", "molecule-amqp-password", vhost="/") == "access-refused"


@pytest.mark.parametrize("name", HOSTS)
def test_permissions_and_tags_are_the_declared_ones(name):
    host = get(name)
    perms = json.loads(host.check_output("rabbitmqctl list_permissions -p orders --formatter json"))
    assert sorted((p["user"], p["configure"], p["write"], p["read"]) for p in perms) == [
        ("app", ".*", ".*", ".*"), ("watcher", "^$", "^$", ".*")]
    users = {u["user"]: u["tags"] for u in json.loads(host.check_output("rabbitmqctl list_users --formatter json"))}
    assert users["watcher"] == ["monitoring"]
    # Read-only: declaring a queue (configure) is refused.
    assert roundtrip(host, "watcher", "molecule-watcher-password") == "channel-refused 403"


def test_changed_definitions_converge_and_bad_input_stops_early():
    host = get("rabbitmq-debian12")
    users = [{"name": "app", "password": "rotated-amqp-password", "vhost": "orders"},
             {"name": "watcher", "state": "absent"}]
    try:
        rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": users}, limit="rabbitmq-debian12")
        assert rc == 0, out
        assert "rotated-amqp-password" not in out
        assert roundtrip(host, "app", "rotated-amqp-password") == "roundtrip"
        assert roundtrip(host, "app", "molecule-amqp-password") == "auth-refused"
        assert roundtrip(host, "watcher", "molecule-watcher-password") == "auth-refused"
    finally:
        rc, out = ansible_playbook(CONVERGE, limit="rabbitmq-debian12")
    assert rc == 0, out
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
    rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": [{"name": "app", "password": "x", "vhost": "nowhere"}]},
                               limit="rabbitmq-debian12")
    assert rc != 0 and 'rabbitmq_users[0] (app): vhost "nowhere" is not in rabbitmq_vhosts' in out, out
    assert "Install rabbitmq-server" not in out
    rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": [{"name": "app", "password": "two\nlines", "vhost": "orders"}]},
                               limit="rabbitmq-debian12")
    assert rc != 0 and said(out, "rabbitmq_users[0] (app): the password holds a line break"), out


@pytest.mark.parametrize("name", HOSTS)
def test_definitions_restore_brings_back_a_deleted_vhost_and_user(name):
    host = get(name)
    rc, out = ansible_playbook(ROOT / "playbooks" / "backup.yml", {"backup_hosts": name, "backup_steps": ["rabbitmq"]})
    assert rc == 0, out
    entry = json.loads(host.check_output("cat /var/lib/aiquiz/backup/catalogue.json"))["backups"][-1]
    assert (entry["kind"], entry["status"]) == ("rabbitmq", "good")
    # A restic snapshot, encrypted and authenticated: the password hashes in the definitions never sit readable.
    assert entry["location"].startswith("restic:")
    assert host.run("grep -rl watcher /var/backups/aiquiz/restic").stdout.strip() == ""
    listed = json.loads(host.check_output(
        "RESTIC_PASSWORD_FILE=/etc/aiquiz-backup/passphrase RESTIC_CACHE_DIR=/var/cache/aiquiz-backup/restic "
        "restic -r /var/backups/aiquiz/restic snapshots --json --tag kind:rabbitmq"))
    assert listed[-1]["paths"] == ["/definitions.json"]
    host.check_output("rabbitmqctl -q delete_user watcher && rabbitmqctl -q delete_vhost orders")
    assert roundtrip(host, "app", "molecule-amqp-password") != "roundtrip"
    rc, out = ansible_playbook(ROOT / "playbooks" / "restore.yml", {"restore_host": name, "restore_kind": "rabbitmq"})
    assert rc == 0, out
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
    users = {u["user"]: u["tags"] for u in json.loads(host.check_output("rabbitmqctl list_users --formatter json"))}
    assert users["watcher"] == ["monitoring"]
    assert roundtrip(host, "watcher", "molecule-watcher-password") == "channel-refused 403"
    # What the restore replaced was exported first, private.
    aside = host.check_output("ls /var/lib/aiquiz/backup/staging/before-restore/rabbitmq-definitions-*.json | tail -1")
    assert host.file(aside).mode == 0o600 and "orders" not in host.file(aside).content_string


@pytest.mark.parametrize("name", HOSTS)
def test_passwords_never_reach_a_command_line_or_a_log(name):
    # The attack: read every process's argv and environment while the role
    # creates a user, changes its password and runs again unchanged, then
    # the journal and the files. The canaries are this run's passwords.
    host = get(name)
    created, rotated = "mqcanary-new-" + secrets.token_hex(6), "mqcanary-rot-" + secrets.token_hex(6)
    users = [{"name": "app", "password": rotated, "vhost": "orders"},
             {"name": "canary", "password": created, "vhost": "orders"}]
    sampler = Sampler(host, [created, rotated])
    try:
        for _run in range(2):
            rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": users}, limit=name, tags="rabbitmq_definitions")
            assert rc == 0, out
            assert created not in out and rotated not in out
    finally:
        found = sampler.stop()
        rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": [{"name": "canary", "state": "absent"}]},
                                   limit=name, tags="rabbitmq_definitions")
        rc2, out2 = ansible_playbook(CONVERGE, limit=name, tags="rabbitmq_definitions")
    assert found["samples"] > 20, found
    assert found["hits"] == [], "the canary was seen in %s" % found["hits"]
    assert traces(host, [created, rotated]) == []
    assert rc == 0 and rc2 == 0, out + out2
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
