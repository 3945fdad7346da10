"""The sample workload's pure logic, its HTTP server's drain and labctl's
workload cache key, without Docker or data services (loopback only)."""

import http.client
import importlib.util
import json
import pathlib
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "tests" / "workloads"
sys.path.insert(0, str(WORKLOADS / "common"))

import quizcommon as qc  # noqa: E402  pylint: disable=wrong-import-position


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("release, schema", [("1.0.0", 1), ("1.0.9", 1), ("1.1.0", 2), ("1.2.0", 2), ("2.0", 2),
                                             ("1.1.0-rc1", 2), ("junk", 1)])
def test_each_release_needs_its_schema(release, schema):
    assert qc.required_schema(release) == schema


def test_migrations_are_numbered_in_order_and_only_expand():
    versions = [m[0] for m in qc.MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    for _version, _name, statements in qc.MIGRATIONS:
        assert not [stmt for stmt in statements if "DROP " in stmt.upper()]
    # 002 adds a nullable column: 1.0.0 keeps inserting rows without it.
    added = [s for s in qc.MIGRATIONS[1][2] if "ADD COLUMN" in s]
    assert added and all("NOT NULL" not in s for s in added)


def test_urls_are_logged_without_passwords():
    assert qc.redact("postgresql://quiz:secret@data1:5432/quiz") == "postgresql://quiz:***@data1:5432/quiz"
    assert qc.redact("redis://:secret@data1:6379/0") == "redis://:***@data1:6379/0"
    assert qc.redact("") == ""


class SlowHandler(qc.Handler):
    def do_GET(self):  # noqa: N802
        if self.path.startswith("/slow"):
            time.sleep(1.0)
        self.respond(200, {"path": self.path})


@pytest.fixture
def server():
    srv = qc.Server(("127.0.0.1", 0), SlowHandler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    if not srv.draining:
        srv.shutdown()
    srv.server_close()


def test_drain_finishes_in_flight_requests_and_refuses_new_ones(server):
    port = server.server_address[1]
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    idle.request("GET", "/fast")
    assert idle.getresponse().read()  # a keep-alive connection, now idle
    results = {}

    def slow():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/slow")
        resp = conn.getresponse()
        results["slow"] = (resp.status, resp.getheader("Connection"), json.loads(resp.read()))

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)
    started = time.monotonic()
    left = server.drain(4.0)
    took = time.monotonic() - started
    worker.join()
    assert left == 0 and took < 2.0
    assert results["slow"] == (200, "close", {"path": "/slow"})
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/fast")


def test_api_stays_alive_and_not_ready_without_a_database(monkeypatch):
    monkeypatch.delenv("QUIZ_DATABASE_URL", raising=False)
    api = load("quiz_api_under_test", WORKLOADS / "quiz-api" / "app.py")
    srv = qc.Server(("127.0.0.1", 0), api.ApiHandler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=5)
        answers = {}
        for path in ("/healthz", "/readyz", "/version", "/api/quizzes", "/nope"):
            conn.request("GET", path)
            resp = conn.getresponse()
            answers[path] = (resp.status, json.loads(resp.read()))
    finally:
        srv.shutdown()
        srv.server_close()
    assert answers["/healthz"][0] == 200
    assert answers["/readyz"][0] == 503 and answers["/readyz"][1]["checks"]["database"] == "down"
    assert answers["/version"] == (200, {"release": qc.RELEASE, "schema": None,
                                         "schema_required": qc.required_schema()})
    assert answers["/api/quizzes"][0] == 503
    assert answers["/nope"][0] == 404


def test_workload_cache_key_follows_content_and_tag(monkeypatch, tmp_path):
    labctl = load("labctl_under_test", ROOT / "tests" / "lab" / "labctl.py")
    monkeypatch.setattr(labctl, "image_id", lambda ref: "sha256:runtime")
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "quizcommon.py").write_text("x = 1\n")
    (tmp_path / "test_workload.py").write_text("ignored\n")
    monkeypatch.setattr(labctl, "WORKLOADS", str(tmp_path))
    first = labctl.workloads_hash("1.1.0")
    assert first == labctl.workloads_hash("1.1.0")
    assert first != labctl.workloads_hash("1.2.0")
    (tmp_path / "test_workload.py").write_text("changed tests do not rebuild images\n")
    assert labctl.workloads_hash("1.1.0") == first
    (tmp_path / "common" / "quizcommon.py").write_text("x = 2\n")
    second = labctl.workloads_hash("1.1.0")
    assert second != first
    monkeypatch.setattr(labctl, "image_id", lambda ref: "sha256:new-runtime")
    assert labctl.workloads_hash("1.1.0") != second  # a new runtime image rebuilds
    assert labctl.FAIL_READY_TAGS == ("1.2.0",)


# --------------------------------------------------------------------------
# TLS to the data services: the client settings the workload ships, tried
# against real TLS servers on loopback.

def _key():
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_key, name, issuer_key=None, issuer_name=None, sans=(), ca=False):
    import datetime as dt  # pylint: disable=import-outside-toplevel
    import ipaddress  # pylint: disable=import-outside-toplevel
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s) for s in sans]),
            critical=False)
    return builder.sign(issuer_key or subject_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Our CA, another CA, and a server certificate for 127.0.0.1 from each."""
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    d = tmp_path_factory.mktemp("pki")
    files = {}
    for ca_name in ("ours", "other"):
        ca_key = _key()
        ca_cert = _cert(ca_key, "%s CA" % ca_name, ca=True)
        leaf_key = _key()
        leaf = _cert(leaf_key, "data1", ca_key, "%s CA" % ca_name, sans=("127.0.0.1", "data1"))
        (d / ("%s-ca.pem" % ca_name)).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        (d / ("%s-leaf.pem" % ca_name)).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (d / ("%s-leaf.key" % ca_name)).write_bytes(leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        files[ca_name] = {k: str(d / ("%s-%s" % (ca_name, k))) for k in ("ca.pem", "leaf.pem", "leaf.key")}
    return files


@pytest.fixture
def tls_server(pki):
    """A TLS server on 127.0.0.1 presenting the leaf of `ours` or `other`; answers every handshake."""
    import socket as socketlib  # pylint: disable=import-outside-toplevel
    import ssl as ssllib  # pylint: disable=import-outside-toplevel
    servers = []

    def start(which):
        ctx = ssllib.SSLContext(ssllib.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki[which]["leaf.pem"], pki[which]["leaf.key"])
        srv = socketlib.create_server(("127.0.0.1", 0))
        srv.settimeout(0.2)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                try:
                    conn, _peer = srv.accept()
                except OSError:
                    continue
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (OSError, ssllib.SSLError):
                    pass
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        servers.append((srv, stop, thread))
        return srv.getsockname()[1]
    yield start
    for srv, stop, thread in servers:
        stop.set()
        thread.join(2)
        srv.close()


def handshake(ctx, port, name):
    import socket as socketlib  # pylint: disable=import-outside-toplevel
    with socketlib.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            return tls.recv(5)


def test_tls_context_accepts_our_ca_for_the_right_name(pki, tls_server):
    port = tls_server("ours")
    ctx = qc.tls_context(pki["ours"]["ca.pem"])
    assert handshake(ctx, port, "127.0.0.1") == b"hello"
    assert handshake(ctx, port, "data1") == b"hello"
    assert ctx.minimum_version >= qc.ssl.TLSVersion.TLSv1_2


def test_tls_context_refuses_a_server_with_a_certificate_from_another_ca(pki, tls_server):
    port = tls_server("other")
    with pytest.raises(qc.ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(qc.tls_context(pki["ours"]["ca.pem"]), port, "127.0.0.1")


def test_tls_context_refuses_our_certificate_for_another_name(pki, tls_server):
    port = tls_server("ours")
    with pytest.raises(qc.ssl.SSLCertVerificationError, match="mismatch|match"):
        handshake(qc.tls_context(pki["ours"]["ca.pem"]), port, "data2")


def test_postgresql_is_verify_full_with_a_ca_whatever_the_url_says():
    assert qc.pg_tls_args("/ca.pem") == {"sslmode": "verify-full", "sslrootcert": "/ca.pem"}
    assert qc.pg_tls_args("") == {}


def test_redis_urls():
    assert qc.redis_tls_args("rediss://:pw@data1:6379/0", "/ca.pem") == {
        "ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": "/ca.pem"}
    # rediss:// without a CA file still checks, against the system's CAs.
    assert qc.redis_tls_args("rediss://:pw@data1:6379/0", "") == {
        "ssl_cert_reqs": "required", "ssl_check_hostname": True}
    assert qc.redis_tls_args("redis://:pw@127.0.0.1:6379/0", "") == {}
    with pytest.raises(qc.InsecureURL, match="QUIZ_REDIS_URL uses redis:// .plaintext. while QUIZ_TLS_CA_FILE"):
        qc.redis_tls_args("redis://:pw@data1:6379/0", "/ca.pem")


def test_insecure_urls_are_named_at_start(pki):
    ca = pki["ours"]["ca.pem"]
    assert qc.insecure_urls("rediss://:pw@data1:6379/0", "amqps://quiz:pw@data1:5671/%2F", ca) == []
    problems = qc.insecure_urls("redis://:pw@data1:6379/0", "amqp://quiz:pw@data1:5672/%2F", ca)
    assert len(problems) == 2 and "use rediss://" in problems[0] and "use amqps://" in problems[1]
    assert "pw" not in " ".join(problems).replace("pw@", "")
    assert qc.insecure_urls("rediss://:pw@data1:6379/0", "", "/nonexistent/ca.pem") == [
        "QUIZ_TLS_CA_FILE /nonexistent/ca.pem cannot be read (is it mounted into the container?)"]
    assert qc.insecure_urls("redis://:pw@127.0.0.1:6379/0", "amqp://quiz:pw@127.0.0.1:5672/%2F", "") == []


def test_amqps_parameters_check_the_certificate_and_the_url_host(pki):
    pika = pytest.importorskip("pika")
    params = qc.amqp_parameters("amqps://quiz:pw@data1:5671/%2F", pki["ours"]["ca.pem"])
    assert isinstance(params.ssl_options, pika.SSLOptions)
    assert params.ssl_options.server_hostname == "data1"
    assert params.ssl_options.context.check_hostname and params.ssl_options.context.verify_mode == qc.ssl.CERT_REQUIRED
    with pytest.raises(qc.InsecureURL):
        qc.amqp_parameters("amqp://quiz:pw@data1:5672/%2F", pki["ours"]["ca.pem"])


@pytest.mark.parametrize("value, arguments", [("", None), ("quorum", {"x-queue-type": "quorum"}),
                                              ("classic", {"x-queue-type": "classic"})])
def test_events_queue_is_declared_with_the_operators_type(monkeypatch, value, arguments):
    monkeypatch.setenv("QUIZ_EVENTS_QUEUE_TYPE", value)
    assert qc.events_queue_arguments() == arguments


def test_an_unknown_events_queue_type_is_refused():
    with pytest.raises(ValueError, match="QUIZ_EVENTS_QUEUE_TYPE"):
        qc.events_queue_arguments("stream")
