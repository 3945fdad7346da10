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
