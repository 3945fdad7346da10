"""Behaviour of the monitoring roles (prometheus, alertmanager, exporters) through
playbooks/monitoring.yml, after the firewall role: monitoring-mon runs Prometheus and
Alertmanager behind TLS (a certificate of the own CA) and basic auth, and a webhook
recorder on loopback; monitoring-data runs Redis, the node and
redis exporters; monitoring-app is a host outside the monitoring group and the edge (nginx,
whose access log mtail counts).

Every request goes to the scenario's own containers, from the monitoring host.
"""

import json
import os
import pathlib
import re
import time
import urllib.parse

import pytest
import testinfra
import yaml

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONVERGE = ROOT / "molecule" / "monitoring" / "converge.yml"
RULES_DIR = ROOT / "roles" / "prometheus" / "files" / "rules"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RECORDED = "/var/lib/molecule-recorder/posts.jsonl"
MONITORING_VARS = yaml.safe_load((ROOT / "molecule" / "monitoring" / "molecule.yml").read_text())[
    "provisioner"]["inventory"]["group_vars"]["monitoring"]
# Every password of the scenario, never to be seen on a host's journal or in an output.
PASSWORDS = [user["password"] for key in ("prometheus_web_users", "alertmanager_web_users")
             for user in MONITORING_VARS[key]] + [MONITORING_VARS["alertmanager_smtp"]["password"]]
MAILED = "/var/lib/molecule-mail/mails.jsonl"
WEB_CA = "/etc/aiquiz/tls/monitoring-web/ca.pem"
# The files the role writes for Prometheus: the tests read a password on the host from
# them, so that no password is ever on a command line (and thus in the journal).
PASSWORD_FILES = {9090: "/etc/prometheus/secrets/prometheus.password",
                  9093: "/etc/prometheus/secrets/alertmanager.password"}
WEB_CONFIGS = {9090: "/etc/prometheus/web.yml", 9093: "/etc/prometheus/alertmanager-web.yml"}

GET = """
import json, sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
"""
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except OSError as exc:
    print("closed", type(exc).__name__)
"""
# A request to Prometheus or Alertmanager from the monitoring host: verified against
# the own CA's root (cafile; "" for the system's roots), basic auth with a password read
# from a file on the host (a path) or given as is (a wrong one). Prints the status, then
# the body; "ssl-error" when the handshake fails.
REQUEST = """
import base64, ssl, sys, urllib.error, urllib.request
method, url, cafile, user, password, body = sys.argv[1:7]
context = ssl.create_default_context(cafile=cafile or None)
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers={'Content-Type': 'application/json'})
if user:
    if password.startswith('/'):
        password = open(password).read()
    req.add_header('Authorization', 'Basic ' + base64.b64encode((user + ':' + password).encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=10, context=context) as resp:
        print(resp.status)
        print(resp.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code)
    print(exc.read().decode())
except (ssl.SSLError, urllib.error.URLError) as exc:
    if not isinstance(getattr(exc, 'reason', exc), ssl.SSLError):
        raise
    print('ssl-error')
    print(exc)
"""


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def mon():
    return get("monitoring-mon")


@pytest.fixture(scope="module")
def data():
    return get("monitoring-data")


def address(host):
    return host.check_output("hostname -I").split()[0]


def web(mon, port, path, method="GET", body="", scheme="https", user="prometheus", password=None, cafile=WEB_CA):
    """(status, body) of a request to Prometheus (9090) or Alertmanager (9093) on the monitoring host,
    as Prometheus itself authenticates unless told otherwise."""
    out = mon.check_output("python3 -c %s %s %s %s %s %s %s", REQUEST, method,
                           "%s://%s:%d%s" % (scheme, address(mon), port, path), cafile, user,
                           password or PASSWORD_FILES[port], body)
    status, text = (out.split("\n", 1) + [""])[:2]
    return status.strip(), text


def api(mon, port, path, method="GET", payload=None):
    status, text = web(mon, port, path, method, json.dumps(payload) if payload is not None else "")
    assert status.startswith("2"), (port, path, status, text)
    return json.loads(text) if text.strip() else None


def prom(mon, path):
    return api(mon, 9090, path)


def wait_for(check, timeout=90, step=2):
    """check() until it returns a true value or timeout seconds pass; its last value."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


def test_prometheus_listens_on_the_private_address_only(mon):
    assert mon.service("prometheus").is_running and mon.service("prometheus").is_enabled
    assert mon.socket("tcp://%s:9090" % address(mon)).is_listening
    assert not mon.socket("tcp://0.0.0.0:9090").is_listening
    assert not mon.socket("tcp://127.0.0.1:9090").is_listening


def test_prometheus_answers_ready(mon):
    status, text = web(mon, 9090, "/-/ready")
    assert status == "200" and "Ready" in text


@pytest.mark.parametrize("port", [9090, 9093])
def test_plain_http_is_refused(mon, port):
    status, text = web(mon, port, "/-/ready", scheme="http")
    assert status == "400" and "HTTPS" in text, (status, text)


@pytest.mark.parametrize("port", [9090, 9093])
def test_https_needs_the_right_credentials(mon, port):
    """No credentials and a wrong password get 401; the right ones 200, over a certificate verified
    against the own CA's root (and not against the system's roots)."""
    assert web(mon, port, "/-/ready", user="")[0] == "401"
    assert web(mon, port, "/-/ready", password="wrong-password")[0] == "401"
    assert web(mon, port, "/-/ready", user="nobody")[0] == "401"
    assert web(mon, port, "/-/ready")[0] == "200"
    status, text = web(mon, port, "/-/ready", cafile="")
    assert status == "ssl-error" and "CERTIFICATE_VERIFY_FAILED" in text, (status, text)


def test_web_configs_hold_bcrypt_hashes_only(mon):
    """root:prometheus 0640, the users' bcrypt hashes (which verify the passwords Prometheus sends),
    no password anywhere; the key readable by group prometheus only."""
    for port, path in WEB_CONFIGS.items():
        web_config = mon.file(path)
        assert (web_config.user, web_config.group, web_config.mode) == ("root", "prometheus", 0o640)
        text = web_config.content_string
        assert not any(password in text for password in PASSWORDS)
        data = json.loads("".join(line for line in text.splitlines() if not line.startswith("#")))
        assert data["tls_server_config"]["cert_file"] == "/etc/aiquiz/tls/monitoring-web/fullchain.pem"
        users = data["basic_auth_users"]
        assert all(value.startswith("$2b$") for value in users.values())
        check = ("import bcrypt, json, sys; d = json.loads(''.join(l for l in open(sys.argv[1]) if l[0] != '#'));"
                 " print(bcrypt.checkpw(open(sys.argv[2], 'rb').read(), d['basic_auth_users']['prometheus'].encode()))")
        assert mon.check_output("python3 -c %s %s %s", check, path, PASSWORD_FILES[port]) == "True"
        secret = mon.file(PASSWORD_FILES[port])
        assert (secret.user, secret.group, secret.mode) == ("root", "prometheus", 0o640)
    assert sorted(json.loads("".join(line for line in mon.file(WEB_CONFIGS[9090]).content_string.splitlines()
                                     if not line.startswith("#")))["basic_auth_users"]) == ["admin", "prometheus"]
    secrets = mon.file("/etc/prometheus/secrets")
    assert (secrets.user, secrets.group, secrets.mode) == ("root", "prometheus", 0o750)
    key = mon.file(mon.check_output("readlink -f /etc/aiquiz/tls/monitoring-web/privkey.pem"))
    assert (key.group, key.mode) == ("prometheus", 0o640)
    config = mon.file("/etc/prometheus/prometheus.yml").content_string
    assert not any(password in config for password in PASSWORDS)
    assert PASSWORD_FILES[9090] in config and PASSWORD_FILES[9093] in config and WEB_CA in config
    for unit, path in (("prometheus", "/etc/default/prometheus"),
                       ("prometheus-alertmanager", "/etc/default/prometheus-alertmanager")):
        assert "--web.config.file=" in mon.file(path).content_string
        assert mon.service(unit).is_running


def test_config_and_rules_owned_and_mode(mon):
    config = mon.file("/etc/prometheus/prometheus.yml")
    assert (config.user, config.group, config.mode) == ("root", "prometheus", 0o640)
    for path in sorted(RULES_DIR.glob("*.yml")):
        rule = mon.file("/etc/prometheus/rules/aiquiz/" + path.name)
        assert rule.exists and rule.mode == 0o644
    args = mon.file("/etc/default/prometheus").content_string
    assert "--storage.tsdb.retention.time=15d" in args and "--storage.tsdb.retention.size=10GB" in args


def test_targets_come_from_the_inventory_and_are_all_up(mon, data):
    def targets():
        found = prom(mon, "/api/v1/targets?state=active")["data"]["activeTargets"]
        return found if found and all(t["health"] == "up" for t in found) else None
    found = wait_for(targets)
    assert found, prom(mon, "/api/v1/targets?state=active")
    # The blackbox job's targets are the probes (test_blackbox_probes_the_edge_as_users_reach_it).
    by_job = sorted((t["labels"]["job"], t["labels"]["instance"], t["scrapeUrl"]) for t in found
                    if t["labels"]["job"] != "blackbox")
    mon_ip, data_ip, app_ip = address(mon), address(data), address(get("monitoring-app"))
    assert by_job == sorted([
        ("alertmanager", "monitoring-mon", "https://%s:9093/metrics" % mon_ip),
        ("mtail", "monitoring-app", "http://%s:3903/metrics" % app_ip),
        ("nginx", "monitoring-app", "http://%s:9113/metrics" % app_ip),
        ("node", "monitoring-app", "http://%s:9100/metrics" % app_ip),
        ("node", "monitoring-data", "http://%s:9100/metrics" % data_ip),
        ("node", "monitoring-mon", "http://%s:9100/metrics" % mon_ip),
        ("prometheus", "monitoring-mon", "https://%s:9090/metrics" % mon_ip),
        ("redis", "monitoring-data", "http://%s:9121/metrics" % data_ip),
    ])


def test_redis_exporter_logs_in_to_redis(mon):
    def redis_up():
        result = prom(mon, "/api/v1/query?query=redis_up")["data"]["result"]
        return result if result and result[0]["value"][1] == "1" else None
    assert wait_for(redis_up, timeout=60)


def test_exporters_listen_on_the_private_address_only(data):
    ip = address(data)
    for port in (9100, 9121):
        assert data.socket("tcp://%s:%d" % (ip, port)).is_listening
        assert not data.socket("tcp://0.0.0.0:%d" % port).is_listening
    env = data.file("/etc/default/prometheus-redis-exporter")
    assert (env.user, env.mode) == ("root", 0o600)


@pytest.mark.parametrize("port", [9100, 9121])
def test_exporters_admit_the_monitoring_host_alone(mon, data, port):
    app = get("monitoring-app")
    target = address(data)
    assert mon.check_output("python3 -c %s %s %s", CONNECT, target, str(port)) == "open"
    assert app.check_output("python3 -c %s %s %s", CONNECT, target, str(port)).startswith("closed")


def test_mtail_admits_the_monitoring_host_alone(mon, data):
    target = address(get("monitoring-app"))
    assert mon.check_output("python3 -c %s %s %s", CONNECT, target, "3903") == "open"
    assert data.check_output("python3 -c %s %s %s", CONNECT, target, "3903").startswith("closed")


def test_mtail_listens_on_the_private_address_only():
    app = get("monitoring-app")
    assert app.service("mtail").is_running and app.service("mtail").is_enabled
    assert app.socket("tcp://%s:3903" % address(app)).is_listening
    assert not app.socket("tcp://0.0.0.0:3903").is_listening
    assert not app.socket("tcp://:::3903").is_listening
    # It reads nginx's log as user mtail, through the adm group.
    assert "adm" in app.user("mtail").groups


def prom_value(mon, query):
    """The value of a query of one series, or None while it has none."""
    result = prom(mon, "/api/v1/query?query=" + urllib.parse.quote(query))["data"]["result"]
    return result[0]["value"][1] if result else None


def test_nginx_exporter_reads_stub_status_on_loopback_and_answers_the_monitoring_host_alone(mon, data):
    app = get("monitoring-app")
    assert app.service("prometheus-nginx-exporter").is_running
    assert app.service("prometheus-nginx-exporter").is_enabled
    assert app.socket("tcp://%s:9113" % address(app)).is_listening
    assert not app.socket("tcp://0.0.0.0:9113").is_listening
    # nginx's counters are on loopback only (edge_status_listen).
    assert app.socket("tcp://127.0.0.1:8079").is_listening
    assert not app.socket("tcp://0.0.0.0:8079").is_listening
    assert "Active connections" in app.check_output("curl -s http://127.0.0.1:8079/stub_status")
    assert app.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8079/") == "404"
    assert mon.check_output("python3 -c %s %s %s", CONNECT, address(app), "9113") == "open"
    assert data.check_output("python3 -c %s %s %s", CONNECT, address(app), "9113").startswith("closed")
    assert mon.check_output("python3 -c %s %s %s", CONNECT, address(app), "8079").startswith("closed")
    assert wait_for(lambda: prom_value(mon, 'nginx_up{instance="monitoring-app"}') == "1", timeout=60)
    assert float(prom_value(mon, 'nginx_connections_accepted{instance="monitoring-app"}')) > 0


def test_stopped_nginx_is_seen_by_its_exporter_and_raises_edge_nginx_down(mon):
    """nginx stopped on the edge: nginx_up drops to 0 in Prometheus and EdgeNginxDown goes
    pending (it fires after a minute); started again, nginx_up is 1 and the alert is gone."""
    app = get("monitoring-app")
    pid = app.check_output("systemctl show -p MainPID --value prometheus-nginx-exporter")
    app.run_expect([0], "systemctl stop nginx")
    try:
        assert wait_for(lambda: prom_value(mon, 'nginx_up{instance="monitoring-app"}') == "0", timeout=60)

        def pending():
            return [a for a in prom(mon, "/api/v1/alerts")["data"]["alerts"]
                    if a["labels"]["alertname"] == "EdgeNginxDown" and a["labels"]["instance"] == "monitoring-app"]
        alerts = wait_for(pending, timeout=60)
        assert alerts and alerts[0]["labels"]["severity"] == "critical"
        assert alerts[0]["labels"]["service"] == "edge"
    finally:
        app.run_expect([0], "systemctl start nginx")
    assert wait_for(lambda: prom_value(mon, 'nginx_up{instance="monitoring-app"}') == "1", timeout=60)
    # The exporter kept running through the outage.
    assert app.check_output("systemctl show -p MainPID --value prometheus-nginx-exporter") == pid


# Requests through the edge, from the edge host's loopback: by Host (the
# address gives no SNI; the catch-all completes the handshake, the Host header
# picks the server). Prints one status per request.
SEND = """
import http.client, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
scheme, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(count):
    if scheme == "https":
        conn = http.client.HTTPSConnection("127.0.0.1", 443, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    conn.request("GET", path, headers={"Host": "edge.molecule.test", "User-Agent": 'molecule "service":"evil"'})
    print(conn.getresponse().status)
    conn.close()
"""


def send(app, scheme, path, count):
    """count requests through the edge; their statuses."""
    return app.check_output("python3 -c %s %s %s %s", SEND, scheme, path, str(count)).split()


def mtail_requests(mon, app):
    """aiquiz_edge_requests_total from mtail's /metrics, as {(service, code): value}."""
    text = mon.check_output("python3 -c %s %s", GET,
                            "http://%s:3903/metrics" % address(app))
    counts = {}
    for line in text.splitlines():
        if line.startswith("aiquiz_edge_requests_total{"):
            labels, value = line[len("aiquiz_edge_requests_total{"):].rsplit("} ", 1)
            pairs = dict(item.split("=", 1) for item in labels.split(","))
            counts[(pairs["service"].strip('"'), pairs["code"].strip('"'))] = float(value)
    return counts


def test_edge_requests_are_counted_by_service_and_code(mon):
    """Real requests through nginx: mtail's counters go up by what was sent, by the route's
    service and the status, and Prometheus scrapes the same numbers from mtail. The blackbox
    prober also asks the edge for the API (200) and the web (502 here, no web runs) every
    scrape, so those two only have a floor; 404 and 301 come from this test alone and must
    be exact."""
    app = get("monitoring-app")
    sent = {("api", "200"): ("https", "/api/ok", 7), ("api", "404"): ("https", "/api/missing", 3),
            ("web", "502"): ("https", "/", 4), ("", "301"): ("http", "/", 2)}
    probed = {("api", "200"), ("web", "502")}
    before = mtail_requests(mon, app)
    for (service, code), (scheme, path, count) in sent.items():
        assert send(app, scheme, path, count) == [code] * count, service

    def counted():
        now = mtail_requests(mon, app)
        for key, (_scheme, _path, count) in sent.items():
            delta = now.get(key, 0) - before.get(key, 0)
            if delta < count or (key not in probed and delta != count):
                return None
        return now
    after = wait_for(counted, timeout=30, step=1)
    assert after, (before, mtail_requests(mon, app))
    # A client's "service" inside the user agent is no label.
    assert not any(service == "evil" for service, _code in after)

    def scraped():
        query = 'aiquiz_edge_requests_total{job="mtail",instance="monitoring-app",service="api",code="404"}'
        result = prom(mon, "/api/v1/query?query=" + urllib.parse.quote(query))["data"]["result"]
        return result if result and float(result[0]["value"][1]) == after[("api", "404")] else None
    assert wait_for(scraped, timeout=60), prom(mon, "/api/v1/query?query=aiquiz_edge_requests_total")
    up = prom(mon, "/api/v1/query?query=" + urllib.parse.quote('up{job="mtail"}'))["data"]["result"]
    assert [(r["metric"]["instance"], r["value"][1]) for r in up] == [("monitoring-app", "1")]
    print("edge requests sent vs counted by mtail:",
          {"%s/%s" % key: (sent[key][2], after[key] - before.get(key, 0)) for key in sent})


def test_api_latency_p99_is_computed_from_the_edge_buckets(mon):
    """The latency buckets reach Prometheus cumulative (+Inf holds every API request counted), and
    the recording rule the p99 alert reads has a value below 1 s: a static file answers fast."""
    app = get("monitoring-app")
    assert send(app, "https", "/api/ok", 5) == ["200"] * 5

    def buckets():
        query = 'aiquiz_edge_request_duration_seconds_bucket{instance="monitoring-app",service="api"}'
        result = prom(mon, "/api/v1/query?query=" + urllib.parse.quote(query))["data"]["result"]
        return {r["metric"]["le"]: float(r["value"][1]) for r in result} if len(result) == 12 else None
    found = wait_for(buckets, timeout=60)
    assert found, prom(mon, "/api/v1/query?query=aiquiz_edge_request_duration_seconds_bucket")
    bounds = sorted(found, key=lambda le: float(le.replace("+Inf", "inf")))
    assert [found[le] for le in bounds] == sorted(found[le] for le in bounds)
    total = sum(float(r["value"][1]) for r in prom(mon, "/api/v1/query?query=" + urllib.parse.quote(
        'aiquiz_edge_requests_total{instance="monitoring-app",service="api"}'))["data"]["result"])
    assert found["+Inf"] == total

    def p99():
        value = prom_value(mon, "aiquiz:api_request_duration_seconds:p99_rate5m")
        return value if value not in (None, "NaN") else None
    value = wait_for(p99, timeout=60)
    assert value is not None and 0 <= float(value) < 1, value


def test_mtail_program_change_reloads_without_losing_counts(mon):
    """A changed program is reloaded by SIGHUP (the role's handler): same process, counters kept."""
    app = get("monitoring-app")
    pid = app.check_output("systemctl show -p MainPID --value mtail")
    assert send(app, "https", "/api/missing", 1) == ["404"]
    before = wait_for(lambda: mtail_requests(mon, app).get(("api", "404")) and mtail_requests(mon, app),
                      timeout=30, step=1)
    assert before
    app.check_output("systemctl reload mtail")
    assert app.check_output("systemctl show -p MainPID --value mtail") == pid
    after = mtail_requests(mon, app)
    # Blackbox probes may add to the 200s and 502s meanwhile; nothing is lost.
    assert after[("api", "404")] == before[("api", "404")]
    assert all(after.get(key, 0) >= value for key, value in before.items()), (before, after)


def test_textfile_collector_reaches_prometheus(mon, data):
    stamp = str(int(time.time()))
    data.check_output("printf 'molecule_textfile_probe %s\\n' > /var/lib/prometheus/node-exporter/.probe.tmp"
                      " && mv /var/lib/prometheus/node-exporter/.probe.tmp /var/lib/prometheus/node-exporter/molecule.prom"
                      % stamp)
    try:
        def seen():
            result = prom(mon, "/api/v1/query?query=molecule_textfile_probe")["data"]["result"]
            return result if result and result[0]["value"][1] == stamp else None
        found = wait_for(seen, timeout=60)
        assert found and found[0]["metric"]["instance"] == "monitoring-data"
    finally:
        data.run("rm -f /var/lib/prometheus/node-exporter/molecule.prom")


def test_every_rule_of_the_collection_is_loaded(mon):
    expected = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            expected.update(rule.get("alert") or rule.get("record") for rule in group["rules"])
    groups = prom(mon, "/api/v1/rules")["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert expected and expected <= loaded
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"])


def test_prometheus_knows_its_alertmanager(mon):
    def active():
        return prom(mon, "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert wait_for(active, timeout=30) == [{"url": "https://%s:9093/api/v2/alerts" % address(mon)}]


def test_alertmanager_listens_on_the_private_address_without_cluster(mon):
    assert mon.service("prometheus-alertmanager").is_running
    assert mon.socket("tcp://%s:9093" % address(mon)).is_listening
    assert not mon.socket("tcp://0.0.0.0:9093").is_listening
    assert not mon.socket("tcp://0.0.0.0:9094").is_listening


def recorded(mon):
    if not mon.file(RECORDED).exists:
        return []
    return [json.loads(line) for line in mon.file(RECORDED).content_string.splitlines() if line]


@pytest.mark.parametrize("labels, receiver", [
    ({"severity": "critical", "service": "api"}, "/oncall"),
    ({"severity": "warning", "service": "host"}, "/team"),
    ({"severity": "warning", "service": "security"}, "/security"),
])
def test_alert_reaches_the_webhook_of_its_route(mon, labels, receiver):
    name = "MoleculeProbe%s%d" % (labels["severity"].title(), int(time.time() * 1000))
    alert = dict(labels, alertname=name, instance="monitoring-data")
    assert web(mon, 9093, "/api/v2/alerts", "POST", json.dumps([{"labels": alert}]))[0] == "200"

    def delivered():
        return [post for post in recorded(mon)
                if any(a["labels"].get("alertname") == name for a in (post["body"] or {}).get("alerts", []))]
    posts = wait_for(delivered, timeout=60)
    assert posts, recorded(mon)
    assert {post["path"] for post in posts} == {receiver}
    assert posts[0]["body"]["status"] == "firing"


def mailed(mon):
    if not mon.file(MAILED).exists:
        return []
    return [json.loads(line) for line in mon.file(MAILED).content_string.splitlines() if line]


def test_critical_alert_is_also_mailed_through_the_relay_with_auth(mon):
    """The oncall receiver mails as well as posts: the relay (prepare.yml) demands AUTH, so a
    mail that arrives proves Alertmanager logged in with alertmanager_smtp's user."""
    name = "MoleculeMail%d" % int(time.time() * 1000)
    alert = {"alertname": name, "severity": "critical", "service": "api", "instance": "monitoring-data"}
    assert web(mon, 9093, "/api/v2/alerts", "POST", json.dumps([{"labels": alert}]))[0] == "200"

    def delivered():
        return [mail for mail in mailed(mon) if name in mail["data"]]
    mails = wait_for(delivered, timeout=60)
    assert mails, mailed(mon)
    assert mails[0]["user"] == "alerts"
    assert mails[0]["from"] == "alertmanager@molecule.test" and mails[0]["to"] == ["oncall@molecule.test"]
    assert "[FIRING:1]" in mails[0]["data"]
    # A warning goes to the team receiver, which has no address: no mail.
    warning = dict(alert, alertname=name + "Warning", severity="warning")
    assert web(mon, 9093, "/api/v2/alerts", "POST", json.dumps([{"labels": warning}]))[0] == "200"
    assert wait_for(lambda: [p for p in recorded(mon) if warning["alertname"] in json.dumps(p)], timeout=60)
    assert not [mail for mail in mailed(mon) if warning["alertname"] in mail["data"]]


def test_mail_password_stays_in_the_private_config_and_out_of_diff_and_output(mon):
    config = mon.file("/etc/prometheus/alertmanager.yml")
    assert (config.user, config.group, config.mode) == ("root", "prometheus", 0o640)
    assert MONITORING_VARS["alertmanager_smtp"]["password"] in config.content_string
    rotated = "molecule-smtp-rotated-%d" % time.time()
    smtp = dict(MONITORING_VARS["alertmanager_smtp"], password=rotated)
    rc, out = ansible_playbook(CONVERGE, extra_vars={"alertmanager_smtp": smtp}, limit="monitoring-mon",
                               tags="alertmanager_configure", check=True, diff=True, verbosity=2)
    assert rc == 0, out
    assert "Write the configuration (routes, receivers, inhibition)" in out
    assert "changed: [monitoring-mon]" in out
    assert not any(password in out for password in PASSWORDS + [rotated])
    assert MONITORING_VARS["alertmanager_smtp"]["password"] in mon.file("/etc/prometheus/alertmanager.yml").content_string
    journal = mon.check_output("journalctl -u prometheus-alertmanager --no-pager -o cat")
    assert not any(password in journal for password in PASSWORDS + [rotated])


def test_host_down_mutes_the_other_alerts_of_its_host(mon):
    stamp = int(time.time() * 1000)
    down = {"alertname": "HostDown", "severity": "critical", "service": "host", "instance": "muted-%d" % stamp}
    other = {"alertname": "MoleculeMuted%d" % stamp, "severity": "warning", "service": "redis",
             "instance": "muted-%d" % stamp}
    assert web(mon, 9093, "/api/v2/alerts", "POST", json.dumps([{"labels": down}, {"labels": other}]))[0] == "200"

    def state():
        alerts = api(mon, 9093, "/api/v2/alerts?filter=alertname%%3D%%22%s%%22" % other["alertname"])
        return alerts if alerts and alerts[0]["status"]["inhibitedBy"] else None
    alerts = wait_for(state, timeout=30)
    assert alerts and alerts[0]["status"]["state"] == "suppressed"
    time.sleep(5)
    assert not any(a["labels"].get("alertname") == other["alertname"]
                   for post in recorded(mon) for a in (post["body"] or {}).get("alerts", []))


SILENCE = ROOT / "molecule" / "monitoring" / "silence.yml"


def test_a_deploy_silence_mutes_the_host_but_not_host_down_and_is_lifted(mon):
    """The silence entry point for monitoring-app (as compose_app runs it around a deploy): its alerts are
    silenced except HostDown, a second run adds no silence, check mode adds none, and lifting it makes the
    same alert active again; no password in the output."""
    comment = "deploy of release 9.9.%d of quiz on monitoring-app" % int(time.time())
    stamp = int(time.time() * 1000)
    rc, out = ansible_playbook(SILENCE, extra_vars={"alertmanager_silence_comment": comment}, check=True)
    assert rc == 0, out
    assert not [s for s in api(mon, 9093, "/api/v2/silences") if s["comment"] == comment]

    rc, out = ansible_playbook(SILENCE, extra_vars={"alertmanager_silence_comment": comment}, verbosity=2)
    assert rc == 0, out
    assert "changed=1" in out.split("PLAY RECAP")[-1]
    assert not any(password in out for password in PASSWORDS)
    made = [s for s in api(mon, 9093, "/api/v2/silences") if s["comment"] == comment]
    assert len(made) == 1 and made[0]["status"]["state"] == "active" and made[0]["createdBy"] == "aiquiz.ops"
    rc, out = ansible_playbook(SILENCE, extra_vars={"alertmanager_silence_comment": comment})
    assert rc == 0 and "changed=0" in out.split("PLAY RECAP")[-1], out

    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    muted = {"alertname": "MoleculeDeployNoise%d" % stamp, "severity": "critical", "service": "api",
             "instance": "monitoring-app"}
    down = {"alertname": "HostDown", "severity": "critical", "service": "host", "instance": "monitoring-app",
            "molecule": str(stamp)}
    assert web(mon, 9093, "/api/v2/alerts", "POST", json.dumps([{"labels": muted, "endsAt": ends}]))[0] == "200"

    def status(labels):
        alerts = api(mon, 9093, "/api/v2/alerts?filter=alertname%%3D%%22%s%%22" % labels["alertname"])
        found = [a for a in alerts if a["labels"] == labels]
        return found[0]["status"] if found else None
    state = wait_for(lambda: status(muted) if (status(muted) or {}).get("silencedBy") else None, timeout=30)
    assert state and state["state"] == "suppressed" and state["silencedBy"] == [made[0]["id"]]
    assert web(mon, 9093, "/api/v2/alerts", "POST", json.dumps([{"labels": down, "endsAt": ends}]))[0] == "200"
    assert wait_for(lambda: status(down), timeout=30)
    assert status(down)["silencedBy"] == []

    rc, out = ansible_playbook(SILENCE, extra_vars={"alertmanager_silence_comment": comment,
                                                    "alertmanager_silence_state": "absent"})
    assert rc == 0 and "changed=1" in out.split("PLAY RECAP")[-1], out
    assert [s["status"]["state"] for s in api(mon, 9093, "/api/v2/silences") if s["comment"] == comment] == ["expired"]
    assert wait_for(lambda: (status(muted) or {}).get("silencedBy") == [], timeout=30)
    rc, out = ansible_playbook(SILENCE, extra_vars={"alertmanager_silence_comment": comment,
                                                    "alertmanager_silence_state": "absent"})
    assert rc == 0 and "changed=0" in out.split("PLAY RECAP")[-1], out


def test_failed_ssh_logins_are_counted_from_the_journal_and_page_security(mon, data):
    """Twelve logins refused by sshd on the data host (a key it does not know, for root and for a
    user it does not have): the counter follows sshd's journal, the node exporter serves it, and
    SSHLoginFailuresBurst reaches the security receiver, labelled with the host. Debian 13's sshd
    refuses a source at once for a while after it failed (PerSourcePenalties): those connections
    count as penalised."""
    service = data.service("aiquiz-ssh-failed-logins")
    assert service.is_running and service.is_enabled
    textfile = "/var/lib/prometheus/node-exporter/aiquiz_ssh.prom"

    def counts():
        text = data.file(textfile).content_string
        return {kind: float(value) for kind, value in
                re.findall(r'aiquiz_ssh_failed_logins_total\{kind="(\w+)"\} (\d+)', text)}
    before = counts()
    data.run_expect([0], "rm -f /root/molecule-intruder /root/molecule-intruder.pub && "
                         "ssh-keygen -q -t ed25519 -N '' -f /root/molecule-intruder")
    started = time.monotonic()
    for number in range(12):
        user = "root" if number % 2 else "molecule-nosuchuser"
        data.run("ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                 "-o ConnectTimeout=5 -i /root/molecule-intruder %s@127.0.0.1 true", user)
    after = wait_for(lambda: counts() if sum(counts().values()) - sum(before.values()) >= 12 else None,
                     timeout=30, step=1)
    assert after, (before, counts())
    added = {kind: after[kind] - before.get(kind, 0) for kind in after}
    assert sum(added.values()) == 12, added
    assert added["known_user"] >= 1 and added["invalid_user"] >= 1, added
    assert (data.file(textfile).user, data.file(textfile).mode) == ("root", 0o644)

    def paged():
        return [post for post in recorded(mon) if post["path"] == "/security" and any(
            a["labels"].get("alertname") == "SSHLoginFailuresBurst" and a["labels"].get("instance") == "monitoring-data"
            for a in (post["body"] or {}).get("alerts", []))]
    posts = wait_for(paged, timeout=90)
    assert posts, recorded(mon)[-3:]
    print("failed SSH logins to the security receiver: %.1f s" % (time.monotonic() - started))


def test_config_change_reloads_prometheus_without_restart(mon):
    pid = mon.check_output("systemctl show -p MainPID --value prometheus")
    try:
        rc, out = ansible_playbook(CONVERGE, extra_vars={"prometheus_evaluation_interval": "7s"})
        assert rc == 0, out
        assert "Reload Prometheus" in out and "Restart Prometheus" not in out
        assert mon.check_output("systemctl show -p MainPID --value prometheus") == pid

        def reloaded():
            config = prom(mon, "/api/v1/status/config")["data"]["yaml"]
            return "evaluation_interval: 7s" in config
        assert wait_for(reloaded, timeout=30)
    finally:
        rc, out = ansible_playbook(CONVERGE)
        assert rc == 0, out


def test_invalid_rule_never_replaces_the_live_ones(mon, tmp_path):
    bad = tmp_path / "broken.yml"
    bad.write_text("groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: up ==\n")
    rc, out = ansible_playbook(CONVERGE, extra_vars={"prometheus_extra_rule_files": [str(bad)]})
    assert rc != 0
    assert "promtool check rules" in out or "failed to validate" in out
    assert not mon.file("/etc/prometheus/rules/aiquiz/broken.yml").exists
    assert mon.service("prometheus").is_running


def test_blackbox_probes_the_edge_as_users_reach_it(mon):
    """The probes of exporters_blackbox_probes, through the edge with its name in Host and TLS: /api/ok
    answers 200 (success), / goes to a dead upstream and answers 502 (failure); the exporter itself
    answers on loopback only."""
    assert mon.service("prometheus-blackbox-exporter").is_running
    assert mon.socket("tcp://127.0.0.1:9115").is_listening
    assert not mon.socket("tcp://0.0.0.0:9115").is_listening

    def probes():
        query = "/api/v1/query?query=" + urllib.parse.quote('probe_success{job="blackbox"}')
        result = {r["metric"]["instance"]: (r["metric"]["service"], r["value"][1])
                  for r in prom(mon, query)["data"]["result"]}
        return result if len(result) == 2 else None
    assert wait_for(probes, timeout=60) == {"edge_api": ("api", "1"), "edge_web": ("web", "0")}
    status = {r["metric"]["instance"]: r["value"][1] for r in prom(
        mon, "/api/v1/query?query=" + urllib.parse.quote('probe_http_status_code{job="blackbox"}'))["data"]["result"]}
    assert status == {"edge_api": "200", "edge_web": "502"}
    # The certificate the edge served, read through the probe: days left (the bootstrap one's validity).
    left = prom(mon, "/api/v1/query?query=" + urllib.parse.quote(
        'probe_ssl_earliest_cert_expiry{instance="edge_api"} - time()'))["data"]["result"]
    assert left and float(left[0]["value"][1]) > 86400, left
    modules = mon.file("/etc/prometheus/blackbox.yml")
    assert (modules.user, modules.group, modules.mode) == ("root", "root", 0o644)
    assert "Host: edge.molecule.test" in modules.content_string


def test_password_rotation_needs_no_reload_and_is_never_shown(mon):
    """A new password of Prometheus' scrape user: a new hash and password file, read at the next
    request (no reload, no restart), the old password refused, its own scrape still up; neither
    password in the run's output (-vv) nor in the host's journal."""
    rotated = "molecule-rotated-scrape-pw"
    users = [dict(user, password=rotated) if user["name"] == "prometheus" else user
             for user in MONITORING_VARS["prometheus_web_users"]]
    pid = mon.check_output("systemctl show -p MainPID --value prometheus")
    mon.check_output("cp -p %s /root/molecule-old.password", PASSWORD_FILES[9090])
    since = mon.check_output("date '+%Y-%m-%d %H:%M:%S'")
    try:
        # The role's web part on the monitoring host (tag prometheus_web), as an operator rotates a password.
        rc, out = ansible_playbook(CONVERGE, extra_vars={"prometheus_web_users": users}, verbosity=2,
                                   limit="monitoring-mon", tags="prometheus_web")
        assert rc == 0, out
        assert not any(password in out for password in PASSWORDS + [rotated])
        assert "Write the web configuration" in out and "rehashed" in out
        assert "Reload Prometheus" not in out and "Restart Prometheus" not in out
        assert mon.check_output("systemctl show -p MainPID --value prometheus") == pid
        assert web(mon, 9090, "/-/ready")[0] == "200"
        assert web(mon, 9090, "/-/ready", password="/root/molecule-old.password")[0] == "401"

        def self_scrape_up():
            result = prom(mon, "/api/v1/query?query=" + urllib.parse.quote('up{job="prometheus"}'))["data"]["result"]
            return result and result[0]["value"][1] == "1" and float(result[0]["value"][0]) > time.time() - 5
        assert wait_for(self_scrape_up, timeout=30, step=1)
        journal = mon.check_output("journalctl --no-pager -o cat --since %s", since)
        assert journal and not any(password in journal for password in PASSWORDS + [rotated])
    finally:
        mon.run("rm -f /root/molecule-old.password")
        rc, out = ansible_playbook(CONVERGE, limit="monitoring-mon", tags="prometheus_web")
        assert rc == 0, out
    assert web(mon, 9090, "/-/ready")[0] == "200"


def test_a_broken_web_config_is_refused_and_the_live_one_kept(mon, tmp_path):
    """The role's module with promtool as its check, given a certificate that is no certificate:
    the run fails, the live web configuration is untouched and Prometheus still answers."""
    live = mon.file(WEB_CONFIGS[9090]).content_string
    playbook = tmp_path / "broken-web-config.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "A broken web configuration", "hosts": "monitoring", "gather_facts": False, "tasks": [{
            "name": "Write it, checked by promtool",
            "aiquiz.ops.prometheus_web_config": {
                "path": WEB_CONFIGS[9090], "users": [{"name": "admin", "password": "not-this-one"}],
                "tls_cert_file": "/etc/prometheus/prometheus.yml", "tls_key_file": "/etc/prometheus/prometheus.yml",
                "group": "prometheus", "validate": "promtool check web-config %s"}}]}]))
    rc, out = ansible_playbook(playbook)
    assert rc != 0 and "the live one is kept" in out, out
    assert mon.file(WEB_CONFIGS[9090]).content_string == live
    assert not [name for name in mon.check_output("ls -A /etc/prometheus").split() if name.startswith(".web.yml")]
    assert web(mon, 9090, "/-/ready")[0] == "200"
