"""The sample workload on the lab, end to end (docs/admin/lab.md, "The sample workload").

On app1's own Docker engine, the images pulled from registry1 run against the
data services on data1 (playbooks/data.yml) over TLS, checking the services'
certificates against the lab's own CA (its root at tls_ca_trust_file on app1,
mounted into the containers): migrations (twice), readiness, POST then GET,
the worker consuming events, 1.0.0 on the expanded schema, 1.2.0 failing
readiness, degraded Redis/RabbitMQ, a SIGTERM drain, and plaintext URLs refused.

Needs the lab (`make lab-up`); it runs playbooks/data.yml and
`labctl workloads` itself (both idempotent: 20-45 s and 1 s when nothing changed) and
installs docker.io on app1 with the lab's engine settings when it is missing.
Everything it creates (containers and network named wlproof-*, a database
schema, a queue) is removed at the end; its Redis keys expire. About 1 to 1.5 minutes warm.

    .venv/bin/pytest -q tests/workloads/test_workload.py
"""

import json
import os
import pathlib
import secrets
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP = "aiquiz-lab-app1"
DATA = "aiquiz-lab-data1"
REG = "registry1:5000/aiquiz"
# The lab's public passwords (inventories/lab/group_vars/all.yml).
DB_PW, REDIS_PW, AMQP_PW = "quiz-lab-db-password", "quiz-lab-redis-password", "quiz-lab-amqp-password"
PREFIX = "wlproof"
# The own CA's root on app1 (tls_ca_trust_file of the lab inventory) and where
# the containers see it (QUIZ_TLS_CA_FILE), as compose_app_services mount it.
CA_HOST, CA_CONTAINER = "/etc/aiquiz/tls/aiquiz-ca.pem", "/etc/quiz/tls/ca.pem"
PORTS = {"api11": 8091, "api10": 8092, "api12": 8093, "web": 8094, "degraded": 8095, "drain": 8096}


def sh(*cmd, timeout=300, check=True, input=None):  # pylint: disable=redefined-builtin
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False, input=input,
                          cwd=ROOT)
    if check and proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise AssertionError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode, tail))
    return proc


def on_app(*cmd, **kw):
    return sh("docker", "exec", APP, *cmd, **kw)


def inner(*args, **kw):
    """The docker CLI of app1's own engine."""
    return on_app("docker", *args, **kw)


def http(port, path, method="GET", body=None, timeout=10):
    """(status, headers, body) of a request from app1 to 127.0.0.1:port (curl on app1)."""
    cmd = ["curl", "-sS", "-m", str(timeout), "-o", "-", "-D", "/dev/stderr", "-w", "\n%{http_code}",
           "-X", method, "http://127.0.0.1:%d%s" % (port, path)]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    proc = on_app(*cmd, check=False, timeout=timeout + 10)
    out, _sep, status = proc.stdout.rpartition("\n")
    headers = {}
    for line in proc.stderr.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return int(status or 0), headers, out


def http_json(port, path, **kw):
    status, headers, out = http(port, path, **kw)
    try:
        return status, headers, json.loads(out)
    except ValueError:
        return status, headers, out


def wait_for(port, path, want, deadline=30):
    end = time.monotonic() + deadline
    status = None
    while time.monotonic() < end:
        status, _h, body = http_json(port, path, timeout=3)
        if status == want:
            return body
        time.sleep(0.5)
    raise AssertionError("%s on port %d: status %s, wanted %d" % (path, port, status, want))


@pytest.fixture(scope="module")
def lab():
    sh(sys.executable, "tests/lab/labctl.py", "up")
    env = dict(os.environ, PATH=str(ROOT / ".venv" / "bin") + os.pathsep + os.environ.get("PATH", ""),
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    proc = subprocess.run(["ansible-playbook", "-i", "inventories/lab", "playbooks/data.yml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    digests = json.loads(sh(sys.executable, "tests/lab/labctl.py", "workloads").stdout)
    assert set(digests) == {"quiz-api", "quiz-web", "quiz-worker"}
    if on_app("sh", "-c", "command -v docker", check=False).returncode != 0:
        # What the docker role does on app hosts, with the lab inventory's engine settings.
        on_app("sh", "-c", "mkdir -p /etc/systemd/system/docker.service.d /etc/docker && "
               "printf '[Service]\\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\\n' "
               "> /etc/systemd/system/docker.service.d/aiquiz-lab.conf && "
               "printf '{\"insecure-registries\": [\"registry1:5000\"]}\\n' > /etc/docker/daemon.json && "
               "export DEBIAN_FRONTEND=noninteractive && "
               "{ apt-get install -y -q docker.io docker-cli || "
               "{ apt-get update -q && apt-get install -y -q docker.io docker-cli; }; } >/tmp/wlproof-apt.log 2>&1 "
               "&& systemctl daemon-reload && systemctl restart docker", timeout=600)
    data_ip = sh("docker", "inspect", "--format", "{{(index .NetworkSettings.Networks \"aiquiz-lab\").IPAddress}}",
                 DATA).stdout.strip()
    schema = "%s_%s" % (PREFIX, secrets.token_hex(4))
    psql = ["docker", "exec", DATA, "su", "postgres", "-c"]
    sh(*psql, "psql -q -v ON_ERROR_STOP=1 -d quiz -c 'CREATE SCHEMA %s AUTHORIZATION quiz'" % schema)
    cleanup()
    inner("network", "create", PREFIX)
    # A schema of its own: the test starts from an empty database and leaves the lab's alone.
    db = "postgresql://quiz:%s@%s:5432/quiz?options=-csearch_path%%3D%s" % (DB_PW, data_ip, schema)
    queue = "%s.events" % schema
    ctx = {
        "data_ip": data_ip, "schema": schema,
        "env": {"QUIZ_DATABASE_URL": db, "QUIZ_REDIS_URL": "rediss://:%s@%s:6379/0" % (REDIS_PW, data_ip),
                "QUIZ_AMQP_URL": "amqps://quiz:%s@%s:5671/%%2F" % (AMQP_PW, data_ip),
                "QUIZ_TLS_CA_FILE": CA_CONTAINER,
                "QUIZ_EVENTS_QUEUE": queue, "QUIZ_CACHE_PREFIX": schema},
    }
    for image in ("quiz-api:1.0.0", "quiz-api:1.1.0", "quiz-api:1.2.0", "quiz-web:1.1.0", "quiz-worker:1.1.0"):
        inner("pull", "-q", "%s/%s" % (REG, image))
    yield ctx
    cleanup()
    sh(*psql, "psql -q -d quiz -c 'DROP SCHEMA %s CASCADE'" % schema, check=False)
    sh("docker", "exec", DATA, "rabbitmqctl", "-q", "delete_queue", queue, check=False, timeout=60)


def cleanup():
    names = inner("ps", "-aq", "--filter", "name=^%s-" % PREFIX).stdout.split()
    if names:
        inner("rm", "-f", *names)
    inner("network", "rm", PREFIX, check=False)


def run_args(ctx, name, image, port=None, env=None):
    args = ["run", "-d", "--name", "%s-%s" % (PREFIX, name), "--network", PREFIX, "--network-alias", name,
            "-v", "%s:%s:ro" % (CA_HOST, CA_CONTAINER)]
    if port:
        args += ["-p", "127.0.0.1:%d:8080" % port]
    for key, value in dict(ctx["env"], **(env or {})).items():
        args += ["-e", "%s=%s" % (key, value)]
    return args + ["%s/%s" % (REG, image)]


def migrate(ctx, image):
    args = ["run", "--rm", "--network", PREFIX, "-v", "%s:%s:ro" % (CA_HOST, CA_CONTAINER)]
    for key, value in ctx["env"].items():
        args += ["-e", "%s=%s" % (key, value)]
    proc = inner(*args, "%s/%s" % (REG, image), "migrate")
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # stdout: the result line only; logs go to stderr
    return json.loads(lines[0])


def test_migrate_applies_both_migrations_once(lab):
    assert migrate(lab, "quiz-api:1.1.0") == {"applied": ["001_quizzes", "002_quiz_category"], "schema": 2}
    assert migrate(lab, "quiz-api:1.1.0") == {"applied": [], "schema": 2}
    # The older release's migrate knows only 001 and leaves schema 2 alone.
    assert migrate(lab, "quiz-api:1.0.0") == {"applied": [], "schema": 2}


def test_api_is_ready_and_serves_post_then_get(lab):
    inner(*run_args(lab, "api", "quiz-api:1.1.0", PORTS["api11"]))
    ready = wait_for(PORTS["api11"], "/readyz", 200)
    assert ready["checks"] == {"database": "ok", "schema": 2, "schema_required": 2, "redis": "ok", "rabbitmq": "ok"}
    assert http_json(PORTS["api11"], "/version")[2] == {"release": "1.1.0", "schema": 2, "schema_required": 2}
    status, headers, quiz = http_json(PORTS["api11"], "/api/quizzes", method="POST",
                                      body={"title": "Capitals", "category": "geo", "questions": [{"q": "?"}]})
    assert status == 201, quiz
    assert quiz["title"] == "Capitals" and quiz["category"] == "geo"
    assert headers["location"] == "/api/quizzes/%d" % quiz["id"]
    lab["quiz_id"] = quiz["id"]
    first = http_json(PORTS["api11"], "/api/quizzes/%d" % quiz["id"])
    second = http_json(PORTS["api11"], "/api/quizzes/%d" % quiz["id"])
    assert first[0] == second[0] == 200 and first[2] == second[2] == quiz
    assert (first[1]["x-cache"], second[1]["x-cache"]) == ("miss", "hit")  # Redis cache
    assert [q["id"] for q in http_json(PORTS["api11"], "/api/quizzes")[2]["quizzes"]] == [quiz["id"]]
    assert http_json(PORTS["api11"], "/api/quizzes", method="POST", body={"title": ""})[0] == 400
    assert http_json(PORTS["api11"], "/api/quizzes/999999")[0] == 404


def test_worker_consumes_the_event(lab):
    inner(*run_args(lab, "worker", "quiz-worker:1.1.0"))
    end = time.monotonic() + 30
    stats = None
    while time.monotonic() < end:
        stats = http_json(PORTS["api11"], "/api/stats")[2]
        if stats.get("events_consumed", {}).get("quiz.created", 0) >= 1:
            break
        time.sleep(0.5)
    assert stats["events_consumed"] == {"quiz.created": 1} and stats["events_pending"] == 0, stats
    logs = inner("logs", "%s-worker" % PREFIX).stdout.splitlines()
    assert any(json.loads(line)["msg"] == "event recorded" for line in logs if line.startswith("{"))


def test_web_renders_the_api(lab):
    inner(*run_args(lab, "web", "quiz-web:1.1.0", PORTS["web"], env={"QUIZ_API_URL": "http://api:8080"}))
    wait_for(PORTS["web"], "/readyz", 200)
    status, headers, page = http(PORTS["web"], "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "Capitals" in page and "web 1.1.0" in page


def test_previous_release_runs_on_the_expanded_schema(lab):
    inner(*run_args(lab, "api10", "quiz-api:1.0.0", PORTS["api10"]))
    ready = wait_for(PORTS["api10"], "/readyz", 200)
    assert ready["checks"]["schema"] == 2 and ready["checks"]["schema_required"] == 1
    status, _h, old = http_json(PORTS["api10"], "/api/quizzes", method="POST", body={"title": "Rivers"})
    assert status == 201 and "category" not in old
    # 1.1.0 reads what 1.0.0 wrote (category NULL) as the default.
    assert http_json(PORTS["api11"], "/api/quizzes/%d" % old["id"])[2]["category"] == "general"


def test_release_1_2_0_fails_readiness_but_is_alive(lab):
    inner(*run_args(lab, "api12", "quiz-api:1.2.0", PORTS["api12"]))
    wait_for(PORTS["api12"], "/healthz", 200)
    status, _h, body = http_json(PORTS["api12"], "/readyz")
    assert status == 503 and body["ready"] is False and "FAIL_READY" in body["reason"]
    assert http_json(PORTS["api12"], "/version")[2]["release"] == "1.2.0"


def test_api_degrades_without_redis_and_rabbitmq(lab):
    ip = lab["data_ip"]
    inner(*run_args(lab, "degraded", "quiz-api:1.1.0", PORTS["degraded"], env={
        "QUIZ_REDIS_URL": "rediss://:x@%s:6390/0" % ip, "QUIZ_AMQP_URL": "amqps://quiz:x@%s:5673/%%2F" % ip}))
    ready = wait_for(PORTS["degraded"], "/readyz", 200)
    assert ready["checks"]["database"] == "ok"
    started = time.monotonic()
    status, _h, quiz = http_json(PORTS["degraded"], "/api/quizzes", method="POST", body={"title": "Offline"})
    assert status == 201, quiz
    status, headers, _b = http_json(PORTS["degraded"], "/api/quizzes/%d" % quiz["id"])
    assert status == 200 and headers["x-cache"] == "miss"
    assert time.monotonic() - started < 5
    checks = http_json(PORTS["degraded"], "/readyz")[2]["checks"]
    assert checks["redis"] == "down"
    assert http_json(PORTS["degraded"], "/healthz")[0] == 200
    # The event waits in the outbox; the healthy api publishes it and the worker records it.
    end = time.monotonic() + 30
    while time.monotonic() < end:
        stats = http_json(PORTS["api11"], "/api/stats")[2]
        if stats["events_consumed"].get("quiz.created") == 3:
            break
        time.sleep(0.5)
    assert stats["events_consumed"] == {"quiz.created": 3} and stats["events_pending"] == 0, stats


def test_sigterm_drains_in_flight_requests(lab):
    inner(*run_args(lab, "drain", "quiz-api:1.1.0", PORTS["drain"], env={"QUIZ_DEBUG_ENDPOINTS": "1"}))
    wait_for(PORTS["drain"], "/readyz", 200)
    # A 2 s request in flight, then SIGTERM: the request completes, new ones
    # are refused, and the process exits 0 well within 5 s.
    script = ("curl -sS -m 10 -o /tmp/wlproof-slow.out -w '%%{http_code}' "
              "http://127.0.0.1:%d/debug/sleep?ms=2000 > /tmp/wlproof-slow.code & "
              "sleep 0.5; t0=$(date +%%s%%N); docker kill -s TERM %s-drain >/dev/null; "
              "sleep 1.0; curl -s -m 2 -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/healthz; echo; "
              "docker wait %s-drain; t1=$(date +%%s%%N); wait; "
              "echo $(( (t1 - t0) / 1000000 )); cat /tmp/wlproof-slow.code; echo"
              % (PORTS["drain"], PREFIX, PORTS["drain"], PREFIX))
    out = on_app("sh", "-c", script, timeout=60).stdout.split("\n")
    after_term, exit_code, stop_ms, slow_status = out[0], out[1], int(out[2]), out[3]
    assert slow_status == "200", out
    assert after_term == "000", out  # new connections refused
    assert exit_code == "0" and stop_ms < 5000, out
    logs = [json.loads(x) for x in inner("logs", "%s-drain" % PREFIX).stdout.splitlines() if x.startswith("{")]
    stopped = [x for x in logs if x["msg"] == "stopped"]
    assert stopped and stopped[0]["in_flight_dropped"] == 0, logs[-3:]


def test_plaintext_urls_are_refused_at_start(lab):
    # With the CA mounted, a redis:// or amqp:// URL would send passwords in
    # clear: the API says so and does not start.
    ip = lab["data_ip"]
    args = run_args(lab, "plain", "quiz-api:1.1.0", env={
        "QUIZ_REDIS_URL": "redis://:x@%s:6379/0" % ip, "QUIZ_AMQP_URL": "amqp://quiz:x@%s:5672/%%2F" % ip})
    args[1] = "--rm"  # run in the foreground: its exit code and log
    proc = inner(*args, check=False, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "use rediss://" in proc.stdout and "use amqps://" in proc.stdout, proc.stdout
