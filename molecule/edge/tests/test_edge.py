"""Behaviour of the edge role on edge-debian12 and edge-debian13.

Each instance runs test backends on loopback (prepare.yml): quiz_web on
127.0.0.1:8010 ("web-a") and 8012 ("web-b"), quiz_api on 8011 ("api-a").
converge.yml applies the role, then each instance feeds the other one's
upstreams through the backends entry point, delegated, as compose_app does
(backends.yml). Requests go to the instance's own nginx on loopback, from
127.0.0.2 (exempt from the rate limit) unless a test says otherwise.
"""

import json
import os
import pathlib
import re
import uuid

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "molecule" / "edge"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("edge-debian12", "edge-debian13")
NAME = "edge.molecule.test"
CONF = "/etc/nginx/conf.d/aiquiz-edge.conf"
UPSTREAMS = "/etc/nginx/aiquiz/upstreams"
ACCESS_LOG = "/var/log/nginx/edge-access.log"


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def peer(name):
    """The instance that feeds this one's upstreams (backends.yml)."""
    return next(other for other in HOSTS if other != name)


def request(name, path="/", scheme="https", source="127.0.0.2"):
    """(status, headers, body) of one request to the instance's own nginx."""
    port = 443 if scheme == "https" else 80
    out = get(name).check_output(
        "curl -sk --max-time 10 -i --interface %s --resolve %s:%s:127.0.0.1 %s",
        source, NAME, str(port), "%s://%s%s" % (scheme, NAME, path))
    head, body = (out.replace("\r\n", "\n").split("\n\n", 1) + [""])[:2]
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, value = (line.split(":", 1) + [""])[:2]
        headers[key.strip().lower()] = value.strip()
    return status, headers, body.strip()


def statuses(name, count, path="/", source="127.0.0.1"):
    """Status codes of `count` requests in a row (bounded: one curl, 5 s each at most)."""
    # curl's URL globbing: one transfer per number.
    url = "https://%s%s?n=[1-%d]" % (NAME, path, count)
    out = get(name).check_output(
        "curl -sk --max-time 5 --interface %s --resolve %s:443:127.0.0.1 -o /dev/null -w '%%{http_code}\\n' %s",
        source, NAME, url)
    return [int(code) for code in out.split()]


def bodies(name, count, path="/"):
    """Bodies of `count` requests in a row, each on a connection of its own."""
    return [request(name, path)[2] for _attempt in range(count)]


def run(playbook, extra_vars=None, limit=None):
    return ansible_playbook(SCENARIO / playbook, extra_vars, limit=limit)


def md5(name, path):
    return get(name).file(path).md5sum


def master_pid(name):
    return get(name).check_output("systemctl show --property MainPID --value nginx.service").strip()


@pytest.mark.parametrize("name", HOSTS)
def test_nginx_runs_with_a_valid_configuration_and_no_default_site(name):
    host = get(name)
    assert host.run("nginx -t").rc == 0
    assert host.service("nginx").is_running
    assert host.service("nginx").is_enabled
    assert host.socket("tcp://0.0.0.0:443").is_listening
    assert host.socket("tcp://0.0.0.0:80").is_listening
    assert not host.file("/etc/nginx/sites-enabled/default").exists


@pytest.mark.parametrize("name", HOSTS)
def test_https_proxies_each_route_to_its_upstream(name):
    status, headers, body = request(name, "/")
    assert (status, body) == (200, "web-a")
    status, headers, body = request(name, "/api/")
    assert (status, body) == (200, "api-a")
    # The servers come from the peer's backends file, next to nothing else.
    files = sorted(get(name).check_output("ls %s/quiz_web %s/quiz_api", UPSTREAMS, UPSTREAMS).split())
    assert files == sorted(["%s/quiz_web:" % UPSTREAMS, "%s/quiz_api:" % UPSTREAMS] + ["%s.conf" % peer(name)] * 2)


@pytest.mark.parametrize("name", HOSTS)
def test_http_redirects_to_https_and_serves_acme_challenges(name):
    status, headers = request(name, "/quizzes?page=2", scheme="http")[:2]
    assert status == 301
    assert headers["location"] == "https://%s/quizzes?page=2" % NAME
    host = get(name)
    token = uuid.uuid4().hex
    path = "/var/www/aiquiz-acme/.well-known/acme-challenge/" + token
    host.check_output("echo %s.key > %s", token, path)
    try:
        status, headers, body = request(name, "/.well-known/acme-challenge/" + token, scheme="http")
        assert (status, body) == (200, token + ".key")
        assert headers["content-type"].startswith("text/plain")
        assert request(name, "/.well-known/acme-challenge/missing", scheme="http")[0] == 404
    finally:
        host.run("rm -f %s", path)


@pytest.mark.parametrize("name", HOSTS)
def test_security_headers_on_every_https_response(name):
    for path in ("/", "/api/"):
        status, headers = request(name, path)[:2]
        assert status == 200
        assert headers["strict-transport-security"] == "max-age=63072000"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert headers["content-security-policy"].startswith("default-src 'self';")
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        # server_tokens off: no version.
        assert headers["server"] == "nginx"


@pytest.mark.parametrize("name", HOSTS)
def test_tls_1_1_refused_1_2_and_1_3_accepted(name):
    host = get(name)
    s_client = "echo | openssl s_client -connect 127.0.0.1:443 -servername %s %s 2>&1"
    # SECLEVEL=0 lets this client offer TLS 1.1: the refusal (alert 70,
    # protocol version) comes from the server.
    old = host.run(s_client % (NAME, "-tls1_1 -cipher DEFAULT@SECLEVEL=0"))
    assert "alert protocol version" in old.stdout, old.stdout
    tls12 = host.run(s_client % (NAME, "-tls1_2 -status"))
    assert re.search(r"Protocol\s*: TLSv1\.2", tls12.stdout), tls12.stdout
    assert re.search(r"Cipher\s*: ECDHE-ECDSA-(AES\d+-GCM|CHACHA20)", tls12.stdout), tls12.stdout
    # Session tickets and OCSP stapling are off.
    assert "TLS session ticket:" not in tls12.stdout
    assert "OCSP response: no response sent" in tls12.stdout
    tls13 = host.run(s_client % (NAME, "-tls1_3"))
    assert re.search(r"(Protocol\s*: TLSv1\.3|New, TLSv1\.3)", tls13.stdout), tls13.stdout


@pytest.mark.parametrize("name", HOSTS)
def test_bootstrap_key_is_private_and_certificate_names_the_servers(name):
    host = get(name)
    key = host.file("/etc/nginx/aiquiz/bootstrap/edge.key")
    assert (key.mode, key.user, key.group) == (0o600, "root", "root")
    assert host.file("/etc/nginx/aiquiz/bootstrap").mode == 0o700
    served = host.check_output(
        "echo | openssl s_client -connect 127.0.0.1:443 -servername %s 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName", NAME)
    assert "CN = %s" % NAME in served or "CN=%s" % NAME in served, served
    assert "DNS:edge.molecule.test, DNS:www.edge.molecule.test" in served, served


@pytest.mark.parametrize("name", HOSTS)
def test_access_log_is_one_json_object_per_request(name):
    probe = uuid.uuid4().hex
    assert request(name, "/api/?probe=" + probe)[0] == 200
    line = get(name).check_output("grep -F %s %s | tail -n 1", probe, ACCESS_LOG)
    entry = json.loads(line)
    assert entry["request"] == "GET /api/?probe=%s HTTP/2.0" % probe
    assert entry["status"] == 200
    assert entry["bytes"] == len("api-a\n")
    assert entry["remote_addr"] == "127.0.0.2"
    assert entry["upstream_addr"] == "127.0.0.1:8011"
    assert entry["upstream_status"] == "200"
    assert isinstance(entry["request_time"], (int, float))
    float(entry["upstream_response_time"])
    assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", entry["time"])


@pytest.mark.parametrize("name", HOSTS)
def test_rate_limit_answers_429_beyond_the_burst_except_for_exempt_clients(name):
    # 5r/s with a burst of 10 (molecule.yml): 30 requests in a row from
    # 127.0.0.1 pass the burst, then get 429.
    limited = statuses(name, 30, source="127.0.0.1")
    assert limited.count(200) >= 10, limited
    assert limited.count(429) >= 10, limited
    assert set(limited) <= {200, 429}, limited
    # 127.0.0.2 is in edge_rate_limit_exempt.
    exempt = statuses(name, 30, source="127.0.0.2")
    assert exempt == [200] * 30, exempt


def start_load(name):
    """Requests in a row from 127.0.0.2 (exempt from the rate limit) until stop_load, 120 s at most."""
    host = get(name)
    host.run("systemctl stop edge-load; rm -f /tmp/edge-load.txt")
    started = host.run(
        "systemd-run --unit edge-load sh -c %s",
        "timeout 120 curl -sk --max-time 5 --interface 127.0.0.2 --resolve %s:443:127.0.0.1 -o /dev/null"
        " -w '%%{http_code}\\n' 'https://%s/?n=[1-100000]' > /tmp/edge-load.txt" % (NAME, NAME))
    assert started.rc == 0, started.stderr


def stop_load(name):
    host = get(name)
    host.run("systemctl stop edge-load")
    return [int(code) for code in host.file("/tmp/edge-load.txt").content_string.split()]


def test_weight_change_moves_traffic_with_no_failed_request_and_waits_for_old_workers():
    for name in HOSTS:
        start_load(name)
    rc, out = run("backends.yml", {"edge_test_backends": {"quiz_web": [
        {"address": "127.0.0.1", "port": 8010, "weight": 1},
        {"address": "127.0.0.1", "port": 8012, "weight": 3}]}})
    loads = {name: stop_load(name) for name in HOSTS}
    try:
        assert rc == 0, out
        # Traffic ran through the write, the test and the reload: nothing failed.
        for name, codes in loads.items():
            assert len(codes) >= 20, (name, len(codes))
            assert set(codes) == {200}, (name, sorted(set(codes)))
        results = re.findall(r"edge_test_result changed=(\w+) drained=(\w+) old_workers=(\d+)", out)
        assert len(results) == 2, out
        for changed, drained, old_workers in results:
            assert (changed, drained) == ("True", "True"), out
            assert int(old_workers) >= 1, out
        for name in HOSTS:
            seen = bodies(name, 40)
            # Smooth weighted round robin, state shared by the workers: 1 in 4 to web-a.
            assert 6 <= seen.count("web-a") <= 14, seen
            assert seen.count("web-a") + seen.count("web-b") == 40, seen
            assert "weight=3 max_fails=3 fail_timeout=10s;" in get(name).file("%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name))).content_string
    finally:
        rc, out = run("backends.yml")
    assert rc == 0, out
    for name in HOSTS:
        assert bodies(name, 8) == ["web-a"] * 8


def reloads(name):
    """How many times systemd has reloaded nginx on the instance so far."""
    out = get(name).check_output("journalctl -q -u nginx.service -o cat | grep -c '^Reloaded' || true")
    return int(out or 0)


def test_several_upstreams_change_with_one_test_and_one_reload():
    before = {name: reloads(name) for name in HOSTS}
    rc, out = run("backends.yml", {"edge_test_backends": {
        "quiz_web": [{"address": "127.0.0.1", "port": 8012, "weight": 1}],
        "quiz_api": [{"address": "127.0.0.1", "port": 8011, "weight": 2}]}})
    try:
        assert rc == 0, out
        assert out.count("edge_test_result changed=True drained=True") == 2, out
        for name in HOSTS:
            assert reloads(name) == before[name] + 1
            assert request(name, "/")[2] == "web-b"
            assert "weight=2 " in get(name).file("%s/quiz_api/%s.conf" % (UPSTREAMS, peer(name))).content_string
    finally:
        rc, out = run("backends.yml")
    assert rc == 0, out
    for name in HOSTS:
        assert reloads(name) == before[name] + 2
        assert request(name, "/")[2] == "web-a"


def test_empty_server_list_removes_the_file_and_the_placeholder_gets_no_traffic():
    rc, out = run("backends.yml", {"edge_test_backends": {"quiz_api": []}})
    try:
        assert rc == 0, out
        assert out.count("edge_test_result changed=True") == 2, out
        for name in HOSTS:
            assert not get(name).file("%s/quiz_api/%s.conf" % (UPSTREAMS, peer(name))).exists
            probe = uuid.uuid4().hex
            # Only the placeholder is left, marked down: nginx sends nothing to it.
            assert request(name, "/api/?probe=" + probe)[0] == 502
            entry = json.loads(get(name).check_output("grep -F %s %s | tail -n 1", probe, ACCESS_LOG))
            assert entry["upstream_addr"] == "quiz_api", entry
            assert request(name, "/")[2] == "web-a"
    finally:
        rc, out = run("backends.yml")
    assert rc == 0, out
    for name in HOSTS:
        assert request(name, "/api/")[2] == "api-a"


def test_backends_refused_by_nginx_leave_the_previous_file_and_nginx_untouched():
    before = {name: (md5(name, "%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name))), master_pid(name)) for name in HOSTS}
    rc, out = run("backends.yml", {
        "edge_backends_fail_timeout": "10x",
        "edge_test_backends": {"quiz_web": [{"address": "127.0.0.1", "port": 8012, "weight": 2}]}})
    assert rc != 0, out
    assert "nginx -t refused it" in out, out
    assert 'invalid parameter "fail_timeout=10x"' in out, out
    for name in HOSTS:
        path = "%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name))
        assert (md5(name, path), master_pid(name)) == before[name]
        # No copy of the refused or the previous file is left behind.
        assert get(name).check_output("ls %s/quiz_web", UPSTREAMS).split() == ["%s.conf" % peer(name)]
        assert request(name, "/")[2] == "web-a"


def test_invalid_backends_input_fails_before_any_change_naming_the_variable():
    before = {name: md5(name, "%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name))) for name in HOSTS}
    rc, out = run("backends.yml", {"edge_test_backends": {"quiz_web": [
        {"address": "127.0.0.1", "port": 8010, "weight": 0},
        {"address": "127.0.0.1; evil", "port": 70000, "weight": 1}]}})
    assert rc != 0, out
    assert 'edge_backends_upstreams.quiz_web[0].weight: "0" must be an integer of 1 or more' in out, out
    assert 'edge_backends_upstreams.quiz_web[1].address: "127.0.0.1; evil" is not a host name or an IP address' in out, out
    assert 'edge_backends_upstreams.quiz_web[1].port: "70000" is not a port' in out, out
    rc, out = run("backends.yml", {"edge_test_backends": {"quiz_nope": [{"address": "127.0.0.1", "port": 8010}]}})
    assert rc != 0, out
    assert "upstream quiz_nope is not declared on the edge host" in out, out
    for name in HOSTS:
        assert md5(name, "%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name))) == before[name]


def test_route_to_an_unknown_upstream_fails_before_any_change():
    rc, out = run("converge.yml", {"edge_routes": [
        {"path": "/api/", "upstream": "quiz_api"}, {"path": "/", "upstream": "quiz_nope"}]}, limit="edge-debian13")
    assert rc != 0, out
    assert 'edge_routes[1].upstream: "quiz_nope" is not in edge_upstreams (quiz_web, quiz_api)' in out, out
    assert "Install the nginx packages" not in out


def test_invalid_value_is_refused_by_nginx_and_the_old_configuration_stays_served():
    name = "edge-debian13"
    before = (md5(name, CONF), master_pid(name))
    rc, out = run("converge.yml", {"edge_proxy_read_timeout": "10x"}, limit=name)
    assert rc != 0, out
    assert "nginx refused the edge configuration of %s" % name in out, out
    assert '"proxy_read_timeout" directive invalid value' in out, out
    assert "RUNNING HANDLER" not in out
    assert (md5(name, CONF), master_pid(name)) == before
    assert get(name).check_output("ls /etc/nginx/conf.d").split() == ["aiquiz-edge.conf"]
    assert get(name).run("nginx -t").rc == 0
    assert request(name, "/")[:1] == (200,) and request(name, "/")[2] == "web-a"


def test_changed_setting_is_applied_by_a_graceful_reload():
    name = "edge-debian13"
    pid = master_pid(name)
    rc, out = run("converge.yml", {"edge_referrer_policy": "no-referrer"}, limit=name)
    try:
        assert rc == 0, out
        assert "RUNNING HANDLER [aiquiz.ops.edge : Reload nginx]" in out, out
        assert request(name, "/")[1]["referrer-policy"] == "no-referrer"
        # Reloaded, not restarted: the same master process.
        assert master_pid(name) == pid
    finally:
        rc, out = run("converge.yml", limit=name)
    assert rc == 0, out
    assert request(name, "/")[1]["referrer-policy"] == "strict-origin-when-cross-origin"
