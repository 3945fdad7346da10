"""Behaviour of the base role on real Debian 12 and 13 systemd containers.

The containers set limits on what can be proven here, and the tests say so:
- /proc/sys is read-only (Docker), so kernel settings are written, not applied;
- systemd has no CAP_SYS_TIME, so Debian's chrony.service is skipped by its
  ConditionCapability and chronyd does not run.
"""

import pathlib

import pytest

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "molecule" / "base"
CONVERGE = SCENARIO / "converge.yml"
DEPLOY_KEY = (SCENARIO / "files" / "deploy_ed25519.pub").read_text().strip()
CAP_SYS_TIME = 25


def run_converge(host, extra_vars=None, check=False, verbosity=0):
    return ansible_playbook(CONVERGE, extra_vars, limit=host.backend.host, check=check, verbosity=verbosity)


def systemd_has_cap_sys_time(host):
    capbnd = host.run("awk '/^CapBnd:/ {print $2}' /proc/1/status").stdout.strip()
    return bool(int(capbnd, 16) >> CAP_SYS_TIME & 1)


def test_packages_installed_and_removed(host):
    for name in ("ca-certificates", "curl", "less", "chrony", "tzdata", "unattended-upgrades", "sudo", "acl"):
        assert host.package(name).is_installed, name
    assert not host.package("telnet").is_installed


def test_chrony_configured_and_running_as_the_container_allows(host):
    conf = host.file("/etc/chrony/chrony.conf")
    assert conf.user == "root" and conf.mode == 0o644
    assert "server ntp1.example.invalid iburst" in conf.content_string
    assert "server ntp2.example.invalid iburst" in conf.content_string
    assert "pool 2.debian.pool.org" not in conf.content_string
    assert host.run("chronyd -p -f /etc/chrony/chrony.conf").rc == 0
    chrony = host.service("chrony")
    assert chrony.is_enabled
    if systemd_has_cap_sys_time(host):
        assert chrony.is_running
    else:
        # Debian's unit: ConditionCapability=CAP_SYS_TIME. systemd skips it, it does not fail.
        cond = host.run("systemctl show chrony -p ConditionResult -p ActiveState -p Result")
        assert "ConditionResult=no" in cond.stdout, cond.stdout
        assert "ActiveState=inactive" in cond.stdout, cond.stdout
        assert "Result=success" in cond.stdout, cond.stdout
        assert not chrony.is_running


def test_timezone_is_europe_paris(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Paris"
    assert host.run("date +%Z").stdout.strip() in ("CET", "CEST")
    timezone = host.file("/etc/timezone")
    if timezone.exists:
        assert timezone.content_string == "Europe/Paris\n"


def test_locale_is_set(host):
    assert host.file("/etc/default/locale").content_string == "LANG=C.UTF-8\n"


def test_deploy_sudo_rule_listed_and_sudoers_valid(host):
    listed = host.run("sudo -l -U deploy")
    assert listed.rc == 0, listed.stderr
    assert "(ALL : ALL) ALL" in listed.stdout, listed.stdout
    auditor = host.run("sudo -l -U auditor")
    assert "(root) NOPASSWD: /usr/bin/journalctl" in auditor.stdout, auditor.stdout
    check = host.run("visudo -c")
    assert check.rc == 0, check.stdout + check.stderr
    for name in ("deploy", "auditor"):
        rule = host.file("/etc/sudoers.d/60-aiquiz-%s" % name)
        assert rule.user == "root" and rule.group == "root" and rule.mode == 0o440


def test_deploy_authorized_keys_exact(host):
    ssh_dir = host.file("/home/deploy/.ssh")
    assert ssh_dir.is_directory and ssh_dir.user == "deploy" and ssh_dir.mode == 0o700
    keys = host.file("/home/deploy/.ssh/authorized_keys")
    assert keys.user == "deploy" and keys.group == "deploy" and keys.mode == 0o600
    assert keys.content_string == DEPLOY_KEY + "\n"
    deploy = host.user("deploy")
    assert deploy.shell == "/bin/bash" and "ops" in deploy.groups


def test_removed_user_and_group_are_gone(host):
    assert host.run("getent passwd leaver").rc == 2
    assert host.run("getent group oldteam").rc == 2
    assert not host.file("/home/leaver").exists
    assert not host.file("/etc/sudoers.d/60-aiquiz-leaver").exists


def test_locked_user_password_starts_with_bang(host):
    shadow = host.run("getent shadow auditor")
    assert shadow.rc == 0
    password = shadow.stdout.split(":")[1]
    assert password.startswith("!$6$"), password


def test_sysctl_file_written_and_parsed(host):
    conf = host.file("/etc/sysctl.d/60-aiquiz-base.conf")
    assert conf.user == "root" and conf.mode == 0o644
    lines = [line for line in conf.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == ["net.ipv4.tcp_syncookies = 1", "vm.swappiness = 10"]
    applied = host.run("sysctl -p /etc/sysctl.d/60-aiquiz-base.conf")
    if host.run("test -w /proc/sys/vm/swappiness").rc == 0:
        assert applied.rc == 0, applied.stderr
        assert host.run("sysctl -n vm.swappiness").stdout.strip() == "10"
    else:
        # Docker mounts /proc/sys read-only. sysctl then parses every line and fails
        # only on the writes (procps reports EROFS as "permission denied on key"):
        # one such line per key, no "cannot stat" (unknown key) and no parse error.
        mount = host.run("findmnt -n -o OPTIONS /proc/sys").stdout.split(",")
        assert "ro" in mount, mount
        assert applied.rc != 0
        errors = sorted(line.strip() for line in applied.stderr.splitlines() if line.strip())
        assert errors == ['sysctl: permission denied on key "net.ipv4.tcp_syncookies"',
                          'sysctl: permission denied on key "vm.swappiness"'], applied.stderr


def test_journald_drop_in_effective(host):
    conf = host.run("systemd-analyze cat-config systemd/journald.conf")
    assert conf.rc == 0, conf.stderr
    assert "/etc/systemd/journald.conf.d/60-aiquiz.conf" in conf.stdout
    text = conf.stdout
    assert "SystemMaxUse=200M" in text and "MaxRetentionSec=2week" in text and "Compress=yes" in text
    assert host.service("systemd-journald").is_running


def test_unattended_upgrades_security_only(host):
    dump = host.run("apt-config dump")
    assert dump.rc == 0, dump.stderr
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump.stdout
    patterns = [line for line in dump.stdout.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert patterns, dump.stdout
    assert all("Debian-Security" in line for line in patterns), patterns
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in dump.stdout
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "03:30";' in dump.stdout
    dry = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -i 'Allowed origins'")
    assert "Debian-Security" in dry.stdout, dry.stdout


def test_banner_present(host):
    for path in ("/etc/issue.net", "/etc/motd"):
        assert host.file(path).content_string == "aiquiz lab host: authorised use only.\n"


def test_unknown_sysctl_key_fails_before_any_change(host):
    before = host.file("/etc/sysctl.d/60-aiquiz-base.conf").content_string
    rc, out = run_converge(host, {
        "base_sysctl": {"vm.swappiness": 20, "kernel.no_such_key": 1},
        "base_banner": "changed banner",
        "base_users": [{"name": "base-marker"}],
    })
    assert rc != 0, out
    assert "base_sysctl" in out and "kernel.no_such_key" in out, out
    assert host.run("getent passwd base-marker").rc == 2
    assert host.file("/etc/motd").content_string == "aiquiz lab host: authorised use only.\n"
    assert host.file("/etc/sysctl.d/60-aiquiz-base.conf").content_string == before


def test_check_mode_rerun_reports_no_change(host):
    rc, out = run_converge(host, check=True)
    assert rc == 0, out
    assert "changed=0" in out and "failed=0" in out, out


def test_drift_is_seen_in_check_mode_and_put_back(host):
    """A re-run skips what the role's probe shows already as declared, so it
    must still see and repair what was changed by hand."""
    host.run_expect([0], "set -e; ln -sfn /usr/share/zoneinfo/Etc/UTC /etc/localtime; echo LANG=C > /etc/default/locale; "
                    "echo '# edited by hand' >> /etc/systemd/journald.conf.d/60-aiquiz.conf; rm /etc/sudoers.d/60-aiquiz-deploy; "
                    "chmod 0600 /etc/apt/apt.conf.d/52aiquiz-unattended-upgrades; systemctl disable --quiet chrony; "
                    "echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAddedByHand0000000000000000000000000000 extra' "
                    ">> /home/deploy/.ssh/authorized_keys")
    rc, out = run_converge(host, check=True)
    assert rc == 0 and "changed=0" not in out, out
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
    rc, out = run_converge(host)
    assert rc == 0, out
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Paris"
    assert host.file("/etc/default/locale").content_string == "LANG=C.UTF-8\n"
    assert "edited by hand" not in host.file("/etc/systemd/journald.conf.d/60-aiquiz.conf").content_string
    assert host.file("/etc/sudoers.d/60-aiquiz-deploy").mode == 0o440
    assert host.file("/etc/apt/apt.conf.d/52aiquiz-unattended-upgrades").mode == 0o644
    assert host.service("chrony").is_enabled
    assert host.file("/home/deploy/.ssh/authorized_keys").content_string == DEPLOY_KEY + "\n"
    rc, out = run_converge(host)
    assert rc == 0 and "changed=0" in out, out


# --- Links planted by a user whose keys the role manages ----------------------
#
# deploy owns its home, so it can put links there. The role runs as root: a
# root that followed them would write, chown or show (in --diff) what is at
# the other end. Each case: the targets keep owner, mode and content, their
# content never shows in a -v --diff run, and the run either writes deploy's
# keys where they belong or refuses, naming the user and the path.

ROOT_CANARY_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRootCanaryKeyThatMustNeverMove000000 root-canary"
USER_LINKS = {
    "ssh_dir_to_root_ssh": ("mv .ssh .ssh.aside; ln -s /root/.ssh .ssh", ["/root/.ssh"]),
    "keys_to_root_keys": ("rm -f .ssh/authorized_keys; ln -s /root/.ssh/authorized_keys .ssh/authorized_keys",
                          ["/root/.ssh"]),
    "keys_to_etc_shadow": ("rm -f .ssh/authorized_keys; ln -s /etc/shadow .ssh/authorized_keys", ["/etc/shadow"]),
    "ssh_dir_to_usr_local_sbin": ("mv .ssh .ssh.aside; ln -s /usr/local/sbin .ssh", ["/usr/local/sbin"]),
}


def snapshot(host, path):
    """Owner, group, mode and type of path and of what is directly in it, and the content of its files."""
    return host.check_output("find %s -maxdepth 1 -printf '%%p %%u:%%g %%m %%y\\n' | sort; "
                             "find %s -maxdepth 1 -type f -exec sha256sum {} + | sort", path, path)


def archive(host, path):
    name = "/var/tmp/attack-%s.tar" % path.strip("/").replace("/", "_")
    host.run_expect([0], "tar -C / -cpf %s %s", name, path.lstrip("/"))
    return name


@pytest.fixture()
def planted(host):
    """Plants the links as deploy; afterwards puts back deploy's ~/.ssh and every target as they were."""
    host.run_expect([0], "install -d -m 0700 -o root -g root /root/.ssh; grep -qxF %s /root/.ssh/authorized_keys "
                    "|| echo %s >> /root/.ssh/authorized_keys; chmod 0600 /root/.ssh/authorized_keys",
                    ROOT_CANARY_KEY, ROOT_CANARY_KEY)
    saved = {"/home/deploy/.ssh": (archive(host, "/home/deploy/.ssh"), None)}

    def plant(case):
        command, targets = USER_LINKS[case]
        for target in targets:
            saved[target] = (archive(host, target), snapshot(host, target))
        host.run_expect([0], "runuser -u deploy -- sh -ec %s", "cd /home/deploy; " + command)
        return {target: saved[target][1] for target in targets}

    yield plant
    host.run_expect([0], "rm -rf /home/deploy/.ssh.aside")
    for target, (name, snap) in saved.items():
        if snap is None or snapshot(host, target) != snap:
            host.run_expect([0], "rm -rf %s && tar -C / -xpf %s", target, name)
        host.run_expect([0], "rm -f %s", name)


def secrets_in(host, target):
    """What of the target must never reach the run's output: its password hashes or
    root's key, and the SHA-1 of its files (a probe that hashed them would tell)."""
    out = host.check_output("find %s -maxdepth 1 -type f -exec sha1sum {} +", target).split()[::2]
    if target == "/etc/shadow":
        out += [line.split(":")[1] for line in host.check_output("cat /etc/shadow").splitlines()
                if len(line.split(":")[1]) > 3]
    if target == "/root/.ssh":
        out.append(ROOT_CANARY_KEY.split()[1])
    return out


@pytest.mark.parametrize("case", sorted(USER_LINKS))
def test_root_never_follows_links_a_user_plants_in_its_ssh_dir(host, planted, monkeypatch, case):
    before = planted(case)
    monkeypatch.setenv("ANSIBLE_DIFF_ALWAYS", "1")
    rc, out = run_converge(host, verbosity=1)
    changed = {target: (snap, snapshot(host, target)) for target, snap in before.items()
               if snapshot(host, target) != snap}
    assert not changed, "%s: root changed what %s points at: %s" % (case, USER_LINKS[case][0], changed)
    leaked = [target for target in before if any(secret in out for secret in secrets_in(host, target))]
    assert not leaked, "%s: the run printed content of %s" % (case, leaked)
    if rc == 0:
        ssh_dir = host.file("/home/deploy/.ssh")
        keys = host.file("/home/deploy/.ssh/authorized_keys")
        assert ssh_dir.is_directory and not ssh_dir.is_symlink and ssh_dir.user == "deploy", case
        assert not keys.is_symlink and keys.user == "deploy" and keys.content_string == DEPLOY_KEY + "\n", case
    else:
        refusal = [line.strip() for line in out.splitlines() if "base_users: the authorized_keys of" in line]
        assert refusal and "deploy (/home/deploy/.ssh/authorized_keys" in refusal[0], out
        print(case, "refused:", refusal[0])
