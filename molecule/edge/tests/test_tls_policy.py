"""The edge's TLS policy seen from outside, with sslyze, and its certificate
seen from inside, with aiquiz.ops.certificate_inventory.

sslyze (in the project's venv) scans each instance from the controller at the
instance's address on the network Docker gave the scenario's containers (they
publish no port), with the SNI name edge.molecule.test: only TLS 1.2 and 1.3,
no weak or non-forward-secret cipher suite, HSTS of at least a year, and a
chain that verifies against the issuing CA (the bootstrap certificate is its
own issuer). Then the module runs on each instance, against the same
endpoint and the files nginx serves, and must agree with sslyze.
"""

import json
import os
import pathlib
import subprocess

import pytest
import testinfra
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

ROOT = pathlib.Path(__file__).resolve().parents[3]
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("edge-debian12", "edge-debian13")
NAME = "edge.molecule.test"
CERT = "/etc/nginx/aiquiz/bootstrap/edge.crt"
KEY = "/etc/nginx/aiquiz/bootstrap/edge.key"
ONE_YEAR = 365 * 24 * 3600
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


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """sslyze's result for each instance, scanned side by side."""
    requests = {}
    for name in HOSTS:
        ca_file = tmp_path_factory.mktemp(name) / "issuing-ca.pem"
        # Self-signed: the certificate is its own issuing CA.
        ca_file.write_bytes(get(name).file(CERT).content)
        commands = set(REFUSED_PROTOCOLS.values()) | set(ACCEPTED_PROTOCOLS.values()) | {
            ScanCommand.HTTP_HEADERS, ScanCommand.CERTIFICATE_INFO}
        requests[name] = ServerScanRequest(
            server_location=ServerNetworkLocation(NAME, 443, ip_address=container_address(name)),
            scan_commands=commands,
            scan_commands_extra_arguments=ScanCommandsExtraArguments(
                certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file)))
    scanner = Scanner()
    scanner.queue_scans(list(requests.values()))
    by_uuid = dict((request.uuid, name) for name, request in requests.items())
    results = dict((by_uuid[result.uuid], result) for result in scanner.get_results())
    assert sorted(results) == sorted(HOSTS)
    for name, result in results.items():
        assert result.scan_status == ServerScanStatusEnum.COMPLETED, (name, result.connectivity_error_trace)
    return results


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
        # Forward secrecy: an ephemeral key exchange, of at least 256 bits.
        assert accepted.ephemeral_key is not None, suite
        assert accepted.ephemeral_key.size >= 256, (suite, accepted.ephemeral_key.size)
    for accepted in tls12:
        suite = accepted.cipher_suite.name
        assert suite.startswith(("TLS_ECDHE_", "TLS_DHE_")), suite
        assert suite.endswith(("_GCM_SHA256", "_GCM_SHA384", "_CHACHA20_POLY1305_SHA256")), suite


@pytest.mark.parametrize("name", HOSTS)
def test_hsts_is_sent_for_at_least_a_year(scans, name):
    hsts = attempt(scans, name, ScanCommand.HTTP_HEADERS).strict_transport_security_header
    assert hsts is not None
    assert hsts.max_age >= ONE_YEAR, hsts.max_age


@pytest.mark.parametrize("name", HOSTS)
def test_chain_verifies_against_the_issuing_ca_and_names_the_host(scans, name):
    info = attempt(scans, name, ScanCommand.CERTIFICATE_INFO)
    deployment = info.certificate_deployments[0]
    assert deployment.leaf_certificate_subject_matches_hostname
    custom = [result for result in deployment.path_validation_results
              if result.trust_store.path.name == "issuing-ca.pem"]
    assert len(custom) == 1
    assert custom[0].was_validation_successful, custom[0].validation_error
    assert custom[0].verified_certificate_chain
    # The public trust stores do not know the bootstrap issuer.
    others = [r for r in deployment.path_validation_results if r not in custom]
    assert others and not any(r.was_validation_successful for r in others)


def inventory_on(name, args):
    """aiquiz.ops.certificate_inventory run on the instance, ad hoc; its JSON result."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        ["ansible", name, "-i", os.path.dirname(INVENTORY), "-m", "aiquiz.ops.certificate_inventory",
         "-a", json.dumps(args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][name]


@pytest.mark.parametrize("name", HOSTS)
def test_certificate_inventory_on_the_host_agrees_with_sslyze(scans, name):
    leaf = attempt(scans, name, ScanCommand.CERTIFICATE_INFO).certificate_deployments[0] \
        .received_certificate_chain[0]
    textfile = "/tmp/aiquiz-certs-test/certs.prom"
    get(name).run("rm -rf /tmp/aiquiz-certs-test")
    args = {"paths": [CERT], "keys": {CERT: KEY}, "ca_file": CERT, "textfile": textfile,
            "endpoints": [{"host": "127.0.0.1", "port": 443, "server_name": NAME}]}
    result = inventory_on(name, args)
    assert result["changed"] is True
    served, on_disk = result["certificates"][1], result["certificates"][0]
    assert served["source"] == "%s@127.0.0.1:443" % NAME
    assert served["serial"] == on_disk["serial"] == "%x" % leaf.serial_number
    assert served["sans"] == ["DNS:edge.molecule.test", "DNS:www.edge.molecule.test"]
    assert (served["chain_valid"], served["error"]) == (True, None)
    assert (on_disk["key_match"], on_disk["chain_valid"], on_disk["error"]) == (True, True, None)
    assert 360 < served["days_left"] <= 365
    assert result["expiring"] == []
    # Nothing of the private key is part of the result.
    text = get(name).check_output("openssl pkey -in %s -noout -text", KEY)
    private = "".join(text.split("priv:")[1].split("pub:")[0].split()).replace(":", "")
    assert len(private) >= 60
    out = json.dumps(result).lower()
    assert private not in out and str(int(private, 16)) not in out and "private key" not in out
    metrics = get(name).file(textfile)
    assert metrics.mode == 0o644
    assert ('aiquiz_certificate_expiry_seconds{source="%s@127.0.0.1:443",subject="CN=%s",serial="%x"}'
            % (NAME, NAME, leaf.serial_number)) in metrics.content_string
    # A second run finds the same content and changes nothing.
    assert inventory_on(name, args)["changed"] is False
    get(name).run("rm -rf /tmp/aiquiz-certs-test")
