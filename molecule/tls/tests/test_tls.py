"""Behaviour of the tls role with the edge (tls-edge, Debian 12) and Pebble (tls-acme).

converge.yml runs playbooks/edge.yml: the tls role issues `edge` through
ACME (Pebble, http-01 answered on the edge's port 80) and `internal` from
the own CA (root and intermediate on the controller, in the scenario's
ephemeral directory), then the edge role serves `edge` on 443, published
on 127.0.0.1:9444. Handshakes in these tests are real TLS handshakes to
that port. The tests run in file order: the fault tests come last.
"""

import glob
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import time

import pytest
import testinfra
from cryptography import x509

ROOT = pathlib.Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
ACME_ROOTS = EPHEMERAL / "acme" / "roots.pem"
CA_DIR = EPHEMERAL / "tls-ca"
EDGE, ACME = "tls-edge", "tls-acme"
PORT = 9444
NAME = "quiz.tls.test"
TLS = "/etc/aiquiz/tls"
ACCESS_LOG = "/var/log/nginx/edge-access.log"
START = time.time()
# Every play's output of this module, for the test on private key material.
OUTPUTS = []


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def play(playbook, extra_vars=None, verbose=0, check=False):
    """(rc, output) of a playbook of the project on the scenario's inventory."""
    cmd = ["ansible-playbook", "-i", os.path.dirname(INVENTORY), str(ROOT / playbook)]
    if check:
        cmd += ["--check", "--diff"]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if verbose:
        cmd.append("-" + "v" * verbose)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    OUTPUTS.append(out)
    return proc.returncode, out


def flat(out):
    """The output with every run of white space as one space: messages wrap."""
    return " ".join(out.split())


def changed(out, host=EDGE):
    return int(re.search(r"^%s\s*:.*changed=(\d+)" % re.escape(host), out, re.M).group(1))


def served(server_name=NAME, cafile=None):
    """The certificate the edge serves, from a new connection and a full handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile=str(cafile))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def file_serial(name, which="cert.pem"):
    out = get(EDGE).check_output("openssl x509 -noout -serial -in %s/%s/%s", TLS, name, which)
    return int(out.split("=", 1)[1], 16)


def sets(name):
    return sorted(get(EDGE).check_output("ls %s/%s/sets", TLS, name).split())


def nginx_pid():
    return get(EDGE).check_output("systemctl show -p MainPID --value nginx.service")


def test_edge_serves_the_acme_certificate_and_its_chain_validates():
    # Verified against Pebble's issuing root, with the host name checked.
    for server_name in (NAME, "www." + NAME):
        cert = served(server_name, cafile=ACME_ROOTS)
        assert cert.serial_number == file_serial("edge")
        issuer = cert.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert issuer.startswith("Pebble Intermediate CA")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == [NAME, "www." + NAME]
    # Every server but the catch-all ones (a certificate of their own, for unknown names only) serves the edge's.
    config = get(EDGE).check_output("nginx -T 2>/dev/null")
    pairs = {pair for pair in re.findall(r"^\s*(ssl_certificate(?:_key)?)\s+([^;\s]+);", config, re.MULTILINE)
             if "/bootstrap/" not in pair[1]}
    assert pairs == {("ssl_certificate", "%s/edge/fullchain.pem" % TLS), ("ssl_certificate_key", "%s/edge/privkey.pem" % TLS)}


def test_own_ca_certificate_chains_to_the_controller_root():
    host = get(EDGE)
    base = "%s/internal" % TLS
    cmd = host.run("openssl verify -purpose sslserver -CAfile %s/ca.pem -untrusted %s/chain.pem %s/cert.pem",
                   base, base, base)
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    assert host.check_output("cat %s/ca.pem", base).strip() == (CA_DIR / "root.pem").read_text().strip()
    text = host.check_output("openssl x509 -noout -text -in %s/cert.pem", base)
    assert "Issuer: CN = aiquiz.ops intermediate CA" in text
    assert "DNS:internal.tls.test, IP Address:127.0.0.1" in text
    assert "Public-Key: (2048 bit)" in text
    # The CA keys stay on the controller, encrypted.
    for key in ("root-key.pem", "intermediate-key.pem"):
        path = CA_DIR / key
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        text = path.read_text()
        assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") or "Proc-Type: 4,ENCRYPTED" in text
        body_line = [line for line in text.splitlines() if re.fullmatch(r"[A-Za-z0-9+/=]{64}", line)][0]
        assert host.run("grep -rlsF -- %s /etc /root /var /tmp /srv", body_line).stdout.strip() == ""


def test_clients_get_the_own_ca_root_and_nothing_else():
    # tls_ca_trust_file: the root for the host's clients, readable by all, no key.
    host = get(EDGE)
    trust = host.file("/etc/aiquiz/tls/aiquiz-ca.pem")
    assert (trust.user, trust.group, trust.mode) == ("root", "root", 0o644)
    assert trust.content_string.strip() == (CA_DIR / "root.pem").read_text().strip()
    assert "PRIVATE KEY" not in trust.content_string


def test_private_keys_are_private():
    host = get(EDGE)
    edge_key = host.file(host.check_output("readlink -f %s/edge/privkey.pem", TLS))
    assert (edge_key.mode, edge_key.user, edge_key.group) == (0o600, "root", "root")
    internal_key = host.file(host.check_output("readlink -f %s/internal/privkey.pem", TLS))
    assert (internal_key.mode, internal_key.user, internal_key.group) == (0o640, "root", "www-data")
    assert host.file("%s/edge/sets" % TLS).mode == 0o750
    assert host.file("%s/.acme-account-key.pem" % TLS).mode == 0o600
    # nginx's workers (www-data) cannot read the edge key: only the master does.
    assert host.run("runuser -u www-data -- cat %s/edge/privkey.pem", TLS).rc != 0


@pytest.mark.parametrize("bad, words", [
    ({"name": "internal", "sans": ["bad_name!.test"], "issuer": "own_ca"},
     ['certificate "internal"', 'sans[0]: "bad_name!.test" is not a DNS name']),
    ({"name": "internal", "sans": ["internal.tls.test"], "issuer": "letsencrypt"},
     ['certificate "internal"', 'issuer: "letsencrypt" is not a known issuer']),
    ({"name": "internal", "sans": ["internal.tls.test"], "issuer": "own_ca", "key_type": "rsa", "key_size": 1024},
     ['certificate "internal"', "key_size: 1024 is below the policy"]),
])
def test_bad_input_stops_before_any_change(bad, words):
    before = (sets("edge"), sets("internal"))
    good = {"name": "edge", "sans": [NAME, "www." + NAME], "issuer": "acme", "consumers": ["nginx"]}
    rc, out = play("playbooks/edge.yml", {"tls_certificates": [good, bad], "tls_force": True})
    assert rc != 0
    assert "nothing was changed" in flat(out)
    for word in words:
        assert word in flat(out)
    assert changed(out) == 0
    assert (sets("edge"), sets("internal")) == before


def test_short_lived_certificate_is_renewed_then_left_alone():
    old = file_serial("internal")
    # 2-day certificate, renewal window widened to 2 days: due now.
    rc, out = play("playbooks/edge.yml", {"tls_renew_before_days": 2})
    assert rc == 0, out
    new = file_serial("internal")
    assert new != old
    assert file_serial("internal", "previous/cert.pem") == old
    assert file_serial("edge") == served().serial_number
    rc, out = play("playbooks/edge.yml")
    assert rc == 0, out
    assert changed(out) == 0
    assert file_serial("internal") == new


def test_check_mode_reports_a_due_rotation_without_making_it():
    before = sets("internal")
    rc, out = play("playbooks/edge.yml", {"tls_renew_before_days": 2}, check=True)
    assert rc == 0, out
    assert "internal would be issued by own_ca: expires within 2 days" in flat(out)
    assert sets("internal") == before


def test_forced_rotation_is_served_by_a_reload_and_a_rerun_changes_nothing():
    host = get(EDGE)
    before = served(cafile=ACME_ROOTS).serial_number
    pid = nginx_pid()
    challenges = int(host.check_output("grep -c 'acme-challenge' %s || true", ACCESS_LOG) or 0)
    rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["edge"], "rotate_certs_force": True},
                   verbose=2)
    assert rc == 0, out[-3000:]
    assert re.search(r"rotated:\s*\n\s*- '?tls-edge: edge", out), out[-2000:]
    after = served(cafile=ACME_ROOTS)
    assert after.serial_number != before
    assert after.serial_number == file_serial("edge")
    assert file_serial("edge", "previous/cert.pem") == before
    assert nginx_pid() == pid  # reloaded, not restarted
    # Pebble validated through the edge's nginx on port 80.
    log = host.check_output("grep 'acme-challenge' %s || true", ACCESS_LOG).splitlines()
    assert len(log) >= challenges + 2
    assert all(json.loads(line)["status"] == 200 for line in log[challenges:])
    rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": "edge"})
    assert rc == 0, out
    assert changed(out) == 0
    assert re.search(r"rotated: \[\]", out), out[-2000:]
    assert re.search(r"unchanged:\s*\n\s*- '?tls-edge: edge", out), out[-2000:]


def metric_expiry(host, source):
    """aiquiz_certificate_expiry_seconds of source in the node exporter's textfile."""
    text = host.check_output("cat /var/lib/prometheus/node-exporter/aiquiz_certificates.prom")
    for line in text.splitlines():
        if line.startswith("aiquiz_certificate_expiry_seconds{") and 'source="%s"' % source in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no expiry of %s in:\n%s" % (source, text))


def test_expiry_metrics_follow_every_rotation():
    # The CertificateExpiringSoon alert reads this file: after a rotation by rotate-certs.yml it must
    # already show the new certificate, or the alert would fire on a certificate no longer served.
    host = get(EDGE)
    metrics = host.file("/var/lib/prometheus/node-exporter/aiquiz_certificates.prom")
    assert (metrics.user, metrics.mode) == ("root", 0o644)
    for name in ("edge", "internal"):
        cert = "%s/%s/cert.pem" % (TLS, name)
        not_after = x509.load_pem_x509_certificate(host.file(cert).content).not_valid_after_utc.timestamp()
        assert metric_expiry(host, cert) == not_after, name
    rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["internal"], "rotate_certs_force": True})
    assert rc == 0, out[-3000:]
    cert = "%s/internal/cert.pem" % TLS
    not_after = x509.load_pem_x509_certificate(host.file(cert).content).not_valid_after_utc.timestamp()
    assert metric_expiry(host, cert) == not_after


def test_a_key_not_matching_its_certificate_is_refused_before_the_switch():
    before_serial, before_sets = file_serial("internal"), sets("internal")
    rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["internal"], "rotate_certs_force": True,
                                                  "_tls_fault_mismatched_key": True})
    assert rc != 0
    assert "the private key does not match the certificate" in flat(out)
    assert 'TLS certificate "internal" of tls-edge (own_ca) was NOT' in flat(out)
    assert file_serial("internal") == before_serial
    assert sets("internal") == before_sets
    host = get(EDGE)
    assert host.check_output("openssl x509 -noout -pubkey -in %s/internal/cert.pem", TLS) == \
        host.check_output("openssl pkey -pubout -in %s/internal/privkey.pem", TLS)


def signed_by(ca_dir):
    """Whether the edge's `internal` certificate names ca_dir's intermediate as its signer."""
    signer = x509.load_pem_x509_certificate((ca_dir / "intermediate.pem").read_bytes())
    cert = x509.load_pem_x509_certificate(get(EDGE).file(TLS + "/internal/cert.pem").content)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    return aki == signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def test_another_own_ca_on_the_controller_changes_nothing_until_the_move_is_asked_for(tmp_path):
    """A controller whose tls_ca_dir holds another own CA (another home's, one lost and created anew) must
    neither hand the host its root nor reissue the host's certificates from it: the host's clients and peers
    trust the first CA. The run stops, naming the variable; the move happens only when asked for."""
    host = get(EDGE)
    other, trust = tmp_path / "other-ca", "/etc/aiquiz/tls/aiquiz-ca.pem"
    before = (file_serial("internal"), sets("internal"), host.file(trust).content)
    # The root the host trusts is checked first: another one in its place cuts its clients off.
    rc, out = play("playbooks/edge.yml", {"tls_ca_dir": str(other)})
    assert rc != 0 and "holds another root than the own CA's" in flat(out), out[-3000:]
    assert "tls_ca_adopt_foreign_certificates" in flat(out)
    # Without a trust file, the certificate is: signed by the other CA's intermediate.
    rc, out = play("playbooks/edge.yml", {"tls_ca_dir": str(other), "tls_ca_trust_file": ""})
    assert rc != 0 and 'TLS certificate "internal" of tls-edge was signed by another own CA' in flat(out), out[-3000:]
    assert (file_serial("internal"), sets("internal"), host.file(trust).content) == before
    assert signed_by(CA_DIR) and not signed_by(other)
    # The deliberate move: reissued from the other CA and its root trusted; then back again.
    for ca_dir in (other, CA_DIR):
        rc, out = play("playbooks/edge.yml", {"tls_ca_dir": str(ca_dir), "tls_ca_adopt_foreign_certificates": True})
        assert rc == 0, out[-3000:]
        assert signed_by(ca_dir)
        assert host.file(trust).content_string.strip() == (ca_dir / "root.pem").read_text().strip()
    rc, out = play("playbooks/edge.yml")
    assert rc == 0 and changed(out) == 0, out[-3000:]


def test_a_second_rotation_while_one_runs_stops_and_a_stale_lock_is_taken_over():
    host = get(EDGE)
    lock = "%s/internal/rotation.lock" % TLS
    before_serial, before_sets = file_serial("internal"), sets("internal")
    # A run at work: its lock, fresh.
    host.check_output("mkdir %s && echo 'run from ops1 since 2026-11-27T10:00:00Z' > %s/owner", lock, lock)
    try:
        rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["internal"], "rotate_certs_force": True})
        assert rc != 0
        assert "another rotation of this certificate holds %s (run from ops1" % lock in flat(out)
        assert "no new set was made" in flat(out)
        assert (file_serial("internal"), sets("internal")) == (before_serial, before_sets)
        assert host.file(lock + "/owner").exists  # the other run's lock is left alone
        # The same lock, left by a run that crashed an hour ago.
        host.check_output("touch -d '1 hour ago' %s", lock)
        rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["internal"], "rotate_certs_force": True})
        assert rc == 0, out
        assert file_serial("internal") != before_serial
        assert not host.file(lock).exists
    finally:
        host.run("rm -rf %s", lock)


def test_acme_server_down_fails_clearly_and_the_old_certificate_stays_served():
    acme = get(ACME)
    before, before_sets = served(cafile=ACME_ROOTS).serial_number, sets("edge")
    acme.check_output("systemctl stop pebble.service")
    began = time.monotonic()
    try:
        rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["edge"], "rotate_certs_force": True})
    finally:
        acme.check_output("systemctl start pebble.service")
    took = time.monotonic() - began
    print("ACME down: the rotation stopped after %.1f s" % took)
    assert rc != 0
    # The directory is asked first: no minutes of community.crypto's retries.
    assert took < 120, took
    assert "Reach the ACME directory" in flat(out)
    assert 'TLS certificate "edge" of tls-edge (acme) was NOT' in flat(out)
    assert "still served" in flat(out)
    assert "acme:14000" in flat(out)
    assert served(cafile=ACME_ROOTS).serial_number == before
    assert sets("edge") == before_sets
    # Pebble makes a new root when it starts: export it again, as the
    # scenario's prepare does, and rotate once more.
    rc, out = play("tests/lab/acme.yml")
    assert rc == 0, out[-3000:]
    rc, out = play("playbooks/rotate-certs.yml", {"rotate_certs_names": ["edge"], "rotate_certs_force": True})
    assert rc == 0, out[-3000:]
    assert served(cafile=ACME_ROOTS).serial_number != before


def test_no_private_key_material_in_output_or_logs():
    """Plays of this module (one at -vv), the audit trail they wrote, and the host's journal."""
    host = get(EDGE)
    assert len(OUTPUTS) >= 8
    texts = list(OUTPUTS)
    for path in glob.glob(os.path.expanduser("~/.ansible/aiquiz-audit/*.jsonl")):
        text = pathlib.Path(path).read_text(errors="replace")
        if os.path.getmtime(path) >= START and EDGE in text:
            texts.append(text)
    texts.append(host.check_output("journalctl -q --no-pager --since @%s", str(int(START))))
    paths = ["%s/%s/%s" % (TLS, name, which) for name in ("edge", "internal", "wildcard")
             for which in ("privkey.pem", "previous/privkey.pem")] + ["%s/.acme-account-key.pem" % TLS]
    paths = [path for path in paths if host.file(path).exists]
    assert len(paths) >= 6
    chunks, public = set(), ""
    for path in paths:
        body = "".join(line for line in host.check_output("cat %s", path).splitlines() if not line.startswith("-----"))
        assert len(body) > 100
        chunks.update(body[i:i + 24] for i in range(0, len(body) - 24, 12))
        # A private key's encoding holds its public half (the EC point, the
        # RSA modulus), which the output may show: those runs are not secret.
        public += "".join(host.check_output("openssl pkey -pubout -in %s", path).split())
    chunks = {chunk for chunk in chunks if chunk not in public}
    assert len(chunks) > 50
    for text in texts:
        assert "PRIVATE KEY" not in flat(text)
        # Also with every line break and space removed (wrapped output).
        joined = "".join(text.split()).replace("\\n", "")
        leaked = [chunk for chunk in chunks if chunk in text or chunk in joined]
        assert not leaked
