"""The end-to-end tests run against the real lab (tests/lab/labctl.py)."""

import subprocess
import sys

import pytest

from helpers import LAB_HOSTS, ROOT


@pytest.fixture(scope="session")
def lab():
    """The lab, up and booted (idempotent: a running lab is left as it is)."""
    proc = subprocess.run([sys.executable, "tests/lab/labctl.py", "up"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return LAB_HOSTS
