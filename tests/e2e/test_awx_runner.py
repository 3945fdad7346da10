"""Every AWX job template (playbooks/vars/awx.yml), run on the lab as AWX runs it: through
ansible-runner, in a private data directory, with the project checked out, the survey's
defaults and answers as extra variables, a vault credential answered at the prompt, no
terminal. Each must end `successful`, with events for each host its playbook targets, and
with the audit trail and the job's output among its artifacts; the vault password appears in
none of them. Templates marked check_on_test (restore, drill) run as check jobs: a real run
would replace the lab's live state that the other tests rely on (test_disaster.py runs both
for real). Deploy takes 1.1.0 for real and rollback brings 1.0.0 back for real, through the edge,
while users' requests run through it: every one of them must be answered 200. The go-live template
runs after the session's first go-live: it is go-live's second run over SSH, and must change nothing."""

import collections
import json
import os
import pathlib
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import ansible_runner
import pytest
import yaml

from helpers import LAB_HOSTS, ROOT, ansible_env, lab_exec, run_playbook

DEFS = yaml.safe_load((ROOT / "playbooks" / "vars" / "awx.yml").read_text(encoding="utf-8"))
WORKLOAD = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "app" / "workload.yml").read_text())
VAULT_PASSWORD = "awx-runner-test-vault-password"
LIVE_RELEASE = WORKLOAD["compose_app_release"]
NEXT_RELEASE = "1.1.0"  # built by `labctl workloads` beside 1.0.0
# What an operator types into the required survey fields, for the lab.
ANSWERS = {
    "aiquiz deploy": {"compose_app_release": NEXT_RELEASE},
    "aiquiz restore": {"restore_host": "data1", "restore_kind": "redis"},
    # A check job: it reads data1's archiver and says what it would restore onto mon1.
    "aiquiz dr-drill": {"dr_drill_source": "data1", "dr_drill_host": "mon1"},
}
# The hosts each template's playbook must have reported events for.
HOSTS = {
    "aiquiz go-live": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz preflight": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz hosts": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz data": {"data1"},
    "aiquiz edge": {"edge1"},
    "aiquiz monitoring": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz report": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz deploy": {"app1", "app2"},
    "aiquiz rollback": {"app1", "app2"},
    "aiquiz rotate-certs": {"edge1", "data1"},
    "aiquiz backup": {"data1"},
    "aiquiz restore": {"data1"},
    "aiquiz dr-drill": {"data1"},
}


def survey_vars(template):
    """The survey's defaults, typed as AWX hands them over, then the answers."""
    out = {}
    for question in template.get("survey") or []:
        if "default" not in question:
            continue
        default = question["default"]
        if question["type"] == "multiselect":
            default = [item for item in str(default).split("\n") if item]
        out[question["variable"]] = default
    out.update(ANSWERS.get(template["name"], {}))
    missing = [q["variable"] for q in template.get("survey") or [] if q.get("required") and q["variable"] not in out]
    assert not missing, "no answer for required survey fields %s of %s" % (missing, template["name"])
    return out


@pytest.fixture(scope="module")
def vaulted_vars(tmp_path_factory):
    """A vault-encrypted extra-vars file holding the lab CA's passphrase, as a vault credential unlocks it."""
    tmp = tmp_path_factory.mktemp("vault")
    plain, password = tmp / "secrets.yml", tmp / "password"
    plain.write_text("tls_ca_passphrase: aiquiz-lab-ca-passphrase\n", encoding="utf-8")
    password.write_text(VAULT_PASSWORD, encoding="utf-8")
    subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(password), str(plain)], cwd=ROOT,
                   env=ansible_env(), check=True, capture_output=True, timeout=60)
    password.unlink()
    assert plain.read_text().startswith("$ANSIBLE_VAULT;")
    return plain


def releases_served(samples=20):
    """The releases the platform answers /version with through the edge."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the path through the edge is under test, not its chain
    seen = set()
    for _sample in range(samples):
        req = urllib.request.Request("https://127.0.0.1:8443/version", headers={"Host": "quiz.aiquiz.lab"})
        with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
            seen.add(json.loads(resp.read())["release"])
    return seen


class Traffic(threading.Thread):
    """Users on the platform while a job runs: /api/quizzes through the edge, about 20 a second.
    The canary is judged on their requests; any answer other than 200 is a user who noticed."""

    def __init__(self):
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.statuses = collections.Counter()

    def run(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        while not self.halt.wait(0.05):
            req = urllib.request.Request("https://127.0.0.1:8443/api/quizzes", headers={"Host": "quiz.aiquiz.lab"})
            try:
                with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
                    resp.read()
                    self.statuses[resp.status] += 1
            except urllib.error.HTTPError as exc:
                self.statuses[exc.code] += 1
            except (urllib.error.URLError, OSError) as exc:
                self.statuses[type(exc).__name__] += 1

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.halt.set()
        self.join(10)


@pytest.mark.parametrize("template", DEFS["awx_job_templates"], ids=[t["name"] for t in DEFS["awx_job_templates"]])
def test_job_template_runs_through_ansible_runner_as_awx_does(
        lab, golive, template, vaulted_vars, tmp_path, monkeypatch):
    # AWX runs in the project's checkout and reads its ansible.cfg from there.
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    monkeypatch.setenv("PATH", str(ROOT / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", ""))
    ident = template["name"].replace(" ", "-")
    job_id = str(abs(hash(ident)) % 100000)
    audit = tmp_path / "artifacts" / ident / "audit"
    cmdline = "--ask-vault-pass -e @%s" % vaulted_vars
    if template["name"] == "aiquiz rollback" and releases_served() == {LIVE_RELEASE}:
        # Run alone, the rollback needs a release to leave: the deploy template's answer, by the CLI.
        with Traffic():  # the canary is judged on users' requests
            run = run_playbook("playbooks/deploy.yml", "-e", "compose_app_release=" + NEXT_RELEASE, json_output=False)
        assert run.rc == 0, run.explain()
    if template.get("check_on_test"):
        cmdline += " --check"
    envvars = {"AWX_JOB_ID": job_id, "AIQUIZ_AUDIT_DIR": str(audit), "ANSIBLE_NOCOLOR": "1"}
    second_golive = template["name"] == "aiquiz go-live"
    if second_golive:
        # go-live's second run, as AWX runs it: over SSH, changing nothing. Control sockets of its own
        # (an execution environment starts without any), so that every host sees a new login; a
        # short directory, as a socket path must stay under 108 bytes.
        since = {host: lab_exec(host, "date", "+%Y-%m-%d %H:%M:%S").stdout.strip() for host in LAB_HOSTS}
        sockets = tempfile.mkdtemp(prefix="cp-", dir="/tmp")
        envvars["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=auto -o ControlPersist=60s -o ControlPath=%s/%%C" % sockets
    traffic = Traffic()
    started = time.monotonic()
    with traffic:
        result = ansible_runner.run(
            private_data_dir=str(tmp_path), ident=ident, project_dir=str(ROOT), playbook=template["playbook"],
            inventory=str(ROOT / "inventories" / "lab"), extravars=survey_vars(template), cmdline=cmdline,
            passwords={r"^Vault password:\s*?$": VAULT_PASSWORD}, envvars=envvars, quiet=True, timeout=1800)
    took = round(time.monotonic() - started, 1)
    artifacts = pathlib.Path(result.config.artifact_dir)
    stdout = (artifacts / "stdout").read_text(encoding="utf-8", errors="replace")
    assert result.status == "successful" and result.rc == 0, (template["name"], result.status, stdout[-4000:])

    hosts = {e["event_data"]["host"] for e in result.events
             if e.get("event") in ("runner_on_ok", "runner_on_skipped") and e.get("event_data", {}).get("host")}
    assert HOSTS[template["name"]] <= hosts, (template["name"], sorted(hosts))
    assert not [e for e in result.events if e.get("event") in ("runner_on_failed", "runner_on_unreachable")
                and not e["event_data"].get("ignore_errors")]

    trails = sorted(audit.glob("*.jsonl"))
    assert len(trails) == 1, list(audit.iterdir()) if audit.exists() else "no audit directory"
    events = [json.loads(line) for line in trails[0].read_text(encoding="utf-8").splitlines()]
    assert events[0]["event"] == "playbook_start" and events[-1]["event"] == "playbook_end"
    assert job_id in json.dumps(events[0]), events[0]
    assert oct(trails[0].stat().st_mode & 0o777) == "0o600"
    assert "PLAY RECAP" in stdout

    if second_golive:
        changed = result.stats.get("changed") or {}
        assert {host: changed.get(host, 0) for host in LAB_HOSTS} == {host: 0 for host in LAB_HOSTS}, changed
        for host in sorted(LAB_HOSTS):
            journal = lab_exec(host, "journalctl", "--no-pager", "-o", "cat", "-u", "ssh", "--since", since[host]).stdout
            assert "Accepted publickey for deploy" in journal, (host, journal[-1500:])
        (ROOT / "tests" / "output").mkdir(exist_ok=True)
        (ROOT / "tests" / "output" / "golive-ssh.json").write_text(
            json.dumps({"golive_idempotent_over_ssh_seconds": took}))

    print("%s: users' requests during the job %s" % (template["name"], dict(traffic.statuses)))
    assert set(traffic.statuses) == {200}, (template["name"], dict(traffic.statuses))
    if template["name"] == "aiquiz deploy":
        assert releases_served() == {NEXT_RELEASE}
    if template["name"] == "aiquiz rollback":
        # Back where go-live left it, for the tests that follow.
        assert releases_served() == {LIVE_RELEASE}

    for path in artifacts.rglob("*"):
        if path.is_file():
            assert VAULT_PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path
