"""Behaviour of the hardening role on real Debian hosts.

sshd is checked through what it really does (`sshd -T`, logins from the
controller over the network); the OS baseline through the files and state
the role leaves. A broken sshd value is tried for real and must be refused
with the old configuration still serving logins.
"""

import pathlib
import re
import shutil
import socket
import subprocess

import devsec_ssh_baseline as devsec
import pytest

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONVERGE = ROOT / "molecule" / "hardening" / "converge.yml"
DROPIN = "/etc/ssh/sshd_config.d/10-aiquiz-hardening.conf"
DEVSEC_DOC = ROOT / "docs" / "developer" / "devsec-baseline.md"
PASSWORD = "operator-test-password"  # set by prepare.yml, test hosts only

ALLOWED_KEX = {"mlkem768x25519-sha256", "sntrup761x25519-sha512@openssh.com",
               "curve25519-sha256", "curve25519-sha256@libssh.org"}
ALLOWED_CIPHERS = {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                   "aes256-ctr", "aes192-ctr", "aes128-ctr"}
ALLOWED_MACS = {"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com"}


def sshd_effective(host):
    out = host.check_output("/usr/sbin/sshd -T")
    settings = {}
    for line in out.splitlines():
        key, _sep, value = line.partition(" ")
        settings.setdefault(key, []).append(value)
    return settings


def container_ip(host):
    name = host.backend.host
    out = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out, "no IP address for container %s" % name
    return out[0]


@pytest.fixture(scope="module")
def client_key(host, tmp_path_factory):
    """A throwaway ed25519 key pair; the public half goes to operator and root."""
    key = tmp_path_factory.mktemp("sshkey") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "molecule-hardening", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text().strip()
    for user, home in (("operator", "/home/operator"), ("root", "/root")):
        cmd = ("install -d -m 0700 -o {u} -g $(id -gn {u}) {h}/.ssh && "
               "grep -qxF '{k}' {h}/.ssh/authorized_keys 2>/dev/null || echo '{k}' >> {h}/.ssh/authorized_keys; "
               "chown {u} {h}/.ssh/authorized_keys && chmod 0600 {h}/.ssh/authorized_keys").format(u=user, h=home, k=pub)
        result = host.run(cmd)
        assert result.rc == 0, result.stderr
    return key


def ssh(ip, user, *options, key=None, password=None):
    cmd = ["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
    if key:
        cmd += ["-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    cmd += list(options) + ["%s@%s" % (user, ip), "true"]
    if password is not None:
        cmd = ["sshpass", "-p", password] + cmd
    # A stdin of its own: ssh leaves its stdin non-blocking, which a later ansible-playbook refuses.
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)


def run_converge(host, extra_vars, tags=None):
    return ansible_playbook(CONVERGE, extra_vars, limit=host.backend.host, tags=tags)


def test_sshd_uses_the_declared_settings(host):
    eff = sshd_effective(host)
    expected = {
        "permitrootlogin": ["no"], "passwordauthentication": ["no"], "kbdinteractiveauthentication": ["no"],
        "pubkeyauthentication": ["yes"], "permitemptypasswords": ["no"], "permituserenvironment": ["no"],
        "maxauthtries": ["3"], "logingracetime": ["30"], "clientaliveinterval": ["300"],
        "clientalivecountmax": ["2"], "x11forwarding": ["no"], "allowagentforwarding": ["no"],
        "allowtcpforwarding": ["no"], "loglevel": ["VERBOSE"], "banner": ["/etc/issue.net"],
        "usedns": ["no"], "compression": ["no"], "allowgroups": ["sshusers"],
    }
    for key, value in expected.items():
        assert eff.get(key) == value, key


def test_sshd_t_matches_the_devsec_baseline(host):
    """The whole effective configuration against every dev-sec sshd control:
    each deviation is printed, and only those kept on purpose may remain."""
    found = devsec.deviations(host.check_output("/usr/sbin/sshd -T"), version_string(host))
    report = []
    for control, keyword, expected, effective in found:
        why = devsec.KEPT.get(control, "NOT KEPT: fix it, or keep it with a reason in devsec_ssh_baseline.KEPT "
                                       "and docs/developer/devsec-baseline.md")
        report.append("%s %s: baseline %r, effective %r -- %s" % (control, keyword, expected, effective, why))
    print("\n".join(report))
    unexpected = [line for line in report if "NOT KEPT" in line]
    stale = sorted(set(devsec.KEPT) - {control for control, _k, _e, _v in found})
    assert not unexpected, "\n".join(unexpected)
    assert not stale, "kept deviations that no longer deviate (drop them from KEPT and the doc): %s" % stale


def test_the_doc_lists_exactly_the_kept_deviations():
    section = DEVSEC_DOC.read_text().split("## Kept deviations", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| (sshd-\d+) \|", section, re.M)) == set(devsec.KEPT)


def test_ssh_files_and_daemon_match_the_devsec_baseline(host):
    """sshd-04, -05, -48 and -49: what `sshd -T` cannot show."""
    etc_ssh = host.file("/etc/ssh")
    assert (etc_ssh.user, etc_ssh.group) == ("root", "root") and etc_ssh.mode & 0o022 == 0
    config = host.file("/etc/ssh/sshd_config")
    assert (config.user, config.group) == ("root", "root") and config.mode & 0o177 == 0
    weak = host.check_output("awk '$5 < 2047 && $5 ~ /^[0-9]+$/ { print $5 }' /etc/ssh/moduli | uniq")
    assert weak == "", "DH moduli shorter than 2048 bits: %s" % weak
    for args in host.check_output("ps -o args= -C sshd").splitlines():
        assert not re.search(r"-o ?(Ciphers|KexAlgorithms|HostKeyAlgorithms)", args), args


def version_string(host):
    """The identification sshd sends to every client, before any authentication."""
    with socket.create_connection((container_ip(host), 22), timeout=10) as conn:
        return conn.recv(255).decode("ascii", "replace").strip()


def test_version_string_tells_no_debian_patch_level(host):
    ident = version_string(host)
    assert ident.startswith("SSH-2.0-OpenSSH_"), ident
    assert "Debian" not in ident and "deb1" not in ident, ident


def forward_unix_socket(host, client_key):
    """(ssh's result, whether the socket appeared) for a remote Unix-socket forward as operator."""
    path = "/home/operator/aiquiz-forward.sock"
    host.run("rm -f %s", path)
    try:
        result = ssh(container_ip(host), "operator", "-o", "ExitOnForwardFailure=yes",
                     "-R", "%s:127.0.0.1:9" % path, key=client_key)
        return result, host.file(path).exists
    finally:
        host.run("rm -f %s", path)


def test_unix_socket_forwarding_refused_also_where_tcp_forwarding_is_allowed(host, client_key):
    """A jump host needs AllowTcpForwarding yes; Unix-socket forwarding must
    stay off there, or a user reaches any socket it may open (docker.sock for
    a member of the docker group) from its own machine."""
    result, created = forward_unix_socket(host, client_key)
    assert result.returncode != 0 and not created, (result.returncode, created, result.stderr)
    try:
        rc, out = run_converge(host, {"hardening_ssh_allow_tcp_forwarding": True}, tags="hardening_ssh")
        assert rc == 0, out
        assert sshd_effective(host)["allowtcpforwarding"] == ["yes"]
        result, created = forward_unix_socket(host, client_key)
    finally:
        rc, out = run_converge(host, None, tags="hardening_ssh")
    assert rc == 0, out
    assert result.returncode != 0 and not created, (result.returncode, created, result.stderr)
    assert "forwarding failed" in result.stderr, result.stderr


def test_sshd_offers_only_modern_crypto(host):
    eff = sshd_effective(host)
    for key, allowed in (("kexalgorithms", ALLOWED_KEX), ("ciphers", ALLOWED_CIPHERS), ("macs", ALLOWED_MACS)):
        offered = set(eff[key][0].split(","))
        assert offered and offered <= allowed, (key, offered - allowed)
    assert "curve25519-sha256" in eff["kexalgorithms"][0]


def test_post_quantum_kex_where_openssh_supports_it(host):
    supported = host.check_output("ssh -Q kex").split()
    offered = sshd_effective(host)["kexalgorithms"][0].split(",")
    for kex in ("mlkem768x25519-sha256", "sntrup761x25519-sha512@openssh.com"):
        assert (kex in offered) == (kex in supported), kex


def test_hardening_is_a_drop_in_not_the_whole_config(host):
    dropin = host.file(DROPIN)
    assert dropin.exists and dropin.user == "root" and dropin.mode == 0o600
    assert host.file("/etc/ssh/sshd_config").contains(r"^Include /etc/ssh/sshd_config.d/\*.conf")
    assert not host.file("/etc/ssh/sshd_config").contains("aiquiz")


def test_ssh_service_runs_and_listens(host):
    assert host.service("ssh").is_running
    assert host.service("ssh").is_enabled
    assert host.socket("tcp://0.0.0.0:22").is_listening or host.socket("tcp://:::22").is_listening


def test_key_login_as_allowed_user_works(host, client_key):
    result = ssh(container_ip(host), "operator", key=client_key)
    assert result.returncode == 0, result.stderr


def test_password_login_refused(host):
    ip = container_ip(host)
    if shutil.which("sshpass"):
        result = ssh(ip, "operator", "-o", "PreferredAuthentications=password,keyboard-interactive",
                     "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", password=PASSWORD)
    else:
        result = ssh(ip, "operator", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no")
    assert result.returncode != 0
    assert "Permission denied (publickey)" in result.stderr, result.stderr


def test_root_login_refused_even_with_a_key(host, client_key):
    result = ssh(container_ip(host), "root", key=client_key)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr, result.stderr


def test_user_outside_allowed_groups_refused(host, client_key):
    host.run("id outsider || useradd -m -s /bin/bash outsider")
    pub = pathlib.Path(str(client_key) + ".pub").read_text().strip()
    host.run("install -d -m 0700 -o outsider -g outsider /home/outsider/.ssh && echo '%s' > /home/outsider/.ssh/authorized_keys"
             " && chown outsider /home/outsider/.ssh/authorized_keys", pub)
    try:
        result = ssh(container_ip(host), "outsider", key=client_key)
        assert result.returncode != 0
        assert "Permission denied" in result.stderr, result.stderr
    finally:
        host.run("userdel -r outsider")


def test_broken_sshd_value_is_refused_and_old_config_kept(host, client_key):
    before = host.check_output("sha256sum %s", DROPIN)
    # A typo in an extra setting passes the argument types but not sshd -t.
    rc, out = run_converge(host, {"hardening_ssh_extra_settings": {"PermitRootLogn": "yes"}}, tags="hardening_ssh")
    assert rc != 0, out
    assert "PermitRootLogn" in out or "Bad configuration option" in out, out
    assert host.check_output("sha256sum %s", DROPIN) == before
    assert host.service("ssh").is_running
    result = ssh(container_ip(host), "operator", key=client_key)
    assert result.returncode == 0, result.stderr


def test_missing_allowed_group_stops_before_any_change(host):
    before = host.check_output("sha256sum %s", DROPIN)
    rc, out = run_converge(host, {"hardening_ssh_allow_groups": ["sshusers", "no-such-group"]}, tags="hardening_ssh")
    assert rc != 0, out
    assert "hardening_ssh_allow_groups" in out and "no-such-group" in out, out
    assert host.check_output("sha256sum %s", DROPIN) == before


def test_sysctl_baseline_written(host):
    conf = host.file("/etc/sysctl.d/70-aiquiz-hardening.conf")
    assert conf.exists and conf.mode == 0o644
    for line in ("net.ipv4.ip_forward = 0", "net.ipv4.conf.all.accept_redirects = 0", "net.ipv4.conf.all.send_redirects = 0",
                 "net.ipv4.conf.all.rp_filter = 1", "net.ipv4.tcp_syncookies = 1", "net.ipv6.conf.all.accept_ra = 0",
                 "kernel.kptr_restrict = 2", "kernel.dmesg_restrict = 1", "kernel.randomize_va_space = 2",
                 "kernel.yama.ptrace_scope = 1", "fs.suid_dumpable = 0", "fs.protected_symlinks = 1"):
        assert line in conf.content_string.splitlines(), line


def test_container_host_profile_keeps_forwarding(host):
    rc, out = run_converge(host, {"hardening_os_container_host": True}, tags="hardening_sysctl")
    try:
        assert rc == 0, out
        assert "net.ipv4.ip_forward = 1" in host.file("/etc/sysctl.d/70-aiquiz-hardening.conf").content_string
    finally:
        rc, out = run_converge(host, {}, tags="hardening_sysctl")
        assert rc == 0, out
    assert "net.ipv4.ip_forward = 0" in host.file("/etc/sysctl.d/70-aiquiz-hardening.conf").content_string


def test_core_dumps_disabled(host):
    assert "* hard core 0" in " ".join(host.file("/etc/security/limits.d/70-aiquiz-hardening.conf").content_string.split())
    assert "Storage=none" in host.file("/etc/systemd/coredump.conf.d/70-aiquiz-hardening.conf").content_string


def test_unused_filesystems_cannot_load(host):
    conf = host.file("/etc/modprobe.d/aiquiz-hardening.conf").content_string.splitlines()
    for fs in ("cramfs", "freevxfs", "jffs2", "hfs", "hfsplus", "udf"):
        assert "install %s /bin/true" % fs in conf
    assert not any("squashfs" in line or "vfat" in line for line in conf)


@pytest.mark.parametrize("package", ["telnet", "inetutils-telnet", "telnetd", "rsh-client", "rsh-server", "nis", "talk",
                                     "tftp-hpa", "xinetd"])
def test_legacy_packages_absent(host, package):
    assert not host.package(package).is_installed


@pytest.mark.parametrize("path,owner,group,mode", [
    ("/etc/passwd", "root", "root", 0o644), ("/etc/group", "root", "root", 0o644),
    ("/etc/shadow", "root", "shadow", 0o640), ("/etc/gshadow", "root", "shadow", 0o640),
    ("/etc/ssh/sshd_config", "root", "root", 0o600)])
def test_sensitive_file_modes(host, path, owner, group, mode):
    f = host.file(path)
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_login_defs_values(host):
    values = {}
    for line in host.file("/etc/login.defs").content_string.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            values.setdefault(parts[0], parts[1])
    assert values["PASS_MAX_DAYS"] == "60"
    assert values["PASS_MIN_DAYS"] == "7"
    assert values["PASS_WARN_AGE"] == "7"
    assert values["UMASK"] == "027"
    assert values["ENCRYPT_METHOD"] in ("SHA512", "YESCRYPT")


def test_audit_rules_cover_identity_and_privileged_use(host):
    assert host.package("auditd").is_installed
    rules = host.file("/etc/audit/rules.d/60-aiquiz.rules").content_string.splitlines()
    for path in ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d"):
        assert "-w %s -p wa -k identity" % path in rules
    assert any("-S execve" in r and "euid=0" in r and "auid>=1000" in r and "-k privileged" in r for r in rules)
    # augenrules compiles the rules file the kernel would load at auditd start.
    compiled = host.run("augenrules --check; cat /etc/audit/audit.rules")
    assert compiled.rc == 0


def test_auditd_loaded_rules_when_it_can_run(host):
    listed = host.run("auditctl -l")
    if listed.rc != 0:
        pytest.skip("no audit subsystem in this container (needs CAP_AUDIT_CONTROL): %s" % listed.stderr.strip())
    assert "identity" in listed.stdout and "privileged" in listed.stdout


def test_drift_is_seen_in_check_mode_and_put_back(host):
    """A re-run skips what the role's probe shows already as declared, so it
    must still see and repair what was changed by hand: a drop-in edited, a
    mode changed, a login.defs value set again further down, a file replaced."""
    dropin = "/etc/ssh/sshd_config.d/10-aiquiz-hardening.conf"
    before = host.file(dropin).content_string
    host.run_expect([0], "set -e; echo '# edited by hand' >> %s; chmod 0644 /etc/shadow; "
                    "chmod 0700 /usr/local/libexec/aiquiz; printf 'PASS_MAX_DAYS\\t99999\\n' >> /etc/login.defs; "
                    "echo 'install cramfs /bin/false' > /etc/modprobe.d/aiquiz-hardening.conf" % dropin)
    rc, out = ansible_playbook(CONVERGE, limit=host.backend.host, check=True)
    assert rc == 0 and "changed=0" not in out, out
    assert host.file("/etc/shadow").mode == 0o644
    rc, out = run_converge(host, None)
    assert rc == 0, out
    assert host.file(dropin).content_string == before
    assert (host.file("/etc/shadow").mode, host.file("/usr/local/libexec/aiquiz").mode) == (0o640, 0o755)
    max_days = [ln for ln in host.file("/etc/login.defs").content_string.splitlines() if ln.startswith("PASS_MAX_DAYS")]
    assert max_days[-1] == "PASS_MAX_DAYS\t60"
    assert "install cramfs /bin/true" in host.file("/etc/modprobe.d/aiquiz-hardening.conf").content_string
    rc, out = run_converge(host, None)
    assert rc == 0 and "changed=0" in out, out


def test_ssh_banner_follows_the_base_banner_so_the_roles_agree(host):
    """base writes base_banner to /etc/issue.net too: the same text, or the two roles rewrite it in turn."""
    banner = {"base_banner": "AI Quiz production.\nAuthorised use only.\n"}
    try:
        rc, out = run_converge(host, banner)
        assert rc == 0, out
        issue = host.file("/etc/issue.net")
        assert issue.content_string == "AI Quiz production.\nAuthorised use only.\n"
        assert (issue.user, issue.mode) == ("root", 0o644)
        rc, out = run_converge(host, banner)
        assert rc == 0 and "changed=0" in out, out
    finally:
        rc, out = run_converge(host, None)
    assert rc == 0, out
    assert host.file("/etc/issue.net").content_string == "Authorised access only. Activity on this system is logged.\n"
