"""Benchmark: cold and warm `make setup`, and go-live.yml runs on the lab.

python3 tests/bench/setup_golive.py [--cold-images] [--runs N]

Cold setup runs in a fresh clone of this repository (so a new .venv);
with --cold-images the lab's base images are removed first and rebuilt.
Prints one JSON document of figures; it asserts nothing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(cmd, cwd, env=None):
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - started, 2)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-400:]
        sys.exit("bench: %s failed (exit %d): %s" % (" ".join(cmd), proc.returncode, tail))
    return seconds, proc.stdout


def recap(output):
    """{host: {ok, changed, failed, ...}} from ansible-playbook's PLAY RECAP."""
    hosts = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", output, re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold-images", action="store_true", help="remove and rebuild the lab images")
    parser.add_argument("--runs", type=int, default=3, help="idempotent go-live runs to time")
    args = parser.parse_args()
    figures = {"cold_images": args.cold_images}

    clone = tempfile.mkdtemp(prefix="aiquiz-bench-")
    try:
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        if args.cold_images:
            ids = subprocess.run(["docker", "images", "-q", "aiquiz-lab/debian"], capture_output=True,
                                 text=True, check=True).stdout.split()
            if ids:
                subprocess.run(["docker", "rmi", "-f"] + sorted(set(ids)), capture_output=True, check=False)
        figures["setup_cold_s"], _out = timed(["bash", "tests/lab/setup.sh"], clone)
        figures["setup_warm_s"], _out = timed(["bash", "tests/lab/setup.sh"], clone)
    finally:
        shutil.rmtree(clone, ignore_errors=True)

    env = dict(os.environ, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"],
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    figures["lab_up_s"], _out = timed([sys.executable, "tests/lab/labctl.py", "up"], ROOT)
    cmd = ["ansible-playbook", "-i", "inventories/lab", "playbooks/go-live.yml"]
    figures["golive_first_s"], out = timed(cmd, ROOT, env)
    figures["hosts"] = len(recap(out))
    runs = []
    changed = 0
    for _run in range(args.runs):
        seconds, out = timed(cmd, ROOT, env)
        runs.append(seconds)
        changed += sum(h.get("changed", 0) for h in recap(out).values())
    figures["golive_idempotent_s"] = runs
    figures["golive_idempotent_median_s"] = sorted(runs)[len(runs) // 2]
    figures["golive_idempotent_changed"] = changed
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
