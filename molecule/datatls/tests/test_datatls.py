"""Data in transit between an app host and the data host, attacked and used
as the sample workload uses it.

datatls-data runs playbooks/data.yml as production would (each service on
its private address, over TLS with a certificate of the tls role's own CA);
datatls-client is an app host with the workload's client libraries (Debian's
python3-psycopg2, python3-redis and python3-pika, as in its runtime image)
and the own CA's root at tls_ca_trust_file. The workload's own client code
(tests/workloads/common/quizcommon.py) is copied to the client and run there.
"""

import json
import os
import pathlib
import sys
import time

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
import rogue_tls  # noqa: E402  pylint: disable=wrong-import-position

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CA = "/etc/aiquiz/tls/aiquiz-ca.pem"
DB_PW, REDIS_PW, AMQP_PW = "datatls-db-password", "datatls-redis-password", "datatls-amqp-password"
CODE = "/opt/quiz"

# The workload's client code against the three services: prints one JSON line.
WORKLOAD = """
import json, os, sys
sys.path.insert(0, "/opt/quiz")
import quizcommon as qc
host = sys.argv[1]
out = {}
def attempt(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:
        out[name] = "error: " + type(exc).__name__ + ": " + str(exc)
db = "postgresql://quiz:%(db)s@%%s:5432/quiz" %% host
def pg():
    pool = qc.Pool(db)
    return pool.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", fetch="one")
attempt("postgresql", pg)
attempt("migrate", lambda: qc.migrate(db, wait=2)[1])
def rds():
    import redis
    url = "rediss://:%(redis)s@%%s:6379/0" %% host
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, **qc.redis_tls_args(url))
    client.set("datatls:probe", "ok", ex=60)
    return [client.get("datatls:probe").decode(), type(client.connection_pool.get_connection("GET")).__name__]
attempt("redis", rds)
def amqp():
    import pika
    params = qc.amqp_parameters("amqps://quiz:%(amqp)s@%%s:5671/%%%%2F" %% host)
    params.socket_timeout = 5
    params.connection_attempts = 1
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish(exchange="", routing_key=q, body=b"over-tls")
    for _ in range(50):
        method, _p, body = ch.basic_get(q, auto_ack=True)
        if method:
            break
        conn.sleep(0.1)
    conn.close()
    return body.decode()
attempt("rabbitmq", amqp)
print(json.dumps(out, default=str))
""" % {"db": DB_PW, "redis": REDIS_PW, "amqp": AMQP_PW}


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def client():
    host = get("datatls-client")
    host.ansible("copy", "src=%s/ dest=%s/ mode=0644" % (ROOT / "tests" / "workloads" / "common", CODE), check=False)
    return host


@pytest.fixture(scope="module")
def data_ip():
    return get("datatls-data").check_output("hostname -I").split()[0]


def workload(client, host, ca=CA):
    """What the workload's client code gets from the three services at host."""
    cmd = client.run("QUIZ_RELEASE=1.1.0 QUIZ_TLS_CA_FILE=%s python3 -c %s %s", ca, WORKLOAD, host)
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    return json.loads(cmd.stdout.strip().splitlines()[-1])


def test_the_clients_get_the_own_ca_root(client):
    ca = client.file(CA)
    assert (ca.user, ca.group, ca.mode) == ("root", "root", 0o644)
    assert "BEGIN CERTIFICATE" in ca.content_string
    # The one the data host's certificates chain to.
    data = get("datatls-data")
    for name in ("postgresql", "redis", "rabbitmq"):
        assert data.file("/etc/aiquiz/tls/%s/ca.pem" % name).content_string.strip() == ca.content_string.strip()


@pytest.mark.parametrize("address", ["data_ip", "data1"])
def test_workload_client_code_uses_tls_with_verification(client, data_ip, address):
    host = data_ip if address == "data_ip" else address
    got = workload(client, host)
    assert got["postgresql"] == [True, "TLSv1.3"], got
    assert got["migrate"] == 2, got
    assert got["redis"] == ["ok", "SSLConnection"], got
    assert got["rabbitmq"] == "over-tls", got


def test_workload_refuses_plaintext_urls_once_it_has_a_ca(client, data_ip):
    cmd = client.run("cd %s && QUIZ_TLS_CA_FILE=%s QUIZ_REDIS_URL=redis://:x@%s:6379/0 "
                     "QUIZ_AMQP_URL=amqp://quiz:x@%s:5672/%%2F python3 -c %s",
                     CODE, CA, data_ip, data_ip,
                     "import quizcommon as qc, os; print(qc.insecure_urls(os.environ['QUIZ_REDIS_URL'],"
                     " os.environ['QUIZ_AMQP_URL']))")
    assert "use rediss://" in cmd.stdout and "use amqps://" in cmd.stdout, cmd.stdout + cmd.stderr


def test_plaintext_clients_from_an_app_host_are_refused(client, data_ip):
    # PostgreSQL: pg_hba admits TLS only (hostssl).
    cmd = client.run("PGPASSWORD=%s psql -XAtq %s -c 'SELECT 1'", DB_PW,
                     "host=%s dbname=quiz user=quiz sslmode=disable connect_timeout=5" % data_ip)
    assert cmd.rc != 0 and "no pg_hba.conf entry" in cmd.stderr and "no encryption" in cmd.stderr, cmd.stderr
    # Redis: the port speaks TLS only; no answer, not even NOAUTH.
    cmd = client.run("REDISCLI_AUTH=%s redis-cli -h %s -p 6379 ping", REDIS_PW, data_ip)
    assert "PONG" not in cmd.stdout and "NOAUTH" not in cmd.stdout, cmd.stdout + cmd.stderr
    # RabbitMQ: no plaintext AMQP or management listener; epmd and the
    # Erlang distribution on the data host's loopback only.
    for port in (5672, 15672, 4369, 25672):
        probe = client.run("python3 -c %s %s %s",
                           "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)",
                           data_ip, str(port))
        assert probe.rc != 0 and "Connection refused" in probe.stderr, (port, probe.stderr)
    # The management API answers over TLS, checked against the own CA.
    out = client.check_output("curl -sS -m 10 --cacert %s -u quiz:%s https://%s:15671/api/whoami", CA, AMQP_PW, data_ip)
    assert json.loads(out)["name"] == "quiz"


def test_workload_refuses_servers_with_a_certificate_from_another_ca(client):
    # Someone answers for data1 (a spoofed DNS answer: /etc/hosts here) on
    # the three ports, each with a certificate for data1 from another CA.
    rogue_tls.start(client, 5432, ["DNS:data1"], mode="postgres")
    rogue_tls.start(client, 6379, ["DNS:data1"])
    rogue_tls.start(client, 5671, ["DNS:data1"])
    hosts = client.check_output("cat /etc/hosts")
    client.check_output("printf '127.0.0.1 data1\\n' >> /etc/hosts")
    try:
        got = workload(client, "data1")
    finally:
        client.check_output("printf '%%s\\n' %s > /etc/hosts", hosts)
    for name in ("postgresql", "redis", "rabbitmq"):
        assert "certificate verify failed" in str(got[name]).lower(), got


def test_rotation_reloads_the_services_without_dropping_the_workload(client, data_ip):
    data = get("datatls-data")
    serials = "for p in 5432:-starttls\\ postgres 6379: 5671: 15671:; do port=${p%%%%:*}; opt=${p#*:}; " \
              "openssl s_client $opt -connect %s:$port </dev/null 2>/dev/null | openssl x509 -noout -serial; done" \
              % data_ip
    before = client.check_output(serials).split()
    assert len(before) == 4, before
    started = data.check_output("systemctl show -p ExecMainStartTimestamp postgresql@15-main redis-server "
                                "rabbitmq-server")
    # The workload's connections, open across the rotation.
    client.check_output("rm -f /tmp/rotation.go; QUIZ_TLS_CA_FILE=%s nohup python3 -c %s %s >/tmp/rotation.out "
                        "2>&1 &", CA, LONG_WORKLOAD, data_ip)
    for _attempt in range(150):
        if "connected" in client.run("cat /tmp/rotation.out").stdout:
            break
        time.sleep(0.1)
    rc, out = ansible_playbook(ROOT / "playbooks" / "rotate-certs.yml",
                               {"rotate_certs_names": ["postgresql", "redis", "rabbitmq"], "rotate_certs_force": True},
                               limit="datatls-data")
    assert rc == 0, out
    after = client.check_output(serials).split()
    assert all(a != b for a, b in zip(after, before)), (before, after)
    # Reloaded, never restarted.
    assert data.check_output("systemctl show -p ExecMainStartTimestamp postgresql@15-main redis-server "
                             "rabbitmq-server") == started
    client.check_output("touch /tmp/rotation.go")
    for _attempt in range(150):
        result = client.run("cat /tmp/rotation.out").stdout
        if "after" in result:
            break
        time.sleep(0.1)
    assert "connected" in result and 'after {"postgresql": 1, "redis": "PONG", "rabbitmq": "ok"}' in result, result


# The workload's connections (pool, Redis client, AMQP channel), opened
# before /tmp/rotation.go appears and used again after.
LONG_WORKLOAD = """
import json, os, sys, time
sys.path.insert(0, "/opt/quiz")
import quizcommon as qc, redis, pika
host = sys.argv[1]
pool = qc.Pool("postgresql://quiz:%(db)s@%%s:5432/quiz" %% host, size=1)
pool.query("SELECT 1", fetch="one")
url = "rediss://:%(redis)s@%%s:6379/0" %% host
r = redis.Redis.from_url(url, socket_timeout=5, **qc.redis_tls_args(url))
r.ping()
params = qc.amqp_parameters("amqps://quiz:%(amqp)s@%%s:5671/%%%%2F" %% host)
params.heartbeat = 0
conn = pika.BlockingConnection(params)
ch = conn.channel()
q = ch.queue_declare(queue="", exclusive=True).method.queue
print("connected", flush=True)
deadline = time.time() + 600
while not os.path.exists("/tmp/rotation.go") and time.time() < deadline:
    conn.sleep(0.2)
out = {}
out["postgresql"] = pool.query("SELECT 1", fetch="one", retry=False)[0]
out["redis"] = "PONG" if r.ping() else "?"
ch.basic_publish(exchange="", routing_key=q, body=b"ok")
method, _p, body = ch.basic_get(q, auto_ack=True)
out["rabbitmq"] = body.decode() if body else None
print("after", json.dumps(out), flush=True)
""" % {"db": DB_PW, "redis": REDIS_PW, "amqp": AMQP_PW}
