"""Benchmark: backup and restore of a pgbench database of about 1 GB.

python3 tests/bench/backup.py [--scale 70] [--jobs 2] [--keep]

Starts one fresh Debian 12 systemd host (container backup-bench-db) with
PostgreSQL 15, pgBackRest and restic from Debian, and the backup role's host
script (roles/backup/files) configured with one local target (a restic
repository). In the same run, on the same database:
  - logical backup: plain `pg_dump -Fc` to a file against `aiquiz-backup dump`
    (pg_dump -Fc -f file, then restic backup --stdin, catalogue);
  - logical restore: plain `pg_restore -j N` of the plain dump against
    `aiquiz-backup fetch` (restic dump) + the same pg_restore;
    ratios ours / plain (1.10 = 10 % slower);
  - pgBackRest (aes-256-cbc, zst): full and incremental backup, restore;
  - RTO and RPO as the DR drill measures them: heartbeats every second with
    archive_timeout 60 s, PostgreSQL killed after the last one, restore of
    the latest backup and archived WAL into a new data directory, time to a
    serving database and seconds of heartbeats lost.
Prints one JSON document; asserts nothing. Removes the host unless --keep.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "backup-bench-db"
PASS = "bench passphrase, not a secret"
# Longer than archive_timeout (60 s), so the drill sees at least one timed WAL switch.
HEARTBEATS = 75


def sh(script, check=True, timeout=7200):
    proc = subprocess.run(["docker", "exec", NAME, "bash", "-ec", script], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise SystemExit("failed: %s\n%s\n%s" % (script[:200], proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc.stdout.strip()


def timed(script):
    start = time.monotonic()
    sh(script)
    return round(time.monotonic() - start, 2)


def psql(query, db="bench"):
    return sh("runuser -u postgres -- psql -X -A -t -d %s -c %s" % (db, shlex.quote(query)))


def start_host():
    for attempt in range(3):
        subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)
        subprocess.run(["docker", "run", "-d", "--name", NAME, "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
                        "--security-opt", "seccomp=unconfined", "--cgroupns=host",
                        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
                        "aiquiz-lab/debian:12"], check=True, capture_output=True)
        time.sleep(3)
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", NAME], capture_output=True,
                               text=True, check=False).stdout.strip()
        if state == "true":
            break
    else:
        raise SystemExit("the bench host %s does not stay up" % NAME)
    sh("systemctl is-system-running --wait || true")
    sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
       "postgresql-15 pgbackrest restic >/dev/null", timeout=1800)
    for src, dest in (("roles/backup/files/aiquiz_backup.py", "aiquiz_backup.py"),
                      ("plugins/module_utils/_backup_catalogue.py", "_backup_catalogue.py"),
                      ("plugins/module_utils/_backup_gfs.py", "_backup_gfs.py"),
                      ("plugins/module_utils/_backup_paths.py", "_backup_paths.py"),
                      ("plugins/module_utils/_backup_restic.py", "_backup_restic.py"),
                      ("plugins/module_utils/_files.py", "_files.py")):
        sh("mkdir -p /usr/local/lib/aiquiz-backup")
        subprocess.run(["docker", "cp", os.path.join(ROOT, src), "%s:/usr/local/lib/aiquiz-backup/%s" % (NAME, dest)],
                       check=True)
    sh("printf '#!/bin/sh\\nexec /usr/bin/python3 /usr/local/lib/aiquiz-backup/aiquiz_backup.py \"$@\"\\n' "
       "> /usr/local/sbin/aiquiz-backup && chmod 0755 /usr/local/sbin/aiquiz-backup")
    config = {"stanza": "main", "catalogue": "/var/lib/aiquiz/backup/catalogue.json",
              "staging": "/var/lib/aiquiz/backup/staging", "passphrase_file": "/etc/aiquiz-backup/passphrase",
              "pg_version": "15", "pg_port": 5432, "postgresql": True, "databases": ["bench"], "host": "bench",
              "targets": [{"name": "local", "type": "local", "path": "/var/backups/aiquiz", "repo": 1}],
              "redis": {"enabled": False}, "rabbitmq": {"enabled": False}, "paths": [], "docker_volumes": [],
              "retention": {"daily": 7, "weekly": 4, "monthly": 12, "yearly": 1},
              "verify": {"port": 5499, "socket_dir": "/run/aiquiz-verify",
                         "tables": []}}
    sh("mkdir -p -m 0700 /etc/aiquiz-backup /var/lib/aiquiz/backup/staging && printf %%s %s > "
       "/etc/aiquiz-backup/passphrase && chmod 0600 /etc/aiquiz-backup/passphrase && cat > "
       "/etc/aiquiz-backup/config.json <<'EOF'\n%s\nEOF\naiquiz-backup init >/dev/null" % (json.dumps(PASS), json.dumps(config)))
    # As the role does: the target is root's, postgres may only pass through to its own repository.
    sh("mkdir -p /etc/pgbackrest /var/backups/aiquiz/pgbackrest && chmod 0711 /var/backups/aiquiz && "
       "chown postgres: /var/backups/aiquiz/pgbackrest && "
       "cat > /etc/pgbackrest/pgbackrest.conf <<'EOF'\n[global]\nrepo1-path=/var/backups/aiquiz/pgbackrest\n"
       "repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=%s\nrepo1-retention-full=2\ncompress-type=zst\n"
       "process-max=2\nstart-fast=y\nlog-level-console=warn\n[main]\npg1-path=/var/lib/postgresql/15/main\nEOF\n"
       "chown root:postgres /etc/pgbackrest/pgbackrest.conf && chmod 0640 /etc/pgbackrest/pgbackrest.conf" % PASS)
    sh("pg_conftool 15 main set archive_mode on && pg_conftool 15 main set archive_command "
       "'pgbackrest --stanza=main archive-push %p' && pg_conftool 15 main set archive_timeout 60 && "
       "pg_conftool 15 main set shared_buffers 256MB && pg_conftool 15 main set max_wal_size 4GB && "
       "systemctl restart postgresql@15-main && runuser -u postgres -- pgbackrest --stanza=main stanza-create")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=70)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    out = {"scale": args.scale, "jobs": args.jobs}
    try:
        start_host()
        sh("runuser -u postgres -- createdb bench")
        out["seconds_pgbench_init"] = timed("runuser -u postgres -- pgbench -i -q -s %d bench 2>/dev/null"
                                            % args.scale)
        size = int(psql("SELECT pg_database_size('bench')"))
        out["database_bytes"] = size
        out["database_gib"] = round(size / 2 ** 30, 3)
        sh("mkdir -p /var/bench && chown postgres: /var/bench")
        sh("runuser -u postgres -- psql -d bench -c 'CHECKPOINT' >/dev/null")

        # Each path twice, in the order plain, ours, ours, plain: the first run after a change meets cold
        # caches and the checkpoint of the one before, so a fixed order would favour the second. Best of two.
        def plain_dump_once():
            return timed("runuser -u postgres -- pg_dump -Fc -d bench -f /var/bench/plain.dump")

        def ours_dump_once():
            return timed("aiquiz-backup dump >/dev/null")

        plain_dumps, ours_dumps = [], []
        for order in ((plain_dump_once, ours_dump_once), (ours_dump_once, plain_dump_once)):
            for step in order:
                (plain_dumps if step is plain_dump_once else ours_dumps).append(step())
                sh("runuser -u postgres -- psql -q -d bench -c CHECKPOINT")
        plain_dump, ours_dump = min(plain_dumps), min(ours_dumps)
        cat = json.loads(sh("cat /var/lib/aiquiz/backup/catalogue.json"))["backups"]
        entry = [e for e in cat if e["kind"] == "postgresql-dump" and e["status"] == "good"][-1]
        plain_size = int(sh("stat -c %s /var/bench/plain.dump"))
        sh("aiquiz-backup fetch %s /var/bench/ours.dump && chown postgres: /var/bench/ours.dump" % entry["id"])

        def plain_restore_once():
            took = timed("runuser -u postgres -- createdb r_plain && runuser -u postgres -- "
                         "pg_restore -j %d -d r_plain /var/bench/plain.dump" % args.jobs)
            return took, 0.0

        def ours_restore_once():
            fetched = timed("rm -f /var/bench/ours.dump && aiquiz-backup fetch %s /var/bench/ours.dump && "
                            "chown postgres: /var/bench/ours.dump" % entry["id"])
            took = timed("runuser -u postgres -- createdb r_ours && runuser -u postgres -- "
                         "pg_restore -j %d -d r_ours /var/bench/ours.dump" % args.jobs)
            return took, fetched

        plain_restores, ours_restores, fetches, same = [], [], [], None
        for order in ((plain_restore_once, ours_restore_once), (ours_restore_once, plain_restore_once)):
            for step in order:
                took, fetched = step()
                if step is plain_restore_once:
                    plain_restores.append(took)
                else:
                    ours_restores.append(took)
                    fetches.append(fetched)
            if same is None:
                same = psql("SELECT sum(abalance) FROM pgbench_accounts", "r_plain") == \
                    psql("SELECT sum(abalance) FROM pgbench_accounts", "r_ours")
            sh("runuser -u postgres -- dropdb r_plain && runuser -u postgres -- dropdb r_ours && "
               "runuser -u postgres -- psql -q -d bench -c CHECKPOINT")
        plain_restore, ours_restore, fetch = min(plain_restores), min(ours_restores), min(fetches)
        out["logical"] = {
            "plain_pg_dump_seconds": plain_dump, "ours_backup_seconds": ours_dump,
            "backup_ratio": round(ours_dump / plain_dump, 3),
            "plain_dump_bytes": plain_size, "ours_backup_bytes": entry["size"],
            "ours_backup_mib_per_s": round(size / 2 ** 20 / ours_dump, 1),
            "plain_pg_restore_seconds": plain_restore, "ours_fetch_seconds": fetch,
            "ours_pg_restore_seconds": ours_restore,
            "restore_ratio": round((fetch + ours_restore) / plain_restore, 3),
            "plain_pg_dump_runs": plain_dumps, "ours_backup_runs": ours_dumps,
            "plain_pg_restore_runs": plain_restores, "ours_restore_runs": [a + b for a, b in zip(fetches, ours_restores)],
            "restored_databases_equal": same,
        }
        sh("rm -f /var/bench/*.dump")

        psql("CREATE TABLE heartbeat (ts timestamptz NOT NULL)")
        full = timed("aiquiz-backup pgbackrest --type full >/dev/null")
        sh("runuser -u postgres -- pgbench -n -T 20 -c 2 bench >/dev/null 2>&1")
        incr = timed("aiquiz-backup pgbackrest --type incr >/dev/null")
        info = json.loads(sh("runuser -u postgres -- pgbackrest --stanza=main info --output=json"))[0]["backup"]
        out["pgbackrest"] = {"full_seconds": full, "incr_seconds": incr,
                             "full_repo_bytes": info[0]["info"]["repository"]["size"],
                             "incr_repo_bytes": info[-1]["info"]["repository"]["delta"],
                             "full_mib_per_s": round(size / 2 ** 20 / full, 1)}

        # Drill: heartbeats, crash, restore the latest into a new data directory.
        psql("DO $$ BEGIN FOR i IN 1..%d LOOP INSERT INTO heartbeat VALUES (clock_timestamp()); COMMIT; "
             "PERFORM pg_sleep(1); END LOOP; END $$" % HEARTBEATS)
        last_write = float(psql("SELECT extract(epoch FROM max(ts)) FROM heartbeat"))
        sh("systemctl kill --signal=SIGKILL postgresql@15-main; sleep 1; systemctl stop postgresql@15-main || true")
        sh("mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.crashed && "
           "install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/15/main")
        start = time.monotonic()
        restore = timed("runuser -u postgres -- pgbackrest --stanza=main --archive-mode=off restore")
        sh("systemctl start postgresql@15-main")
        while psql("SELECT pg_is_in_recovery()", "postgres") != "f":
            time.sleep(0.2)
        rto = round(time.monotonic() - start, 2)
        restored = float(psql("SELECT extract(epoch FROM max(ts)) FROM heartbeat"))
        out["pgbackrest"]["restore_seconds"] = restore
        out["drill"] = {"rto_seconds": rto, "rpo_seconds": round(last_write - restored, 2),
                        "archive_timeout_seconds": 60, "heartbeats": HEARTBEATS}
    finally:
        if not args.keep:
            subprocess.run(["docker", "rm", "-f", NAME], capture_output=True, check=False)
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
