"""Running the project's commands against the lab, for the end-to-end tests."""

import json
import os
import pathlib
import subprocess
import time


ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_HOSTS = {"edge1", "app1", "app2", "data1", "mon1"}


def ansible_env(**extra):
    env = dict(os.environ)
    env["PATH"] = str(ROOT / ".venv" / "bin") + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env.update(extra)
    return env


class PlaybookRun:
    def __init__(self, proc, json_out):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.result = json_out

    @property
    def stats(self):
        return self.result["stats"] if self.result else {}

    def failures(self):
        """'play | task | host: message' of every failed or unreachable result."""
        found = []
        if self.result:
            for play in self.result.get("plays", []):
                for task in play.get("tasks", []):
                    for name, res in task.get("hosts", {}).items():
                        if res.get("failed") or res.get("unreachable"):
                            msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or ""
                            found.append("%s | %s | %s: %s" % (play["play"]["name"], task["task"]["name"], name,
                                                               str(msg)[:1500]))
        else:
            found = [line[:1500] for line in self.output.splitlines()
                     if line.startswith(("fatal: ", "failed: ")) or "FAILED!" in line]
        return found

    def explain(self, tail=3000):
        """What failed (each failed result's message), then the end of the output."""
        failed = "\n".join(self.failures()) or "none"
        return "failed results:\n%s\n--- end of output:\n%s" % (failed, self.output[-tail:])


def run_playbook(playbook, *args, json_output=True, inventory="inventories/lab", timeout=900, env=None):
    """ansible-playbook on the lab; with json_output the ansible.posix.json result is parsed."""
    cmd = ["ansible-playbook", "-i", inventory, playbook] + list(args)
    extra = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"} if json_output else {}
    extra.update(env or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(**extra), capture_output=True, text=True,
                          timeout=timeout, check=False)
    parsed = None
    if json_output:
        # The JSON document, then whatever other callbacks print after it.
        start = proc.stdout.find("{")
        parsed = json.JSONDecoder().raw_decode(proc.stdout[start:])[0] if start >= 0 else None
    return PlaybookRun(proc, parsed)


def lab_exec(host, *cmd, stdin=None, timeout=120):
    """A command inside a lab host, as root, through the Docker engine (the test's own path)."""
    return subprocess.run(["docker", "exec"] + (["-i"] if stdin is not None else []) + ["aiquiz-lab-" + host]
                          + list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout, check=False)


# The lab's public secrets (inventories/lab/group_vars): canaries that must
# never show in a process table, a journal, a log or a run's output.
CANARIES = ("quiz-lab-db-password", "quiz-lab-redis-password", "quiz-lab-amqp-password",
            "quiz-lab-backup-passphrase", "aiquiz-lab-ca-passphrase", "prometheus-lab-admin-password",
            "prometheus-lab-scrape-password", "alertmanager-lab-password")
SAMPLER = ROOT / "tests" / "e2e" / "canary_sampler.py"
SAMPLER_DIR = "/run/aiquiz-canary"


class CanarySampler:
    """Samples the process table of lab hosts every 50 ms while a block runs;
    `hits` maps each host to the command lines that held a canary value."""

    def __init__(self, hosts):
        self.hosts = sorted(hosts)
        self.hits = {}
        self.samples = {}

    def install(self, host):
        script = SAMPLER.read_text(encoding="utf-8")
        values = "\n".join(CANARIES) + "\n"
        for cmd, data in ((["sh", "-c", "umask 077 && mkdir -p %s && cat > %s/sampler.py" % (SAMPLER_DIR, SAMPLER_DIR)],
                           script),
                          (["sh", "-c", "umask 077 && cat > %s/values" % SAMPLER_DIR], values)):
            proc = lab_exec(host, *cmd, stdin=data)
            assert proc.returncode == 0, (host, proc.stderr)

    def __enter__(self):
        for host in self.hosts:
            self.install(host)
            proc = subprocess.run(["docker", "exec", "-d", "aiquiz-lab-" + host, "python3",
                                   SAMPLER_DIR + "/sampler.py", "sample", SAMPLER_DIR + "/values",
                                   SAMPLER_DIR + "/hits.jsonl"], capture_output=True, text=True, check=False)
            assert proc.returncode == 0, (host, proc.stderr)
        return self

    def __exit__(self, *exc):
        for host in self.hosts:
            lab_exec(host, "pkill", "-TERM", "-f", SAMPLER_DIR + "/sampler.py")
        for host in self.hosts:
            out = ""
            for _attempt in range(50):
                out = lab_exec(host, "cat", SAMPLER_DIR + "/hits.jsonl").stdout
                if '"samples"' in out:
                    break
                time.sleep(0.1)
            lines = [json.loads(line) for line in out.splitlines() if line.strip()]
            self.hits[host] = [line["args"] for line in lines if "args" in line]
            self.samples[host] = sum(line.get("samples", 0) for line in lines)
        return False


def scan_host_logs(host, paths=("/var/log/audit/audit.log*", "/var/log/auth.log*", "/var/log/sudo*",
                                "/var/log/syslog*")):
    """Lines of the host's journal and logs that hold a canary value (masked)."""
    CanarySampler([host]).install(host)
    proc = lab_exec(host, "python3", SAMPLER_DIR + "/sampler.py", "scan", SAMPLER_DIR + "/values", *paths)
    assert proc.returncode == 0, (host, proc.stderr)
    return json.loads(proc.stdout)


# Prometheus and Alertmanager on mon1, behind TLS (own CA) and basic auth: asked from mon1 with
# Prometheus' own password files, so that no password is ever on a command line.
MONITORING_GET = ("import base64, ssl, sys, urllib.request\n"
                  "url, cafile, user, password_file = sys.argv[1:5]\n"
                  "req = urllib.request.Request(url)\n"
                  "req.add_header('Authorization', 'Basic ' + base64.b64encode((user + ':' + open(password_file).read())"
                  ".encode()).decode())\n"
                  "print(urllib.request.urlopen(req, timeout=10, context=ssl.create_default_context(cafile=cafile))"
                  ".read().decode())\n")
# inventories/lab/group_vars/monitoring.yml: the certificate and the files the roles write.
MONITORING_WEB_CA = "/etc/aiquiz/tls/monitoring-web/ca.pem"
MONITORING_CREDENTIALS = {9090: ("prometheus", "/etc/prometheus/secrets/prometheus.password"),
                          9093: ("prometheus", "/etc/prometheus/secrets/alertmanager.password")}


def mon1_address():
    return lab_exec("mon1", "hostname", "-I").stdout.split()[0]


def monitoring_api(port, path):
    """JSON of Prometheus (9090) or Alertmanager (9093) on mon1, asked from mon1 as Prometheus does."""
    proc = lab_exec("mon1", "python3", "-c", MONITORING_GET, "https://%s:%d%s" % (mon1_address(), port, path),
                    MONITORING_WEB_CA, *MONITORING_CREDENTIALS[port])
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
