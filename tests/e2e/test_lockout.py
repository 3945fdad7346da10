"""The controller's own access (issue 12, item 5): a run that would cut it is
refused in preflight, and a ruleset that cuts it anyway is rolled back by the
host itself. Over SSH, as production runs: a user with a lab key on mon1."""

import json
import subprocess

import pytest

from helpers import ROOT, ansible_env, lab_exec

USER = "lockout-test"
FIREWALL_ONLY = """---
- name: The firewall role alone
  hosts: mon1
  gather_facts: false
  roles:
    - role: aiquiz.ops.firewall
"""


def lab_address(host):
    out = subprocess.run(["docker", "inspect", "-f", '{{json .NetworkSettings.Networks}}', "aiquiz-lab-" + host],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["aiquiz-lab"]["IPAddress"]


@pytest.fixture(scope="module")
def over_ssh(golive, tmp_path_factory):
    """Extra vars that reach mon1 over SSH as a sudo user with a key of this test."""
    tmp = tmp_path_factory.mktemp("ssh")
    key = tmp / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    # sshusers: the only group the lab's sshd admits (hardening_ssh_allow_groups).
    # A user left by an interrupted run is reused: its membership is set again.
    setup = ("id -u {u} >/dev/null 2>&1 || useradd -m -s /bin/bash {u}; usermod -a -G sshusers {u}; "
             "install -d -m 0700 -o {u} -g {u} /home/{u}/.ssh; "
             "cat > /home/{u}/.ssh/authorized_keys; chown {u}: /home/{u}/.ssh/authorized_keys; "
             "chmod 0600 /home/{u}/.ssh/authorized_keys; "
             "echo '{u} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/{u}; chmod 0440 /etc/sudoers.d/{u}").format(u=USER)
    proc = lab_exec("mon1", "sh", "-c", setup, stdin=(tmp / "id_ed25519.pub").read_text())
    assert proc.returncode == 0, proc.stderr
    playbook = tmp / "firewall.yml"
    playbook.write_text(FIREWALL_ONLY)
    yield {"vars": {"ansible_connection": "ssh", "ansible_host": lab_address("mon1"), "ansible_user": USER,
                    "ansible_ssh_private_key_file": str(key), "ansible_become": True,
                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"},
           "playbook": str(playbook)}
    lab_exec("mon1", "sh", "-c", "userdel -r {u}; rm -f /etc/sudoers.d/{u}".format(u=USER))


def ssh_run(playbook, extra, env=None):
    cmd = ["ansible-playbook", "-i", "inventories/lab", playbook, "--limit", "mon1", "-e", json.dumps(extra)]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(**(env or {})), capture_output=True, text=True,
                          timeout=600, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_golive_refuses_a_run_that_would_lock_the_controller_out(over_ssh):
    # The chain and the file, not the whole table: its SSH meter counts this run's connections.
    before = [lab_exec("mon1", "nft", "-s", "list", "chain", "inet", "aiquiz_filter", "input").stdout,
              lab_exec("mon1", "cat", "/etc/nftables.d/aiquiz.nft").stdout]
    # ssh-admins: a group the controller's user is not in (the lab admits sshusers).
    extra = dict(over_ssh["vars"], firewall_admin_networks=["192.0.2.0/24"], firewall_ssh_port=2222,
                 hardening_ssh_allow_groups=["ssh-admins"])
    rc, out = ssh_run("playbooks/go-live.yml", extra)
    assert rc == 2, out[-3000:]
    assert "PREFLIGHT FAILED: nothing was changed" in out
    # The controller's address toward mon1, as mon1's sshd sees it (the lab's subnet is Docker's choice).
    route = subprocess.run(["ip", "-o", "route", "get", over_ssh["vars"]["ansible_host"]], stdout=subprocess.PIPE,
                           encoding="utf-8", check=True).stdout.split()
    source = route[route.index("src") + 1]
    assert ("host mon1, check access:admin_networks: the controller reaches the host from %s, outside "
            "firewall_admin_networks (192.0.2.0/24)" % source) in out, out[-3000:]
    assert "host mon1, check access:ssh_port: the controller uses SSH port 22, the firewall opens firewall_ssh_port 2222" in out
    assert "host mon1, check access:allow_groups: the controller logs in as %s" % USER in out
    assert "changed=0" in out and "changed=1" not in out
    assert [lab_exec("mon1", "nft", "-s", "list", "chain", "inet", "aiquiz_filter", "input").stdout,
            lab_exec("mon1", "cat", "/etc/nftables.d/aiquiz.nft").stdout] == before


def test_a_ruleset_that_cuts_the_controller_off_rolls_back_by_itself(over_ssh):
    # A confirmed ruleset first (over SSH, a harmless extra rule), then one
    # that admits SSH from elsewhere only, with preflight bypassed.
    probe = {"name": "lockout_probe", "port": 9999, "proto": "tcp", "sources": ["192.0.2.7"]}
    harmless = dict(over_ssh["vars"], firewall_rules=[probe])
    rc, out = ssh_run(over_ssh["playbook"], harmless)
    assert rc == 0, out[-3000:]
    confirmed = lab_exec("mon1", "cat", "/var/lib/aiquiz/firewall/aiquiz.nft").stdout
    assert "lockout_probe" in confirmed
    cutting = dict(harmless, firewall_admin_networks=["192.0.2.0/24"], firewall_confirm_seconds=20)
    rc, out = ssh_run(over_ssh["playbook"], cutting, env={"ANSIBLE_TIMEOUT": "5"})
    assert rc != 0, out[-3000:]
    assert "the controller could not reach mon1 over a new connection" in out, out[-3000:]
    assert "put the last confirmed ruleset back after 20 s and answers again" in out, out[-3000:]
    live = lab_exec("mon1", "cat", "/etc/nftables.d/aiquiz.nft").stdout
    assert live == confirmed and "192.0.2.0/24" not in live
    chain = lab_exec("mon1", "nft", "list", "chain", "inet", "aiquiz_filter", "input").stdout
    assert "tcp dport 22 ip saddr 0.0.0.0/0 accept" in chain, chain
    assert "rolled back" in lab_exec("mon1", "journalctl", "-t", "aiquiz-firewall", "--no-pager").stdout
    # Reachable over SSH again, and the lab's own ruleset goes back on.
    rc, out = ssh_run(over_ssh["playbook"], over_ssh["vars"])
    assert rc == 0, out[-3000:]
    assert "lockout_probe" not in lab_exec("mon1", "cat", "/etc/nftables.d/aiquiz.nft").stdout
