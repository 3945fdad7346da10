"""Run the test suite: python3 tests/run.py [all|unit|sanity|lint|molecule|e2e] [-j N]

Stages run side by side where they do not share anything (the lab, Molecule
instances and linters are independent); each stage's output goes to
tests/output/logs/<stage>.log and its tail is printed when it fails. The last
line is `N passed, N failed`.
"""

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "output")
LOGS = os.path.join(OUT, "logs")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
PRINT_LOCK = threading.Lock()


def say(msg):
    with PRINT_LOCK:
        print(msg, flush=True)


def env():
    e = dict(os.environ)
    e["PATH"] = VENV_BIN + os.pathsep + e.get("PATH", "")
    e["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    e.setdefault("ANSIBLE_FORCE_COLOR", "0")
    e["PY_COLORS"] = "0"
    e["NO_COLOR"] = "1"
    return e


def junit_counts(path):
    """(found, passed, failed, skipped) from a pytest JUnit XML file."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return False, 0, 0, 0
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failed = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return True, tests - failed - skipped, failed, skipped


def junit_failures(path, width=400):
    """One line per failed or erring test case: its name and the start of its message.
    CI shows only part of a stage's output: these lines come first."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    lines = []
    for case in root.iter("testcase"):
        for what in ("failure", "error"):
            node = case.find(what)
            if node is not None:
                message = " ".join((node.get("message") or node.text or "").split())
                lines.append("  %s %s: %s" % (what.upper(), case.get("name"), message[:width]))
    return lines


def junit_causes(path, limit=8, width=300):
    """The failed task results that the failures quote (a playbook run's 'failed results:' block,
    tests/e2e/helpers.py), each once: many tests share one run, so one cause often fails them all."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    causes = []
    for node in root.iter():
        if node.tag not in ("failure", "error"):
            continue
        text = node.text or ""
        for block in re.findall(r"failed results:\n(.*?)\n--- end of output", text, re.S):
            for line in block.splitlines():
                line = " ".join(line.split())[:width]
                if line and line != "none" and line not in causes:
                    causes.append(line)
    return ["  CAUSE " + line for line in causes[:limit]]


def sanity_counts(log, rc):
    """(passed, failed, skipped) of ansible-test sanity, one per sanity test."""
    with open(log, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    ran = len(re.findall(r'^Running sanity test "', text, re.M))
    skipped = len(re.findall(r'^WARNING: Skipping sanity test "', text, re.M))
    m = re.search(r"The (\d+) sanity test\(s\) listed below \(out of (\d+)\) failed", text)
    failed = int(m.group(1)) if m else (0 if rc == 0 else 1)
    if ran == 0:
        return (0, 1, 0) if rc else (0, 0, 0)
    return max(ran - failed, 0), failed, skipped


class Result:
    def __init__(self, name, passed, failed, seconds, log, skipped=0, note=""):
        self.name, self.passed, self.failed = name, passed, failed
        self.seconds, self.log, self.skipped, self.note = seconds, log, skipped, note
        self.cpu, self.junit = 0.0, None


def cpu_busy():
    """(busy, total) jiffies of every CPU since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


MOLECULE_PHASE_RE = re.compile(r"\[\S+ > (\w+)\] Executing$", re.M)


class PhaseClock:
    """Seconds of each Molecule phase (converge, idempotence, verify...), read from the stage's log as it grows."""

    def __init__(self, path):
        self.path, self.offset, self.marks = path, 0, []

    def poll(self):
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            fh.seek(self.offset)
            text = fh.read()
        # Only whole lines: a phase line cut in two is read on the next poll.
        text = text[:text.rfind("\n") + 1]
        self.offset += len(text.encode("utf-8"))
        for match in MOLECULE_PHASE_RE.finditer(text):
            if not self.marks or self.marks[-1][0] != match.group(1):
                self.marks.append((match.group(1), time.monotonic()))

    def summary(self):
        self.poll()
        ends = [at for _name, at in self.marks[1:]] + [time.monotonic()]
        return ", ".join("%s %.0f s" % (name, end - at) for (name, at), end in zip(self.marks, ends))


def run_measured(cmd, fh, timeout, clock=None):
    """Run cmd; (exit code, CPU seconds of its process tree on this side). The lab's and Molecule's
    containers are not children of the stage, so their CPU shows in the run's machine-wide figure only."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=fh, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        if clock:
            clock.poll()
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            fh.write("\nTIMEOUT after %d s\n" % timeout)
            fh.flush()
            proc.kill()
            _pid, _status, usage = os.wait4(proc.pid, 0)
            return -1, usage.ru_utime + usage.ru_stime
        time.sleep(0.5)


def run_stage(name, cmd, junit=None, timeout=3600, lifecycle=False):
    """Run one stage. lifecycle: the command itself counts as one test on
    top of its JUnit cases (a Molecule scenario's converge, idempotence and
    check runs, before its Testinfra cases)."""
    log = os.path.join(LOGS, name.replace("/", "-") + ".log")
    say("start  %s" % name)
    if junit and os.path.exists(junit):
        os.unlink(junit)  # left by an earlier run
    started = time.monotonic()
    clock = PhaseClock(log) if lifecycle else None
    with open(log, "w", encoding="utf-8") as fh:
        fh.write("$ %s\n" % " ".join(cmd))
        fh.flush()
        rc, cpu = run_measured(cmd, fh, timeout, clock)
    seconds = time.monotonic() - started
    found, passed, failed, skipped = junit_counts(junit) if junit else (False, 0, 0, 0)
    if found:
        if lifecycle:
            passed, failed = (passed + 1, failed) if rc == 0 else (passed, failed + 1)
        # A crash outside any test case still fails the stage.
        if rc != 0 and failed == 0:
            failed = 1
    elif name == "sanity":
        passed, failed, skipped = sanity_counts(log, rc)
    else:
        passed, failed, skipped = (1, 0, 0) if rc == 0 else (0, 1, 0)
    res = Result(name, passed, failed, seconds, log, skipped)
    res.cpu = cpu
    res.junit = junit
    status = "ok" if failed == 0 else "FAILED"
    say("%-6s %-28s %6.1f s  %d passed, %d failed%s  (controller CPU %.0f s)" % (
        status, name, seconds, passed, failed, ", %d skipped" % skipped if skipped else "", cpu))
    if clock:
        say("       %-28s phases: %s" % (name, clock.summary()))
    if failed:
        if junit:
            say("\n".join(junit_failures(junit)[:30] + junit_causes(junit)))
        with open(log, encoding="utf-8", errors="replace") as fh:
            tail = fh.readlines()[-40:]
        say("------ tail of %s ------\n%s------" % (os.path.relpath(log, ROOT), "".join(tail)))
    return res


def pytest_stage(name, paths, extra=(), timeout=3600):
    junit = os.path.join(OUT, "junit-%s.xml" % name)
    cmd = [os.path.join(VENV_BIN, "pytest"), "-q", "-p", "no:cacheprovider",
           "--junitxml=" + junit] + list(extra) + list(paths)
    return lambda: run_stage(name, cmd, junit=junit, timeout=timeout)


def scenarios():
    base = os.path.join(ROOT, "molecule")
    return sorted(d for d in os.listdir(base)
                  if os.path.isfile(os.path.join(base, d, "molecule.yml")))


def molecule_stage(scenario):
    cmd = [os.path.join(VENV_BIN, "molecule"), "test", "-s", scenario]
    junit = os.path.join(OUT, "junit-molecule-%s.xml" % scenario)
    # A hang is cut off; a slow machine is not: twice the stage's usual time, at least 30 minutes.
    timeout = max(1800, 2 * EXPECTED_SECONDS.get("molecule/" + scenario, 900))
    return lambda: run_stage("molecule/" + scenario, cmd, junit=junit, timeout=timeout, lifecycle=True)


# Stage times of a full run on 2 cores (2026-12-03; e2e with the data-host loss, the AWX jobs and phases 7-8, 12-04),
# for the order only.
EXPECTED_SECONDS = {
    "molecule/compose_app": 1700, "molecule/backup": 1800, "e2e": 1800, "molecule/postgresql": 650,
    "molecule/tls": 600, "molecule/datatls": 550, "molecule/docker": 470, "molecule/rabbitmq": 450,
    # Measured alone (2026-12-03): 366 s.
    "molecule/backup_trixie": 370, "molecule/hardening": 310, "molecule/edge": 300, "molecule/redis": 260,
    "molecule/base": 250, "molecule/firewall": 170, "molecule/preflight": 165, "molecule/monitoring": 700, "sanity": 110, "ansible-lint": 60, "unit": 400,
    # Measured under load (2026-12-04): 850 s and 1634 s; the scenarios of the data tier's HA.
    "molecule/postgresql_ha": 900, "molecule/data_ha": 1200,
    # Measured under load (2026-12-05, 99 % CPU busy): 374 s.
    "molecule/logging": 380,
}


def stages_for(what):
    unit = [("unit", pytest_stage("unit", ["tests/unit"]))]
    lint = [
        ("yamllint", lambda: run_stage("yamllint", [os.path.join(VENV_BIN, "yamllint"), "--strict", "."])),
        ("ansible-lint", lambda: run_stage("ansible-lint", [os.path.join(VENV_BIN, "ansible-lint"),
                                                            "--profile", "production", "--offline"])),
        ("docs", lambda: run_stage("docs", [sys.executable, "tests/docs.py", "--check"])),
        ("changelog", lambda: run_stage("changelog", [os.path.join(VENV_BIN, "antsibull-changelog"), "lint"])),
    ]
    sanity = [("sanity", lambda: run_stage("sanity", ["bash", "tests/sanity.sh"]))]
    molecule = [("molecule/" + s, molecule_stage(s)) for s in scenarios()]
    # A hang is cut off; a loaded machine is not (CI measured 2,660 s beside two Molecule stages).
    e2e = [("e2e", pytest_stage("e2e", ["tests/e2e"], timeout=5400))]
    table = {"unit": unit, "lint": lint, "sanity": sanity, "molecule": molecule, "e2e": e2e}
    every = dict(unit + lint + sanity + molecule + e2e)
    if what not in table and what != "all":
        # A comma-separated list of stage names: molecule/tls,e2e,sanity
        names = what.split(",")
        unknown = [name for name in names if name not in every]
        if unknown:
            raise SystemExit("unknown stage(s) %s; stages: %s" % (", ".join(unknown), ", ".join(sorted(every))))
        return sorted(((name, every[name]) for name in names), key=lambda stage: -EXPECTED_SECONDS.get(stage[0], 100))
    if what == "all":
        # Longest first (seconds of a 2-core run), so the slow ones start while the short ones fill the gaps.
        stages = e2e + molecule + unit + lint + sanity
        return sorted(stages, key=lambda stage: -EXPECTED_SECONDS.get(stage[0], 100))
    return table[what]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", nargs="?", default="all",
                        help="all, unit, sanity, lint, molecule, e2e, or stage names joined by commas "
                             "(molecule/tls,e2e)")
    parser.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("AIQUIZ_TEST_JOBS", "3")))
    args = parser.parse_args()
    os.makedirs(LOGS, exist_ok=True)
    if not os.path.exists(os.path.join(VENV_BIN, "ansible-playbook")):
        print("run `make setup` first: .venv is missing", file=sys.stderr)
        return 2
    started = time.monotonic()
    busy0, total0 = cpu_busy()
    stages = stages_for(args.what)
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for fut in [pool.submit(fn) for _name, fn in stages]:
            results.append(fut.result())
    total = time.monotonic() - started
    busy1, total1 = cpu_busy()
    # How busy the machine's CPUs were over the run: well under 100 % says more stages could run side by side.
    say("\nstage timings (wall %.0f s, %d jobs, CPUs %.0f %% busy on %d cores):" % (
        total, args.jobs, 100.0 * (busy1 - busy0) / max(total1 - total0, 1), os.cpu_count() or 1))
    for r in sorted(results, key=lambda r: -r.seconds):
        say("  %-28s %6.1f s  controller CPU %6.0f s  %s" % (r.name, r.seconds, r.cpu, "ok" if not r.failed else "FAILED"))
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    for r in results:
        if r.failed and r.junit:
            say("failed in %s:\n%s" % (r.name, "\n".join(junit_failures(r.junit, width=200)[:15] + junit_causes(r.junit, limit=5, width=240))))
    say("%d passed, %d failed%s" % (passed, failed, ", %d skipped" % skipped if skipped else ""))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
