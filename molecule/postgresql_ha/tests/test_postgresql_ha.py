"""Behaviour of the patroni role on three Debian 12 data hosts of a network of
their own (fixed addresses): a Patroni cluster with etcd on the same three,
synchronous mode on, HAProxy on each member (5000: the primary, 5001: the
replicas). Connections are made for real between and inside the hosts.

The tests run in file order: the checks of the running cluster, the refused
bad input, the switchover playbook, then the failover under a write load
(the leader's container stopped, then started again and back as a replica
before the scenario ends).
"""

import json
import os
import pathlib
import subprocess
import time

import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONVERGE = ROOT / "molecule" / "postgresql_ha" / "converge.yml"
SWITCHOVER = ROOT / "playbooks" / "postgresql-switchover.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
MEMBERS = ("postgresql-ha1", "postgresql-ha2", "postgresql-ha3")
ADDRESSES = {"postgresql-ha1": "172.28.218.11", "postgresql-ha2": "172.28.218.12", "postgresql-ha3": "172.28.218.13"}
APP_PASSWORD = "molecule-app-password"
PATRONI = "patronictl -c /etc/patroni/config.yml"
# etcdctl as root on a member: over TLS on its private address, with
# Patroni's client certificate (the scenario's patroni_tls_certificate).
TLS_DIR = "/etc/aiquiz/tls"


def etcdctl(name):
    return ("ETCDCTL_API=3 etcdctl --endpoints https://%s:2379 --cacert %s/patroni/ca.pem --cert %s/patroni/fullchain.pem"
            " --key %s/patroni/privkey.pem" % (ADDRESSES[name], TLS_DIR, TLS_DIR, TLS_DIR))


# The load generator, run on a member that stays up: numbered rows through
# that member's HAProxy (5000), a new connection after any error; a row is
# acknowledged when its commit returned. Bounded by count and time, and it
# stops when /tmp/ha-load.stop appears; its status every second in
# /tmp/ha-load.status, the acknowledged ids at the end in /tmp/ha-load.json.
LOAD = r"""
import json, os, sys, time
import psycopg2
LIMIT, SECONDS = int(sys.argv[1]), float(sys.argv[2])
start = time.time()
acked, failed, conn, last_ok, gap, written = [], 0, None, None, 0.0, 0
status_at = 0
for row in range(LIMIT):
    now = time.time()
    if now - start > SECONDS or os.path.exists("/tmp/ha-load.stop"):
        break
    try:
        if conn is None:
            conn = psycopg2.connect(host="127.0.0.1", port=5000, dbname="appdb", user="app",
                                    password="%(password)s", sslmode="require", connect_timeout=3)
            conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ha_load (id) VALUES (%%s)", (row,))
        now = time.time()
        if last_ok is not None:
            gap = max(gap, now - last_ok)
        last_ok = now
        acked.append(row)
    except psycopg2.Error:
        failed += 1
        try:
            conn.close()
        except Exception:
            pass
        conn = None
        time.sleep(0.2)
    if time.time() - status_at >= 1:
        status_at = time.time()
        with open("/tmp/ha-load.status", "w") as out:
            json.dump({"acked": len(acked), "failed": failed, "last_ok": last_ok, "now": status_at}, out)
    time.sleep(0.02)
with open("/tmp/ha-load.json", "w") as out:
    json.dump({"acked": acked, "failed": failed, "max_gap": gap, "seconds": time.time() - start}, out)
""" % {"password": APP_PASSWORD}


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def members(via):
    """patronictl list of the cluster, read on a member: [{Member, Role, State, TL, ...}]."""
    return json.loads(get(via).check_output(PATRONI + " list -f json"))


def leader(via):
    names = [m["Member"] for m in members(via) if m["Role"] == "Leader"]
    return names[0] if len(names) == 1 else None


def psql(name, query, port=5000, user="app", password=APP_PASSWORD, db="appdb"):
    """psql through the member's HAProxy on loopback: (rc, stdout + stderr)."""
    dsn = "host=127.0.0.1 port=%d dbname=%s user=%s sslmode=require connect_timeout=5" % (port, db, user)
    cmd = get(name).run("PGPASSWORD=%s psql -XAtq %s -c %s", password, dsn, query)
    return cmd.rc, (cmd.stdout + cmd.stderr).strip()


def local_sql(name, query, db="postgres"):
    """A query as postgres over the member's local socket; its unaligned output."""
    return get(name).check_output("runuser -u postgres -- psql -XAtq -d %s -c %s", db, query).strip()


def wait_for(check, seconds, step=1.0):
    """The first true value of check() within seconds, else the last one."""
    deadline = time.time() + seconds
    value = check()
    while not value and time.time() < deadline:
        time.sleep(step)
        value = check()
    return value


def healthy(via, expected=3):
    """One leader, the others running replicas, one of them the synchronous standby."""
    try:
        listed = members(via)
    except Exception:  # pylint: disable=broad-except
        return False
    roles = sorted(m["Role"] for m in listed)
    return (len(listed) == expected and all(m["State"] in ("running", "streaming") for m in listed)
            and roles.count("Leader") == 1 and "Sync Standby" in roles)


def test_one_leader_and_two_streaming_replicas():
    assert wait_for(lambda: healthy("postgresql-ha1"), 60), members("postgresql-ha1")
    listed = members("postgresql-ha2")
    assert sorted(m["Member"] for m in listed) == list(MEMBERS)
    primary = leader("postgresql-ha3")
    streaming = local_sql(primary, "SELECT application_name || ':' || state FROM pg_stat_replication ORDER BY 1")
    assert streaming.splitlines() == ["%s:streaming" % name for name in MEMBERS if name != primary]
    for name in MEMBERS:
        expected = "f" if name == primary else "t"
        assert local_sql(name, "SELECT pg_is_in_recovery()") == expected, name


def test_synchronous_mode_gives_a_sync_standby():
    primary = leader("postgresql-ha1")
    assert local_sql(primary, "SHOW synchronous_commit") == "on"
    sync = local_sql(primary, "SELECT application_name FROM pg_stat_replication WHERE sync_state = 'sync'")
    assert sync in MEMBERS and sync != primary
    assert [m["Member"] for m in members(primary) if m["Role"] == "Sync Standby"] == [sync]
    assert local_sql(primary, "SHOW synchronous_standby_names").strip('"') == sync


def test_writes_through_haproxy_land_on_the_primary():
    primary = leader("postgresql-ha1")
    for name in MEMBERS:
        rc, out = psql(name, "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS ha_probe (at text); INSERT INTO ha_probe VALUES ('%s');"
                             " SELECT inet_server_addr(), pg_is_in_recovery()" % name)
        assert rc == 0, out
        assert out.splitlines()[-1] == "%s|f" % ADDRESSES[primary], (name, out)
    rows = local_sql(primary, "SELECT count(*) FROM ha_probe WHERE at IN ('postgresql-ha1', 'postgresql-ha2',"
                              " 'postgresql-ha3')", db="appdb")
    assert int(rows) >= 3


def test_reads_on_the_replica_port_reach_a_replica_that_refuses_writes():
    primary = leader("postgresql-ha1")
    seen = set()
    for attempt in range(4):
        rc, out = psql("postgresql-ha1", "SELECT inet_server_addr(), pg_is_in_recovery()", port=5001)
        assert rc == 0, out
        address, recovery = out.split("|")
        assert recovery == "t" and address != ADDRESSES[primary], attempt
        seen.add(address)
    assert len(seen) == 2, "round robin over both replicas: %s" % seen
    rc, out = psql("postgresql-ha2", "INSERT INTO ha_probe VALUES ('replica')", port=5001)
    assert rc != 0 and "read-only transaction" in out


def test_rest_api_and_etcd_listen_on_the_private_address_only():
    for name in MEMBERS:
        listening = get(name).check_output("ss -Hltn | awk '{print $4}'").split()
        rest = [a for a in listening if a.endswith(":8008")]
        peer = [a for a in listening if a.endswith(":2380")]
        client = sorted(a for a in listening if a.endswith(":2379"))
        assert rest == ["%s:8008" % ADDRESSES[name]], (name, listening)
        assert peer == ["%s:2380" % ADDRESSES[name]], (name, listening)
        # TLS: the private address only (no plain loopback listener for local users).
        assert client == ["%s:2379" % ADDRESSES[name]], (name, listening)


# etcd holds the cluster's truth (the leader key, the configuration Patroni
# follows): whoever writes there can demote the primary or turn synchronous
# mode off. An attacker on the private network here is the controller (no
# member); a local user is `nobody` on a member. Each attempt writes a key
# of its own through etcd's JSON gateway and reads the cluster's keys.
ETCD_ATTEMPT = r"""
import base64, json, socket, ssl, sys, urllib.request, urllib.error
url, cert, key = sys.argv[1], (sys.argv[2:3] or [None])[0], (sys.argv[3:4] or [None])[0]
ctx = None
if url.startswith("https"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
b64 = lambda text: base64.b64encode(text.encode()).decode()
out = {}
for name, path, body in (("put", "/v3/kv/put", {"key": b64("/attack/probe"), "value": b64("x")}),
                         ("read", "/v3/kv/range", {"key": b64("/service/"), "range_end": b64("/service0")})):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            out[name] = "%d %s" % (resp.status, resp.read()[:80])
    except urllib.error.HTTPError as exc:
        out[name] = "http %d" % exc.code
    except (OSError, ssl.SSLError) as exc:
        out[name] = "refused: %s" % (getattr(exc, "reason", None) or exc)
print(json.dumps(out))
"""


def other_ca_certificate(tmp_path):
    """(certificate, key) files of a self-signed certificate for a member's name: another CA's."""
    pem, key = str(tmp_path / "other.pem"), str(tmp_path / "other.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=postgresql-ha1", "-keyout", key, "-out", pem],
                   check=True, capture_output=True, timeout=60)
    return pem, key


def etcd_attempt(url, cert=None, key=None, on=None, user=None):
    """{put, read}: '200 ...' when etcd did it, else why not."""
    args = [url] + ([cert, key] if cert else [])
    if on is None:
        proc = subprocess.run(["python3", "-c", ETCD_ATTEMPT] + args, capture_output=True, text=True, timeout=60,
                              check=True)
        return json.loads(proc.stdout)
    prefix = "runuser -u %s -- " % user if user else ""
    return json.loads(get(on).check_output(prefix + "python3 -c %s " + " ".join(["%s"] * len(args)),
                                           ETCD_ATTEMPT, *args))


def test_etcd_takes_no_orders_from_outside_the_cluster(tmp_path):
    other_pem, other_key = other_ca_certificate(tmp_path)
    tried = {}
    for name, address in ADDRESSES.items():
        for scheme in ("http", "https"):
            url = "%s://%s:2379" % (scheme, address)
            tried[("controller", url)] = etcd_attempt(url)
            if scheme == "https":
                tried[("controller, another CA", url)] = etcd_attempt(url, other_pem, other_key)
        for url in ("http://127.0.0.1:2379", "https://127.0.0.1:2379", "https://%s:2379" % address):
            tried[("nobody on " + name, url)] = etcd_attempt(url, on=name, user="nobody")
    obeyed = {"%s -> %s" % k: v for k, v in tried.items() if any(r.startswith("200") for r in v.values())}
    assert not obeyed, "etcd obeyed a caller outside the cluster: %s" % json.dumps(obeyed, indent=1)
    # The member's own client (Patroni's certificate) is served, and no attempt left a key.
    keys = get("postgresql-ha1").check_output(etcdctl("postgresql-ha1") + " get --prefix --keys-only /")
    assert "/service/quiz/leader" in keys
    assert "/attack/probe" not in keys
    assert healthy("postgresql-ha1")


# Patroni's REST API: its unsafe methods restart PostgreSQL, switch the leader
# over and change the cluster's configuration. The attacker knows the REST
# password (read off the wire while it crossed in clear, or leaked) and sits on
# the private network without being a member (the controller here); a member
# asking its own API is the role's and patronictl's way.
REST_ATTEMPT = r"""
import base64, json, ssl, sys, urllib.request, urllib.error
url, password, cert, key = sys.argv[1], sys.argv[2], (sys.argv[3:4] or [None])[0], (sys.argv[4:5] or [None])[0]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
if cert:
    ctx.load_cert_chain(cert, key)
out = {}
for name, method, path in (("reload", "POST", "/reload"), ("read", "GET", "/config")):
    req = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(("patroni:" + password).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx if url.startswith("https") else None) as resp:
            out[name] = "%d %s" % (resp.status, resp.read()[:60])
    except urllib.error.HTTPError as exc:
        out[name] = "http %d" % exc.code
    except (OSError, ssl.SSLError) as exc:
        out[name] = "refused: %s" % (getattr(exc, "reason", None) or exc)
print(json.dumps(out))
"""
REST_PASSWORD = "molecule-restapi-password"


def rest_attempt(url, on=None, cert=None, key=None):
    args = [url, REST_PASSWORD] + ([cert, key] if cert else [])
    if on is None:
        proc = subprocess.run(["python3", "-c", REST_ATTEMPT] + args, capture_output=True, text=True, timeout=60,
                              check=True)
        return json.loads(proc.stdout)
    return json.loads(get(on).check_output("python3 -c %s " + " ".join(["%s"] * len(args)), REST_ATTEMPT, *args))


def test_rest_api_takes_no_orders_from_outside_the_cluster(tmp_path):
    """With the password, from the private network but no member: plain HTTP gets no answer (the API
    speaks TLS alone, so the password never crosses in clear), over TLS the unsafe method is refused
    (403: a client certificate of the own CA and a member's or loopback's address are needed), and a
    certificate of another CA fails the handshake. The member itself, with Patroni's certificate and
    the password, is obeyed, and patronictl (its ctl section holds them) lists the cluster."""
    other_pem, other_key = other_ca_certificate(tmp_path)
    tried = {}
    for name, address in ADDRESSES.items():
        for scheme in ("http", "https"):
            url = "%s://%s:8008" % (scheme, address)
            tried[("controller", url)] = rest_attempt(url)
        url = "https://%s:8008" % address
        tried[("controller, another CA", url)] = rest_attempt(url, cert=other_pem, key=other_key)
    obeyed = {"%s -> %s" % k: v for k, v in tried.items() if v["reload"].startswith("2")}
    assert not obeyed, "Patroni obeyed a caller outside the cluster: %s" % json.dumps(obeyed, indent=1)
    plain = {k: v for k, v in tried.items() if k[1].startswith("http:") and not v["read"].startswith("refused")}
    assert not plain, "the REST API answered plain HTTP: %s" % plain
    assert all(v["reload"] == "http 403" for k, v in tried.items() if k[0] == "controller"
               and k[1].startswith("https:")), tried
    assert all(v["reload"].startswith("refused") for k, v in tried.items() if k[0] == "controller, another CA"), tried
    member = rest_attempt("https://%s:8008" % ADDRESSES["postgresql-ha2"], on="postgresql-ha2",
                          cert=TLS_DIR + "/patroni/fullchain.pem", key=TLS_DIR + "/patroni/privkey.pem")
    assert member["reload"].startswith("202"), member
    listed = json.loads(get("postgresql-ha1").check_output(PATRONI + " list -f json"))
    assert sorted(m["Member"] for m in listed) == sorted(MEMBERS)
    # The role's own calls and HAProxy's checks run over TLS with the own CA.
    config = get("postgresql-ha1").check_output("cat /etc/haproxy/haproxy.cfg")
    assert config.count("check-ssl verify required ca-file %s/patroni/ca.pem" % TLS_DIR) == 6
    assert healthy("postgresql-ha1")


def test_secrets_are_readable_by_postgres_alone():
    for name in MEMBERS:
        host = get(name)
        config = host.file("/etc/patroni/config.yml")
        assert (config.user, config.group, config.mode) == ("postgres", "postgres", 0o600)
        assert host.run("runuser -u nobody -- cat /etc/patroni/config.yml").rc != 0
        assert "molecule-superuser-password" in host.check_output("runuser -u postgres -- cat /etc/patroni/config.yml")
        # Patroni's passfile of the replicas, and no password on a command line.
        ps = host.check_output("ps -eo args")
        assert "molecule-" not in ps
    # Unsafe REST methods need the credentials, even from a member.
    unauthenticated = ("import ssl, sys, urllib.error, urllib.request as u\n"
                       "ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
                       "ctx.load_cert_chain(sys.argv[3], sys.argv[4])\n"
                       "try:\n"
                       "    u.urlopen(u.Request(sys.argv[1], method='POST', data=b''), timeout=5, context=ctx)\n"
                       "    print('obeyed')\n"
                       "except urllib.error.HTTPError as exc:\n"
                       "    print(exc.code)\n")
    assert get("postgresql-ha1").check_output(
        "python3 -c %s %s %s %s %s", unauthenticated, "https://%s:8008/restart" % ADDRESSES["postgresql-ha1"],
        TLS_DIR + "/patroni/ca.pem", TLS_DIR + "/patroni/fullchain.pem", TLS_DIR + "/patroni/privkey.pem") == "401"


def test_bad_input_is_refused_before_any_change():
    before = members("postgresql-ha1")
    rc, out = ansible_playbook(CONVERGE, extra_vars={
        "patroni_cluster_name": "renamed", "patroni_etcd_members": ["postgresql-ha1", "postgresql-ha2"]})
    flat = " ".join(out.split())
    assert rc != 0
    assert "patroni_etcd_members: 2 members" in flat
    assert 'patroni_cluster_name: "renamed", but Patroni on postgresql-ha1 already runs cluster "quiz"' in flat
    assert "changed=0" in flat and "changed=1" not in flat
    assert get("postgresql-ha1").file("/etc/default/etcd").contains("ETCD_INITIAL_CLUSTER_TOKEN=quiz")
    assert [m["Member"] for m in members("postgresql-ha1") if m["Role"] == "Leader"] == \
        [m["Member"] for m in before if m["Role"] == "Leader"]


def test_switchover_playbook_moves_the_leader_to_the_sync_standby():
    old = leader("postgresql-ha1")
    sync = [m["Member"] for m in members("postgresql-ha1") if m["Role"] == "Sync Standby"][0]
    rc, out = ansible_playbook(SWITCHOVER, check=True)
    assert rc == 0, out
    assert leader("postgresql-ha1") == old
    rc, out = ansible_playbook(SWITCHOVER)
    assert rc == 0, out
    assert wait_for(lambda: healthy("postgresql-ha2"), 60), members("postgresql-ha2")
    assert leader("postgresql-ha2") == sync
    assert "leader now %s" % sync in out
    rc, out = psql(old, "INSERT INTO ha_probe VALUES ('after switchover') RETURNING inet_server_addr()")
    assert rc == 0 and out.splitlines()[0] == ADDRESSES[sync], out


def docker(*args, timeout=120):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def load_status(name):
    cmd = get(name).run("cat /tmp/ha-load.status")
    return json.loads(cmd.stdout) if cmd.rc == 0 and cmd.stdout.strip() else {}


def test_failover_under_write_load_loses_no_acknowledged_write_and_the_old_leader_rejoins(capsys):
    old = leader("postgresql-ha1")
    writer = [name for name in MEMBERS if name != old][0]
    rc, out = psql(writer, "SET client_min_messages = warning; DROP TABLE IF EXISTS ha_load; CREATE TABLE ha_load (id int PRIMARY KEY,"
                           " at timestamptz DEFAULT now())")
    assert rc == 0, out
    host = get(writer)
    host.run("rm -f /tmp/ha-load.stop /tmp/ha-load.status /tmp/ha-load.json")
    script = host.run("cat > /tmp/ha-load.py <<'EOF'\n%s\nEOF" % LOAD)
    assert script.rc == 0
    # At most 20000 rows or 150 s, whichever comes first.
    subprocess.run(["docker", "exec", "-d", writer, "python3", "/tmp/ha-load.py", "20000", "150"], check=True)
    try:
        assert wait_for(lambda: load_status(writer).get("acked", 0) >= 50, 30), load_status(writer)
        stop = docker("stop", old)
        assert stop.returncode == 0, stop.stderr
        stopped_at = time.time()
        survivor = [name for name in MEMBERS if name != old][-1]
        new = wait_for(lambda: (leader(survivor) or "") if leader(survivor) != old else "", 60)
        assert new and new != old, members(survivor)
        # Writes resumed through HAProxy: acknowledged rows after the stop.
        resumed = wait_for(lambda: (load_status(writer).get("last_ok") or 0) > stopped_at + 1, 60)
        assert resumed, load_status(writer)
        acked_before = load_status(writer)["acked"]
        assert wait_for(lambda: load_status(writer).get("acked", 0) >= acked_before + 50, 30)
    finally:
        host.run("touch /tmp/ha-load.stop")
        assert wait_for(lambda: host.run("test -s /tmp/ha-load.json").rc == 0, 30)
    result = json.loads(host.check_output("cat /tmp/ha-load.json"))
    acked = set(result["acked"])
    rc, out = psql(writer, "SELECT id FROM ha_load")
    assert rc == 0, out
    present = {int(line) for line in out.split()}
    lost = sorted(acked - present)
    figures = json.dumps({
        "scenario": "postgresql_ha", "event": "primary container stopped", "old_leader": old, "new_leader": new,
        "acknowledged_writes": len(acked), "failed_attempts": result["failed"],
        "write_downtime_seconds": round(result["max_gap"], 2), "acknowledged_writes_lost": len(lost)})
    # In the test output whatever pytest captures: the figures of the run.
    with capsys.disabled():
        print("\n" + figures)
    assert not lost, "acknowledged writes lost: %s" % lost[:20]
    assert result["max_gap"] < 30, "write downtime %.1f s" % result["max_gap"]

    # The old leader's host comes back and rejoins as a replica, without a manual step.
    start = docker("start", old)
    assert start.returncode == 0, start.stderr
    get(old).run("systemctl is-system-running --wait")
    assert wait_for(lambda: healthy(new), 120, step=2), members(new)
    back = [m for m in members(new) if m["Member"] == old][0]
    assert back["Role"] in ("Replica", "Sync Standby"), back
    assert local_sql(old, "SELECT pg_is_in_recovery()") == "t"
    # It holds the rows written while it was down.
    assert wait_for(lambda: rows_on(old) >= len(acked), 60, step=2)


def rows_on(name):
    return int(local_sql(name, "SELECT count(*) FROM ha_load", db="appdb"))
