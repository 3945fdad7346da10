"""Benchmark: go-live's idempotent run on the lab over SSH, as production
runs, against the same run under Ansible's defaults and over docker exec.

python3 tests/bench/connections.py [--runs N]

Needs the lab after a go-live (`make go-live`). Writes the lab's
known_hosts (`labctl ssh`), then times, in one
run and in turns (N rounds of each), playbooks/go-live.yml with
  - ssh_ours:      AIQUIZ_LAB_CONNECTION=ssh and ansible.cfg as shipped
                   (pipelining, ControlPersist 60 s, forks 20);
  - ssh_defaults:  the same over SSH with Ansible's defaults where ansible.cfg
                   departs from them: no pipelining, no ControlPersist (a new
                   SSH connection per task), forks 5; the plays' own fact
                   subsets stay (they are in the playbooks, not ansible.cfg);
  - docker_ours:   the lab's docker exec connection with ansible.cfg as shipped.
Every run must end changed=0. Prints one JSON document (best and every run's
wall seconds, tasks, ratios); asserts nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODES = {
    "ssh_ours": {"AIQUIZ_LAB_CONNECTION": "ssh"},
    "ssh_defaults": {"AIQUIZ_LAB_CONNECTION": "ssh", "ANSIBLE_PIPELINING": "False",
                     "ANSIBLE_SSH_ARGS": "-o ControlMaster=no", "ANSIBLE_FORKS": "5"},
    "docker_ours": {"AIQUIZ_LAB_CONNECTION": "community.docker.docker"},
}


def golive(extra_env):
    env = dict(os.environ, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra_env)
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", "inventories/lab", "playbooks/go-live.yml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=3600, check=False)
    took = round(time.monotonic() - start, 1)
    recap = re.findall(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout, re.M)
    if proc.returncode != 0 or not recap:
        raise SystemExit("go-live failed (%s):\n%s" % (extra_env, (proc.stdout + proc.stderr)[-3000:]))
    changed = sum(int(r[2]) for r in recap)
    return {"seconds": took, "tasks_ok": sum(int(r[1]) for r in recap), "changed": changed, "hosts": len(recap)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="rounds of the three modes (default 1)")
    args = parser.parse_args()
    # stdout is the JSON document alone.
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "lab", "labctl.py"), "ssh"], check=True,
                   stdout=subprocess.DEVNULL)
    # One warm-up over SSH: the first connection of each host opens its ControlPersist master.
    golive(MODES["ssh_ours"])
    runs = {mode: [] for mode in MODES}
    for _round in range(args.runs):
        for mode, extra in MODES.items():
            runs[mode].append(golive(extra))
    best = {mode: min(r["seconds"] for r in results) for mode, results in runs.items()}
    out = {
        "playbook": "playbooks/go-live.yml (idempotent)",
        "hosts": runs["ssh_ours"][0]["hosts"],
        "cpus": os.cpu_count(),
        "best_seconds": best,
        "ssh_defaults_over_ssh_ours": round(best["ssh_defaults"] / best["ssh_ours"], 2),
        "ssh_ours_over_docker_ours": round(best["ssh_ours"] / best["docker_ours"], 2),
        "every_run_changed_nothing": all(r["changed"] == 0 for results in runs.values() for r in results),
        "runs": runs,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
