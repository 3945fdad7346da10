"""Disaster recovery from nothing: data1 is removed with its disks, a fresh
host of the same name is built, and PostgreSQL, Redis, the RabbitMQ
definitions and a files set come back from the lab's S3 endpoint alone, with
the inventory (plus the S3 target, which the lab inventory leaves out) and the
vault values; the platform then serves the data written before the loss.

The runbook followed is docs/user-guide/backup.md, section 3. Destructive:
conftest.py runs it after every other end-to-end test. The figures go to
tests/output/dr-drill-e2e.json."""

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from helpers import ROOT, ansible_env, lab_exec, run_playbook

pytestmark = pytest.mark.destructive

S3_CA = ROOT / ".cache" / "lab-s3-ca" / "ca.pem"
REPORT = ROOT / "tests" / "output" / "dr-drill-e2e.json"
FILES_DIR = "/srv/quiz-uploads"
REDIS_PASSWORD = "quiz-lab-redis-password"  # public lab value (inventories/lab/group_vars/all.yml)


def edge(method, path, body=None, timeout=5):
    """(status, parsed body) of a request to the platform through the edge."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the lab edge's certificate; the path, not the chain, is under test
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("https://127.0.0.1:8443" + path, data=data, method=method,
                                 headers={"Host": "quiz.aiquiz.lab", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def sh(host, script, **kwargs):
    proc = lab_exec(host, "sh", "-c", script, **kwargs)
    assert proc.returncode == 0, (host, script, proc.stdout, proc.stderr)
    return proc.stdout.strip()


def redis(*args):
    proc = subprocess.run(["docker", "exec", "-e", "REDISCLI_AUTH=" + REDIS_PASSWORD, "aiquiz-lab-data1",
                           "redis-cli", "-s", "/run/redis/redis-server.sock"] + list(args),
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def playbook(name, *args, timeout=900):
    run = run_playbook(name, *args, timeout=timeout)
    assert run.rc == 0, (name, args, run.explain())
    return run


@pytest.fixture(scope="module")
def drill_vars(golive, tmp_path_factory):
    """The lab's S3 endpoint up, and the variables that add it as data1's second target."""
    assert golive.run.rc == 0, golive.run.explain()
    proc = subprocess.run(["ansible-playbook", "-i", "tests/lab/helpers-inventory.yml", "tests/lab/s3.yml"],
                          cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    values = {
        "backup_targets": [
            {"name": "local", "type": "local", "path": "/var/backups/aiquiz"},
            # The endpoint's private CA travels in the inventory (ca_cert): nothing is copied to the new host.
            {"name": "s3", "type": "s3", "bucket": "aiquiz-backups", "endpoint": "objects1", "port": 443,
             "region": "us-east-1", "uri_style": "path", "ca_cert": S3_CA.read_text(encoding="utf-8"),
             "access_key": "lab", "secret_key": "lab-secret"},
        ],
        "backup_paths": [{"name": "quiz-uploads", "paths": [FILES_DIR]}],
    }
    path = tmp_path_factory.mktemp("dr") / "s3-target.yml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return "@" + str(path)


def test_a_lost_data_host_is_rebuilt_from_s3_alone_and_the_platform_serves_its_data(drill_vars):
    token = uuid.uuid4().hex[:12]
    timings = {}

    # --- Before the loss: data of every kind, S3 as a second target, backups taken.
    sh("data1", "install -d -m 0750 %s && printf '%s\\n' > %s/marker.txt && chmod 0640 %s/marker.txt"
       % (FILES_DIR, token, FILES_DIR, FILES_DIR))
    status, marker = edge("POST", "/api/quizzes", {"title": "dr-marker-" + token})
    assert status == 201, status
    assert redis("SET", "dr:marker", token) == "OK"
    sh("data1", "rabbitmqctl -q add_vhost dr-marker-%s" % token)

    # backup.yml applies the backup role (the S3 target joins pgbackrest.conf, restic and WAL
    # archiving), then takes every backup.
    started = time.monotonic()
    playbook("playbooks/backup.yml", "--limit", "data1", "-e", drill_vars)
    timings["configure_s3_target_and_backup_s"] = round(time.monotonic() - started, 1)
    for prefix in ("pgbackrest/", "restic/snapshots/"):
        listing = sh("objects1", "python3 -c \"import urllib.request; print(urllib.request.urlopen("
                     "'http://127.0.0.1:5000/aiquiz-backups?list-type=2&max-keys=1&prefix=%s').read().decode())\""
                     % prefix)
        assert "<Key>" + prefix in listing, listing[:2000]

    # Acknowledged writes up to the moment of the loss: the RPO is what of them is lost.
    acked = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, body = edge("POST", "/api/quizzes", {"title": "dr-heartbeat-" + token})
        if status == 201:
            acked.append((body["id"], time.time()))
        time.sleep(0.5)
    assert len(acked) >= 20, acked

    # --- The loss: the container and its volumes are gone.
    proc = subprocess.run(["docker", "rm", "--force", "--volumes", "aiquiz-lab-data1"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    lost_at = time.time()
    t0 = time.monotonic()

    # --- The rebuild, in the runbook's order.
    steps = [
        ("fresh_host", None),
        ("site", ("playbooks/site.yml", "--limit", "data1")),
        ("postgresql_only", ("playbooks/data.yml", "--limit", "data1", "-e", "data_services=postgresql")),
        ("restore_postgresql", ("playbooks/restore.yml", "-e", "restore_host=data1", "-e", "restore_from=s3")),
        ("data", ("playbooks/data.yml", "--limit", "data1")),
        ("restore_redis", ("playbooks/restore.yml", "-e", "restore_host=data1", "-e", "restore_kind=redis",
                           "-e", "restore_from=s3")),
        ("restore_rabbitmq", ("playbooks/restore.yml", "-e", "restore_host=data1", "-e", "restore_kind=rabbitmq",
                              "-e", "restore_from=s3")),
        ("restore_files", ("playbooks/restore.yml", "-e", "restore_host=data1", "-e", "restore_kind=files",
                           "-e", "restore_subject=quiz-uploads", "-e", "restore_from=s3")),
        # The new host may have a new address: the app hosts are pointed at it.
        ("deploy", ("playbooks/deploy.yml",)),
    ]
    rto_database = None
    for name, step in steps:
        started = time.monotonic()
        if step is None:
            proc = subprocess.run([sys.executable, "tests/lab/labctl.py", "up"], cwd=ROOT, env=ansible_env(),
                                  capture_output=True, text=True, timeout=300, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert sh("data1", "test ! -e %s && test ! -e /etc/aiquiz-backup && echo fresh" % FILES_DIR) == "fresh"
        else:
            playbook(step[0], *step[1:], "-e", drill_vars)
        timings[name + "_s"] = round(time.monotonic() - started, 1)
        if name == "restore_postgresql":
            rto_database = time.monotonic() - t0

    # --- The platform serves the data written before the loss.
    deadline = time.monotonic() + 120
    status, body = 0, None
    while time.monotonic() < deadline:
        status, body = edge("GET", "/api/quizzes/%d" % marker["id"])
        if status == 200:
            break
        time.sleep(1)
    rto_platform = time.monotonic() - t0
    assert status == 200 and body["title"] == "dr-marker-" + token, (status, body)

    restored = sh("data1", "runuser -u postgres -- psql -d quiz -Atc "
                  "\"SELECT coalesce(max(id), 0) FROM quizzes WHERE title = 'dr-heartbeat-%s'\"" % token)
    last_restored = int(restored)
    kept = [at for ident, at in acked if ident <= last_restored]
    lost = [ident for ident, _at in acked if ident > last_restored]
    # With nothing of the heartbeat restored, everything since the backup ended is lost.
    rpo = lost_at - (kept[-1] if kept else acked[0][1]) if lost else 0.0

    # The endpoint's CA came from the inventory: a public certificate, root's, readable by postgres.
    assert sh("data1", "stat -c '%a %U' /etc/ssl/aiquiz-backup/s3-ca.pem") == "644 root"
    assert redis("GET", "dr:marker") == token
    assert "dr-marker-%s" % token in sh("data1", "rabbitmqctl -q list_vhosts name").split()
    assert sh("data1", "cat %s/marker.txt && stat -c '%%a %%U' %s/marker.txt" % (FILES_DIR, FILES_DIR)).split() \
        == [token, "640", "root"]
    # The API's pooled connections to the lost server fail once; a write is answered 503 with
    # Retry-After (never retried by the API itself), which a client honours.
    for _attempt in range(15):
        status, _body = edge("POST", "/api/quizzes", {"title": "dr-after-" + token})
        if status != 503:
            break
        time.sleep(1)
    assert status == 201, "the restored database takes writes through the platform (%s)" % status

    # The keys of playbooks/dr-drill.yml's report too: the go-live report reads the newest drill of either kind.
    report = {"drill_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(lost_at)), "source": "data1",
              "restored_on": "data1", "rto_seconds": round(rto_database, 1), "rto_all_seconds": round(rto_platform, 1),
              "rto_database_seconds": round(rto_database, 1), "rto_platform_seconds": round(rto_platform, 1),
              "rpo_seconds": round(rpo, 1), "acknowledged_writes": len(acked), "acknowledged_writes_lost": len(lost),
              "steps": timings}
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report))
    # Aims of the runbook (docs/user-guide/backup.md): a serving database within 5 minutes of the loss, at most
    # 60 s of acknowledged writes lost (WAL is archived every 60 s at the latest).
    assert rto_database < 300, report
    assert rpo < 60, report
