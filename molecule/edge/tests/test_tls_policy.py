"""The edge's TLS policy seen from outside, with sslyze, and its certificate
seen from inside, with aiquiz.ops.certificate_inventory.

sslyze (in the project's venv) scans each instance from the controller at the
instance's address on the Docker network of the scenario's containers (they
publish no port), with the SNI name edge.molecule.test: only TLS 1.2 and 1.3,
no weak or non-forward-secret cipher suite, only the key exchange groups of
Mozilla's intermediate profile, HSTS of two years. A client that offers only
other groups (secp521r1, X448) gets no handshake.

The self-signed bootstrap certificate has no issuing CA to verify against, so
the last tests give the edge a certificate from a CA made here (root,
intermediate, leaf per instance) through the role's own variables
(edge_tls_certificate, edge_tls_certificate_key, as the tls role sets them),
check with sslyze that the chain the edge sends verifies against that root
for edge.molecule.test, that sslyze's Mozilla intermediate compliance check
passes as a whole, and that the module, run on the instance, agrees. The instances get their bootstrap certificate back at the end.
"""

import base64
import datetime
import json
import os
import pathlib
import subprocess

import re

import pytest
import testinfra
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

from conftest import ansible_playbook

# sslyze's own bundled trust stores hold a certificate that cryptography warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "molecule" / "edge"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("edge-debian12", "edge-debian13")
NAME = "edge.molecule.test"
ISSUED = "/etc/nginx/aiquiz/policy-test"
TWO_YEARS = 63072000
INTERMEDIATE = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
REFUSED_PROTOCOLS = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
}
ACCEPTED_PROTOCOLS = {
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLS 1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}
# Parts of an IANA suite name that make it weak: CBC (SHA-1 or not: the edge
# offers AEAD only), 3DES/DES, RC4, NULL, EXPORT, anonymous, MD5.
WEAK_PARTS = ("_CBC_", "3DES", "_DES_", "RC4", "NULL", "EXPORT", "_anon_", "_MD5")


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def container_address(name):
    """The instance's IPv4 address on its Docker network (the test run created the container)."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
        capture_output=True, text=True, check=True, timeout=30).stdout.split()
    assert out, "no address for %s" % name
    return out[0]


def scan(commands, extra=None):
    """sslyze's result for each instance, scanned side by side, by instance name."""
    requests = dict((name, ServerScanRequest(
        server_location=ServerNetworkLocation(NAME, 443, ip_address=container_address(name)),
        scan_commands=set(commands),
        scan_commands_extra_arguments=extra or ScanCommandsExtraArguments())) for name in HOSTS)
    scanner = Scanner()
    scanner.queue_scans(list(requests.values()))
    by_uuid = dict((request.uuid, name) for name, request in requests.items())
    results = dict((by_uuid[result.uuid], result) for result in scanner.get_results())
    assert sorted(results) == sorted(HOSTS)
    for name, result in results.items():
        assert result.scan_status == ServerScanStatusEnum.COMPLETED, (name, result.connectivity_error_trace)
    return results


@pytest.fixture(scope="module")
def scans():
    """Protocols, cipher suites and headers of the edge as the scenario converged it."""
    return scan(list(REFUSED_PROTOCOLS.values()) + list(ACCEPTED_PROTOCOLS.values())
                + [ScanCommand.HTTP_HEADERS, ScanCommand.ELLIPTIC_CURVES])


def attempt(scans, name, command):
    """The completed result of one scan command."""
    done = getattr(scans[name].scan_result, command.value)
    assert done.status == ScanCommandAttemptStatusEnum.COMPLETED, (name, command, done.error_trace)
    return done.result


@pytest.mark.parametrize("name", HOSTS)
def test_only_tls_1_2_and_1_3_are_accepted(scans, name):
    for protocol, command in REFUSED_PROTOCOLS.items():
        accepted = attempt(scans, name, command).accepted_cipher_suites
        assert accepted == [], "%s accepted: %s" % (protocol, [s.cipher_suite.name for s in accepted])
    for protocol, command in ACCEPTED_PROTOCOLS.items():
        assert attempt(scans, name, command).is_tls_version_supported, protocol


@pytest.mark.parametrize("name", HOSTS)
def test_no_weak_or_non_forward_secret_cipher_suite(scans, name):
    tls12 = attempt(scans, name, ScanCommand.TLS_1_2_CIPHER_SUITES).accepted_cipher_suites
    tls13 = attempt(scans, name, ScanCommand.TLS_1_3_CIPHER_SUITES).accepted_cipher_suites
    assert tls12 and tls13
    for accepted in tls12 + tls13:
        suite = accepted.cipher_suite.name
        assert not [part for part in WEAK_PARTS if part in suite], suite
        # Forward secrecy: an ephemeral key exchange, X25519 (253 bits) or
        # stronger, or finite-field DH of 2048 bits at least.
        key = accepted.ephemeral_key
        assert key is not None, suite
        assert key.size >= (2048 if key.type_name == "DH" else 253), (suite, key.type_name, key.size)
    for accepted in tls12:
        suite = accepted.cipher_suite.name
        assert suite.startswith(("TLS_ECDHE_", "TLS_DHE_")), suite
        assert suite.endswith(("_GCM_SHA256", "_GCM_SHA384", "_CHACHA20_POLY1305_SHA256")), suite


@pytest.mark.parametrize("name", HOSTS)
def test_only_the_key_exchange_groups_of_mozilla_intermediate(scans, name):
    curves = attempt(scans, name, ScanCommand.ELLIPTIC_CURVES)
    assert curves.supports_ecdh_key_exchange
    supported = {curve.name for curve in curves.supported_curves}
    # X25519, prime256v1 (secp256r1) and secp384r1: no more, no fewer.
    assert supported == INTERMEDIATE.tls_curves, (supported, [c.name for c in curves.rejected_curves])


def temp_key(output):
    """The key exchange s_client reports ("Server Temp Key" in OpenSSL 3.0, "Peer" in 3.5)."""
    found = re.search(r"(?:Server|Peer) Temp Key: (?:ECDH, )?([A-Za-z0-9]+)", output)
    return found.group(1) if found else None


@pytest.mark.parametrize("name", HOSTS)
def test_handshake_offering_only_other_groups_fails(name):
    host = get(name)
    s_client = "echo | openssl s_client -connect 127.0.0.1:443 -servername %s %s -groups %s 2>&1"
    # TLS 1.3: a client offering only secp521r1 or only X448 gets no handshake.
    for group in ("secp521r1", "X448"):
        done = host.run(s_client % (NAME, "-tls1_3", group))
        assert done.rc != 0 and "alert handshake failure" in done.stdout, (group, done.stdout)
    for group in ("X25519", "prime256v1", "secp384r1"):
        done = host.run(s_client % (NAME, "-tls1_3", group))
        assert done.rc == 0 and temp_key(done.stdout) == group, (group, done.stdout)
    # TLS 1.2 ties the certificate's curve (P-256) to the same list, so the
    # client offers P-256 too, after the group it prefers: the server never
    # takes secp521r1 or X448.
    for group in ("secp521r1", "X448"):
        done = host.run(s_client % (NAME, "-tls1_2", group + ":prime256v1"))
        assert done.rc == 0 and temp_key(done.stdout) == "prime256v1", (group, done.stdout)
    done = host.run(s_client % (NAME, "-tls1_2", "X25519:prime256v1"))
    assert done.rc == 0 and temp_key(done.stdout) == "X25519", done.stdout


@pytest.mark.parametrize("name", HOSTS)
def test_hsts_is_sent_for_two_years_with_subdomains(scans, name):
    hsts = attempt(scans, name, ScanCommand.HTTP_HEADERS).strict_transport_security_header
    assert hsts is not None
    assert hsts.max_age >= TWO_YEARS, hsts.max_age
    assert hsts.include_subdomains


# --- a certificate from a CA, through the role's variables ----------------------


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aiquiz policy test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject, key, issuer=None, issuer_key=None, ca=False, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(issuer.subject if issuer is not None else _name(subject))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=30 if not ca else 365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   (issuer_key or key).public_key()), critical=False))
    if not ca:
        builder = (builder
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _put(host, path, data, mode):
    done = host.run("echo %s | base64 -d > %s && chmod %s %s", base64.b64encode(data).decode(), path, mode, path)
    assert done.rc == 0, done.stderr


@pytest.fixture(scope="module")
def ca_issued(tmp_path_factory):
    """Each instance serves a leaf of its own from a root and an intermediate made here."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _issue("policy test root", root_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _issue("policy test intermediate", inter_key, root, root_key, ca=True)
    root_file = tmp_path_factory.mktemp("ca") / "issuing-ca.pem"
    root_file.write_bytes(_pem(root))
    serials = {}
    for name in HOSTS:
        host = get(name)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _issue(NAME, leaf_key, inter, inter_key, sans=[NAME, "www." + NAME])
        serials[name] = leaf.serial_number
        assert host.run("install -d -m 0700 %s", ISSUED).rc == 0
        _put(host, ISSUED + "/fullchain.pem", _pem(leaf, inter), "0644")
        _put(host, ISSUED + "/ca.pem", _pem(root), "0644")
        _put(host, ISSUED + "/privkey.pem", leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), "0600")
    rc, out = ansible_playbook(SCENARIO / "converge.yml", {
        "edge_tls_certificate": ISSUED + "/fullchain.pem", "edge_tls_certificate_key": ISSUED + "/privkey.pem"})
    assert rc == 0, out
    yield {"root_file": root_file, "serials": serials}
    rc, out = ansible_playbook(SCENARIO / "converge.yml")
    for name in HOSTS:
        get(name).run("rm -rf %s /tmp/aiquiz-certs-test", ISSUED)
    assert rc == 0, out


@pytest.fixture(scope="module")
def chain_scans(ca_issued):
    return scan([ScanCommand.CERTIFICATE_INFO], ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_issued["root_file"])))


@pytest.mark.parametrize("name", HOSTS)
def test_chain_verifies_against_the_issuing_ca_for_the_name(ca_issued, chain_scans, name):
    deployment = attempt(chain_scans, name, ScanCommand.CERTIFICATE_INFO).certificate_deployments[0]
    received = deployment.received_certificate_chain
    assert [c.serial_number for c in received][:1] == [ca_issued["serials"][name]]
    # The edge sends the leaf and the intermediate, not the root.
    assert [c.subject.rfc4514_string() for c in received] == [
        "CN=%s,O=aiquiz policy test" % NAME, "CN=policy test intermediate,O=aiquiz policy test"]
    assert deployment.received_chain_has_valid_order
    supplied = [r for r in deployment.path_validation_results
                if r.trust_store.path == ca_issued["root_file"]]
    assert len(supplied) == 1
    # sslyze's verifier (cryptography's, RFC 5280 and the CA/Browser Forum
    # profile) also checks the certificate names edge.molecule.test.
    assert supplied[0].was_validation_successful, supplied[0].validation_error
    assert len(supplied[0].verified_certificate_chain) == 3
    others = [r for r in deployment.path_validation_results if r not in supplied]
    assert others and not any(r.was_validation_successful for r in others)


@pytest.fixture(scope="module")
def mozilla_scans(ca_issued):
    return scan(SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER, ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_issued["root_file"])))


@pytest.mark.parametrize("name", HOSTS)
def test_mozilla_intermediate_compliance(mozilla_scans, name):
    # The whole check (protocols, suites, groups, certificate, known
    # vulnerabilities); the certificate chains to the CA made here.
    try:
        check_server_against_tls_configuration(mozilla_scans[name], INTERMEDIATE)
    except ServerNotCompliantWithTlsConfiguration as error:
        pytest.fail("%s: %s" % (name, error.issues))


def inventory_on(name, args):
    """aiquiz.ops.certificate_inventory run on the instance, ad hoc; its result."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        ["ansible", name, "-i", os.path.dirname(INVENTORY), "-m", "aiquiz.ops.certificate_inventory",
         "-a", json.dumps(args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Other callbacks may print after the JSON document.
    document, _end = json.JSONDecoder().raw_decode(proc.stdout)
    return document["plays"][0]["tasks"][0]["hosts"][name]


@pytest.mark.parametrize("name", HOSTS)
def test_certificate_inventory_on_the_host_agrees_with_sslyze(ca_issued, chain_scans, name):
    serial = ca_issued["serials"][name]
    assert attempt(chain_scans, name, ScanCommand.CERTIFICATE_INFO).certificate_deployments[0] \
        .received_certificate_chain[0].serial_number == serial
    host = get(name)
    textfile = "/tmp/aiquiz-certs-test/certs.prom"
    host.run("rm -rf /tmp/aiquiz-certs-test")
    cert, key = ISSUED + "/fullchain.pem", ISSUED + "/privkey.pem"
    args = {"paths": [cert], "keys": {cert: key}, "ca_file": ISSUED + "/ca.pem", "textfile": textfile,
            "endpoints": [{"host": "127.0.0.1", "port": 443, "server_name": NAME}]}
    result = inventory_on(name, args)
    assert result["changed"] is True
    on_disk, served = result["certificates"]
    assert served["source"] == "%s@127.0.0.1:443" % NAME
    assert served["serial"] == on_disk["serial"] == "%x" % serial
    assert served["subject"] == "CN=%s,O=aiquiz policy test" % NAME
    assert served["sans"] == ["DNS:edge.molecule.test", "DNS:www.edge.molecule.test"]
    assert (served["chain_valid"], served["chain_length"], served["error"]) == (True, 2, None)
    assert (on_disk["key_match"], on_disk["chain_valid"], on_disk["error"]) == (True, True, None)
    assert 29 < served["days_left"] <= 30
    assert result["expiring"] == []
    # Nothing of the private key is part of the result.
    text = host.check_output("openssl pkey -in %s -noout -text", key)
    private = "".join(text.split("priv:")[1].split("pub:")[0].split()).replace(":", "")
    assert len(private) >= 60
    out = json.dumps(result).lower()
    assert private not in out and str(int(private, 16)) not in out and "private key" not in out
    metrics = host.file(textfile)
    assert (metrics.mode, metrics.user) == (0o644, "root")
    assert ('aiquiz_certificate_expiry_seconds{source="%s@127.0.0.1:443",subject="CN=%s,O=aiquiz policy test",'
            'serial="%x"}' % (NAME, NAME, serial)) in metrics.content_string
    # A second run finds the same content and changes nothing.
    assert inventory_on(name, args)["changed"] is False
