"""Backup and restore on real hosts: backup-data (PostgreSQL 15, Redis,
pgBackRest with a local repository and an S3 one), backup-s3 (moto behind
nginx TLS) and backup-restore (a fresh PostgreSQL host).

The tests run in file order and build on each other, as an operator's day
would: back up, lose data, restore it, find damage, drill a lost host.
"""

import json
import os
import pathlib
import re
import shlex
import time

import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DATA, S3, FRESH = "backup-data", "backup-s3", "backup-restore"
CATALOGUE = "/var/lib/aiquiz/backup/catalogue.json"
STATE = {}


def host(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def sql(name, query, db="quiz", check=True):
    cmd = host(name).run("runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -d %s -c %s" % (db, shlex.quote(query)))
    if check:
        assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def catalogue(name=DATA):
    return json.loads(host(name).check_output("cat %s" % CATALOGUE))["backups"]


def playbook(name, **extra):
    return ansible_playbook(ROOT / "playbooks" / name, extra_vars=extra, timeout=1200)


def backup(steps, **extra):
    return playbook("backup.yml", backup_hosts=DATA, backup_steps=steps, **extra)


def archive_now():
    """Switch WAL and wait until pgBackRest has it (pgbackrest check does both)."""
    cmd = host(DATA).run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert cmd.rc == 0, cmd.stderr


def utc_now(name=DATA):
    return sql(name, "SELECT to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")


def table_digest(name, table, db="quiz"):
    return sql(name, "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM %s AS t"
               % table, db=db).split(" ")


def test_configuration_is_private_and_timers_run():
    data = host(DATA)
    conf = data.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert "repo1-cipher-type=aes-256-cbc" in conf.content_string
    assert "repo2-type=s3" in conf.content_string
    for path in ("/etc/aiquiz-backup/config.json", "/etc/aiquiz-backup/passphrase"):
        assert (data.file(path).user, data.file(path).mode) == ("root", 0o600)
    for timer in ("full", "diff", "incr", "logical", "verify"):
        assert data.service("aiquiz-backup-%s.timer" % timer).is_running
        assert data.service("aiquiz-backup-%s.timer" % timer).is_enabled
    assert sql(DATA, "SHOW archive_command", db="postgres") == "pgbackrest --stanza=main archive-push %p"
    archive_now()


def restic(target, *args):
    """restic on the data host as an operator would run it by hand (the S3 keys of the lab only)."""
    repo = {"local": "/var/backups/aiquiz/restic",
            "s3": "s3:https://backup-s3:443/aiquiz-backups/restic --cacert /etc/ssl/certs/aiquiz-lab-s3-ca.pem "
                  "-o s3.bucket-lookup=path"}[target]
    return host(DATA).check_output(
        "AWS_ACCESS_KEY_ID=lab AWS_SECRET_ACCESS_KEY=lab-secret RESTIC_PASSWORD_FILE=/etc/aiquiz-backup/passphrase "
        "RESTIC_CACHE_DIR=/var/cache/aiquiz-backup/restic restic -r %s %s" % (repo, " ".join(args)))


def test_s3_endpoint_speaks_tls_with_the_lab_ca():
    out = host(DATA).check_output("curl -sS --cacert /etc/ssl/certs/aiquiz-lab-s3-ca.pem https://backup-s3:443/")
    assert "aiquiz-backups" in out
    refused = host(DATA).run("curl -sS https://backup-s3:443/")
    assert refused.rc != 0  # the lab CA is not in the system store: an unknown issuer is refused
    assert host(S3).socket("tcp://0.0.0.0:443").is_listening
    assert host(S3).socket("tcp://127.0.0.1:5000").is_listening


def test_backup_of_everything_is_a_tagged_restic_snapshot_on_every_target():
    sql(DATA, "CREATE TABLE IF NOT EXISTS keep_me (id int PRIMARY KEY, note text)")
    sql(DATA, "INSERT INTO keep_me SELECT g, 'row ' || g FROM generate_series(1, 500) g ON CONFLICT DO NOTHING")
    rc, out = backup(["pgbackrest", "dump", "redis", "files"])
    assert rc == 0, out
    entries = catalogue()
    good = [(e["kind"], e["target"]) for e in entries if e["status"] == "good"]
    for kind in ("postgresql-pgbackrest", "postgresql-dump", "redis", "files"):
        for target in ("local", "s3"):
            assert (kind, target) in good, (kind, target, entries)
    dumps = [e for e in entries if e["kind"] == "postgresql-dump" and e["target"] == "local"]
    newest = dumps[-1]
    assert newest["location"].startswith("restic:") and newest["source_position"]
    data = host(DATA)
    for target in ("local", "s3"):
        listed = json.loads(restic(target, "snapshots", "--json", "--tag", "kind:postgresql-dump,subject:quiz"))
        assert listed and sorted(t.split(":")[0] for t in listed[-1]["tags"]) == [
            "host", "kind", "position", "service", "subject"], listed[-1]
        assert "host:backup-data" in listed[-1]["tags"] and listed[-1]["paths"] == ["/quiz.dump"]
    assert json.loads(restic("local", "snapshots", "--json", "--latest", "1", "--tag", "kind:postgresql-dump"))[-1][
        "id"].startswith(newest["location"][len("restic:"):])
    # Encrypted at rest: the table's name is in the dump, never in the repository's files.
    assert data.run("grep -rl keep_me /var/backups/aiquiz/restic").stdout.strip() == ""
    s3_copy = [e for e in entries if e["kind"] == "postgresql-dump" and e["target"] == "s3"][-1]
    assert s3_copy["location"].startswith("restic:")
    fetched = data.run("aiquiz-backup fetch %s /tmp/quiz.dump && pg_restore -l /tmp/quiz.dump" % s3_copy["id"])
    assert fetched.rc == 0 and "keep_me" in fetched.stdout, fetched.stderr
    info = json.loads(data.check_output("runuser -u postgres -- pgbackrest --stanza=main --repo=2 info --output=json"))
    assert info[0]["status"]["message"] == "ok" and info[0]["cipher"] == "aes-256-cbc"


METRICS = "/var/lib/prometheus/node-exporter/aiquiz_backup.prom"


def metrics(name=DATA):
    """The backup metrics as the node exporter's textfile collector reads them: {'name{labels}': value}."""
    out = {}
    for line in host(name).file(METRICS).content_string.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_backup_freshness_is_a_metric_the_node_exporter_reads():
    metrics_file = host(DATA).file(METRICS)
    assert (metrics_file.user, metrics_file.mode) == ("root", 0o644)
    got, now = metrics(), time.time()
    for kind, subject in (("postgresql-pgbackrest", "main"), ("postgresql-dump", "quiz"), ("redis", "redis"),
                          ("files", "etc-aiquiz")):
        for target in ("local", "s3"):
            series = '{kind="%s",subject="%s",target="%s"}' % (kind, subject, target)
            assert now - 3600 < got["aiquiz_backup_last_good_timestamp_seconds" + series] <= now + 5, series
            assert got["aiquiz_backup_last_attempt_failed" + series] == 0, series
    assert got['aiquiz_backup_command_last_success{command="files"}'] == 1
    assert "lab passphrase" not in metrics_file.content_string


def test_point_in_time_restore_brings_back_a_dropped_table():
    sql(DATA, "DROP TABLE IF EXISTS markers; CREATE TABLE markers (id int PRIMARY KEY, note text)")
    sql(DATA, "INSERT INTO markers VALUES (1, 'before'), (2, 'the'), (3, 'drop')")
    expected = table_digest(DATA, "markers")
    time.sleep(2)
    moment = utc_now()
    time.sleep(2)
    sql(DATA, "DROP TABLE markers")
    sql(DATA, "INSERT INTO keep_me VALUES (100000, 'after the target time') ON CONFLICT DO NOTHING")
    archive_now()
    rc, out = playbook("restore.yml", restore_host=DATA, restore_target_time=moment, restore_from="local",
                       restore_check_tables=["quiz.markers", "quiz.keep_me"],
                       restore_expected={"quiz.markers": {"rows": int(expected[0]), "md5": expected[1]}})
    assert rc == 0, out
    assert table_digest(DATA, "markers") == expected
    assert sql(DATA, "SELECT count(*) FROM keep_me WHERE id = 100000") == "0"
    assert host(DATA).run("ls -d /var/lib/postgresql/15/main.before-restore-*").rc == 0
    assert host(DATA).service("postgresql@15-main").is_running


def test_point_in_time_restore_through_s3():
    rc, out = backup(["pgbackrest"], backup_pgbackrest_type="full")
    assert rc == 0, out
    sql(DATA, "DROP TABLE IF EXISTS s3_markers; CREATE TABLE s3_markers (id int PRIMARY KEY)")
    sql(DATA, "INSERT INTO s3_markers SELECT generate_series(1, 42)")
    time.sleep(2)
    moment = utc_now()
    time.sleep(2)
    sql(DATA, "DROP TABLE s3_markers")
    archive_now()
    rc, out = playbook("restore.yml", restore_host=DATA, restore_target_time=moment, restore_from="s3",
                       restore_check_tables=["quiz.s3_markers"])
    assert rc == 0, out
    assert sql(DATA, "SELECT count(*) FROM s3_markers") == "42"
    assert table_digest(DATA, "markers")[0] == "3"
    STATE["s3_restored_at"] = moment


def test_wrong_passphrase_fails_clearly_and_touches_nothing():
    before = host(DATA).check_output("ls -d /var/lib/postgresql/15/main*")
    pid = sql(DATA, "SELECT pg_postmaster_start_time()", db="postgres")
    rc, out = playbook("restore.yml", restore_host=DATA, restore_from="local", restore_passphrase="not the passphrase")
    assert rc != 0
    assert "wrong restore_passphrase" in out and "nothing was touched" in out
    assert host(DATA).check_output("ls -d /var/lib/postgresql/15/main*") == before
    assert sql(DATA, "SELECT pg_postmaster_start_time()", db="postgres") == pid
    assert sql(DATA, "SELECT count(*) FROM s3_markers") == "42"


def test_restore_time_before_the_oldest_backup_is_refused_first():
    before = host(DATA).check_output("ls -d /var/lib/postgresql/15/main*")
    rc, out = playbook("restore.yml", restore_host=DATA, restore_target_time="2020-01-01T00:00:00Z")
    assert rc != 0 and "is before the end of the oldest backup" in out and "nothing was touched" in out
    assert host(DATA).check_output("ls -d /var/lib/postgresql/15/main*") == before


def test_unknown_target_type_is_refused_before_any_change():
    rc, out = backup(["dump"], backup_targets=[{"name": "tape", "type": "tape", "path": "/dev/st0"}])
    # The argument spec refuses it before any task runs.
    assert rc != 0 and "value of type must be one of: local, s3, got: tape" in out
    assert "repo1-path=/var/backups/aiquiz/pgbackrest" in host(DATA).file("/etc/pgbackrest/pgbackrest.conf").content_string


def test_retention_count_below_one_is_refused():
    rc, out = backup(["retention"], backup_retention={"daily": 0, "weekly": 1, "monthly": 1, "yearly": 1})
    assert rc != 0 and "daily must be a whole number >= 1" in out


def test_corrupted_backups_are_caught_and_never_chosen():
    data = host(DATA)
    dumps = [e for e in catalogue() if e["kind"] == "postgresql-dump" and e["target"] == "local" and e["status"] == "good"]
    data.check_output("touch /tmp/before-dump && sleep 1")
    rc, out = backup(["dump"])
    assert rc == 0, out
    newest = [e for e in catalogue() if e["kind"] == "postgresql-dump" and e["target"] == "local"][-1]
    # Someone with write access to the repository changes the packs this dump added (its header holds the
    # time of the dump: it shares no data with the earlier ones).
    packs = data.check_output("find /var/backups/aiquiz/restic/data -type f -newer /tmp/before-dump").split()
    assert packs
    for pack in packs:
        data.check_output("chmod u+w %s && printf 'XXXX' | dd of=%s bs=1 seek=20 conv=notrunc" % (pack, pack))
    sets = [e for e in catalogue() if e["kind"] == "postgresql-pgbackrest" and e["target"] == "local"
            and e["status"] == "good"]
    assert len(sets) >= 2
    label = sets[-1]["location"]
    victim = data.check_output("ls /var/backups/aiquiz/pgbackrest/backup/main/%s/pg_data/base/*/* | head -1" % label)
    data.check_output("printf 'XXXX' | dd of=%s bs=1 seek=20 conv=notrunc" % victim)
    rc, out = backup(["verify"], backup_verify_read_data_subset="100%")
    assert rc != 0  # verification failures fail the run
    by_id = {e["id"]: e for e in catalogue()}
    assert by_id[newest["id"]]["verified"]["result"] == "failed"
    assert "restic check (100% of the data read) failed" in by_id[newest["id"]]["verified"]["detail"]
    assert by_id[sets[-1]["id"]]["status"] == "corrupt"
    STATE["previous_set"] = by_id[sets[-2]["id"]]
    got = metrics()
    assert got['aiquiz_backup_last_verification_ok{kind="postgresql-dump",subject="quiz",target="local"}'] == 0
    assert got['aiquiz_backup_command_last_success{command="verify"}'] == 0
    assert all(by_id[e["id"]]["status"] == "good" for e in dumps)
    # Never chosen: the fetch of the corrupt dump is refused (the restore plan: next test).
    fetch = data.run("aiquiz-backup fetch %s /tmp/never.dump" % newest["id"])
    assert fetch.rc != 0 and "is damaged in the repository of target local; marked corrupt" in fetch.stderr
    assert not data.file("/tmp/never.dump").exists
    assert {e["id"]: e for e in catalogue()}[newest["id"]]["status"] == "corrupt"
    fetch = data.run("aiquiz-backup fetch %s /tmp/never.dump" % newest["id"])
    assert fetch.rc != 0 and "is corrupt" in fetch.stderr
    # The damaged snapshot forgotten, its packs pruned: the repository checks clean again.
    data.check_output("aiquiz-backup delete %s" % newest["id"])
    restic("local", "check", "--read-data")
    STATE["corrupt_label"] = label
    # The scratch instance of the verification restore is gone.
    assert not data.file("/var/lib/aiquiz-backup-work/verify").exists


def test_verification_restore_of_the_previous_good_set_is_clean():
    previous = STATE["previous_set"]
    assert previous["status"] == "good", previous
    assert previous["verified"]["result"] == "ok", previous["verified"]
    # Restored into a scratch instance, checked with pg_amcheck; the markers table came later than this set,
    # and the catalogue knows it.
    detail = previous["verified"]["detail"]
    assert "pg_amcheck clean" in detail
    assert previous["tables"] == [] and "quiz.markers absent (not there when the set was taken)" in detail
    # The restore plan skips the corrupt set and takes this one.
    plan = json.loads(host(DATA).check_output("python3 /usr/local/lib/aiquiz-restore/aiquiz_restore.py plan"))
    assert plan["set"] == previous["location"]
    assert STATE["corrupt_label"] in [s["label"] for s in plan["skipped"]]


def test_an_incremental_after_a_corrupt_set_is_taken_as_a_full_and_verified():
    rc, out = backup(["pgbackrest", "verify"], backup_pgbackrest_type="incr")
    assert rc == 0, out
    # The result is printed folded and coloured line by line; compare the words.
    why = "a full instead of incr: set %s of the current chain is corrupt" % STATE["corrupt_label"]
    assert why in " ".join(re.sub(r"\x1b\[[0-9;]*m", "", out).split())
    newest = [e for e in catalogue() if e["kind"] == "postgresql-pgbackrest" and e["target"] == "local"][-1]
    assert newest["status"] == "good" and "_" not in newest["location"] and newest["location"].endswith("F")
    assert newest["tables"] == ["quiz.markers"]
    assert newest["verified"]["result"] == "ok" and "quiz.markers=3" in newest["verified"]["detail"]
    # The S3 repository holds no corrupt set: its chain goes on with an incremental.
    on_s3 = [e for e in catalogue() if e["kind"] == "postgresql-pgbackrest" and e["target"] == "s3"][-1]
    assert on_s3["status"] == "good" and on_s3["location"].endswith("I"), on_s3


def _failing_config(data, targets, command="dump"):
    cfg = json.loads(data.check_output("cat /etc/aiquiz-backup/config.json"))
    cfg["targets"] = targets
    data.check_output("cat > /etc/aiquiz-backup/failing.json <<'EOF'\n%s\nEOF" % json.dumps(cfg))
    return data.run("AIQUIZ_BACKUP_CONFIG=/etc/aiquiz-backup/failing.json aiquiz-backup %s" % command)


def test_full_disk_and_failed_upload_are_failed_never_good():
    data = host(DATA)
    data.check_output("mkdir -p /mnt/tiny && (mountpoint -q /mnt/tiny || mount -t tmpfs -o size=64k tmpfs /mnt/tiny)")
    try:
        sql(DATA, "CREATE TABLE IF NOT EXISTS filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g")
        tiny = {"name": "tiny", "type": "local", "path": "/mnt/tiny", "repo": 1}
        made = _failing_config(data, [tiny], command="init")
        assert made.rc == 0, made.stderr
        cmd = _failing_config(data, [tiny])
        assert cmd.rc == 1 and "no space left on device" in cmd.stderr.lower(), cmd.stderr
        tiny = [e for e in catalogue() if e["target"] == "tiny"]
        assert tiny and all(e["status"] == "failed" for e in tiny)
        # No snapshot and nothing half-written: no temporary file is left, and the repository checks clean
        # (a whole pack written before the disk filled is referenced by nothing; the next prune removes it).
        tiny_restic = ("RESTIC_PASSWORD_FILE=/etc/aiquiz-backup/passphrase RESTIC_CACHE_DIR=/var/cache/aiquiz-backup/restic "
                       "restic -r /mnt/tiny/restic ")
        assert json.loads(data.check_output(tiny_restic + "snapshots --json")) == []
        assert data.check_output("find /mnt/tiny/restic -name '*-tmp-*' | wc -l") == "0"
        data.check_output(tiny_restic + "check")
        s3 = dict(json.loads(data.check_output("cat /etc/aiquiz-backup/config.json"))["targets"][1])
        s3.update(name="s3-missing-bucket", bucket="no-such-bucket")
        cmd = _failing_config(data, [s3])
        assert cmd.rc == 1 and "no restic repository there yet" in cmd.stderr, cmd.stderr
        # A backup never creates a bucket or a repository.
        assert "no-such-bucket" not in data.check_output(
            "curl -sS --cacert /etc/ssl/certs/aiquiz-lab-s3-ca.pem https://backup-s3:443/")
        missing = [e for e in catalogue() if e["target"] == "s3-missing-bucket"]
        assert missing and all(e["status"] == "failed" for e in missing)
    finally:
        data.run("umount /mnt/tiny; rm -f /etc/aiquiz-backup/failing.json")


def test_files_restore_puts_the_set_back_and_keeps_what_it_replaced():
    data = host(DATA)
    data.check_output("echo 'sample = changed' > /etc/aiquiz-sample/settings.conf && touch /etc/aiquiz-sample/stray")
    request = dict(restore_host=DATA, restore_kind="files", restore_subject="etc-aiquiz")
    # Check mode names the backup it would use and touches nothing.
    rc, out = ansible_playbook(ROOT / "playbooks" / "restore.yml", request, check=True)
    assert rc == 0 and "files-etc-aiquiz-" in out, out
    assert data.file("/etc/aiquiz-sample/stray").exists
    rc, out = playbook("restore.yml", **request)
    assert rc == 0, out
    restored = data.file("/etc/aiquiz-sample/settings.conf")
    assert restored.content_string == "sample = true\n"
    assert (restored.user, restored.mode) == ("root", 0o644)
    assert not data.file("/etc/aiquiz-sample/stray").exists
    aside = data.check_output("ls -d /etc/aiquiz-sample.before-restore-* | tail -1")
    assert data.file(aside + "/stray").exists
    assert data.file(aside + "/settings.conf").content_string == "sample = changed\n"
    # A kind the catalogue has no backup of is refused before anything is touched.
    rc, out = playbook("restore.yml", restore_host=DATA, restore_kind="rabbitmq")
    assert rc != 0 and "no good rabbitmq backup on local, s3" in out


REDIS = "REDISCLI_AUTH=molecule-redis-password redis-cli --no-auth-warning "


def test_redis_restore_from_s3_brings_back_the_snapshot_and_keeps_it_after_a_restart():
    data = host(DATA)
    data.check_output(REDIS + "SET restore:marker before")
    rc, out = backup(["redis"])
    assert rc == 0, out
    data.check_output(REDIS + "FLUSHALL")
    data.check_output(REDIS + "SET restore:marker after")
    # The catalogue and restic's cache are lost: the restore reads the S3 repository's own listing.
    data.check_output("rm -f %s && rm -rf /var/cache/aiquiz-backup/restic" % CATALOGUE)
    rc, out = playbook("restore.yml", restore_host=DATA, restore_kind="redis", restore_from="s3")
    assert rc == 0, out
    assert data.check_output(REDIS + "GET restore:marker") == "before"
    # AOF is on: the snapshot became the base of a fresh append-only file, so writes after the
    # restore and the snapshot itself both survive a restart.
    data.check_output(REDIS + "SET restore:later yes")
    data.check_output("systemctl restart redis-server")
    for _attempt in range(50):
        if data.run(REDIS + "PING").stdout.strip() == "PONG":
            break
        time.sleep(0.2)
    assert data.check_output(REDIS + "GET restore:marker") == "before"
    assert data.check_output(REDIS + "GET restore:later") == "yes"
    aside = data.check_output("ls -d /var/lib/redis/appendonlydir.before-restore-* | tail -1")
    assert data.file(aside).user == "redis"
    assert host(DATA).service("redis-server").is_running


SEED = r"""
import datetime, sys
sys.path.insert(0, '/usr/local/lib/aiquiz-backup')
import aiquiz_backup as b
cfg = b.load_config()
cfg['targets'] = cfg['targets'][:1]
start = datetime.datetime(2026, 11, 20, 3, 0, tzinfo=datetime.timezone.utc)
for n in range(10):
    results = b.snapshot_backup(cfg, 'files', 'retention', 'files', ('paths', ['/etc/aiquiz-sample']),
                                moment=start - datetime.timedelta(days=n))
    assert results[0]['status'] == 'good', results
"""


def test_retention_keeps_exactly_what_the_policy_names():
    data = host(DATA)
    data.check_output("python3 -c %s" % shlex.quote(SEED))
    rc, out = backup(["retention"])  # scenario policy: daily 2, weekly 1, monthly 1, yearly 1
    assert rc == 0, out
    kept = sorted(e["started"] for e in catalogue() if e.get("subject") == "retention")
    # 2026-11-20 (Fri) and -19 daily; week 47 and November: -20; 2026: -20. So two.
    assert kept == ["2026-11-19T03:00:00Z", "2026-11-20T03:00:00Z"]
    listed = json.loads(restic("local", "snapshots", "--json", "--tag", "subject:retention"))
    assert sorted(item["time"] for item in listed) == ["2026-11-19T03:00:00Z", "2026-11-20T03:00:00Z"]
    # Every other series keeps its newest copy.
    for kind in ("postgresql-dump", "redis", "files"):
        assert any(e["kind"] == kind and e["status"] == "good" for e in catalogue()), kind


def test_dr_drill_restores_onto_a_fresh_host_from_s3(tmp_path):
    marker = "drill-%d" % time.time()
    host(DATA).check_output(REDIS + "SET dr:marker %s" % marker)
    host(DATA).check_output("echo %s > /etc/aiquiz-sample/drill.conf" % marker)
    rc, out = backup(["pgbackrest", "redis", "files"], backup_pgbackrest_type="full")
    assert rc == 0, out
    report = tmp_path / "dr.json"
    rc, out = playbook("dr-drill.yml", dr_drill_source=DATA, dr_drill_host=FRESH, dr_drill_from="s3",
                       dr_drill_heartbeat_seconds=25, dr_drill_report=str(report), dr_drill_crash_source=True)
    assert rc == 0, out
    result = json.loads(report.read_text())
    assert result["restored_on"] == FRESH and result["target"] == "s3"
    assert 0 < float(result["rto_seconds"]) < 600
    assert 0 <= float(result["rpo_seconds"]) < 60
    assert int(result["heartbeats_restored"]) > 0
    assert sql(FRESH, "SELECT count(*) FROM s3_markers") == "42"
    assert sql(FRESH, "SHOW archive_mode", db="postgres") == "off"
    assert host(DATA).service("postgresql@15-main").is_running
    # Redis and the files set too, from S3 under the source's name, onto a host that never backed up.
    fresh = host(FRESH)
    assert result["service_data"] == ["redis", "files:etc-aiquiz"]
    assert 0 < float(result["rto_all_seconds"]) < 600
    assert fresh.check_output(REDIS + "GET dr:marker") == marker
    assert fresh.file("/etc/aiquiz-sample/drill.conf").content_string.strip() == marker
    assert fresh.file("/etc/aiquiz-sample/settings.conf").mode == 0o644
    # It stands in for the source: no backup timer of its own, nothing taken under any name.
    assert fresh.run("systemctl list-timers --all --no-legend 'aiquiz-backup-*'").stdout.strip() == ""
    hosts = {item["hostname"] for item in json.loads(restic("s3", "snapshots", "--json"))}
    assert hosts == {DATA}, hosts
    (ROOT / "tests" / "output").mkdir(exist_ok=True)
    (ROOT / "tests" / "output" / "dr-drill-molecule.json").write_text(json.dumps(result, indent=2))


def test_secrets_stay_out_of_output_audit_trail_and_journal():
    secrets = ("lab passphrase for molecule backups", "lab-secret", "molecule-redis-password")
    started = time.time()
    outputs = []
    for name, extra, check in (
            ("backup.yml", {"backup_hosts": DATA, "backup_steps": ["redis", "files", "verify"]}, False),
            ("restore.yml", {"restore_host": DATA, "restore_kind": "redis", "restore_from": "s3"}, False),
            # PostgreSQL from S3, planned only: its configuration holds the passphrase and the S3 keys.
            ("restore.yml", {"restore_host": DATA, "restore_from": "s3"}, True)):
        rc, out = ansible_playbook(ROOT / "playbooks" / name, extra, verbosity=2, timeout=1200, check=check)
        assert rc == 0, out
        outputs.append(out)
    audit = [p.read_text() for p in (pathlib.Path.home() / ".ansible" / "aiquiz-audit").glob("*.jsonl")
             if p.stat().st_mtime >= started]
    assert audit
    # Only what these runs logged: the tests themselves pass the S3 key on command lines.
    journal = host(DATA).check_output("journalctl --no-pager -o cat --since @%d" % int(started))
    places = {"backup.yml -vv": outputs[0], "restore.yml -vv (redis)": outputs[1],
              "restore.yml -vv --check (postgresql)": outputs[2], "audit trail": "\n".join(audit),
              "journal of %s" % DATA: journal}
    for secret in secrets:
        leaks = [where for where, text in places.items() if secret in text]
        assert not leaks, "%r found in %s" % (secret, ", ".join(leaks))


def test_a_passphrase_change_rotates_restic_keys_and_keeps_pgbackrest_readable():
    data = host(DATA)
    old, new = "lab passphrase for molecule backups", "a new lab passphrase, rotated"
    # pgBackRest cannot change its cipher in place: the change alone is refused before anything is touched.
    rc, out = backup([], backup_passphrase=new)
    assert rc != 0 and "setting backup_pgbackrest_cipher_pass to the previous passphrase" in out, out
    assert data.check_output("cat /etc/aiquiz-backup/passphrase") == old
    rc, out = backup(["redis"], backup_passphrase=new, backup_pgbackrest_cipher_pass=old)
    assert rc == 0, out
    assert data.check_output("cat /etc/aiquiz-backup/passphrase") == new
    for target in ("local", "s3"):
        keys = json.loads(restic(target, "key", "list", "--json"))
        assert len(keys) == 1 and keys[0]["current"], keys  # the old key is gone, the new one opens it
    data.check_output("printf %%s %s > /tmp/old-pass" % shlex.quote(old))
    refused = data.run("RESTIC_PASSWORD_FILE=/tmp/old-pass restic -r /var/backups/aiquiz/restic snapshots")
    data.run("rm -f /tmp/old-pass")
    assert refused.rc != 0 and "wrong password" in refused.stderr
    data.check_output("runuser -u postgres -- pgbackrest --stanza=main check")
    # A second run with the same variables changes nothing; then back to the scenario's passphrase.
    rc, out = backup([], backup_passphrase=new, backup_pgbackrest_cipher_pass=old)
    assert rc == 0 and "changed=0" in out, out
    rc, out = backup([], backup_passphrase=old)
    assert rc == 0, out
    assert data.check_output("cat /etc/aiquiz-backup/passphrase") == old
