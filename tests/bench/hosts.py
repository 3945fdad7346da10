"""Benchmark: the host configuration roles (playbooks/site.yml: base, hardening,
firewall) on fresh Debian 12 and 13 hosts.

python3 tests/bench/hosts.py [--hosts N] [--runs N] [--profile N]

Starts N fresh systemd hosts from the lab images (half Debian 12, half 13) on
a network of their own, times the first converge and the idempotent re-runs,
then removes them. Prints one JSON document; it asserts nothing. With
--profile N, the last re-run also times every task (ansible.posix's
profile_tasks callback): the N slowest are listed, with the number of tasks
per host that were not skipped.
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import labctl  # noqa: E402  pylint: disable=wrong-import-position

TOPOLOGY = {"lab": "bench", "prefix": "aiquiz-bench", "network": "aiquiz-bench",
            "capabilities": ["SYS_ADMIN", "NET_ADMIN"], "hosts": []}


def recap(output):
    hosts = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", output, re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def profile(output, top):
    """The slowest tasks of a run, from profile_tasks' per-task lines."""
    tasks = [(float(m.group(2)), m.group(1).strip())
             for m in re.finditer(r"^(.+?) -{3,} (\d+\.\d+)s$", output, re.M)]
    return [{"task": name, "s": seconds} for seconds, name in sorted(tasks, reverse=True)[:top]]


def tasks_run(output):
    """Tasks that ran (ok or changed, not skipped), per host, loops counted once."""
    return len(re.findall(r"^(?:ok|changed): \[[^\]]+\]$", output, re.M)) // max(1, len(recap(output)))


def site(inventory, profile_tasks=False):
    env = dict(os.environ, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"],
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               AIQUIZ_AUDIT_SUMMARY="false")
    if profile_tasks:
        env.update(ANSIBLE_CALLBACKS_ENABLED="aiquiz.ops.audit,ansible.posix.profile_tasks",
                   PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", PROFILE_TASKS_SORT_ORDER="none")
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", inventory, "playbooks/site.yml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - started, 2)
    if proc.returncode != 0:
        sys.exit("bench: site.yml failed: %s" % (proc.stdout + proc.stderr)[-600:])
    return seconds, recap(proc.stdout), proc.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="list the N slowest tasks of the last re-run")
    args = parser.parse_args()
    topo = dict(TOPOLOGY, hosts=[{"name": "bench%d" % i, "debian": "12" if i % 2 else "13", "groups": ["data"]}
                                 for i in range(1, args.hosts + 1)])
    labctl.require_engine()
    try:
        # labctl reports on stdout; keep stdout for the JSON document.
        with contextlib.redirect_stdout(sys.stderr):
            inventory = labctl.start_fresh_hosts(topo)
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as inv:
            inv.write(json.dumps(inventory))
        first, first_recap, _out = site(inv.name)
        reruns, changed, last = [], 0, ""
        for run in range(args.runs):
            seconds, rc, last = site(inv.name, profile_tasks=args.profile > 0 and run == args.runs - 1)
            reruns.append(seconds)
            changed += sum(h.get("changed", 0) for h in rc.values())
        os.unlink(inv.name)
    finally:
        with contextlib.redirect_stdout(sys.stderr):
            labctl.cmd_down(argparse.Namespace(keep_volumes=False), topo)
    median = sorted(reruns)[len(reruns) // 2]
    extra = {}
    if args.profile:
        extra = {"idempotent_tasks_run_per_host": tasks_run(last), "idempotent_slowest_tasks": profile(last, args.profile)}
    print(json.dumps(dict(extra, **{
        "hosts": args.hosts,
        "converge_fresh_s": first,
        "converge_fresh_changed": sum(h.get("changed", 0) for h in first_recap.values()),
        "idempotent_s": reruns,
        "idempotent_median_s": median,
        "idempotent_changed": changed,
        "tasks_per_host": max((h.get("ok", 0) + h.get("skipped", 0)) for h in first_recap.values()),
    }), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
