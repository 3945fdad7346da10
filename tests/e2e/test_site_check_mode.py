"""playbooks/site.yml in check mode on fresh hosts: it reports the changes it
would make and makes none."""

import argparse
import json
import subprocess
import sys

import pytest

from helpers import ROOT, ansible_env

sys.path.insert(0, str(ROOT / "tests" / "lab"))
import labctl  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

TOPOLOGY = {"lab": "checkmode", "prefix": "aiquiz-check", "network": "aiquiz-check",
            "capabilities": ["SYS_ADMIN", "NET_ADMIN"],
            "hosts": [{"name": "fresh12", "debian": "12", "groups": ["data"]},
                      {"name": "fresh13", "debian": "13", "groups": ["app"]}]}
# What a converge would create or install, and check mode must not.
UNTOUCHED = ["test ! -e /etc/ssh/sshd_config.d/10-aiquiz-hardening.conf",
             "test ! -e /etc/nftables.d",
             "test ! -e /etc/sysctl.d/70-aiquiz-hardening.conf",
             "! dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q 'install ok'",
             "! nft list table inet aiquiz_filter >/dev/null 2>&1"]


@pytest.fixture(scope="module")
def fresh_hosts(tmp_path_factory):
    try:
        inventory = tmp_path_factory.mktemp("inv") / "hosts.yml"
        inventory.write_text(json.dumps(labctl.start_fresh_hosts(TOPOLOGY)))
        yield inventory
    finally:
        labctl.cmd_down(argparse.Namespace(keep_volumes=False), TOPOLOGY)


def test_check_mode_on_fresh_hosts_reports_changes_and_changes_nothing(fresh_hosts):
    proc = subprocess.run(["ansible-playbook", "-i", str(fresh_hosts), "playbooks/site.yml", "--check", "--diff"],
                          cwd=ROOT, env=ansible_env(AIQUIZ_AUDIT_SUMMARY="false"), capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    for host in TOPOLOGY["hosts"]:
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith(host["name"] + " ")]
        assert line and " failed=0 " in line[0] and " changed=0 " not in line[0], line
        container = labctl.container_name(TOPOLOGY, host)
        for probe in UNTOUCHED:
            done = subprocess.run(["docker", "exec", container, "sh", "-c", probe], capture_output=True, check=False)
            assert done.returncode == 0, (host["name"], probe)
