"""The end-to-end tests run against the real lab (tests/lab/labctl.py)."""

import subprocess
import sys

import pytest

from helpers import LAB_HOSTS, ROOT, ansible_env


@pytest.fixture(scope="session")
def lab():
    """The lab, up and booted, its registry holding the sample workload and its
    data host running the data services of playbooks/data.yml (idempotent: what
    is already there is left as it is)."""
    for cmd in ([sys.executable, "tests/lab/labctl.py", "up"],
                [sys.executable, "tests/lab/labctl.py", "workloads"],
                ["ansible-playbook", "-i", "inventories/lab", "playbooks/data.yml"]):
        proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=900,
                              check=False)
        assert proc.returncode == 0, (cmd, proc.stdout[-3000:] + proc.stderr[-3000:])
    return LAB_HOSTS
