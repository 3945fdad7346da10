"""Behaviour of the preflight role on real Debian hosts.

Each test runs the role for real (molecule/preflight/probe.yml) against the
scenario's host with one condition changed, and checks what the operator
sees and that nothing after preflight ran.
"""

import pathlib

import pytest

from conftest import ansible_playbook

PROBE = pathlib.Path(__file__).resolve().parents[1] / "probe.yml"
SENTINEL = "/root/preflight-sentinel"
CERT_TASK = "TASK [aiquiz.ops.preflight : Check the certificates' expiry]"


def run_probe(host, extra_vars=None, check=False):
    return ansible_playbook(PROBE, extra_vars, limit=host.backend.host, check=check)


@pytest.fixture(autouse=True)
def clean_sentinel(host):
    host.run("rm -f %s", SENTINEL)
    yield
    host.run("rm -f %s", SENTINEL)


def test_passing_checks_let_the_play_go_on(host):
    rc, out = run_probe(host)
    assert rc == 0, out
    assert ", 0 failed" in out
    # No certificate listed: the certificate check is skipped (not shown),
    # no second round trip (test_valid_certificates_pass... sees it run).
    assert CERT_TASK not in out
    sentinel = host.file(SENTINEL)
    assert sentinel.exists and sentinel.user == "root" and sentinel.mode == 0o600


def test_missing_required_variable_stops_before_any_change(host):
    rc, out = run_probe(host, {"preflight_required_vars": [
        {"name": "aiquiz_public_hostname", "hint": "the public name"},
        {"name": "aiquiz_release_channel", "hint": "stable or beta"}]})
    assert rc == 2, out
    name = host.backend.host
    assert "PREFLIGHT FAILED" in out
    assert "host %s, check required_var:aiquiz_release_channel" % name in out
    assert "Fix: set aiquiz_release_channel in the inventory (group_vars or host_vars): stable or beta" in out
    assert "required_var:aiquiz_public_hostname" not in out
    assert not host.file(SENTINEL).exists


def test_busy_port_is_refused_naming_the_process(host):
    unit = "preflight-busy"
    host.run("systemctl stop %s", unit)
    started = host.run("systemd-run --unit=%s python3 -m http.server 18080 --bind 127.0.0.1", unit)
    assert started.rc == 0, started.stderr
    try:
        assert host.socket("tcp://127.0.0.1:18080").is_listening or _wait_listening(host, 18080)
        rc, out = run_probe(host)
        assert rc == 2, out
        assert "check port:tcp/18080" in out
        assert "python3" in out
        assert not host.file(SENTINEL).exists
        # The same listener is accepted once it is the expected process.
        rc, out = run_probe(host, {"preflight_ports_free": [
            {"port": 18080, "allowed_processes": ["python3"]}]})
        assert rc == 0, out
        assert host.file(SENTINEL).exists
    finally:
        host.run("systemctl stop %s", unit)


def _wait_listening(host, port):
    for _attempt in range(50):
        if host.socket("tcp://127.0.0.1:%d" % port).is_listening:
            return True
        host.run("sleep 0.1")
    return False


def test_every_failed_check_is_reported_at_once(host):
    rc, out = run_probe(host, {
        "preflight_disk_checks": [{"path": "/var/lib/aiquiz-not-yet", "min_free_mb": 1 << 40}],
        "preflight_dns_names": ["localhost", "no-such-name.invalid"],
        "preflight_min_memory_available_mb": 1 << 30,
    })
    assert rc == 2, out
    for check in ("disk_free:/var/lib/aiquiz-not-yet", "dns:no-such-name.invalid", "memory_available"):
        assert "check %s" % check in out, out
    assert "dns:localhost" not in out
    assert not host.file(SENTINEL).exists


def test_check_mode_runs_the_checks_and_changes_nothing(host):
    rc, out = run_probe(host, {"preflight_required_vars": [{"name": "aiquiz_release_channel"}]}, check=True)
    assert rc == 2, out
    assert "required_var:aiquiz_release_channel" in out
    rc, out = run_probe(host, check=True)
    assert rc == 0, out
    assert not host.file(SENTINEL).exists


def test_invalid_variable_is_refused_naming_it(host):
    rc, out = run_probe(host, {"preflight_ports_free": [{"port": "https"}]})
    assert rc == 2, out
    assert "preflight_ports_free" in out
    assert not host.file(SENTINEL).exists


CERTS = "/etc/preflight-certs"


@pytest.fixture(scope="module")
def certificates(host):
    """python3-cryptography (the module's need), then an EC certificate valid
    90 days and one that expires in 2 days, each served over TLS on loopback."""
    installed = host.run("apt-get install -y -q python3-cryptography || "
                         "(apt-get update -q && apt-get install -y -q python3-cryptography)")
    assert installed.rc == 0, installed.stderr
    host.run("rm -rf %s && mkdir -p %s", CERTS, CERTS)
    for name, days in (("valid", 90), ("soon", 2)):
        made = host.run(
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days %s "
            "-subj /CN=%s.preflight.test -addext subjectAltName=DNS:%s.preflight.test "
            "-keyout %s/%s.key -out %s/%s.pem", str(days), name, name, CERTS, name, CERTS, name)
        assert made.rc == 0, made.stderr
    servers = {"valid": 18443, "soon": 18444}
    for name, port in servers.items():
        unit = "preflight-tls-%s" % name
        host.run("systemctl stop %s", unit)
        started = host.run("systemd-run --unit=%s openssl s_server -quiet -accept 127.0.0.1:%s -cert %s/%s.pem "
                           "-key %s/%s.key", unit, str(port), CERTS, name, CERTS, name)
        assert started.rc == 0, started.stderr
        assert _wait_listening(host, port)
    yield servers
    for name in servers:
        host.run("systemctl stop preflight-tls-%s", name)
    host.run("rm -rf %s", CERTS)


def test_certificate_expiring_within_the_threshold_stops_the_launch(host, certificates):
    rc, out = run_probe(host, {
        "preflight_certificates_paths": [CERTS + "/*.pem"],
        "preflight_certificates_endpoints": [
            {"host": "127.0.0.1", "port": certificates["valid"], "server_name": "valid.preflight.test"},
            {"host": "127.0.0.1", "port": certificates["soon"], "server_name": "soon.preflight.test"}]})
    assert rc == 2, out
    name = host.backend.host
    assert "PREFLIGHT FAILED" in out
    assert ("host %s, check certificate:%s/soon.pem: %s/soon.pem (CN=soon.preflight.test) expires on "
            % (name, CERTS, CERTS)) in out
    assert "in 2.0 days, within preflight_certificates_min_days (14)" in out
    assert "check certificate:soon.preflight.test@127.0.0.1:%d:" % certificates["soon"] in out
    assert "valid.pem" not in out and "valid.preflight.test@" not in out
    assert not host.file(SENTINEL).exists


def test_valid_certificates_pass_and_the_threshold_is_a_variable(host, certificates):
    rc, out = run_probe(host, {
        "preflight_certificates_paths": [CERTS + "/valid.pem"],
        "preflight_certificates_endpoints": [
            {"host": "127.0.0.1", "port": certificates["valid"], "server_name": "valid.preflight.test"}]})
    assert rc == 0, out
    assert ", 0 failed" in out and CERT_TASK in out
    assert host.file(SENTINEL).exists
    host.run("rm -f %s", SENTINEL)
    # Two days left pass a one-day threshold.
    rc, out = run_probe(host, {"preflight_certificates_paths": [CERTS + "/soon.pem"],
                               "preflight_certificates_min_days": 1})
    assert rc == 0, out
    assert host.file(SENTINEL).exists


def test_missing_certificate_or_silent_endpoint_is_refused(host, certificates):
    rc, out = run_probe(host, {
        "preflight_certificates_paths": [CERTS + "/absent.pem"],
        "preflight_certificates_endpoints": [{"host": "127.0.0.1", "port": 18445}]})
    assert rc == 2, out
    assert "check certificate:%s/absent.pem: cannot read %s/absent.pem: No such file or directory" % (
        CERTS, CERTS) in out
    assert "check certificate:127.0.0.1:18445: TLS connection to 127.0.0.1:18445 failed" in out
    assert not host.file(SENTINEL).exists
