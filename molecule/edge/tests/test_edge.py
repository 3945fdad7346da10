"""Behaviour of the edge role on edge-debian12 and edge-debian13.

Each instance runs test backends on loopback (prepare.yml): quiz_web on
127.0.0.1:8010 ("web-a") and 8012 ("web-b"), quiz_api on 8011 ("api-a").
converge.yml applies the role, then each instance feeds the other one's
upstreams through the backends entry point, delegated, as compose_app does
(backends.yml). Requests go to the instance's own nginx on loopback, from
127.0.0.2 (exempt from the rate limit) unless a test says otherwise. Every
backend records each request it receives, with its headers, in
/srv/edge-test/<port>.requests.jsonl and answers them as JSON on /echo.
"""

import json
import os
import pathlib
import re
import time
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
BACKEND_LOGS = "/srv/edge-test/*.requests.jsonl"
HSTS = "max-age=63072000; includeSubDomains"
# molecule.yml: edge-debian12 opts in to HSTS preload and trusts 127.0.0.3
# as a proxy; edge-debian13 keeps the defaults (no preload, no proxy).
HSTS_SENT = {"edge-debian12": HSTS + "; preload", "edge-debian13": HSTS}
TRUSTED_PROXY = "127.0.0.3"
TRUSTS_PROXY = {"edge-debian12": True, "edge-debian13": False}
# edge-debian12 also refuses handshakes without the SNI of one of the names.
REJECTS_UNKNOWN_SNI = {"edge-debian12": True, "edge-debian13": False}


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


def fetch(name, url, *options, resolve=NAME, source="127.0.0.2"):
    """(status, headers, body) of one curl request to the instance's own nginx,
    `resolve` (the name curl sends as SNI) pointing at 127.0.0.1; status 0
    and curl's error as the body when no HTTP answer came."""
    port = "80" if url.startswith("http:") else "443"
    done = get(name).run(
        "curl -sSk --max-time 10 -i --interface %s --resolve %s:%s:127.0.0.1 " + " ".join(["%s"] * len(options)) + " %s",
        source, resolve, port, *options, url)
    if done.rc != 0 and not done.stdout:
        return 0, {}, done.stderr.strip()
    head, body = (done.stdout.replace("\r\n", "\n").split("\n\n", 1) + [""])[:2]
    lines = head.split("\n")
    headers = {}
    for line in lines[1:]:
        key, value = (line.split(":", 1) + [""])[:2]
        headers[key.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body.strip()


def arrived(name, probe):
    """The requests holding `probe` that reached any test backend of the instance."""
    out = get(name).run("cat " + BACKEND_LOGS + " | grep -F %s", probe).stdout
    return [json.loads(line) for line in out.splitlines()]


def echoed_headers(body):
    """The headers an upstream received (its /echo answer), by lower-case name;
    a header that arrived twice fails the test."""
    pairs = json.loads(body)["headers"]
    names = [key.lower() for key, _value in pairs]
    assert len(names) == len(set(names)), pairs
    return dict((key.lower(), value) for key, value in pairs)


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
def test_request_for_an_unknown_host_never_reaches_an_upstream(name):
    probe = uuid.uuid4().hex
    url = "https://%s/?probe=%s-%s"
    attempts = {
        "Host header, HTTP/2": fetch(name, url % (NAME, probe, 1), "-H", "Host: evil.example"),
        "Host header, HTTP/1.1": fetch(name, url % (NAME, probe, 2), "--http1.1", "-H", "Host: evil.example"),
        "SNI and Host": fetch(name, url % ("evil.example", probe, 3), resolve="evil.example"),
        "no SNI (an address)": fetch(name, url % ("127.0.0.1", probe, 4), "-H", "Host: evil.example"),
        "absolute request target": fetch(name, url % (NAME, probe, 5), "--http1.1",
                                         "--request-target", "https://evil.example/?probe=%s-5" % probe),
        "plain HTTP": fetch(name, "http://%s/?probe=%s-6" % (NAME, probe), "-H", "Host: evil.example"),
    }
    no_handshake = ("SNI and Host", "no SNI (an address)") if REJECTS_UNKNOWN_SNI[name] else ()
    for what, (status, headers, body) in attempts.items():
        if what in no_handshake:
            # edge_tls_reject_unknown_sni: the TLS handshake itself fails.
            assert (status, headers) == (0, {}) and "unrecognized name" in body, (what, status, headers, body)
            continue
        # 421 Misdirected Request, from the edge itself.
        assert status == 421, (what, status, headers, body)
        assert "web-a" not in body and "location" not in headers, (what, headers, body)
    # No backend saw any of them.
    assert arrived(name, probe) == []
    # The configured names still work, also (unless SNI is required) from a
    # client that sends no SNI (an address: the lab's own tests do that) but
    # the right Host.
    known = [(NAME, "https://%s/?probe=%s-ok" % (NAME, probe)),
             ("www." + NAME, "https://www.%s/?probe=%s-ok" % (NAME, probe))]
    if not REJECTS_UNKNOWN_SNI[name]:
        known.append((NAME, "https://127.0.0.1/?probe=%s-ok" % probe))
    for host_name, url in known:
        status, _headers, body = fetch(name, url, "-H", "Host: " + host_name, resolve=host_name)
        assert (status, body) == (200, "web-a"), (url, status, body)
    assert [entry["path"] for entry in arrived(name, probe)] == ["/?probe=%s-ok" % probe] * len(known)


FORGED = {
    "X-Forwarded-For": "203.0.113.66",
    "X-Real-IP": "203.0.113.66",
    "Forwarded": "for=203.0.113.66;proto=http;host=evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "8080",
    "X-Forwarded-Prefix": "/evil",
}


def forged_options(headers):
    return [part for key, value in headers.items() for part in ("-H", "%s: %s" % (key, value))]


@pytest.mark.parametrize("name", HOSTS)
def test_forged_forwarding_headers_never_reach_the_upstream(name):
    probe = uuid.uuid4().hex
    status, _headers, body = fetch(name, "https://%s/echo?probe=%s" % (NAME, probe), *forged_options(FORGED))
    assert status == 200, body
    seen = echoed_headers(body)
    # Only what nginx knows itself: the client's address, https, the name it answered.
    assert seen["x-forwarded-for"] == "127.0.0.2", seen
    assert seen["x-real-ip"] == "127.0.0.2", seen
    assert seen["x-forwarded-proto"] == "https", seen
    assert seen["x-forwarded-host"] == NAME, seen
    assert seen["x-forwarded-port"] == "443", seen
    assert seen["host"] == NAME, seen
    assert "forwarded" not in seen and "x-forwarded-prefix" not in seen, seen
    assert "203.0.113.66" not in body and "evil" not in body, body
    entry = json.loads(get(name).check_output("grep -F %s %s | tail -n 1", probe, ACCESS_LOG))
    assert entry["remote_addr"] == "127.0.0.2", entry


@pytest.mark.parametrize("name", HOSTS)
def test_client_address_is_taken_from_x_forwarded_for_only_behind_a_trusted_proxy(name):
    probe = uuid.uuid4().hex
    # The proxy appends the address it saw; what the client put before it is not trusted.
    status, _headers, body = fetch(name, "https://%s/echo?probe=%s" % (NAME, probe), "-H",
                                   "X-Forwarded-For: 203.0.113.66, 198.51.100.7", source=TRUSTED_PROXY)
    assert status == 200, body
    client = "198.51.100.7" if TRUSTS_PROXY[name] else TRUSTED_PROXY
    seen = echoed_headers(body)
    assert (seen["x-forwarded-for"], seen["x-real-ip"]) == (client, client), seen
    assert "203.0.113.66" not in body, body
    entry = json.loads(get(name).check_output("grep -F %s %s | tail -n 1", probe, ACCESS_LOG))
    assert entry["remote_addr"] == client, entry


@pytest.mark.parametrize("name", HOSTS)
def test_hsts_two_years_with_subdomains_on_every_https_response_and_never_on_http(name):
    # Upstream answers (200, 404) and nginx's own errors (413) alike.
    answers = {
        "/": request(name, "/"),
        "/api/": request(name, "/api/"),
        "upstream 404": request(name, "/missing"),
        "nginx 413": fetch(name, "https://%s/" % NAME, "--http1.1", "-X", "POST", "-H", "Content-Length: 99999999"),
    }
    assert [answer[0] for answer in answers.values()] == [200, 200, 404, 413], answers
    for what, (_status, headers, _body) in answers.items():
        assert headers.get("strict-transport-security") == HSTS_SENT[name], (what, headers)
    # Plain HTTP only redirects; a browser ignores HSTS there, and the edge does not send it.
    status, headers = request(name, "/", scheme="http")[:2]
    assert status == 301 and "strict-transport-security" not in headers, headers


@pytest.mark.parametrize("name", HOSTS)
def test_security_headers_on_every_https_response(name):
    for path in ("/", "/api/"):
        status, headers = request(name, path)[:2]
        assert status == 200
        assert headers["strict-transport-security"] == HSTS_SENT[name]
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
def test_handshake_without_a_known_name_shows_no_name_of_the_edge(name):
    host = get(name)
    catchall = "/etc/nginx/aiquiz/bootstrap/catchall"
    for sni in ("", " -servername evil.example"):
        out = host.run("echo | openssl s_client -connect 127.0.0.1:443" + sni
                       + " 2>&1 | openssl x509 -noout -subject -ext subjectAltName 2>&1").stdout
        assert NAME not in out, (sni, out)
        if REJECTS_UNKNOWN_SNI[name]:
            # No handshake, no certificate.
            assert "CN" not in out, (sni, out)
        else:
            assert "CN = invalid" in out or "CN=invalid" in out, (sni, out)
    if REJECTS_UNKNOWN_SNI[name]:
        assert not host.file(catchall + ".key").exists
    else:
        key = host.file(catchall + ".key")
        assert (key.mode, key.user, key.group) == (0o600, "root", "root")


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
    # The route's service (edge_route_service: quiz_api -> api), what mtail counts by.
    assert entry["service"] == "api"
    assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", entry["time"])


@pytest.mark.parametrize("name", HOSTS)
def test_access_log_lines_also_reach_the_journal(name):
    """edge_access_log_journal: the same JSON line in the journal under the tag aiquiz_edge, which the logging
    role ships to the monitoring host; also for a request no server name matches (port 80's 421 server)."""
    host = get(name)
    for path, status in (("/api/?probe=%s" % uuid.uuid4().hex, 200), ("/?probe=%s" % uuid.uuid4().hex, 421)):
        probe = path.split("=", 1)[1]
        got = fetch(name, "http://unknown.example" + path, resolve="unknown.example")[0] if status == 421 \
            else request(name, path)[0]
        assert got == status, (path, got)
        deadline = time.monotonic() + 10
        line = ""
        while not line and time.monotonic() < deadline:
            line = host.run("journalctl -t aiquiz_edge -o cat --no-pager --since -5min | grep -F %s | tail -n 1",
                            probe).stdout.strip()
            time.sleep(0.5)
        assert line, path
        entry = json.loads(line)
        assert entry["status"] == status and probe in entry["request"], entry
        assert entry == json.loads(host.check_output("grep -F %s %s | tail -n 1", probe, ACCESS_LOG))


@pytest.mark.parametrize("name", HOSTS)
def test_connection_counters_answer_on_loopback_only_and_are_not_logged(name):
    """edge_status_listen: stub_status for the nginx exporter on 127.0.0.1:8079, nothing else
    there, not reachable from the other edge host, and no line in the access log."""
    host = get(name)
    assert host.socket("tcp://127.0.0.1:8079").is_listening
    assert not host.socket("tcp://0.0.0.0:8079").is_listening
    assert not host.socket("tcp://:::8079").is_listening
    before = host.check_output("wc -l < %s", ACCESS_LOG)
    status = host.check_output("curl -s http://127.0.0.1:8079/stub_status")
    assert status.startswith("Active connections:") and "server accepts handled requests" in status
    assert host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8079/stub_status/x") == "404"
    assert host.check_output("wc -l < %s", ACCESS_LOG) == before
    address = host.check_output("hostname -I").split()[0]
    assert get(peer(name)).run("curl -s -m 3 http://%s:8079/stub_status", address).rc != 0


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
    """Requests in a row from 127.0.0.2 (exempt from the rate limit) until stop_load, 120 s at most.
    One status per line, flushed at once (stdbuf): stopping curl loses none."""
    host = get(name)
    host.run("systemctl stop edge-load; rm -f /tmp/edge-load.txt")
    started = host.run(
        "systemd-run --unit edge-load sh -c %s",
        "timeout 120 stdbuf -oL curl -sk --max-time 5 --interface 127.0.0.2 --resolve %s:443:127.0.0.1 -o /dev/null"
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


def test_backends_refused_by_nginx_never_reach_the_live_file_and_nginx_is_untouched():
    before = {name: (md5(name, "%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name))), master_pid(name)) for name in HOSTS}
    for name in HOSTS:
        start_watch(name, "%s/quiz_web/%s.conf" % (UPSTREAMS, peer(name)))
    rc, out = run("backends.yml", {
        "edge_backends_fail_timeout": "10x",
        "edge_test_backends": {"quiz_web": [{"address": "127.0.0.1", "port": 8012, "weight": 2}]}})
    seen = {name: stop_watch(name) for name in HOSTS}
    assert rc != 0, out
    # The live file never held the refused line, not even for a moment.
    assert seen == {name: {before[name][0]} for name in HOSTS}, seen
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


def test_bad_security_settings_fail_before_any_change_naming_each_variable():
    rc, out = run("converge.yml", {
        "edge_hsts_preload": True, "edge_hsts_include_subdomains": False,
        "edge_trusted_proxies": ["10.0.0.0/33", "proxy.example"],
        "edge_tls_curves": ["X25519", "X448;ssl_ciphers NULL"]}, limit="edge-debian13")
    assert rc != 0, out
    text = " ".join(out.split())
    assert ("edge_hsts_preload: the preload list needs edge_hsts_include_subdomains: true and edge_hsts_max_age"
            " of 31536000 (a year) or more, not False and 63072000") in text, out
    assert 'edge_trusted_proxies[0]: "10.0.0.0/33" is not an IPv4 or IPv6 address or CIDR' in text, out
    assert 'edge_trusted_proxies[1]: "proxy.example" is not an IPv4 or IPv6 address or CIDR' in text, out
    assert 'edge_tls_curves[1]: "X448;ssl_ciphers NULL" is not an OpenSSL group name' in text, out
    assert "Install the nginx packages" not in out


def start_watch(name, path=CONF):
    """Record the checksum of a live file every 20 ms (120 s at most), as a reload, a
    restart or a reboot at that moment would find it."""
    host = get(name)
    host.run("systemctl stop edge-watch; rm -f /tmp/edge-watch.txt")
    started = host.run(
        "systemd-run --unit edge-watch sh -c %s",
        "end=$(($(date +%%s) + 120)); while [ $(date +%%s) -lt $end ]; do md5sum %s; sleep 0.02; done"
        " > /tmp/edge-watch.txt" % path)
    assert started.rc == 0, started.stderr


def stop_watch(name):
    host = get(name)
    host.run("systemctl stop edge-watch")
    return {line.split()[0] for line in host.file("/tmp/edge-watch.txt").content_string.splitlines() if line.strip()}


@pytest.mark.parametrize("variable, value, refused", [
    # nginx names the line: "proxy_read_timeout" directive invalid value in ...:<line>
    ("edge_proxy_read_timeout", "10x", '"proxy_read_timeout" directive invalid value'),
    # OpenSSL refuses the group list; nginx names no line.
    ("edge_tls_curves", ["X25519", "X448x"], 'SSL_CTX_set1_curves_list("X25519:X448x") failed'),
])
def test_value_nginx_refuses_never_reaches_the_live_file_and_is_named(variable, value, refused):
    name = "edge-debian13"
    before = (md5(name, CONF), master_pid(name), reloads(name))
    start_watch(name)
    rc, out = run("converge.yml", {variable: value}, limit=name)
    seen = stop_watch(name)
    assert rc != 0, out
    # The live file never held the refused value, not even for a moment.
    assert seen == {before[0]}, seen
    text = " ".join(out.split())
    assert "nginx refused the edge configuration of %s" % name in text, out
    assert refused in text, out
    # The message names the variable the refused line comes from.
    assert "set by %s" % variable in text, out
    assert "RUNNING HANDLER" not in out
    assert (md5(name, CONF), master_pid(name), reloads(name)) == before
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
