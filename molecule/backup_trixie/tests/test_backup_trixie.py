"""Backup and restore on Debian 13: PostgreSQL 17 from the postgresql role,
pgBackRest and restic from Debian 13's packages, Redis and a files set, one
local target (molecule/backup covers S3, the drill and the faults on Debian 12).

The tests run in file order and build on each other: back up, verify, lose
data, restore it.
"""

import json
import os
import pathlib
import shlex
import time

import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DATA = "backup_trixie-debian13"
CATALOGUE = "/var/lib/aiquiz/backup/catalogue.json"
METRICS = "/var/lib/prometheus/node-exporter/aiquiz_backup.prom"
REDIS = "REDISCLI_AUTH=molecule-redis-password redis-cli --no-auth-warning "


def host(name=DATA):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def sql(query, db="quiz"):
    cmd = host().run("runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -d %s -c %s" % (db, shlex.quote(query)))
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def catalogue():
    return json.loads(host().check_output("cat %s" % CATALOGUE))["backups"]


def playbook(name, **extra):
    return ansible_playbook(ROOT / "playbooks" / name, extra_vars=extra, timeout=1200)


def backup(steps, **extra):
    return playbook("backup.yml", backup_hosts=DATA, backup_steps=steps, **extra)


def archive_now():
    """Switch WAL and wait until pgBackRest has it (pgbackrest check does both)."""
    cmd = host().run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert cmd.rc == 0, cmd.stderr


def utc_now():
    return sql("SELECT to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")


def test_postgresql_17_archives_to_pgbackrest_and_the_configuration_is_private():
    data = host()
    assert sql("SHOW server_version_num", db="postgres").startswith("17")
    assert data.service("postgresql@17-main").is_running
    assert sql("SHOW archive_command", db="postgres") == "pgbackrest --stanza=main archive-push %p"
    conf = data.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert "pg1-path=/var/lib/postgresql/17/main" in conf.content_string
    passphrase = data.file("/etc/aiquiz-backup/passphrase")
    assert (passphrase.user, passphrase.mode) == ("root", 0o600)
    archive_now()


def test_full_backup_and_logical_job_are_good_and_verified():
    sql("DROP TABLE IF EXISTS markers; CREATE TABLE markers (id int PRIMARY KEY, note text)")
    sql("INSERT INTO markers VALUES (0, 'before the backups')")
    host().check_output(REDIS + "SET restore:marker before")
    rc, out = backup(["pgbackrest"], backup_pgbackrest_type="full")
    assert rc == 0, out
    rc, out = backup(["dump", "redis", "files"])
    assert rc == 0, out
    rc, out = backup(["verify"])
    assert rc == 0, out
    # backup.yml gathers no facts: the role still finds PostgreSQL 17's data directory (it once fell back to 15).
    assert "pg1-path=/var/lib/postgresql/17/main" in host().file("/etc/pgbackrest/pgbackrest.conf").content_string
    entries = catalogue()
    good = {(e["kind"], e.get("subject")) for e in entries if e["status"] == "good" and e["target"] == "local"}
    for kind, subject in (("postgresql-pgbackrest", "main"), ("postgresql-dump", "quiz"), ("redis", "redis"),
                          ("files", "etc-aiquiz")):
        assert (kind, subject) in good, (kind, subject, entries)
    full = [e for e in entries if e["kind"] == "postgresql-pgbackrest" and e["status"] == "good"][-1]
    assert full["location"].endswith("F"), full
    # Restored into a scratch PostgreSQL 17 instance and checked with pg_amcheck.
    assert full["verified"]["result"] == "ok", full["verified"]
    assert "pg_amcheck clean" in full["verified"]["detail"] and "quiz.markers=1" in full["verified"]["detail"]
    info = json.loads(host().check_output("runuser -u postgres -- pgbackrest --stanza=main info --output=json"))
    assert info[0]["status"]["message"] == "ok" and info[0]["db"][-1]["version"] == "17"
    assert not host().file("/var/lib/aiquiz-backup-work/verify").exists


def test_point_in_time_restore_of_postgresql_17_stops_between_two_rows():
    sql("INSERT INTO markers VALUES (1, 'before the target time')")
    time.sleep(2)
    moment = utc_now()
    time.sleep(2)
    sql("INSERT INTO markers VALUES (2, 'after the target time')")
    archive_now()
    rc, out = playbook("restore.yml", restore_host=DATA, restore_target_time=moment, restore_from="local",
                       restore_check_tables=["quiz.markers"])
    assert rc == 0, out
    assert sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM markers") == "0,1"
    assert host().run("ls -d /var/lib/postgresql/17/main.before-restore-*").rc == 0
    assert host().service("postgresql@17-main").is_running
    assert sql("SHOW server_version_num", db="postgres").startswith("17")


def test_redis_restore_brings_back_the_backed_up_value():
    data = host()
    data.check_output(REDIS + "SET restore:marker after")
    rc, out = playbook("restore.yml", restore_host=DATA, restore_kind="redis", restore_from="local")
    assert rc == 0, out
    assert data.check_output(REDIS + "GET restore:marker") == "before"
    assert data.service("redis-server").is_running


def test_files_restore_brings_back_content_and_mode():
    data = host()
    data.check_output("echo 'sample = changed' > /etc/aiquiz-sample/settings.conf && "
                      "chmod 0600 /etc/aiquiz-sample/settings.conf")
    rc, out = playbook("restore.yml", restore_host=DATA, restore_kind="files", restore_subject="etc-aiquiz")
    assert rc == 0, out
    restored = data.file("/etc/aiquiz-sample/settings.conf")
    assert restored.content_string == "sample = true\n"
    assert (restored.user, restored.mode) == ("root", 0o644)


def test_backup_freshness_metrics_are_recent():
    metrics_file = host().file(METRICS)
    assert metrics_file.exists
    assert (metrics_file.user, metrics_file.mode) == ("root", 0o644)
    now = time.time()
    samples = {}
    for line in metrics_file.content_string.splitlines():
        if line.startswith("aiquiz_backup_last_good_timestamp_seconds{"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    assert len(samples) >= 4, samples
    for key, value in samples.items():
        assert now - 3600 < value <= now + 5, key
