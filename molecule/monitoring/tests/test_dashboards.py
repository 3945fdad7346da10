"""The Grafana dashboards of the prometheus role (roles/prometheus/files/dashboards/) against the
scenario's live Prometheus: installed where the role documents them, and every query of every
panel and variable, its variables substituted as Grafana would, returns data, except the few
listed in EXPECTED_EMPTY with the reason (services this scenario does not run).

Grafana itself is not installed (Debian has no package): its part, reading the JSON model, is in
tests/unit/roles/test_prometheus_dashboards.py; this file proves the queries on real exporters.

Setting AIQUIZ_RECORD_METRIC_NAMES to a file path writes the metric names Prometheus knows there
(tests/unit/fixtures/prometheus_metric_names.txt is made so).

Every request goes to the scenario's own containers.
"""

import datetime
import hashlib
import json
import os
import pathlib
import re
import urllib.parse

import pytest
import testinfra
import yaml

from conftest import ansible_playbook
import test_monitoring as scenario

ROOT = pathlib.Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "roles" / "prometheus" / "files" / "dashboards").glob("*.json"))
INSTALLED = "/usr/share/aiquiz/dashboards"
CERT_TEXTFILE = "/var/lib/prometheus/node-exporter/aiquiz_certificates.prom"
EDGE_CERT = "/etc/nginx/aiquiz/bootstrap/edge.crt"
# As Grafana substitutes them: "All" hosts, and a rate window of several scrape intervals (5 s here).
VARIABLES = {"$__rate_interval": "1m", "$instance": ".+"}

NO_POSTGRESQL = "no PostgreSQL in this scenario (molecule/postgresql runs it; names from rules/postgresql.yml)"
NO_RABBITMQ = "no RabbitMQ in this scenario (molecule/rabbitmq runs it; names from rules/rabbitmq.yml)"
NO_BACKUP = "no backup role in this scenario (molecule/backup writes aiquiz_backup.prom)"
NO_REPLICA = "no replica here, and pg_replication_lag_seconds needs exporter 0.13+ (Debian 13)"
# (dashboard uid, panel title, refId): why the query has no data in this scenario.
EXPECTED_EMPTY = {
    ("aiquiz-data", "PostgreSQL up", "A"): NO_POSTGRESQL,
    ("aiquiz-data", "Connections used", "A"): NO_POSTGRESQL,
    ("aiquiz-data", "Transactions", "A"): NO_POSTGRESQL,
    ("aiquiz-data", "Transactions", "B"): NO_POSTGRESQL,
    ("aiquiz-data", "WAL archiving: age of the last archived segment", "A"): NO_POSTGRESQL,
    ("aiquiz-data", "WAL archiving: archived and failed", "A"): NO_POSTGRESQL,
    ("aiquiz-data", "WAL archiving: archived and failed", "B"): NO_POSTGRESQL,
    ("aiquiz-data", "Replication", "A"): NO_REPLICA,
    ("aiquiz-data", "Replication", "B"): NO_REPLICA,
    ("aiquiz-data", "RabbitMQ node up", "A"): NO_RABBITMQ,
    ("aiquiz-data", "Messages ready and unacknowledged", "A"): NO_RABBITMQ,
    ("aiquiz-data", "Messages ready and unacknowledged", "B"): NO_RABBITMQ,
    ("aiquiz-data", "Resource alarms", "A"): NO_RABBITMQ,
    ("aiquiz-data", "Resource alarms", "B"): NO_RABBITMQ,
    ("aiquiz-data", "Connections, channels and consumers", "A"): NO_RABBITMQ,
    ("aiquiz-data", "Connections, channels and consumers", "B"): NO_RABBITMQ,
    ("aiquiz-data", "Connections, channels and consumers", "C"): NO_RABBITMQ,
    ("aiquiz-data", "Memory against the watermark", "A"): NO_RABBITMQ,
    ("aiquiz-certificates-backups", "Age of the newest good backup", "A"): NO_BACKUP,
    ("aiquiz-certificates-backups", "Good backups in the catalogue", "A"): NO_BACKUP,
    ("aiquiz-certificates-backups", "Verifications", "A"): NO_BACKUP,
    ("aiquiz-certificates-backups", "Verifications", "B"): NO_BACKUP,
    ("aiquiz-certificates-backups", "aiquiz-backup commands", "A"): NO_BACKUP,
    ("aiquiz-certificates-backups", "aiquiz-backup commands", "B"): NO_BACKUP,
}


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def panel_queries():
    """((uid, panel title, refId), expr) of every panel's targets."""
    found = []
    for path in DASHBOARDS:
        board = load(path)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(((board["uid"], panel["title"], target["refId"]), target["expr"]))
    return found


def variable_queries():
    """((uid, variable name), selector, label) of every label_values() variable."""
    found = []
    for path in DASHBOARDS:
        board = load(path)
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                selector, label = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"]).groups()
                found.append(((board["uid"], variable["name"]), selector, label))
    return found


def concrete(expr):
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def query(mon, expr):
    """The result of an instant query on the scenario's Prometheus (its one way in: test_monitoring.prom)."""
    answer = scenario.prom(mon, "/api/v1/query?query=" + urllib.parse.quote(expr))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


@pytest.fixture(scope="module")
def mon():
    # Through docker exec, not Ansible: about seventy queries, each one command on the host.
    return testinfra.get_host("docker://monitoring-mon")


@pytest.fixture(scope="module")
def edge_certificate_textfile(tmp_path_factory):
    """The edge's certificate in the node exporter's textfile, as the tls role writes it on edge hosts
    (certificate_inventory with its textfile; here the edge role's bootstrap certificate)."""
    play = tmp_path_factory.mktemp("certs") / "certificates.yml"
    play.write_text(yaml.safe_dump([{
        "name": "Certificate expiry for the textfile collector", "hosts": "edge", "gather_facts": False,
        "tasks": [{"name": "Inventory the edge certificate", "aiquiz.ops.certificate_inventory": {
            "paths": [EDGE_CERT], "textfile": CERT_TEXTFILE}}]}]))
    rc, out = ansible_playbook(play)
    assert rc == 0, out
    yield
    scenario.get("monitoring-app").run("rm -f %s" % CERT_TEXTFILE)


POST_API = ("import http.client, ssl\n"
            "c = http.client.HTTPSConnection('127.0.0.1', 443, timeout=10, context=ssl._create_unverified_context())\n"
            "c.request('POST', '/api/ok', body=b'x', headers={'Host': 'edge.molecule.test'})\n"
            "print(c.getresponse().status)\n")


@pytest.fixture(scope="module")
def api_error(mon):
    """API requests answering 5xx through the edge (POST: the API's http.server answers 501), so the API's
    error-ratio recording rules have samples above 0; the dashboards fall back to 0 without them. Two of
    them: a counter's first sample is where rate() starts, so the second one, after Prometheus has scraped
    the first, is the increase the ratios see."""
    app = scenario.get("monitoring-app")
    assert app.check_output("python3 -c %s", POST_API) == "501"
    assert scenario.wait_for(lambda: query(mon, 'aiquiz_edge_requests_total{service="api",code="501"}'), timeout=60)
    assert app.check_output("python3 -c %s", POST_API) == "501"


def test_dashboards_are_installed_root_0644_with_their_provider(mon):
    for path in DASHBOARDS:
        installed = mon.file("%s/%s" % (INSTALLED, path.name))
        assert (installed.user, installed.group, installed.mode) == ("root", "root", 0o644), path.name
        assert installed.sha256sum == hashlib.sha256(path.read_bytes()).hexdigest(), path.name
    provider = mon.file(INSTALLED + "/grafana-provisioning.yaml")
    assert (provider.user, provider.mode) == ("root", 0o644)
    providers = yaml.safe_load(provider.content_string)["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [("file", INSTALLED)]


def test_expected_empty_names_real_panels():
    """Each exception names a query that exists, so the list cannot hide a renamed panel."""
    assert set(EXPECTED_EMPTY) <= {key for key, _expr in panel_queries()}


@pytest.mark.parametrize("key, expr", [pytest.param(key, expr, id="/".join(key)) for key, expr in panel_queries()])
def test_every_panel_query_returns_data(mon, edge_certificate_textfile, api_error, key, expr):
    if key in EXPECTED_EMPTY:
        # Valid for the live Prometheus (query() asserts success) and empty for the reason given;
        # once it has data, it belongs to the checked queries.
        assert query(mon, concrete(expr)) == [], "has data now, remove from EXPECTED_EMPTY: %s" % (key,)
        return
    result = scenario.wait_for(lambda: query(mon, concrete(expr)), timeout=120, step=5)
    assert result, "no data for %s: %s" % (key, concrete(expr))


@pytest.mark.parametrize("key, selector, label", [
    pytest.param(*found, id="/".join(found[0])) for found in variable_queries()])
def test_every_variable_lists_the_scenarios_hosts(mon, key, selector, label):
    """Each of the scenario's hosts is a value. Not only those: for 5 minutes after the role's first run the
    Debian package's own default target (localhost:9100, job node) is still there, Prometheus having been
    restarted (new flags) with no staleness marker for it; Grafana lists it for as long as it is in the range."""
    values = {series["metric"][label] for series in query(mon, selector)}
    expected = {"aiquiz-data": {"monitoring-data"}}.get(key[0], {"monitoring-app", "monitoring-data", "monitoring-mon"})
    assert expected <= values, (key, sorted(values))


def test_api_error_ratio_rules_have_samples_after_an_api_5xx(mon, api_error):
    """The recording rules the platform dashboard reads (aiquiz:api_errors:ratio_rate*) themselves, not their
    fallback: a sample above 0 once the API answered a 5xx."""
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        result = scenario.wait_for(lambda: query(mon, "aiquiz:api_errors:ratio_rate%s > 0" % window), timeout=60)
        assert result, window


def test_certificate_panels_read_the_edge_certificate(mon, edge_certificate_textfile):
    result = scenario.wait_for(lambda: query(mon, 'aiquiz_certificate_expiry_seconds{instance="monitoring-app"}'),
                               timeout=60)
    assert [r["metric"]["source"] for r in result] == [EDGE_CERT]
    days = (float(result[0]["value"][1]) - datetime.datetime.now(datetime.timezone.utc).timestamp()) / 86400
    # The bootstrap certificate: edge_tls_bootstrap_valid_days (365).
    assert 300 < days <= 366


def test_metric_names_of_the_scenario(mon):
    """Every metric name the dashboards read that the unit tests' recorded list has is exposed here now;
    with AIQUIZ_RECORD_METRIC_NAMES set, the names are written there (the unit tests' fixture)."""
    live = sorted(name for name in scenario.prom(mon, "/api/v1/label/__name__/values")["data"]
                  if not name.startswith("molecule_"))
    assert "up" in live and "aiquiz_edge_requests_total" in live
    target = os.environ.get("AIQUIZ_RECORD_METRIC_NAMES")
    if target:
        header = (
            "# Metric names the lab's exporters expose (node, redis, blackbox, mtail, Prometheus, Alertmanager),\n"
            "# recorded %s from molecule/monitoring's Prometheus /api/v1/label/__name__/values.\n"
            "# Regenerate: AIQUIZ_RECORD_METRIC_NAMES=$PWD/tests/unit/fixtures/prometheus_metric_names.txt \\\n"
            "#   python3 tests/run.py molecule/monitoring\n"
            "# (molecule/monitoring/tests/test_dashboards.py writes it). Read by\n"
            "# tests/unit/roles/test_prometheus_dashboards.py.\n"
            % datetime.date.today().isoformat())
        pathlib.Path(target).write_text(header + "\n".join(live) + "\n", encoding="utf-8")
    recorded_path = ROOT / "tests" / "unit" / "fixtures" / "prometheus_metric_names.txt"
    recorded = {line for line in recorded_path.read_text().splitlines() if line and not line.startswith("#")}
    used = set()
    for _key, expr in panel_queries():
        used.update(re.findall(r"\b(?:node|redis|probe|aiquiz_edge)_[A-Za-z0-9_]+", expr))
    assert used and sorted((used & recorded) - set(live)) == []
