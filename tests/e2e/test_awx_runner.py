"""Every AWX job template (playbooks/vars/awx.yml), run on the lab as AWX runs it: through
ansible-runner, in a private data directory, with the project checked out, the survey's
defaults and answers as extra variables, a vault credential answered at the prompt, no
terminal. Each must end `successful`, with events for each host its playbook targets, and
with the audit trail and the job's output among its artifacts; the vault password appears in
none of them. Templates marked check_on_test (rollback, restore, drill) run as check jobs:
a real run would replace the lab's live state that the other tests rely on."""

import json
import os
import pathlib
import subprocess

import ansible_runner
import pytest
import yaml

from helpers import ROOT, ansible_env

DEFS = yaml.safe_load((ROOT / "playbooks" / "vars" / "awx.yml").read_text(encoding="utf-8"))
WORKLOAD = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "app" / "workload.yml").read_text())
VAULT_PASSWORD = "awx-runner-test-vault-password"
# What an operator types into the required survey fields, for the lab.
ANSWERS = {
    "aiquiz deploy": {"compose_app_release": WORKLOAD["compose_app_release"]},
    "aiquiz restore": {"restore_host": "data1", "restore_kind": "redis"},
    "aiquiz dr-drill": {"dr_drill_source": "data1", "dr_drill_host": "data1"},
}
# The hosts each template's playbook must have reported events for.
HOSTS = {
    "aiquiz go-live": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz preflight": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz hosts": {"edge1", "app1", "app2", "data1", "mon1"},
    "aiquiz data": {"data1"},
    "aiquiz edge": {"edge1"},
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
    if template.get("check_on_test"):
        cmdline += " --check"
    result = ansible_runner.run(
        private_data_dir=str(tmp_path), ident=ident, project_dir=str(ROOT), playbook=template["playbook"],
        inventory=str(ROOT / "inventories" / "lab"), extravars=survey_vars(template), cmdline=cmdline,
        passwords={r"^Vault password:\s*?$": VAULT_PASSWORD},
        envvars={"AWX_JOB_ID": job_id, "AIQUIZ_AUDIT_DIR": str(audit), "ANSIBLE_NOCOLOR": "1"},
        quiet=True, timeout=1800)
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

    for path in artifacts.rglob("*"):
        if path.is_file():
            assert VAULT_PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path
