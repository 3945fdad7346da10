"""Runs inside a lab host as root: samples every process's command line and
records any that holds one of the canary values, until stopped.

    python3 canary_sampler.py sample VALUES_FILE OUT_FILE [INTERVAL]
    python3 canary_sampler.py scan VALUES_FILE PATH...   (journal, logs)

The values come from a file (0600), never from argv, so the sampler does not
find itself. Hits are written with the value replaced by its index, so the
report can be printed safely.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time


def load(values_file):
    with open(values_file, encoding="utf-8") as fh:
        return [v for v in fh.read().splitlines() if v]


def mask(text, values):
    for i, value in enumerate(values):
        text = text.replace(value, "<canary %d>" % i)
    return text


def sample(values_file, out_file, interval=0.05):
    values = [v.encode() for v in load(values_file)]
    plain = [v.decode() for v in values]
    own = os.getpid()
    seen = set()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    samples = 0
    with open(out_file, "w", encoding="utf-8") as out:
        while not stop:
            for path in glob.glob("/proc/[0-9]*/cmdline"):
                pid = int(path.split("/")[2])
                if pid == own:
                    continue
                try:
                    with open(path, "rb") as fh:
                        args = fh.read()
                except OSError:
                    continue
                if any(v in args for v in values):
                    line = mask(args.replace(b"\0", b" ").decode(errors="replace"), plain)
                    if (pid, line) not in seen:
                        seen.add((pid, line))
                        out.write(json.dumps({"pid": pid, "args": line[:500]}) + "\n")
                        out.flush()
            samples += 1
            time.sleep(interval)
        out.write(json.dumps({"samples": samples}) + "\n")


def scan(values_file, paths):
    values = load(values_file)
    hits = []
    journal = subprocess.run(["journalctl", "--no-pager", "-o", "cat"], capture_output=True, text=True,
                             errors="replace", check=False).stdout
    sources = [("journal", journal)]
    for pattern in paths:
        for path in glob.glob(pattern):
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    sources.append((path, fh.read()))
    for name, text in sources:
        for line in text.splitlines():
            if any(v in line for v in values):
                hits.append({"source": name, "line": mask(line, values)[:500]})
    print(json.dumps({"sources": [n for n, _t in sources], "hits": hits}))


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 0.05)
    else:
        scan(sys.argv[2], sys.argv[3:])
