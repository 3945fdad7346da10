"""Look for secret values where an attacker on the host would: the process
table while a role runs, then the journal, /var/log and files.

Two halves in one file:
- on the host (run as `python3 secret_sampler.py OUT STOP CANARIES`): every
  50 ms, `ps -eo args` and every process's environment (/proc/PID/environ),
  until the file STOP appears (or 15 minutes pass); the lines that hold one of
  the canary values go to OUT as JSON. The canaries come from a file, never
  from the command line (the sampler would find itself).
- on the controller (imported by Testinfra tests): Sampler(host, canaries)
  starts it in the background, .stop() returns its findings, and
  traces(host, canaries, ...) reads the journal, /var/log and the given
  directories after the run.
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import time

HOST_DIR = "/root/secret-sampler"


def _sample(out, stop, canary_file):
    with open(canary_file, "rb") as fh:
        canaries = fh.read().split()
    me = str(os.getpid())
    hits, samples = [], 0
    pathlib.Path(out + ".started").touch()
    deadline = time.monotonic() + 900
    while not os.path.exists(stop) and time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, check=False).stdout
        for line in ps.splitlines():
            if any(c in line for c in canaries):
                hits.append("ps -eo args: " + line.decode(errors="replace")[:300])
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                with open("/proc/%s/environ" % pid, "rb") as fh:
                    env = fh.read()
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ")
            except OSError:
                continue
            if any(c in env for c in canaries):
                hits.append("environ of %s: %s" % (pid, cmd.decode(errors="replace")[:200]))
        samples += 1
        time.sleep(0.05)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"samples": samples, "hits": sorted(set(hits))}, fh)


class Sampler:
    """The host-side sampler of one host, started in the background."""

    def __init__(self, host, canaries):
        self.host = host
        self.dir = HOST_DIR
        host.check_output("rm -rf %s && mkdir -m 0700 %s", self.dir, self.dir)
        # Through a module (its content is no_log): the canaries never reach a command line here.
        # (Canaries: no white space; testinfra passes module arguments as key=value.)
        host.ansible("copy", "content='%s' dest=%s/canaries mode=0600" % (" ".join(canaries), self.dir), check=False)
        host.ansible("copy", "src=%s dest=%s/sampler.py mode=0700" % (pathlib.Path(__file__).resolve(), self.dir),
                     check=False)
        host.check_output("nohup python3 %s/sampler.py %s/out.json %s/stop %s/canaries >/dev/null 2>&1 &",
                          self.dir, self.dir, self.dir, self.dir)
        # Sampling before the caller goes on.
        for _attempt in range(100):
            if host.run("test -e %s/out.json.started", self.dir).rc == 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the secret sampler did not start on %s" % host.backend.host)

    def stop(self):
        """{"samples": N, "hits": [...]} once the sampler has written it."""
        self.host.check_output("touch %s/stop", self.dir)
        for _attempt in range(100):
            cmd = self.host.run("cat %s/out.json", self.dir)
            if cmd.rc == 0 and cmd.stdout.strip():
                return json.loads(cmd.stdout)
            time.sleep(0.1)
        raise AssertionError("the secret sampler on %s wrote no result" % self.host.backend.host)


def traces(host, canaries, paths=("/etc", "/var/log", "/var/lib", "/tmp", "/root", "/run"), allowed=()):
    """Where the canaries show after the run: journal lines and files (except `allowed` files)."""
    found = []
    patterns = " ".join("-e %s" % shlex.quote(c) for c in canaries)
    journal = host.run("journalctl --no-pager -o cat | grep -F " + patterns)
    found += ["journal: " + line[:300] for line in journal.stdout.splitlines()]
    files = host.run("grep -rlsF --exclude-dir=secret-sampler %s %s" % (patterns, " ".join(paths)))
    found += ["file: " + path for path in files.stdout.splitlines() if path not in allowed]
    return found


if __name__ == "__main__":
    _sample(*sys.argv[1:4])
