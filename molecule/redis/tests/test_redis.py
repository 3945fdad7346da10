"""Behaviour of the redis role on Debian 12 (Redis 7.0) and Debian 13.

Redis serves TLS on 6379 with a certificate of the tls role's own CA; the
tests' clients check it against that CA (redis-cli --tls --cacert) unless
they say otherwise.
"""

import os
import pathlib
import re
import sys
import time

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
import rogue_tls  # noqa: E402  pylint: disable=wrong-import-position
CONVERGE = ROOT / "molecule" / "redis" / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("redis-debian12", "redis-debian13")
PASSWORD = "molecule-redis-password"
CA = "/etc/aiquiz/tls/redis/ca.pem"
TLS = "--tls --cacert " + CA


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def said(out, text):
    """Whether the playbook output holds text, however the output wrapped and coloured it."""
    return "".join(text.split()) in "".join(re.sub(r"\x1b\[[0-9;]*m", "", out).split())


def cli(host, *args, password=PASSWORD, port=6379, tls=TLS):
    """redis-cli on the host, over TLS checked against the own CA (password through REDISCLI_AUTH)."""
    env = "REDISCLI_AUTH=%s " % password if password is not None else ""
    return host.run(env + "redis-cli %s -h 127.0.0.1 -p %d" % (tls, port) + " %s" * len(args), *args)


def serial(host, port=6379):
    """Serial of the certificate Redis presents on 127.0.0.1:port."""
    return host.check_output("openssl s_client -connect 127.0.0.1:%d </dev/null 2>/dev/null"
                             " | openssl x509 -noout -serial" % port).strip()


# A client that logs in over TLS, waits for /tmp/rotation-client.go, then
# asks again on the same connection.
LONG_CLIENT = """
import os, socket, ssl, time
ctx = ssl.create_default_context(cafile="%(ca)s")
conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 6379), 5), server_hostname="127.0.0.1")
f = conn.makefile("rb")
def cmd(*words):
    conn.sendall(b"*%%d\\r\\n" %% len(words) + b"".join(b"$%%d\\r\\n%%s\\r\\n" %% (len(w), w) for w in words))
    return f.readline().strip().decode()
print("connected", cmd(b"AUTH", b"%(password)s"), flush=True)
deadline = time.time() + 300
while not os.path.exists("/tmp/rotation-client.go") and time.time() < deadline:
    time.sleep(0.2)
print("after", cmd(b"PING"), flush=True)
"""


def aof_size(host):
    return int(host.check_output("stat -c %s /var/lib/redis/appendonlydir/appendonly.aof.*.incr.aof | tail -1"))


@pytest.mark.parametrize("name", HOSTS)
def test_service_runs_on_loopback_only(name):
    host = get(name)
    service = host.service("redis-server")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening
    # The plaintext port: none on Debian 12, 6380 on loopback on Debian 13.
    assert host.socket("tcp://127.0.0.1:6380").is_listening == name.endswith("13")
    address = host.check_output("hostname -I").split()[0]
    assert host.run("python3 -c %s %s", "import socket,sys; socket.create_connection((sys.argv[1], 6379), 2)",
                    address).rc != 0
    # The lab/Molecule drop-in is there because the variable says so.
    assert host.check_output("systemctl show -p PrivateUsers redis-server") == "PrivateUsers=no"


@pytest.mark.parametrize("name", HOSTS)
def test_config_files_are_root_redis_0640(name):
    host = get(name)
    for path in ("/etc/redis/redis.conf", "/etc/redis/redis-auth.conf"):
        conf = host.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", "redis", 0o640), path
    assert PASSWORD not in host.file("/etc/redis/redis.conf").content_string
    # Other users cannot read the password.
    assert host.run("runuser -u nobody -- cat /etc/redis/redis-auth.conf").rc != 0


@pytest.mark.parametrize("name", HOSTS)
def test_tls_client_checking_the_own_ca_gets_in(name):
    host = get(name)
    assert cli(host, "ping").stdout.strip() == "PONG"
    # And the connection really is TLS 1.2 or 1.3 with the own CA's certificate.
    out = host.check_output("openssl s_client -connect 127.0.0.1:6379 -CAfile %s -verify_return_error "
                            "-verify_ip 127.0.0.1 </dev/null 2>&1", CA)
    assert "Verify return code: 0 (ok)" in out and ("TLSv1.3" in out or "TLSv1.2" in out), out[-800:]


@pytest.mark.parametrize("name", HOSTS)
def test_plaintext_client_is_refused(name):
    host = get(name)
    # A client without TLS on the service port gets no answer, not even NOAUTH.
    out = cli(host, "ping", tls="")
    assert "PONG" not in out.stdout and "NOAUTH" not in out.stdout, out.stdout + out.stderr
    assert out.rc != 0 or out.stdout.strip() == "", out.stdout
    if name.endswith("13"):
        # The loopback plaintext port for tools on the host still wants the password.
        assert cli(host, "ping", tls="", port=6380).stdout.strip() == "PONG"
        assert "NOAUTH" in cli(host, "ping", tls="", port=6380, password=None).stdout


@pytest.mark.parametrize("name", HOSTS)
def test_client_refuses_a_server_with_a_certificate_from_another_ca(name):
    host = get(name)
    # Someone answers at 127.0.0.1 with a certificate for that very address,
    # signed by another CA: a client checking the own CA refuses it.
    rogue_tls.start(host, 6399, ["IP:127.0.0.1", "DNS:localhost"])
    out = cli(host, "ping", port=6399)
    assert "PONG" not in out.stdout and "certificate verify failed" in out.stdout + out.stderr, out.stdout + out.stderr


def test_rotation_reloads_without_dropping_clients():
    host = get("redis-debian12")
    before = serial(host)
    host.check_output("rm -f /tmp/rotation-client.go; nohup python3 -c %s >/tmp/rotation-client.out 2>&1 &",
                      LONG_CLIENT % {"ca": CA, "password": PASSWORD})
    for _attempt in range(100):
        if "connected" in host.run("cat /tmp/rotation-client.out").stdout:
            break
        time.sleep(0.1)
    started = host.check_output("systemctl show -p ExecMainStartTimestamp redis-server")
    rc, out = ansible_playbook(ROOT / "playbooks" / "rotate-certs.yml",
                               {"rotate_certs_names": ["redis"], "rotate_certs_force": True}, limit="redis-debian12")
    assert rc == 0, out
    assert "redis-server.service" in out, out
    # New connections get the new certificate; the server did not restart.
    assert serial(host) != before
    assert host.check_output("systemctl show -p ExecMainStartTimestamp redis-server") == started
    host.check_output("touch /tmp/rotation-client.go")
    for _attempt in range(100):
        result = host.run("cat /tmp/rotation-client.out").stdout
        if "after" in result:
            break
        time.sleep(0.1)
    assert "connected +OK" in result and "after +PONG" in result, result
    assert cli(host, "ping").stdout.strip() == "PONG"


@pytest.mark.parametrize("name", HOSTS)
def test_password_is_required(name):
    host = get(name)
    out = cli(host, "ping", password=None)
    assert "NOAUTH" in out.stdout + out.stderr, out.stdout
    out = cli(host, "ping", password="not-the-password-at-all")
    assert "WRONGPASS" in out.stdout + out.stderr or "invalid username-password" in out.stdout + out.stderr, out.stdout
    assert cli(host, "ping").stdout.strip() == "PONG"


@pytest.mark.parametrize("name", HOSTS)
def test_memory_limit_and_policy(name):
    host = get(name)
    assert cli(host, "config", "get", "maxmemory").stdout.split() == ["maxmemory", str(64 * 1024 * 1024)]
    assert cli(host, "config", "get", "maxmemory-policy").stdout.split() == ["maxmemory-policy", "allkeys-lru"]


@pytest.mark.parametrize("name", HOSTS)
def test_aof_grows_and_data_survives_a_restart(name):
    host = get(name)
    assert cli(host, "config", "get", "appendonly").stdout.split() == ["appendonly", "yes"]
    before = aof_size(host)
    marker = "mark-%d" % time.time_ns()
    for i in range(20):
        assert cli(host, "set", "%s-%d" % (marker, i), "x" * 100).stdout.strip() == "OK"
    time.sleep(1.5)  # appendfsync everysec
    assert aof_size(host) > before + 20 * 100
    host.check_output("systemctl restart redis-server")
    for _attempt in range(50):
        if cli(host, "ping").stdout.strip() == "PONG":
            break
        time.sleep(0.2)
    assert cli(host, "get", marker + "-19").stdout.strip() == "x" * 100


def test_bad_input_fails_before_any_change():
    host = get("redis-debian12")
    before = host.file("/etc/redis/redis.conf").sha256sum
    rc, out = ansible_playbook(CONVERGE, {"redis_password": "short", "redis_maxmemory": "lots"},
                               limit="redis-debian12")
    assert rc != 0, out
    assert "redis_password: shorter than 16 characters" in out, out
    assert 'redis_maxmemory: "lots" is not a size' in out, out
    assert "short" not in out.replace("shorter", "")
    assert "Install redis-server" not in out
    assert host.file("/etc/redis/redis.conf").sha256sum == before
    rc, out = ansible_playbook(CONVERGE, {"redis_maxmemory_policy": "lru"}, limit="redis-debian12")
    assert rc != 0 and "redis_maxmemory_policy" in out, out
    rc, out = ansible_playbook(CONVERGE, {"redis_password": "sixteen-chars-or-more\nrequirepass x"},
                               limit="redis-debian12")
    assert rc != 0 and said(out, "redis_password: holds a line break"), out
    # A plaintext port on a host that Redis binds beyond loopback.
    rc, out = ansible_playbook(CONVERGE, {"redis_bind": ["127.0.0.1", "0.0.0.0"], "redis_plaintext_port": 6380},
                               limit="redis-debian12")
    assert rc != 0 and said(out, "redis_plaintext_port: 6380 would take plaintext clients on 0.0.0.0 too"), out
    assert host.file("/etc/redis/redis.conf").sha256sum == before
