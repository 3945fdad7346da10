"""go-live.yml on the lab: it completes, and bad input stops it in preflight
before anything changes (its second run, over SSH and changing nothing, is the
go-live job template's run in test_awx_runner.py)."""

import json
import subprocess
import sys
import time

from helpers import ROOT, ansible_env, lab_exec, run_playbook


def test_lab_inventory_groups_the_hosts_like_production(lab):
    proc = subprocess.run(["ansible-inventory", "-i", "inventories/lab", "--list"], cwd=ROOT,
                          env=ansible_env(), capture_output=True, text=True, check=True, timeout=120)
    inv = json.loads(proc.stdout)
    assert set(inv["edge"]["hosts"]) == {"edge1"}
    assert set(inv["app"]["hosts"]) == {"app1", "app2"}
    assert set(inv["canary"]["hosts"]) == {"app1"}
    assert set(inv["data"]["hosts"]) == {"data1"}
    assert set(inv["monitoring"]["hosts"]) == {"mon1"}
    assert set(inv["_meta"]["hostvars"]) == lab


def test_golive_completes_on_every_lab_host(lab, golive):
    run = golive.run
    assert run.rc == 0, run.explain()
    assert set(run.stats) == lab
    for host, s in run.stats.items():
        assert s["failures"] == 0 and s["unreachable"] == 0, (host, s)
        assert s["ok"] > 0, (host, s)


def test_host_phase_over_docker_exec_changes_nothing(lab, golive):
    """The docker exec connection stays an option (AIQUIZ_LAB_CONNECTION) and sees the same hosts as done.
    The host phase on every host: every role already runs over docker exec in its Molecule scenario,
    and the whole go-live runs over SSH (its second run: test_awx_runner.py, the go-live template)."""
    started = time.monotonic()
    run = run_playbook("playbooks/site.yml", env={"AIQUIZ_LAB_CONNECTION": "community.docker.docker"})
    took = round(time.monotonic() - started, 1)
    assert run.rc == 0, run.explain()
    assert {h: s["changed"] for h, s in run.stats.items()} == {h: 0 for h in lab}
    (ROOT / "tests" / "output" / "site-docker.json").write_text(
        json.dumps({"site_idempotent_over_docker_exec_seconds": took}))


def test_a_host_whose_ssh_key_is_not_the_known_one_is_refused(lab, golive, tmp_path):
    """A host answering with another key (a swapped or impersonated host) is never logged into."""
    known = (ROOT / ".cache" / "lab-ssh" / "known_hosts").read_text(encoding="utf-8").splitlines()
    address = lab_exec("mon1", "hostname", "-I").stdout.split()[0]
    other = lab_exec("edge1", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
    forged = [line if line.split()[0] != address else "%s %s %s" % (address, other[0], other[1]) for line in known]
    assert forged != known
    (tmp_path / "known_hosts").write_text("\n".join(forged) + "\n", encoding="utf-8")

    def ping(known_hosts):
        args = "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s" % known_hosts
        return subprocess.run(["ansible", "-i", "inventories/lab", "mon1", "-m", "ansible.builtin.ping",
                               "-e", json.dumps({"ansible_ssh_common_args": args})],
                              # A fresh connection each time: a ControlPersist master skips the key check.
                              cwd=ROOT, env=ansible_env(ANSIBLE_SSH_ARGS="-o ControlMaster=no"),
                              capture_output=True, text=True,
                              timeout=120, check=False)

    good = ping(ROOT / ".cache" / "lab-ssh" / "known_hosts")
    assert good.returncode == 0, good.stdout + good.stderr
    bad = ping(tmp_path / "known_hosts")
    assert bad.returncode != 0
    assert "UNREACHABLE" in bad.stdout and "Host key verification failed" in bad.stdout + bad.stderr, bad.stdout


def test_missing_required_variable_stops_golive_in_preflight(lab):
    run = run_playbook("playbooks/go-live.yml", "-e", "aiquiz_public_hostname=", json_output=False)
    assert run.rc == 2, run.explain()
    assert "PREFLIGHT FAILED: nothing was changed" in run.output
    for host in lab:
        assert "host %s, check required_var:aiquiz_public_hostname" % host in run.output
    assert "changed=0" in run.output and "changed=1" not in run.output


def test_lab_up_without_a_docker_engine_says_so_in_one_line(tmp_path):
    env = ansible_env(DOCKER_HOST="unix://%s/absent.sock" % tmp_path)
    proc = subprocess.run([sys.executable, "tests/lab/labctl.py", "up"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no usable Docker engine" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_second_setup_rebuilds_no_image():
    proc = subprocess.run(["bash", "tests/lab/setup.sh"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": cached (") == 3, proc.stdout  # debian 12, 13 and the workload runtime
    assert " built " not in proc.stdout


def test_golive_leaves_every_host_hardened_and_firewalled(lab, golive):
    for host in sorted(lab):
        sshd = lab_exec(host, "/usr/sbin/sshd", "-T")
        assert sshd.returncode == 0, (host, sshd.stderr)
        assert "permitrootlogin no" in sshd.stdout and "passwordauthentication no" in sshd.stdout, host
        table = lab_exec(host, "nft", "list", "chain", "inet", "aiquiz_filter", "input")
        assert "policy drop;" in table.stdout, (host, table.stdout + table.stderr)


CONNECT = ("import socket,sys\ns=socket.socket();s.settimeout(2)\n"
           "try:\n s.connect((sys.argv[1],int(sys.argv[2])));print('open')\n"
           "except ConnectionRefusedError:\n print('refused')\nexcept OSError:\n print('timeout')\n")


def test_data_host_answers_app_hosts_only(lab, golive):
    # PostgreSQL (playbooks/data.yml) listens on 5432: the app hosts connect,
    # the others' SYNs are dropped and time out.
    assert "data1" in lab
    verdicts = {src: lab_exec(src, "python3", "-c", CONNECT, "data1", "5432").stdout.strip()
                for src in ("app1", "app2", "edge1", "mon1")}
    assert verdicts == {"app1": "open", "app2": "open", "edge1": "timeout", "mon1": "timeout"}
