"""Shared by every scenario's Testinfra tests (pytest loads this file as the
parent conftest of molecule/<scenario>/tests): run a playbook of the scenario
against its own instances, as an operator would, and read what it printed."""

import json
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]


def ansible_playbook(playbook, extra_vars=None, limit=None, check=False, tags=None, inventory=None, timeout=600,
                     verbosity=0, diff=False):
    """(rc, stdout + stderr) of ansible-playbook on the scenario's inventory.

    inventory defaults to the whole inventory directory Molecule wrote, so
    groups a scenario declares in its own files are loaded too.
    """
    cmd = ["ansible-playbook", "-i", inventory or os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"]),
           str(playbook)]
    if limit:
        cmd += ["--limit", limit]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if tags:
        cmd += ["--tags", tags]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr
