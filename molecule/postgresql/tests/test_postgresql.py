"""Behaviour of the postgresql role on three hosts of a network of their own.

postgresql-primary (Debian 12) serves the database appdb to one TCP client,
postgresql-replica (Debian 12), which also streams the primary's WAL as a hot
standby, checking the primary's certificate (the tls role's own CA,
verify-full). postgresql-debian13 (PostgreSQL 17, sized from the host's
memory, exporter on, a self-signed certificate of its own) is a client
nobody declared. Connections are made for real between the hosts, with psql.
"""

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

CONVERGE = ROOT / "molecule" / "postgresql" / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
VERSIONS = {"postgresql-primary": "15", "postgresql-replica": "15", "postgresql-debian13": "17"}
APP_PASSWORD = "molecule-app-password"
PAIR = "postgresql-primary,postgresql-replica"
CA = "/etc/aiquiz/tls/postgresql/ca.pem"


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def said(out, text):
    """Whether the playbook output holds text, however the output wrapped and coloured it."""
    return "".join(text.split()) in "".join(re.sub(r"\x1b\[[0-9;]*m", "", out).split())


def sql(name, query, db="postgres"):
    """Run a query as postgres over the local socket; its unaligned output."""
    return get(name).check_output("runuser -u postgres -- psql -XAtq -d %s -c %s", db, query).strip()


def remote_psql(source, target, password, query="SELECT 1", user="app", db="appdb", sslmode="require"):
    """psql from one host to another over TCP: (rc, stdout + stderr)."""
    dsn = "host=%s dbname=%s user=%s sslmode=%s connect_timeout=5" % (target, db, user, sslmode)
    cmd = get(source).run("PGPASSWORD=%s psql -XAtq %s -c %s", password, dsn, query)
    return cmd.rc, cmd.stdout + cmd.stderr


# A session over TLS (verify-full), kept open until /tmp/rotation-client.go.
LONG_CLIENT = """
import os, time, psycopg2
conn = psycopg2.connect(host="postgresql-primary", dbname="appdb", user="app", password="%(password)s",
                        sslmode="verify-full", sslrootcert="%(ca)s", connect_timeout=5)
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT 1")
print("connected", cur.fetchone()[0], flush=True)
deadline = time.time() + 300
while not os.path.exists("/tmp/rotation-client.go") and time.time() < deadline:
    time.sleep(0.2)
cur.execute("SELECT 1")
print("after", cur.fetchone()[0], flush=True)
"""


def postmaster_start(name="postgresql-primary"):
    return sql(name, "SELECT pg_postmaster_start_time()")


def run_role(extra_vars=None, limit="postgresql-primary", tags=None):
    return ansible_playbook(CONVERGE, extra_vars, limit=limit, tags=tags)


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_debian_version_runs_and_answers(name):
    host = get(name)
    version = VERSIONS[name]
    service = host.service("postgresql@%s-main" % version)
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://0.0.0.0:5432").is_listening
    assert sql(name, "SHOW server_version").startswith(version + ".")
    assert sql(name, "SHOW data_directory") == "/var/lib/postgresql/%s/main" % version
    conf = host.file("/etc/postgresql/%s/main/conf.d/50-aiquiz.conf" % version)
    assert (conf.user, conf.group, conf.mode) == ("postgres", "postgres", 0o644)
    hba = host.file("/etc/postgresql/%s/main/pg_hba.conf" % version)
    assert (hba.user, hba.group, hba.mode) == ("postgres", "postgres", 0o640)
    # Only the managed lines: no `local all all` or `host all all` of Debian's file.
    rules = sql(name, "SELECT type, database, user_name, auth_method FROM pg_hba_file_rules")
    assert "{all}|{all}" not in rules, rules
    assert "local|{all}|{postgres}|peer" in rules


def test_settings_sized_from_memory():
    # The primary assumes 1024 MiB (postgresql_memory_mb): a quarter, three
    # quarters, a sixteenth, and 4 MiB of work_mem for 100 connections.
    assert sql("postgresql-primary", "SELECT current_setting('shared_buffers'), current_setting('effective_cache_size'),"
               " current_setting('maintenance_work_mem'), current_setting('work_mem')") == "256MB|768MB|64MB|4MB"
    # The Debian 13 host is sized from its own memory.
    host = get("postgresql-debian13")
    total_kb = int(host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
    expected = min(max(total_kb // 1024 // 4, 128), 16384)
    shared_mb = int(sql("postgresql-debian13", "SELECT setting::bigint * 8 / 1024 FROM pg_settings"
                        " WHERE name = 'shared_buffers'"))
    assert shared_mb == expected
    assert sql("postgresql-primary", "SHOW log_min_duration_statement") == "500ms"  # postgresql_settings wins


def test_declared_client_needs_the_right_password_over_tls():
    rc, out = remote_psql("postgresql-replica", "postgresql-primary", APP_PASSWORD,
                          "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert rc == 0, out
    assert out.strip().startswith("t|TLSv1."), out
    rc, out = remote_psql("postgresql-replica", "postgresql-primary", "not-the-password")
    assert rc != 0 and 'password authentication failed for user "app"' in out, out
    # The password is stored as a SCRAM verifier.
    assert sql("postgresql-primary", "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app'") \
        == "SCRAM-SHA-256$"


def test_given_certificate_is_served_and_verifies():
    # postgresql-debian13 serves the certificate of postgresql_tls_cert_file:
    # a client that trusts only that certificate verifies the server's name.
    cert = get("postgresql-debian13").file("/etc/ssl/aiquiz-test/server.crt").content_string
    replica = get("postgresql-replica")
    replica.check_output("printf '%%s' %s > /tmp/pg-debian13.crt", cert)
    dsn = ("host=postgresql-debian13 dbname=appdb user=app sslmode=verify-full sslrootcert=/tmp/pg-debian13.crt"
           " connect_timeout=5")
    cmd = replica.run("PGPASSWORD=%s psql -XAtq %s -c %s", APP_PASSWORD, dsn,
                      "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert cmd.rc == 0 and cmd.stdout.strip() == "t", cmd.stdout + cmd.stderr
    # The primary's certificate (the own CA's) does not verify against it.
    cmd = replica.run("PGPASSWORD=%s psql -XAtq %s -c 'SELECT 1'", APP_PASSWORD,
                      dsn.replace("host=postgresql-debian13", "host=postgresql-primary"))
    assert cmd.rc != 0 and "certificate verify failed" in cmd.stderr, cmd.stderr


def test_clients_verify_the_own_ca_and_the_name():
    # What the workload ships: verify-full against the own CA's root.
    replica = get("postgresql-replica")
    dsn = "host=postgresql-primary dbname=appdb user=app sslmode=verify-full sslrootcert=%s connect_timeout=5" % CA
    cmd = replica.run("PGPASSWORD=%s psql -XAtq %s -c %s", APP_PASSWORD, dsn,
                      "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert cmd.rc == 0 and cmd.stdout.strip().startswith("t|TLSv1."), cmd.stdout + cmd.stderr
    # The same certificate for another name the client asked for: refused.
    address = get("postgresql-primary").check_output("hostname -I").split()[0]
    cmd = replica.run("PGPASSWORD=%s psql -XAtq %s -c 'SELECT 1'", APP_PASSWORD,
                      dsn.replace("host=postgresql-primary", "host=%s" % address))
    assert cmd.rc != 0 and "does not match host name" in cmd.stderr, cmd.stderr


def test_replica_refuses_a_primary_with_a_certificate_from_another_ca():
    # Someone answers for postgresql-primary (a spoofed DNS answer: hostaddr)
    # with a certificate for that very name, signed by another CA. The
    # replica's own connection settings (primary_conninfo as the role wrote
    # them) refuse it before any password is sent.
    rogue = get("postgresql-debian13")
    rogue_tls.start(rogue, 5499, ["DNS:postgresql-primary"], mode="postgres")
    address = rogue.check_output("hostname -I").split()[0]
    conninfo = sql("postgresql-replica", "SHOW primary_conninfo")
    assert "sslmode=verify-full" in conninfo and "sslrootcert=%s" % CA in conninfo, conninfo
    assert "password" not in conninfo.replace("passfile", ""), conninfo
    cmd = get("postgresql-replica").run("runuser -u postgres -- psql -XAtq %s -c 'SELECT 1'",
                                        "%s hostaddr=%s port=5499 dbname=postgres connect_timeout=5" % (conninfo, address))
    assert cmd.rc != 0 and "certificate verify failed" in cmd.stderr, cmd.stderr
    # The same settings against the real primary work (a physical replication login).
    cmd = get("postgresql-replica").run("runuser -u postgres -- psql -XAtq %s -c 'IDENTIFY_SYSTEM'",
                                        "%s replication=true connect_timeout=5" % conninfo)
    assert cmd.rc == 0, cmd.stderr


def test_rotation_reloads_without_dropping_connections():
    primary, replica = get("postgresql-primary"), get("postgresql-replica")
    cert = "openssl s_client -starttls postgres -connect postgresql-primary:5432 </dev/null 2>/dev/null" \
           " | openssl x509 -noout -serial"
    before = replica.check_output(cert)
    started = postmaster_start()
    walsender = sql("postgresql-primary", "SELECT pid FROM pg_stat_replication")
    # A client session over TLS, open across the rotation.
    replica.check_output("rm -f /tmp/rotation-client.go; nohup python3 -c %s >/tmp/rotation-client.out 2>&1 &",
                         LONG_CLIENT % {"ca": CA, "password": APP_PASSWORD})
    for _attempt in range(100):
        if "connected" in replica.run("cat /tmp/rotation-client.out").stdout:
            break
        time.sleep(0.1)
    rc, out = ansible_playbook(ROOT / "playbooks" / "rotate-certs.yml",
                               {"rotate_certs_names": ["postgresql"], "rotate_certs_force": True},
                               limit="postgresql-primary")
    assert rc == 0, out
    assert "postgresql.service" in out, out
    for _attempt in range(50):
        if replica.check_output(cert) != before:
            break
        time.sleep(0.2)
    assert replica.check_output(cert) != before
    # Reloaded, not restarted: the server, the replication connection and the client session go on.
    assert postmaster_start() == started
    assert sql("postgresql-primary", "SELECT pid FROM pg_stat_replication") == walsender
    replica.check_output("touch /tmp/rotation-client.go")
    for _attempt in range(100):
        result = replica.run("cat /tmp/rotation-client.out").stdout
        if "after" in result:
            break
        time.sleep(0.1)
    assert "connected" in result and "after 1" in result, result


def test_pg_hba_refuses_what_was_not_declared():
    # The Debian 13 host is not a declared client, even with the right password.
    rc, out = remote_psql("postgresql-debian13", "postgresql-primary", APP_PASSWORD)
    assert rc != 0 and "no pg_hba.conf entry for host" in out, out
    # The declared client without TLS, or on another database, is refused too.
    rc, out = remote_psql("postgresql-replica", "postgresql-primary", APP_PASSWORD, sslmode="disable")
    assert rc != 0 and "no pg_hba.conf entry for host" in out, out
    rc, out = remote_psql("postgresql-replica", "postgresql-primary", APP_PASSWORD, db="postgres")
    assert rc != 0 and "no pg_hba.conf entry for host" in out, out
    # Locally only the postgres OS user gets in.
    cmd = get("postgresql-primary").run("runuser -u nobody -- psql -XAtq -U app -d appdb -c 'SELECT 1'")
    assert cmd.rc != 0 and "no pg_hba.conf entry" in cmd.stderr, cmd.stderr


def test_replica_streams_what_the_primary_writes():
    assert sql("postgresql-replica", "SELECT pg_is_in_recovery()") == "t"
    assert sql("postgresql-primary", "SELECT slot_name, active FROM pg_replication_slots") == "postgresql_replica|t"
    assert sql("postgresql-primary", "SELECT client_addr IS NOT NULL, state, ssl FROM pg_stat_replication"
               " JOIN pg_stat_ssl USING (pid)") == "t|streaming|t"
    marker = "row-%d" % time.time_ns()
    sql("postgresql-primary", "CREATE TABLE IF NOT EXISTS marks (v text)", db="appdb")
    sql("postgresql-primary", "INSERT INTO marks VALUES ('%s')" % marker, db="appdb")
    for _attempt in range(50):
        if sql("postgresql-replica", "SELECT count(*) FROM marks WHERE v = '%s'" % marker, db="appdb") == "1":
            break
        time.sleep(0.2)
    else:
        pytest.fail("the row written on the primary never reached the replica")
    # The replica refuses writes.
    cmd = get("postgresql-replica").run("runuser -u postgres -- psql -XAtq -d appdb -c %s",
                                        "INSERT INTO marks VALUES ('x')")
    assert cmd.rc != 0 and "read-only transaction" in cmd.stderr, cmd.stderr


def test_wal_segments_are_archived():
    primary = get("postgresql-primary")
    assert sql("postgresql-primary", "SHOW archive_mode") == "on"
    before = int(sql("postgresql-primary", "SELECT archived_count FROM pg_stat_archiver"))
    sql("postgresql-primary", "CREATE TABLE IF NOT EXISTS wal_push AS SELECT 1 AS v", db="appdb")
    segment = sql("postgresql-primary", "SELECT pg_walfile_name(pg_switch_wal())")
    for _attempt in range(50):
        if int(sql("postgresql-primary", "SELECT archived_count FROM pg_stat_archiver")) > before:
            break
        time.sleep(0.2)
    else:
        pytest.fail("no WAL segment was archived")
    assert primary.file("/var/lib/postgresql/wal-archive/" + segment).is_file


def test_exporter_reports_the_server_up():
    host = get("postgresql-debian13")
    for _attempt in range(30):
        cmd = host.run("python3 -c %s", "import urllib.request;"
                       "print(urllib.request.urlopen('http://127.0.0.1:9187/metrics', timeout=3).read().decode())")
        if cmd.rc == 0 and "\npg_up 1" in cmd.stdout:
            break
        time.sleep(1)
    assert cmd.rc == 0 and "\npg_up 1" in cmd.stdout, cmd.stdout[-500:] + cmd.stderr


def test_reloadable_change_reloads_and_restart_only_when_needed():
    started = postmaster_start()
    try:
        # Only the configuration part of the role (tag postgresql_configure): quicker.
        rc, out = run_role({"postgresql_settings": {"log_min_duration_statement": 1000}}, tags="postgresql_configure")
        assert rc == 0, out
        assert sql("postgresql-primary", "SHOW log_min_duration_statement") == "1s"
        assert postmaster_start() == started, "a reloadable setting restarted the server"
        assert "RUNNING HANDLER [aiquiz.ops.postgresql : Reload PostgreSQL]" in out, out
        # shared_buffers needs a restart: it gets one.
        rc, out = run_role({"postgresql_memory_mb": 2048}, tags="postgresql_configure")
        assert rc == 0, out
        assert sql("postgresql-primary", "SHOW shared_buffers") == "512MB"
        assert postmaster_start() != started
    finally:
        rc, out = run_role(tags="postgresql_configure")
    assert rc == 0, out
    assert sql("postgresql-primary", "SHOW shared_buffers") == "256MB"


def test_bad_input_fails_before_any_change():
    conf = "/etc/postgresql/15/main/conf.d/50-aiquiz.conf"
    before = get("postgresql-primary").file(conf).sha256sum
    rc, out = run_role({"postgresql_hba": [{"type": "host", "database": "all", "user": "all",
                                            "address": "0.0.0.0/0", "method": "trust"}]})
    assert rc != 0 and "postgresql_hba" in out and "trust" in out, out
    assert "Install the PostgreSQL server" not in out
    rc, out = run_role({"postgresql_settings": {"shared_bufers": "1GB"}}, tags="postgresql_configure")
    assert rc != 0 and 'unrecognized configuration parameter "shared_bufers"' in out, out
    assert get("postgresql-primary").file(conf).sha256sum == before
    rc, out = run_role({"postgresql_tls_certificate": "", "postgresql_tls_key_file": "/etc/ssl/private/absent.key"},
                       tags="postgresql_configure")
    assert rc != 0 and said(out, "postgresql_tls_cert_file or postgresql_tls_key_file (/etc/ssl/private/absent.key) are"
                            " missing or not readable by postgres"), out
    assert get("postgresql-primary").file(conf).sha256sum == before
    rc, out = run_role({"postgresql_replica_of": "postgresql-primary"})
    assert rc != 0 and "postgresql_replica_of: a host cannot be its own replica" in out, out
    # Plaintext admitted by an hba line, and a replica that could not check its primary.
    rc, out = run_role({"postgresql_hba": [{"type": "host", "database": "appdb", "user": "app",
                                            "address": "10.0.0.0/8", "method": "scram-sha-256"}]})
    assert rc != 0 and said(out, "postgresql_hba[0]: type host also admits connections without TLS; use hostssl"), out
    rc, out = run_role({"postgresql_tls_certificate": ""}, limit="postgresql-replica")
    assert rc != 0 and said(out, "postgresql_replication_ca_file: empty, and no postgresql_tls_certificate"), out
    rc, out = run_role({"postgresql_tls_certificate": "nope"})
    assert rc != 0 and said(out, 'postgresql_tls_certificate: "nope" is not a certificate of tls_certificates'), out
    assert get("postgresql-primary").file(conf).sha256sum == before


def test_replication_password_never_reaches_a_command_line_or_a_log():
    # The attack: a local user (or the audit trail) reads process argv and
    # environments while the role clones a replica, then the journal (sudo
    # logs every command line it runs) and the files. The canary is the
    # replication password of this run only.
    canary = "pgcanary-" + secrets.token_hex(8)
    replica = get("postgresql-replica")
    samplers = {name: Sampler(get(name), [canary]) for name in PAIR.split(",")}
    # A replica that no longer follows its primary and holds databases: the
    # role clones it again (postgresql_replica_force_reclone), with the canary.
    replica.check_output("rm -f /var/lib/postgresql/15/main/standby.signal && systemctl restart postgresql@15-main")
    try:
        rc, out = run_role({"postgresql_replication_password": canary, "postgresql_replica_force_reclone": True},
                           limit=PAIR)
    finally:
        found = {name: sampler.stop() for name, sampler in samplers.items()}
    assert rc == 0, out
    assert canary not in out
    for name, result in found.items():
        assert result["samples"] > 20, result
        assert result["hits"] == [], "%s: the canary was seen in %s" % (name, result["hits"])
    passfile = "/var/lib/postgresql/.aiquiz-replication.pgpass"
    for name in PAIR.split(","):
        assert traces(get(name), [canary], allowed=(passfile,)) == [], name
    # The one place it is: the replica's passfile, for the postgres user alone.
    pgpass = replica.file(passfile)
    assert (pgpass.user, pgpass.group, pgpass.mode) == ("postgres", "postgres", 0o600)
    assert canary in pgpass.content_string
    # Streaming again with the password of the inventory.
    rc, out = run_role(limit=PAIR)
    assert rc == 0, out
    assert sql("postgresql-replica", "SELECT pg_is_in_recovery()") == "t"
    assert canary not in replica.file(passfile).content_string
