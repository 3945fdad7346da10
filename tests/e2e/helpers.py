"""Running the project's commands against the lab, for the end-to-end tests."""

import json
import os
import pathlib
import subprocess


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


def run_playbook(playbook, *args, json_output=True, inventory="inventories/lab", timeout=900):
    """ansible-playbook on the lab; with json_output the ansible.posix.json result is parsed."""
    cmd = ["ansible-playbook", "-i", inventory, playbook] + list(args)
    extra = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"} if json_output else {}
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(**extra), capture_output=True, text=True,
                          timeout=timeout, check=False)
    parsed = None
    if json_output:
        # The JSON document, then whatever other callbacks print after it.
        start = proc.stdout.find("{")
        parsed = json.JSONDecoder().raw_decode(proc.stdout[start:])[0] if start >= 0 else None
    return PlaybookRun(proc, parsed)
