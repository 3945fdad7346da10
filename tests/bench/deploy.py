"""Benchmark: a release, an automatic rollback and rollback.yml under load, on the lab.

python3 tests/bench/deploy.py [--rate N] [--canary-seconds N]

Brings the lab to release 1.0.0 (go-live's phases for the workload), then
runs, while a bounded load generator sends HTTPS requests through the edge's
port published on 127.0.0.1:8443:
  1. deploy.yml to 1.1.0 (canary on app1, then app2);
  2. deploy.yml to 1.2.0, which never gets ready (automatic rollback);
  3. rollback.yml (back to the previous good release, 1.0.0);
and prints one JSON document: requests and failed requests per step, p50
and p99 latency before (baseline) and during each step, the cutover window
(first answer from the new release to the last from the old one), and play
times. It asserts nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
from loadgen import LoadGenerator, percentile  # noqa: E402  pylint: disable=wrong-import-position

ENV = dict(os.environ, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"],
           ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", AIQUIZ_AUDIT_SUMMARY="true")
# The audit callback's PHASE TIMINGS: play time, without Ansible's start-up.
PLAY_TOTAL = re.compile(r"^total\s+([0-9.]+)\s*$", re.M)


def run(cmd, check=True):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - started, 2)
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-1500:]
        sys.exit("bench: %s failed (exit %d): %s" % (" ".join(cmd), proc.returncode, tail))
    return proc.returncode, seconds, proc.stdout + proc.stderr


def playbook(name, **extra):
    cmd = ["ansible-playbook", "-i", "inventories/lab", "playbooks/%s.yml" % name]
    if extra:
        cmd += ["-e", json.dumps(extra)]
    return cmd


def step(gen, name, cmd, expect_rc=0, settle=3.0):
    gen.mark(name)
    rc, seconds, out = run(cmd, check=False)
    if (rc == 0) != (expect_rc == 0):
        gen.stop()
        sys.exit("bench: step %s ended with rc %d: %s" % (name, rc, out[-1500:]))
    time.sleep(settle)
    total = PLAY_TOTAL.search(out)
    return {"wall_seconds": seconds, "play_seconds": float(total.group(1)) if total else None, "rc": rc}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=300, help="requests per second, all threads together")
    parser.add_argument("--canary-seconds", type=int, default=15)
    args = parser.parse_args()

    # The lab at 1.0.0: hosts up, images in its registry, data services, then
    # the phases that deploy the workload.
    run([sys.executable, "tests/lab/labctl.py", "up"])
    run([sys.executable, "tests/lab/labctl.py", "workloads", "--registry", "127.0.0.1:5000"])
    run(["ansible-playbook", "-i", "inventories/lab", "playbooks/data.yml"])
    # site.yml first: after an engine restart the hosts may have new addresses.
    for name in ("site", "docker", "edge"):
        run(playbook(name))
    run(playbook("deploy", compose_app_release="1.0.0"))
    # A rollback first if a former run left another release active.
    run(playbook("rollback", compose_app_rollback_to="1.0.0"), check=False)

    canary = {"compose_app_canary_seconds": args.canary_seconds}
    gen = LoadGenerator("127.0.0.1", 8443, host="quiz.aiquiz.lab", rate=args.rate, threads=12,
                        max_requests=args.rate * 900, max_seconds=900)
    figures = {"rate_limit_rps": args.rate, "canary_seconds": args.canary_seconds, "steps": {}}
    with gen:
        gen.mark("baseline")
        time.sleep(10)
        figures["steps"]["deploy_1.1.0"] = step(gen, "deploy_1.1.0",
                                                playbook("deploy", compose_app_release="1.1.0", **canary))
        figures["steps"]["auto_rollback_1.2.0"] = step(gen, "auto_rollback_1.2.0",
                                                       playbook("deploy", compose_app_release="1.2.0",
                                                                compose_app_health_deadline=20, **canary),
                                                       expect_rc=2)
        figures["steps"]["rollback_yml"] = step(gen, "rollback_yml", playbook("rollback"))
        gen.mark("end")
    summary = gen.summary()
    figures["requests"] = summary["requests"]
    figures["failed"] = summary["failed"]
    figures["failures"] = summary["failures"]
    figures["phases"] = summary["phases"]
    figures["stale_keepalive_retries"] = summary["stale_keepalive_retries"]
    # Cutover: from the first answer of 1.1.0 to the last of 1.0.0, during the deploy.
    deploy = [p for p in gen.phases() if p[0] == "deploy_1.1.0"][0]
    in_deploy = [r for r in gen.records if deploy[1] <= r[0] < deploy[2]]
    new = [r[0] for r in in_deploy if r[4] == "1.1.0"]
    old = [r[0] for r in in_deploy if r[4] == "1.0.0"]
    if new and old:
        figures["cutover_window_s"] = round(max(old) - min(new), 2)
        # Latency while both releases answer (canary and switches), against the baseline.
        window = [r[1] for r in in_deploy if r[2] and min(new) <= r[0] <= max(old)]
        figures["p99_ms_cutover_window"] = percentile(window, 99)
        base_p99 = summary["phases"]["baseline"]["p99_ms"]
        figures["p99_ratio_cutover_vs_baseline"] = (round(figures["p99_ms_cutover_window"] / base_p99, 2)
                                                    if base_p99 and window else None)
    base = summary["phases"]["baseline"]["p99_ms"]
    during = summary["phases"]["deploy_1.1.0"]["p99_ms"]
    figures["p99_ratio_deploy_vs_baseline"] = round(during / base, 2) if base and during else None
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
