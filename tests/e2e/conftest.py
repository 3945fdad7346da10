"""The end-to-end tests run against the real lab (tests/lab/labctl.py)."""

import os
import subprocess
import sys

import pytest

from helpers import LAB_HOSTS, ROOT, CanarySampler, ansible_env, run_playbook


def pytest_configure(config):
    config.addinivalue_line("markers", "destructive: removes lab hosts; runs after every other test")


def pytest_collection_modifyitems(items):
    """Destructive tests last (a stable sort keeps the others in their order)."""
    items.sort(key=lambda item: item.get_closest_marker("destructive") is not None)


@pytest.fixture(scope="session")
def lab():
    """A new lab, up and booted, its registry holding the sample workload; go-live (the golive
    fixture) configures it. A lab left from an earlier run is removed first: its hosts hold
    certificates of the CA that run's home had, and go-live's first run is under test, not a
    rerun on someone else's state. AIQUIZ_E2E_REUSE_LAB=1 keeps a running lab (a developer's
    quick rerun; not what CI does). At the end of the session the lab is removed, so that no
    host keeps running (and using the machine) after the tests; AIQUIZ_E2E_KEEP_LAB=1 (or
    AIQUIZ_E2E_REUSE_LAB=1) leaves it up to look at."""
    reuse = os.environ.get("AIQUIZ_E2E_REUSE_LAB", "") == "1"
    cmds = [[sys.executable, "tests/lab/labctl.py", "up"], [sys.executable, "tests/lab/labctl.py", "workloads"]]
    if not reuse:
        cmds.insert(0, [sys.executable, "tests/lab/labctl.py", "down"])
    for cmd in cmds:
        proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=900,
                              check=False)
        assert proc.returncode == 0, (cmd, proc.stdout[-3000:] + proc.stderr[-3000:])
    yield LAB_HOSTS
    if not reuse and os.environ.get("AIQUIZ_E2E_KEEP_LAB", "") != "1":
        subprocess.run([sys.executable, "tests/lab/labctl.py", "down"], cwd=ROOT, env=ansible_env(),
                       capture_output=True, text=True, timeout=900, check=False)


class GoLive:
    """go-live's first run of the session and what the canary sampler saw."""

    def __init__(self, run, sampler):
        self.run, self.sampler = run, sampler


@pytest.fixture(scope="session")
def golive(lab):
    """go-live.yml on the lab, once per session, while every host's process
    table is sampled for the lab's secrets (test_boundaries.py)."""
    with CanarySampler(lab) as sampler:
        run = run_playbook("playbooks/go-live.yml", timeout=1800)
    return GoLive(run, sampler)
