"""Attacks on the release path's boundaries (issue 12, items 4 and 6), on the
scenario's real hosts, each test setting up the state it needs.

- Two runs of one workload at once (an AWX job and a terminal): one holds the
  workload's release lock on a host from its first step to its last; the
  other waits, then deploys after it, or fails naming the holder. Requests
  through the edge never fail and the first run's containers are never
  recreated while it gates them. A run killed mid-deploy does not block the
  next one; a lock whose holder is alive is never taken.
- Another workload whose name ends with `quiz` keeps its containers when quiz
  deploys; release ids that map to one Compose project name are refused.
- A migration that fails printing its DSN leaves its password nowhere: not in
  the output at -v, the ledger (0600) or the audit trail.
"""

import json
import os
import pathlib
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from quiz import (APPS, DEPLOY, FAST, LEDGER, LEDGER_DIR, ROOT, ansible_playbook, containers, deploy, get, ledger,
                  playbook_env, served_releases, services, sh, start_playbook, state_of, under_load)

APP1 = APPS[0]
LOCK = LEDGER_DIR + "/quiz.run.lock"


@pytest.fixture
def workdir():
    """A directory of the test's own (pytest's shared basetemp is pruned by other sessions)."""
    with tempfile.TemporaryDirectory(prefix="compose_app-test-") as path:
        yield pathlib.Path(path)


def active_release(name):
    return next((r for r in ledger(name)["releases"] if r["state"] == "active"), None)


def ensure_active(release, images_of=None):
    """Make `release` (with the images of images_of) the active release on both app hosts."""
    extra = {"compose_app_canary_percent": 0}
    if images_of:
        extra["compose_app_services"] = services(images_of)
    rc, out = deploy(release, **extra)
    assert rc == 0, out[-3000:]
    for name in APPS:
        assert state_of(name, release) == "active", name


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out after %s s waiting for %s" % (seconds, what))


def lock_holder_pid():
    """pid of the ansible-playbook that holds quiz's release lock on app1, None when none does."""
    text = sh(APP1, "cat %s 2>/dev/null || true" % LOCK).strip()
    return json.loads(text).get("pid") if text else None


def in_gate(proc, release, services=3):
    """proc holds app1's release lock and all the containers of release run there: it is in
    its health gate. Containers alone do not say it: a release kept on standby from an
    earlier test has its (stopped) containers on app1 before the run even starts."""
    seen = containers(APP1, workload="quiz", release=release)
    return (len(seen) == services and all(c[1] == "running" for c in seen.values())
            and lock_holder_pid() == proc.pid)


class ContainerWatch(threading.Thread):
    """Polls the containers of one release on app1 and the ledger there, from
    the moment they run until the ledger shows the release active: the
    window in which no other run may touch them."""

    def __init__(self, release, services=3):
        super().__init__(daemon=True)
        self.release = release
        self.services = services
        self.samples = []
        self.activated = False
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            seen = containers(APP1, workload="quiz", release=self.release)
            book = json.loads(sh(APP1, "cat %s" % LEDGER))
            state = {r["id"]: r["state"] for r in book["releases"]}.get(self.release)
            if seen or self.samples:
                self.samples.append(seen)
            if state == "active" and self.samples:
                self.activated = True
                return
            time.sleep(0.3)

    def changes(self):
        """What happened to the containers once all ran (the gate began): gone, restarted or replaced."""
        first = next((s for s in self.samples
                      if len(s) == self.services and all(c[1] == "running" for c in s.values())), None)
        if first is None:
            return ["never saw the containers of %s running" % self.release]
        problems = []
        for sample in self.samples[self.samples.index(first):]:
            for cid, (service, _state, started) in first.items():
                now = sample.get(cid)
                if now is None:
                    problems.append("%s container %s removed" % (service, cid[:12]))
                elif now[1] != "running" or now[2] != started:
                    problems.append("%s container %s %s, started %s (was %s)" % (service, cid[:12], now[1], now[2],
                                                                                 started))
            for cid, (service, _state, _started) in sample.items():
                if cid not in first:
                    problems.append("%s container %s created" % (service, cid[:12]))
        return sorted(set(problems))


def log_text(path):
    return path.read_text(errors="replace")


# --------------------------------------------------------------------------
# Item 6: one run at a time per workload and host


def test_two_deploys_at_once_take_turns_and_the_first_keeps_its_containers(workdir):
    ensure_active("1.0.0")
    watch = ContainerWatch("1.1.0")
    logs = {key: workdir / ("%s.log" % key) for key in "abc"}
    # C's release is new to the ledgers: that it stays out of them shows C changed nothing.
    refused = "1.0.2-" + secrets.token_hex(3)

    def race():
        # A: 1.1.0, with a longer canary so that its window is wide open.
        first = start_playbook(DEPLOY, dict(FAST, compose_app_release="1.1.0", compose_app_canary_seconds=15),
                               logs["a"])
        watch.start()
        # B starts when A holds app1's lock and its containers run there (A
        # is in its health gate): the moment an unlocked deploy would take
        # the same idle colour. Started any sooner, B or C could take the
        # lock before A on a loaded machine, and the test would not test this.
        wait_for(lambda: in_gate(first, "1.1.0"), 300, "A's containers of 1.1.0 running on app1, A holding the lock")
        second = start_playbook(DEPLOY, dict(FAST, compose_app_release="1.0.1", compose_app_canary_percent=0,
                                             compose_app_services=services("1.0.0")), logs["b"])
        # C gives up after 3 s: it must fail naming A, and change nothing.
        third = start_playbook(DEPLOY, dict(FAST, compose_app_release=refused, compose_app_lock_wait=3,
                                            compose_app_services=services("1.0.0")), logs["c"])
        return [proc.wait(timeout=1200) for proc in (first, second, third)]

    (rc_a, rc_b, rc_c), load = under_load(race)
    watch.stop.set()
    out_a, out_b, out_c = (log_text(logs[key]) for key in "abc")
    print(json.dumps(load, indent=1))
    print("A:", out_a[-2500:], "\nB:", out_b[-2500:], "\nC:", out_c[-2500:])
    assert load["failed"] == 0, load["failures"]
    assert watch.changes() == [], watch.changes()
    assert rc_a == 0, out_a[-3000:]
    # B waited for A on each host, then deployed after it.
    assert rc_b == 0, out_b[-3000:]
    assert re.search(r"waited \d+ s for the run lock", out_b), out_b[-3000:]
    # C gave up, naming the holder (who, which run, since when, controller pid and host).
    assert rc_c != 0
    assert "compose_app_lock_wait" in out_c, out_c[-3000:]
    holder = re.search(r"held by (.*)", out_c)
    assert holder, out_c[-3000:]
    assert re.search(r"ansible-playbook pid \d+ on \S+", holder.group(1)), holder.group(1)
    assert re.search(r"since \d{4}-\d\d-\d\dT", holder.group(1)), holder.group(1)
    for name in APPS:
        assert state_of(name, "1.1.0") == "standby", name
        assert state_of(name, "1.0.1") == "active", name
        assert state_of(name, refused) is None, name
        assert not get(name).file("/opt/aiquiz/quiz/releases/" + refused).exists
        assert not get(name).file(LOCK).exists, "the lock outlived its runs on %s" % name
    # 1.0.1 runs the images of 1.0.0, which answer /version with their own release.
    assert served_releases() == {"1.0.0"}
    assert {c[1] for c in containers(APP1, workload="quiz", release="1.0.1").values()} == {"running"}


def test_a_deploy_killed_mid_gate_does_not_block_the_next_one(workdir):
    ensure_active("1.0.0")
    log = workdir / "killed.log"
    proc = start_playbook(DEPLOY, dict(FAST, compose_app_release="1.1.0"), log)
    try:
        wait_for(lambda: in_gate(proc, "1.1.0"), 300, "the run's containers of 1.1.0 running, the run holding the lock")
    finally:
        # A crash of the controller: the run dies with its lock taken.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    held = json.loads(get(APP1).file(LOCK).content_string)
    assert held["pid"] == proc.pid, held
    started = time.monotonic()
    rc, out = deploy("1.0.1", compose_app_canary_percent=0, compose_app_services=services("1.0.0"),
                     compose_app_lock_wait=60)
    assert rc == 0, out[-3000:]
    assert "its run is gone" in out, out[-3000:]
    assert time.monotonic() - started < 240
    for name in APPS:
        assert state_of(name, "1.0.1") == "active"
    # 1.0.1 runs the images of 1.0.0, which answer /version with their own release.
    assert served_releases() == {"1.0.0"}
    assert {c[1] for c in containers(APP1, workload="quiz", release="1.0.1").values()} == {"running"}


def plant_lock(**fields):
    """A lock file as another controller's run would leave it."""
    now = time.time()
    record = {"version": 1, "token": "other-controller:4242:1", "who": "mallory",
              "run": "AWX job 4242", "controller": "awx-node-7", "pid": 4242,
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60)),
              "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
              "boot_id": sh(APP1, "cat /proc/sys/kernel/random/boot_id").strip(),
              "purpose": "deploy quiz 9.9.9"}
    record.update(fields)
    get(APP1).run("mkdir -p %s && printf '%%s' %s > %s" % (LEDGER_DIR, _quote(json.dumps(record)), LOCK))
    return record


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def test_a_live_lock_of_another_controller_is_never_taken():
    ensure_active("1.0.0")
    plant_lock()
    before = get(APP1).file(LEDGER).content_string
    try:
        rc, out = deploy("1.0.1", compose_app_services=services("1.0.0"), compose_app_lock_wait=4)
        assert rc != 0
        assert "held by mallory, AWX job 4242 (ansible-playbook pid 4242 on awx-node-7)" in out, out[-3000:]
        assert get(APP1).file(LEDGER).content_string == before
        assert json.loads(get(APP1).file(LOCK).content_string)["token"] == "other-controller:4242:1"
    finally:
        get(APP1).run("rm -f %s" % LOCK)


def test_an_expired_or_previous_boot_lock_is_taken_over():
    ensure_active("1.0.0")
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    for planted in ({"expires": past}, {"boot_id": "00000000-0000-0000-0000-000000000000"}):
        plant_lock(**planted)
        rc, out = deploy("1.0.0", compose_app_lock_wait=4)
        assert rc == 0, out[-3000:]
        assert "took over the run lock" in out, out[-3000:]
        assert not get(APP1).file(LOCK).exists


# --------------------------------------------------------------------------
# Item 6: project names


ADMIN = {"compose_app_name": "admin-quiz", "compose_app_colour_ports": {"blue": 8050, "green": 8060},
         "compose_app_migrate": False, "compose_app_edge_hosts": [], "compose_app_canary_percent": 0}


def admin_services(images_of):
    """The API alone, on offset 0 of admin-quiz's own ports, feeding no edge upstream."""
    api = next(svc for svc in services(images_of) if svc["name"] == "api")
    return [dict({k: v for k, v in api.items() if k != "upstream"}, offset=0)]


@pytest.fixture
def admin_quiz():
    """Workload admin-quiz (its name ends with quiz's) on app1, a release on each colour."""
    # Both on the images of 1.0.0, which need no migration beyond the first.
    for release, images_of in (("1.0.0", "1.0.0"), ("1.0.1", "1.0.0")):
        rc, out = ansible_playbook(DEPLOY, dict(ADMIN, compose_app_release=release,
                                                compose_app_services=admin_services(images_of)),
                                   limit=APP1, timeout=600)
        assert rc == 0, out[-3000:]
    yield containers(APP1, workload="admin-quiz")
    sh(APP1, "for p in $(docker ps -a --filter label=ops.aiquiz.workload=admin-quiz "
             "--format '{{.Label \"com.docker.compose.project\"}}' | sort -u); do docker compose -p $p down; done; "
             "rm -rf /opt/aiquiz/admin-quiz %s/admin-quiz.*" % LEDGER_DIR)


def test_deploying_quiz_leaves_admin_quiz_alone(admin_quiz):
    assert len({c[0] for c in admin_quiz.values()}) == 1 and len(admin_quiz) == 2, admin_quiz
    # quiz deploys onto two of its three colours in turn: at least one of
    # them is blue or green, a colour admin-quiz holds too.
    ensure_active("1.1.0")
    ensure_active("1.0.0")
    assert containers(APP1, workload="admin-quiz") == admin_quiz


def test_release_ids_with_one_project_name_are_refused():
    ensure_active("1.1.0")
    ensure_active("1.0.1", images_of="1.0.0")
    # 1.1.0 is now standby with its containers kept; 1-1-0 would take its colour.
    kept = containers(APP1, workload="quiz", release="1.1.0")
    assert kept
    rc, out = deploy("1-1-0", compose_app_canary_percent=0, compose_app_services=services("1.1.0"))
    assert rc != 0
    assert "1-1-0" in out and "1.1.0" in out and "Compose project" in out, out[-3000:]
    assert containers(APP1, workload="quiz", release="1.1.0") == kept
    assert containers(APP1, workload="quiz", release="1-1-0") == {}
    for name in APPS:
        assert state_of(name, "1-1-0") is None
        assert state_of(name, "1.1.0") == "standby"
        assert not get(name).file("/opt/aiquiz/quiz/releases/1-1-0").exists
    # 1.0.1 runs the images of 1.0.0, which answer /version with their own release.
    assert served_releases() == {"1.0.0"}
    assert {c[1] for c in containers(APP1, workload="quiz", release="1.0.1").values()} == {"running"}


# --------------------------------------------------------------------------
# Item 4: a failing migration's output


def test_a_failing_migration_leaves_its_password_nowhere(workdir):
    ensure_active("1.0.0")
    canary = "canary-" + secrets.token_hex(12)
    dsn = "postgresql://quiz:%s@{{ quiz_data_host }}:5432/quiz" % canary
    svcs = services("1.1.0")
    for svc in svcs:
        if svc["name"] == "api":
            # What a careless migration tool does: it prints the DSN it failed to reach.
            svc.setdefault("compose", {})["entrypoint"] = [
                "python3", "-c",
                "import os, sys\n"
                "print('connecting to ' + os.environ['QUIZ_DATABASE_URL'], flush=True)\n"
                "sys.stderr.write('FATAL: could not connect to %s: password authentication failed\\n'"
                " % os.environ['QUIZ_DATABASE_URL'])\n"
                "sys.exit(3)\n"]
    audit = workdir / "audit"
    rc, out = _run_verbose(dict(FAST, compose_app_release="1.3.0", compose_app_services=svcs,
                                compose_app_secrets={
                                    "QUIZ_DATABASE_URL": dsn,
                                    "QUIZ_REDIS_URL": "redis://:{{ quiz_redis_password }}@{{ quiz_data_host }}:6379/0",
                                    "QUIZ_AMQP_URL": "amqp://quiz:{{ quiz_amqp_password }}@{{ quiz_data_host }}:5672/%2F"}),
                           audit)
    assert rc != 0
    # The canary did reach the migration (the attack is real) ...
    env = get(APP1).file("/opt/aiquiz/quiz/releases/1.3.0/.env")
    assert canary in env.content_string and env.mode == 0o600
    # ... and went nowhere else.
    assert canary not in out, "in the playbook output at -v"
    trail = list(audit.glob("*.jsonl"))
    assert trail, "the run wrote no audit trail"
    for path in trail:
        assert canary not in path.read_text(errors="replace"), "in the audit trail %s" % path
    book = get(APP1).file(LEDGER)
    assert book.mode == 0o600 and book.user == "root"
    assert canary not in book.content_string, "in the ledger"
    entry = next(r for r in json.loads(book.content_string)["releases"] if r["id"] == "1.3.0")
    assert entry["state"] == "failed"
    # Still actionable: which step, its exit code, the masked output, how to see it whole.
    assert "migrations" in entry["reason"] and "exit 3" in entry["reason"], entry["reason"]
    assert "postgresql://quiz:<redacted:url-password>@" in entry["reason"], entry["reason"]
    assert len(entry["reason"]) <= 1024
    assert "release 1.3.0 of quiz failed and was rolled back" in out
    assert "postgresql://quiz:<redacted:url-password>@" in out and "docker compose" in out, out[-3000:]
    assert served_releases() == {"1.0.0"}


def _run_verbose(extra_vars, audit_dir):
    env = playbook_env(AIQUIZ_AUDIT_DIR=str(audit_dir))
    proc = subprocess.run(["ansible-playbook", "-i", os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
                           str(DEPLOY), "-v", "-e", json.dumps(extra_vars)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr
