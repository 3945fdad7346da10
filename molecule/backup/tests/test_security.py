"""Attacks on the backup and restore roles' boundaries, from the data host's
own service users, and faults in the middle of a restore.

Runs after test_backup.py (file order); each test sets up what it needs.
A: links planted as postgres or redis must not make root (the timers' jobs,
started exactly as the timers start them) chown, write or read outside.
B: destructive steps are opt-in, refused on a production inventory unless
the host is named, and a restore killed mid-way is finished or rolled back.
C: variables that reach SQL or pgbackrest.conf are refused when they would
inject.
D (last: it leaves the host on generation 2): a cipher rotation keeps the
backups taken under the old passphrase readable and restorable.
"""

import json
import os
import pathlib
import shlex
import signal
import subprocess
import time

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DATA = "backup-data"
CATALOGUE = "/var/lib/aiquiz/backup/catalogue.json"
WORK = "/var/lib/aiquiz-backup-work"
CANARY = "aiquiz-shadow-canary-3f1c9e"
PROTECTED = ("/usr/local/sbin", "/usr/local/sbin/aiquiz-backup", "/usr/local/lib/aiquiz-backup",
             "/usr/local/lib/aiquiz-backup/aiquiz_backup.py", "/etc", "/etc/shadow", "/var/lib/aiquiz")
REDIS = "REDISCLI_AUTH=molecule-redis-password redis-cli --no-auth-warning "


def host(name=DATA):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def sql(query, db="quiz", check=True):
    cmd = host().run("runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -d %s -c %s" % (db, shlex.quote(query)))
    if check:
        assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def playbook(name, check=False, **extra):
    return ansible_playbook(ROOT / "playbooks" / name, extra_vars=extra, timeout=1200, check=check)


def state_of(paths=PROTECTED):
    """Owner, group, mode and content hash (files) or listing (directories) of each path."""
    script = ("for p in %s; do stat -c '%%n %%U %%G %%a %%F' \"$p\"; "
              "if [ -d \"$p\" ]; then ls -A \"$p\" | md5sum; else md5sum < \"$p\"; fi; done"
              % " ".join(shlex.quote(p) for p in paths))
    return host().check_output(script)


def as_user(user, script, unit):
    """A background loop as a service user (a unit of its own, stopped by the test), like an attacker's."""
    host().check_output("systemd-run --quiet --unit=%s --uid=%s -p RuntimeMaxSec=600 /bin/sh -c %s"
                        % (unit, user, shlex.quote(script)))


def stop(unit):
    host().run("systemctl stop %s; systemctl reset-failed %s" % (unit, unit))


def run_timer_job(job):
    """Start the job's service exactly as its timer does; (rc, journal of this run)."""
    data = host()
    since = data.check_output("date +%s")
    cmd = data.run("systemctl start aiquiz-backup-%s.service" % job)
    journal = data.check_output("journalctl --no-pager -o cat -u aiquiz-backup-%s.service --since @%s"
                                % (job, since))
    return cmd.rc, journal


def decrypted_backups_since(started):
    """Decrypted contents of every local copy catalogued since started, by id."""
    data = host()
    out = {}
    entries = json.loads(data.check_output("cat %s" % CATALOGUE))["backups"]
    for entry in entries:
        if entry.get("started", "") >= started and entry["status"] == "good" and entry["target"] == "local" \
                and entry["kind"] != "postgresql-pgbackrest":
            data.check_output("aiquiz-backup fetch %s /tmp/attack-fetch" % entry["id"])
            out[entry["id"]] = data.check_output("cat /tmp/attack-fetch | tr -c '[:print:]\\n' '.'")
            data.run("rm -f /tmp/attack-fetch")
    return out


@pytest.fixture(scope="module")
def shadow_canary():
    """A line in /etc/shadow that must never turn up in a backup or a staging file."""
    data = host()
    data.check_output("grep -q %s /etc/shadow || echo '%s:$6$%s$x:19000:0:99999:7:::' >> /etc/shadow"
                      % (CANARY, CANARY, CANARY))
    yield CANARY
    data.run("sed -i '/%s/d' /etc/shadow" % CANARY)


def no_canary_on_disk(canary):
    """The canary in no file under the backup targets, the staging and work directories."""
    cmd = host().run("grep -rl %s /var/backups/aiquiz /var/lib/aiquiz %s /var/lib/postgresql/aiquiz-backup-dump "
                     "/var/lib/postgresql/aiquiz-backup-verify 2>/dev/null" % (canary, WORK))
    assert cmd.stdout.strip() == "", "canary found in " + cmd.stdout


def utc_stamp():
    return host().check_output("date -u +%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# A. Root following a service user's links
# --------------------------------------------------------------------------

def test_postgres_cannot_write_the_work_directory_root_uses():
    data = host()
    work = data.file(WORK)
    assert (work.user, work.group, work.mode) == ("root", "root", 0o711)
    cmd = data.run("runuser -u postgres -- ln -s /usr/local/sbin %s/verify-planted" % WORK)
    assert cmd.rc != 0 and "Permission denied" in cmd.stderr


@pytest.mark.parametrize("job, planted", [
    ("verify", "/var/lib/postgresql/aiquiz-backup-verify"),
    ("logical", "/var/lib/postgresql/aiquiz-backup-dump"),
])
def test_timer_job_does_not_follow_a_directory_link_planted_by_postgres(job, planted):
    data = host()
    before = state_of()
    data.check_output("runuser -u postgres -- sh -c %s" % shlex.quote(
        "rm -rf %s && ln -s /usr/local/sbin %s" % (planted, planted)))
    # Also inside the work directory's postgres leaves, where postgres may write.
    data.run("for d in verify dump; do [ -d %s/$d ] && runuser -u postgres -- ln -sfn /usr/local/sbin %s/$d/postgresql.conf; done"
             % (WORK, WORK))
    if job == "verify":
        # A good set to restore into the scratch instance (an earlier test may have condemned the newest).
        data.check_output("aiquiz-backup pgbackrest --type incr")
    try:
        rc, journal = run_timer_job(job)
        assert state_of() == before, journal
        # The job did its work safely: it no longer works below /var/lib/postgresql, and the leaves it
        # makes replace whatever postgres put in them.
        assert rc == 0, journal
        if job == "verify":
            assert "restored into a scratch instance" in journal, journal
    finally:
        data.run("rm -f %s" % planted)


@pytest.fixture(scope="module")
def swapped_files_run(shadow_canary):
    """The logical job while postgres and redis swap their freshly written dump files for links to /etc/shadow."""
    data = host()
    data.run("rm -f /var/lib/postgresql/aiquiz-backup-dump")
    swap = ("while :; do for f in %s; do if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then ln -sfn /etc/shadow \"$f\"; fi; "
            "done; sleep 0.01; done")
    as_user("postgres", swap % ("/var/lib/postgresql/aiquiz-backup-dump/*.dump %s/dump/*.dump" % WORK),
            "aiquiz-attack-dump")
    as_user("redis", swap % "/var/lib/redis/dump.rdb", "aiquiz-attack-redis")
    started = utc_stamp()
    before = state_of()
    try:
        rc, journal = run_timer_job("logical")
    finally:
        stop("aiquiz-attack-dump")
        stop("aiquiz-attack-redis")
    after = state_of()
    backups = decrypted_backups_since(started)
    yield {"rc": rc, "journal": journal, "backups": backups, "state": (before, after)}
    # The real snapshot back, for the tests that follow.
    data.run("rm -f /var/lib/redis/dump.rdb; " + REDIS + "BGSAVE")


def test_a_dump_swapped_for_a_link_to_shadow_is_refused_and_never_backed_up(swapped_files_run, shadow_canary):
    run = swapped_files_run
    leaks = [ident for ident, text in run["backups"].items() if shadow_canary in text]
    assert not leaks, "/etc/shadow backed up as %s" % leaks
    no_canary_on_disk(shadow_canary)
    assert run["state"][0] == run["state"][1]
    dumps = [i for i in run["backups"] if i.startswith("postgresql-dump-")]
    # Either the swap came too late (the dump was read, as postgres' own file), or it was refused by name.
    assert dumps or "refusing to read %s/dump/0.dump: it is a symbolic link" % WORK in run["journal"], run["journal"]


def test_a_redis_snapshot_swapped_for_a_link_to_shadow_is_refused(swapped_files_run, shadow_canary):
    run = swapped_files_run
    assert not [i for i, text in run["backups"].items() if i.startswith("redis-") and shadow_canary in text]
    redis = [i for i in run["backups"] if i.startswith("redis-")]
    assert redis or "refusing to read /var/lib/redis/dump.rdb: it is a symbolic link" in run["journal"], run["journal"]
    assert run["rc"] != 0 or redis


# --------------------------------------------------------------------------
# C. Injection through variables
# --------------------------------------------------------------------------

def test_a_stanza_that_would_inject_a_pgbackrest_config_line_is_refused():
    data = host()
    conf = data.file("/etc/pgbackrest/pgbackrest.conf").content_string
    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=[],
                       backup_stanza="main]\n[global]\nrepo1-path=/tmp/injected")
    assert rc != 0 and "backup_stanza" in out, out
    assert data.file("/etc/pgbackrest/pgbackrest.conf").content_string == conf
    rc, out = playbook("restore.yml", check=True, restore_host=DATA, restore_stanza="main] x")
    assert rc != 0 and "restore_stanza" in out, out


def test_a_check_table_that_would_run_a_second_statement_is_refused():
    sql("DROP TABLE IF EXISTS injected")
    before = host().check_output("ls -d /var/lib/postgresql/15/main*")
    rc, out = playbook("restore.yml", restore_host=DATA, restore_from="local",
                       restore_check_tables=["quiz.keep_me AS t; CREATE TABLE injected (id int); SELECT 1 FROM keep_me"])
    assert rc != 0 and "restore_check_tables" in out, out
    assert sql("SELECT to_regclass('injected') IS NULL") == "t"
    assert host().check_output("ls -d /var/lib/postgresql/15/main*") == before
    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=[],
                       backup_verify_tables=["quiz.x'); DROP TABLE keep_me; --"])
    assert rc != 0 and "backup_verify_tables" in out, out


# --------------------------------------------------------------------------
# B. Destructive defaults
# --------------------------------------------------------------------------

def postmaster_start():
    return sql("SELECT pg_postmaster_start_time()", db="postgres")


def test_dr_drill_does_not_crash_the_source_unless_asked():
    started = postmaster_start()
    # The restore half is made to fail at its first check: only the source's side is of interest here.
    rc, out = playbook("dr-drill.yml", dr_drill_source=DATA, dr_drill_host="backup-restore", dr_drill_from="none",
                       dr_drill_heartbeat_seconds=1)
    assert rc != 0 and "restore_from" in out, out
    assert host().service("postgresql@15-main").is_running
    assert postmaster_start() == started


def test_destruction_on_a_production_inventory_needs_the_host_named():
    started = postmaster_start()
    rc, out = playbook("dr-drill.yml", aiquiz_environment="production", dr_drill_source=DATA,
                       dr_drill_host="backup-restore", dr_drill_crash_source=True)
    assert rc != 0 and "dr_drill_crash_confirm" in out and DATA in out, out
    before = host().check_output("ls -d /var/lib/postgresql/15/main*")
    rc, out = playbook("restore.yml", aiquiz_environment="production", restore_host=DATA, restore_from="local")
    assert rc != 0 and "restore_confirm_host" in out and "production" in out, out
    assert host().check_output("ls -d /var/lib/postgresql/15/main*") == before
    assert postmaster_start() == started


def test_a_restore_without_the_safety_copy_must_be_confirmed():
    before = host().check_output("ls -d /var/lib/postgresql/15/main*")
    started = postmaster_start()
    rc, out = playbook("restore.yml", restore_host=DATA, restore_from="local", restore_safety_backup=False)
    assert rc != 0 and "restore_safety_backup" in out and "restore_confirm_host=%s" % DATA in out, out
    assert host().check_output("ls -d /var/lib/postgresql/15/main*") == before
    assert postmaster_start() == started


APPLY_UNIT = "aiquiz-restore-apply.service"
MARKER = "/var/lib/aiquiz/restore/in-progress.json"


@pytest.fixture
def sentinel():
    """Rows that exist before and after every restore of these tests: nothing may be lost."""
    sql("CREATE TABLE IF NOT EXISTS sentinel (id int PRIMARY KEY)")
    sql("INSERT INTO sentinel SELECT generate_series(1, 1000) ON CONFLICT DO NOTHING")
    host().check_output("runuser -u postgres -- pgbackrest --stanza=main check")
    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=["pgbackrest"], backup_pgbackrest_type="incr")
    assert rc == 0, out
    return "1000"


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out waiting for " + what)


def marker_phase():
    cmd = host().run("cat %s" % MARKER)
    return json.loads(cmd.stdout).get("phase") if cmd.rc == 0 and cmd.stdout.strip() else None


def on_phase(phase, action):
    """Run action on the host the moment the restore marker reaches phase (waiting on the host itself)."""
    host().check_output("timeout 600 sh -c %s" % shlex.quote(
        "until grep -q '\"phase\": \"%s\"' %s 2>/dev/null; do sleep 0.05; done; %s" % (phase, MARKER, action)))


def background_restore(**extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = ["ansible-playbook", "-i", os.path.dirname(INVENTORY), str(ROOT / "playbooks" / "restore.yml"),
           "-e", json.dumps(dict(restore_host=DATA, restore_from="local", **extra))]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_a_restore_goes_on_on_the_host_when_the_controller_is_killed(sentinel):
    sql("INSERT INTO sentinel VALUES (1001)")
    proc = background_restore()
    try:
        on_phase("restoring", "true")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    data = host()
    wait_for(lambda: data.run("systemctl is-active %s" % APPLY_UNIT).stdout.strip() != "active", 900,
             "the apply unit to finish")
    result = json.loads(data.check_output("cat /var/lib/aiquiz/restore/last-apply.json"))
    assert result.get("failed") is not True, result
    assert data.service("postgresql@15-main").is_running
    assert sql("SELECT pg_is_in_recovery()", db="postgres") == "f"
    assert sql("SELECT count(*) FROM sentinel WHERE id <= 1000") == sentinel
    assert not data.file(MARKER).exists


def test_a_restore_terminated_mid_way_is_rolled_back_with_nothing_lost(sentinel):
    sql("INSERT INTO sentinel VALUES (2001) ON CONFLICT DO NOTHING")  # after the backup: only the old data has it
    before = sql("SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM sentinel")
    data = host()
    proc = background_restore()
    try:
        on_phase("restoring", "kill -TERM $(systemctl show -p MainPID --value %s)" % APPLY_UNIT)
        out = proc.communicate(timeout=900)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and "rolled back" in out, out
    assert data.service("postgresql@15-main").is_running
    # Rolled back to the data as it was at the SIGTERM: every row, the one written after the backup too.
    assert sql("SELECT count(*) || ' ' || md5(string_agg(id::text, ',' ORDER BY id)) FROM sentinel") == before
    assert sql("SELECT count(*) FROM sentinel WHERE id = 2001") == "1"
    assert not data.file(MARKER).exists


def test_a_restore_cut_off_without_cleanup_is_rolled_back_by_the_next_run(sentinel):
    sql("INSERT INTO sentinel VALUES (3001) ON CONFLICT DO NOTHING")
    data = host()
    plan = json.loads(data.check_output("python3 /usr/local/lib/aiquiz-restore/aiquiz_restore.py plan"))
    # As a power cut would: the process gone at once, no unit to clean up after it.
    data.check_output("setsid python3 /usr/local/lib/aiquiz-restore/aiquiz_restore.py apply --set %s "
                      ">/dev/null 2>&1 < /dev/null & echo started" % plan["set"])
    on_phase("restoring", "pkill -KILL -f '[a]iquiz_restore.py apply'; pkill -KILL -x pgbackrest; true")
    assert marker_phase() == "restoring"
    rc, out = playbook("restore.yml", check=True, restore_host=DATA, restore_from="local")
    assert rc == 0 and "interrupted restore" in out, out
    assert marker_phase() == "restoring"  # check mode only reports it
    rc, out = playbook("restore.yml", restore_host=DATA, restore_from="local")
    assert rc == 0 and "rolled back" in out, out
    assert data.service("postgresql@15-main").is_running
    assert not data.file(MARKER).exists
    # The run then restored the newest backup: everything of the backup is there.
    assert sql("SELECT count(*) FROM sentinel WHERE id <= 1000") == sentinel


def test_a_service_data_restore_of_another_host_is_refused_not_swapped():
    # backup-restore's script would read its own snapshots, not backup-data's: refused before any change.
    rc, out = playbook("restore.yml", restore_host="backup-restore", restore_source_host=DATA, restore_kind="redis",
                       restore_from="s3")
    assert rc != 0 and "backup_restic_host=%s" % DATA in out and "nothing was touched" in out, out


def test_a_bad_service_data_item_is_refused_before_the_source_is_touched():
    started = postmaster_start()
    rc, out = playbook("dr-drill.yml", dr_drill_source=DATA, dr_drill_host="backup-restore",
                       dr_drill_service_data=["redis; rm -rf /"])
    assert rc != 0 and "dr_drill_service_data" in out and "nothing was touched" in out, out
    assert postmaster_start() == started


OLD_PASS, NEW_PASS = "lab passphrase for molecule backups", "a second lab passphrase, generation 2"
ROTATED = {"backup_passphrase": NEW_PASS, "backup_pgbackrest_generation": 2,
           "backup_pgbackrest_retired": [{"generation": 1, "cipher_pass": OLD_PASS}]}
RETIRED_CONF = "/etc/pgbackrest/retired-g1.conf"


def pgbackrest_sets(repo, config=None):
    out = host().check_output("runuser -u postgres -- pgbackrest %s--stanza=main --repo=%d info --output=json"
                              % ("--config=%s " % config if config else "", repo))
    return [item["label"] for item in json.loads(out)[0]["backup"]]


def test_a_cipher_rotation_starts_a_new_pgbackrest_generation_and_keeps_the_old_one_readable():
    data = host()
    sql("CREATE TABLE IF NOT EXISTS rotation_marker (moment text)")
    sql("INSERT INTO rotation_marker VALUES ('before the rotation')")
    data.check_output("runuser -u postgres -- pgbackrest --stanza=main check")
    before = {repo: pgbackrest_sets(repo) for repo in (1, 2)}
    assert all(before.values()), before
    # A new generation that does not keep the old one readable is refused before any change.
    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=[], backup_passphrase=NEW_PASS,
                       backup_pgbackrest_generation=2)
    assert rc != 0 and "generation 1 is not in backup_pgbackrest_retired" in out and "Nothing was changed" in out, out
    assert "repo1-path=/var/backups/aiquiz/pgbackrest\n" in data.file("/etc/pgbackrest/pgbackrest.conf").content_string

    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=[], **ROTATED)
    assert rc == 0, out
    assert NEW_PASS not in out and OLD_PASS not in out
    for path, repo_path in (("/etc/pgbackrest/pgbackrest.conf", "/var/backups/aiquiz/pgbackrest-g2"),
                            (RETIRED_CONF, "/var/backups/aiquiz/pgbackrest")):
        conf = data.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640), path
        assert "repo1-path=%s\n" % repo_path in conf.content_string, path
    # The new generation took a full backup on every target at once, and WAL reaches it.
    for repo in (1, 2):
        sets = pgbackrest_sets(repo)
        assert len(sets) == 1 and sets[0].endswith("F"), sets
    sql("INSERT INTO rotation_marker VALUES ('after the rotation')")
    data.check_output("runuser -u postgres -- pgbackrest --stanza=main check")
    # The old generation holds what it held, read with its own passphrase, and is listed and verified.
    assert {repo: pgbackrest_sets(repo, RETIRED_CONF) for repo in (1, 2)} == before
    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=["verify"], **ROTATED)
    assert rc == 0, out
    sets = [e for e in json.loads(data.check_output("cat %s" % CATALOGUE))["backups"]
            if e["kind"] == "postgresql-pgbackrest" and e["status"] == "good"]
    assert {e["target"] for e in sets} == {"local", "s3", "local.g1", "s3.g1"}, sets
    assert all(e.get("verified", {}).get("result") == "ok" for e in sets if e["target"].endswith(".g1")), sets
    rc, out = playbook("backup.yml", backup_hosts=DATA, backup_steps=[], **ROTATED)
    assert rc == 0 and "changed=0" in out, out
    # A restore from the retired generation on S3 gives back the database as it was at the rotation.
    rc, out = playbook("restore.yml", restore_host=DATA, restore_from="s3.g1", **ROTATED)
    assert rc == 0, out
    assert sql("SELECT string_agg(moment, ',' ORDER BY moment) FROM rotation_marker") == "before the rotation"
