# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The golive_report role (go-live phase 8) run by ansible-playbook on localhost:
the public URL is a real HTTPS server on 127.0.0.1 (scored by sslyze) that also
serves the quiz API's create and read endpoints for the synthetic transaction,
the readiness URL a real HTTP server of the active colour named in a release
ledger, the backups a real catalogue, the certificates real files, the drill
report a file as playbooks/dr-drill.yml writes it. Prometheus is a stand-in
serving its API's JSON shape (golive_servers.prometheus_server), not
Prometheus. The role only runs on the controller and reads files, so no
Molecule scenario: this is its test."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import re
import socket
import stat
import sys
import threading

import pytest

from conftest import ROOT, run_local_play

sys.path.insert(0, os.path.join(ROOT, 'tests', 'unit', 'plugins', 'modules'))
import golive_servers as servers  # noqa: E402 (the modules' test servers)

PLAY = """
- name: "Phase 8: post-launch checks and the go-live report"
  hosts: localhost
  gather_facts: false
  roles:
    - role: aiquiz.ops.golive_report
"""


class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        code = 200 if self.path == '/readyz' else 404
        self.send_response(code)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def readiness_port():
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return servers.make_pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module')
def prometheus_all_up():
    """A stand-in for Prometheus' API (its JSON shape only): every target up, one warning alert firing."""
    targets, alerts = servers.prometheus_answers(
        [servers.prometheus_target('node', '127.0.0.1:9100'), servers.prometheus_target('prometheus', '127.0.0.1:9090')],
        [servers.prometheus_alert('DiskFilling', 'warning', '127.0.0.1:9100')])
    with servers.prometheus_server(targets, alerts) as (port, requests):
        yield port, requests


@pytest.fixture
def sources(tmp_path, readiness_port, pki, prometheus_all_up):
    """The role's variables: a ledger whose active release is blue, the blue port serving /readyz, a catalogue
    with a backup verified an hour ago, the certificate file."""
    ledger = tmp_path / 'quiz.json'
    ledger.write_text(json.dumps({'version': 1, 'workload': 'quiz', 'colours': {'blue': '1.0.0'},
                                  'releases': [{'id': '1.0.0', 'colour': 'blue', 'state': 'active'}]}))
    ended = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    catalogue = tmp_path / 'catalogue.json'
    catalogue.write_text(json.dumps({'version': 1, 'backups': [{
        'id': 'postgresql-dump-quiz-1', 'kind': 'postgresql-dump', 'subject': 'quiz', 'target': 'local',
        'started': ended, 'ended': ended, 'status': 'good',
        'verified': {'at': ended, 'result': 'ok', 'detail': 'sha256 matches'}}]}))
    drill = tmp_path / 'dr-drill-report.json'
    # The keys playbooks/dr-drill.yml writes, from a drill two days ago.
    drill.write_text(json.dumps({
        'source': 'data1', 'restored_on': 'mon1', 'target': 's3', 'backup_set': '20261203-010000F',
        'rto_seconds': 187.4, 'rpo_seconds': 4.2, 'heartbeats_written': 20, 'heartbeats_restored': 19,
        'rto_all_seconds': 262.9, 'drill_at': (datetime.datetime.now(datetime.timezone.utc)
                                               - datetime.timedelta(days=2)).strftime('%Y-%m-%dT%H:%M:%SZ')}))
    return {
        # The monitoring host's Prometheus where the prometheus role would listen (the derived URL).
        'golive_report_monitoring_host': 'localhost',
        'prometheus_listen_address': '127.0.0.1',
        'prometheus_port': prometheus_all_up[0],
        'golive_report_drill_report': str(tmp_path / 'dr-drill-*.json'),
        'golive_report_address': '127.0.0.1',
        'golive_report_ca_file': pki['ca'],
        'golive_report_samples': 2,
        'golive_report_app_hosts': ['localhost'],
        'golive_report_release_ledger': str(ledger),
        'golive_report_app_services': [{'name': 'web', 'image': 'quiz-web', 'port': 8080, 'offset': 0,
                                        'health_path': '/readyz'}, {'name': 'worker', 'image': 'quiz-worker'}],
        'golive_report_colour_ports': {'blue': readiness_port, 'green': readiness_port + 1},
        'golive_report_data_hosts': ['localhost'],
        'golive_report_backup_catalogue': str(catalogue),
        'golive_report_certificate_hosts': ['localhost'],
        'golive_report_certificate_paths': [pki['cert']],
        'golive_report_controller_certificate_paths': [pki['ca']],
        'golive_report_dir': str(tmp_path / 'evidence'),
        'golive_report_collection_path': ROOT,
        'golive_report_become': False,
        # The controller is no hardened host: its check is left out here (the module's tests cover it).
        'golive_report_hardening_hosts': [],
    }


def url(port):
    return 'https://%s:%d/' % (servers.NAME, port)


def run_dirs(tmp_path):
    evidence = tmp_path / 'evidence'
    return sorted(p.name for p in evidence.iterdir()) if evidence.exists() else []


def report_of(tmp_path, run):
    return json.loads((tmp_path / 'evidence' / run / 'report.json').read_text())


def test_phase_8_writes_a_report_whose_checks_pass_and_chains_the_next_run(tmp_path, pki, sources, prometheus_all_up):
    quizzes = []
    asked = len(prometheus_all_up[1])
    with servers.https_server(pki, quizzes=quizzes) as (port, requests):
        rc, out = run_local_play(tmp_path, PLAY, dict(sources, golive_report_url=url(port)))
        assert rc == 0, out
        [first] = run_dirs(tmp_path)
        report = report_of(tmp_path, first)
        statuses = dict((c['id'], c['status']) for c in report['checks'])
        assert statuses == {'public_url': 'pass', 'readiness': 'pass', 'backups': 'pass', 'certificates': 'pass',
                            'synthetic': 'pass', 'monitoring': 'pass', 'drill': 'pass', 'hardening': 'missing'}, \
            [c['summary'] for c in report['checks']]
        checks = dict((c['id'], c) for c in report['checks'])
        # One quiz created through the pinned name and read back, each step timed.
        assert len(quizzes) == 1 and quizzes[0]['title'].startswith('go-live synthetic 20')
        steps = checks['synthetic']['transaction']['steps']
        assert [(s['method'], s['status']) for s in steps] == [('POST', 201), ('GET', 200)]
        assert steps[1]['url'] == url(port) + 'api/quizzes/1' and all(s['elapsed_ms'] > 0 for s in steps)
        assert [r['path'] for r in requests if r.get('method') == 'POST'] == ['/api/quizzes']
        # Prometheus asked where the prometheus role listens; the warning alert listed, not holding the go-live.
        assert checks['monitoring']['monitoring']['url'] == 'http://127.0.0.1:%d' % prometheus_all_up[0]
        assert sorted(prometheus_all_up[1][asked:]) == ['/api/v1/alerts', '/api/v1/targets?state=active']
        assert [i['subject'] for i in checks['monitoring']['items']] == ['job node', 'job prometheus',
                                                                         'alert DiskFilling']
        assert checks['drill']['drill']['rto_seconds'] == 187.4 and checks['drill']['drill']['rpo_seconds'] == 4.2
        # Every check with a source passes; the hardening check, without a host, keeps the verdict incomplete.
        assert checks['hardening']['summary'] == 'no host to check'
        assert report['verdict'] == 'incomplete'
        readiness = [c for c in report['checks'] if c['id'] == 'readiness'][0]
        assert 'http://127.0.0.1:%d/readyz' % sources['golive_report_colour_ports']['blue'] in readiness['summary'] \
            or 'readyz' in readiness['items'][0]['detail']
        certificates = [c for c in report['checks'] if c['id'] == 'certificates'][0]
        assert sorted(i['subject'].split()[0] for i in certificates['items']) == ['controller', 'localhost']
        probe = [c for c in report['checks'] if c['id'] == 'public_url'][0]['probe']
        assert probe['tls_profile']['compliant'] is True and probe['tls']['verified'] is True
        # This run's audit trail, found by the controller's PID; the phase still running.
        assert report['run']['audit_trail']['chosen'] == 'this run'
        assert [p['name'] for p in report['phases']] == ['Phase 8: post-launch checks and the go-live report']
        assert report['phases'][0]['status'] == 'running'
        assert report['commits']['collection']['commit']
        assert 'Go-live report incomplete' in out and 'Host hardening: no host to check' in out
        assert stat.S_IMODE(os.stat(tmp_path / 'evidence' / first / 'report.html').st_mode) == 0o600

        # Check mode: the checks run, nothing is written.
        sent = len(requests)
        rc, out = run_local_play(tmp_path, PLAY.replace('  gather_facts: false', '  gather_facts: false\n  check_mode: true'),
                                 dict(sources, golive_report_url=url(port)))
        assert rc == 0, out
        assert run_dirs(tmp_path) == [first] and len(requests) > sent
        # The synthetic POST writes: not sent in check mode, and said so; Prometheus is still asked.
        assert len(quizzes) == 1 and [r for r in requests[sent:] if r.get('method') == 'POST'] == []
        assert 'Synthetic transaction through the public URL: missing' in out
        assert re.search(r"Synthetic transaction through the public URL: 'skipped in check mode: the POST\s+would create "
                         r"a quiz'", out), out
        assert len(prometheus_all_up[1]) == asked + 4

        rc, out = run_local_play(tmp_path, PLAY, dict(sources, golive_report_url=url(port)))
        assert rc == 0, out
        # A new report, no change on any host: a go-live reruns with changed=0.
        assert re.search(r'localhost\s+: ok=\d+\s+changed=0\s', out), out
        assert len(quizzes) == 2
    runs = run_dirs(tmp_path)
    assert len(runs) == 2 and runs[0] == first
    manifest = json.loads((tmp_path / 'evidence' / runs[1] / 'MANIFEST.json').read_text())
    assert manifest['previous']['run'] == first


def test_failed_public_url_fails_the_phase_after_the_report(tmp_path, sources):
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    rc, out = run_local_play(tmp_path, PLAY, dict(sources, golive_report_url=url(port), golive_report_samples=1))
    assert rc != 0
    assert 'The public URL %s failed its checks (the report ' % url(port) in out
    assert 'phase 8): TLS handshake with 127.0.0.1:%d (SNI %s) failed' % (port, servers.NAME) in out
    [run] = run_dirs(tmp_path)
    report = report_of(tmp_path, run)
    assert report['verdict'] == 'fail'
    # Nothing answers at the URL: the synthetic transaction fails too.
    assert [c['status'] for c in report['checks']] == ['fail', 'pass', 'pass', 'pass', 'fail', 'pass', 'pass', 'missing']
    synthetic = [c for c in report['checks'] if c['id'] == 'synthetic'][0]
    assert 'POST /api/quizzes via 127.0.0.1:%d failed' % port in synthetic['summary']


def test_missing_sources_are_reported_not_fatal(tmp_path, pki, sources):
    variables = dict(sources, golive_report_release_ledger=str(tmp_path / 'no-ledger.json'),
                     golive_report_backup_catalogue=str(tmp_path / 'no-catalogue.json'),
                     golive_report_certificate_paths=[str(tmp_path / 'none-*.pem')],
                     golive_report_controller_certificate_paths=[], golive_report_tls_profile='none',
                     golive_report_monitoring_host='', golive_report_drill_report='', golive_report_synthetic=False)
    with servers.https_server(pki) as (port, _requests):
        rc, out = run_local_play(tmp_path, PLAY, dict(variables, golive_report_url=url(port)))
    assert rc == 0, out
    [run] = run_dirs(tmp_path)
    report = report_of(tmp_path, run)
    checks = dict((c['id'], c) for c in report['checks'])
    assert report['verdict'] == 'incomplete'
    assert checks['public_url']['status'] == 'pass'
    assert checks['readiness']['status'] == 'missing'
    assert checks['readiness']['summary'].startswith('localhost: no release ledger at %s' % (tmp_path / 'no-ledger.json'))
    assert checks['backups']['summary'] == 'localhost: no backup in the catalogue'
    assert checks['certificates']['summary'] == 'localhost: no certificate found'
    assert checks['synthetic']['summary'] == 'not run: golive_report_synthetic is false'
    assert checks['monitoring']['summary'].startswith('no monitoring host (no group monitoring in the inventory')
    assert (checks['drill']['status'], checks['drill']['summary']) == (
        'missing', 'no drill report (golive_report_drill_report is empty)')


def test_a_target_down_warns_and_an_unanswering_prometheus_is_missing(tmp_path, pki, sources):
    targets, alerts = servers.prometheus_answers(
        [servers.prometheus_target('node', '127.0.0.1:9100'),
         servers.prometheus_target('postgres', '127.0.0.1:9187', 'down', 'connection refused')],
        [servers.prometheus_alert('PostgresExporterDown', 'critical', '127.0.0.1:9187')])
    with servers.https_server(pki, quizzes=[]) as (port, _requests), \
            servers.prometheus_server(targets, alerts) as (prometheus_port, _asked):
        rc, out = run_local_play(tmp_path, PLAY, dict(
            sources, golive_report_url=url(port), golive_report_tls_profile='none',
            golive_report_prometheus_url='http://127.0.0.1:%d/' % prometheus_port))
    assert rc == 0, out
    [run] = run_dirs(tmp_path)
    report = report_of(tmp_path, run)
    checks = dict((c['id'], c) for c in report['checks'])
    assert report['verdict'] == 'incomplete'
    assert checks['monitoring']['status'] == 'warn'
    assert 'job postgres: 0 up, 1 down: 127.0.0.1:9187 (down: connection refused)' in checks['monitoring']['summary']
    assert 'alert PostgresExporterDown: firing on 127.0.0.1:9187, severity critical' in checks['monitoring']['summary']
    html = (tmp_path / 'evidence' / run / 'report.html').read_text()
    assert 'PostgresExporterDown' in html and 'Firing alerts' in html

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        closed = sock.getsockname()[1]
    with servers.https_server(pki, quizzes=[]) as (port, _requests):
        rc, out = run_local_play(tmp_path, PLAY, dict(
            sources, golive_report_url=url(port), golive_report_tls_profile='none',
            golive_report_prometheus_url='http://127.0.0.1:%d' % closed))
    assert rc == 0, out
    report = report_of(tmp_path, run_dirs(tmp_path)[-1])
    monitoring = [c for c in report['checks'] if c['id'] == 'monitoring'][0]
    assert monitoring['status'] == 'missing'
    assert monitoring['summary'].startswith('Prometheus targets of localhost (http://127.0.0.1:%d): ' % closed)


def test_bad_input_fails_early_naming_the_variable(tmp_path, sources):
    rc, out = run_local_play(tmp_path, PLAY, dict(sources, golive_report_url='https://x/',
                                                  golive_report_tls_profile='strict'))
    assert rc != 0 and 'golive_report_tls_profile' in out
    rc, out = run_local_play(tmp_path, PLAY, dict(sources, golive_report_url='https://x/',
                                                  golive_report_drill_max_age_days='a month'))
    assert rc != 0 and 'golive_report_drill_max_age_days' in out
    rc, out = run_local_play(tmp_path, PLAY, dict(sources, golive_report_url='https://x/',
                                                  golive_report_monitoring_host='mon9'))
    assert rc != 0 and 'golive_report_monitoring_host: mon9 is not a host of the inventory' in out
    assert 'Probe the public URL' not in out
    rc, out = run_local_play(tmp_path, PLAY, sources)
    assert rc != 0 and 'golive_report_url' in out
    assert run_dirs(tmp_path) == []


def test_prometheus_behind_tls_and_basic_auth_is_read_with_the_own_ca_and_the_password(tmp_path, pki, sources,
                                                                                       tmp_path_factory):
    """As the prometheus role serves it with prometheus_web_*: https (derived from the monitoring host's
    prometheus_web_tls_certificate), verified against its tls_ca_trust_file, basic auth as the first of its
    prometheus_web_users. The password shows nowhere: not in the output, the evidence or the audit trail.
    A wrong password or another CA leaves the check missing, naming why."""
    web_pki = servers.make_pki(tmp_path_factory.mktemp('web-pki'), ips=['127.0.0.1'])
    password = 'golive-reader-secret-pw'
    targets, alerts = servers.prometheus_answers([servers.prometheus_target('prometheus', '127.0.0.1:9090')])
    secured = dict(sources, golive_report_synthetic=False, prometheus_web_tls_certificate='monitoring-web',
                   prometheus_web_users=[{'name': 'reader', 'password': password}],
                   tls_ca_trust_file=web_pki['ca'])
    with servers.https_server(pki, quizzes=[]) as (port, _requests), \
            servers.prometheus_server(targets, alerts, pki=web_pki, credentials=('reader', password)) as (
                prometheus_port, asked):
        rc, out = run_local_play(tmp_path, PLAY, dict(secured, golive_report_url=url(port),
                                                      prometheus_port=prometheus_port))
        assert rc == 0, out
        assert sorted(asked) == ['/api/v1/alerts', '/api/v1/targets?state=active']
        report = report_of(tmp_path, run_dirs(tmp_path)[-1])
        monitoring = [c for c in report['checks'] if c['id'] == 'monitoring'][0]
        assert monitoring['status'] == 'pass', monitoring
        assert monitoring['monitoring']['url'] == 'https://127.0.0.1:%d' % prometheus_port
        assert password not in out
        for path in tmp_path.rglob('*'):
            if path.is_file() and path.name != 'play.yml':
                assert password not in path.read_text(errors='replace'), path

        rc, out = run_local_play(tmp_path, PLAY, dict(secured, golive_report_url=url(port),
                                                      prometheus_port=prometheus_port,
                                                      golive_report_prometheus_password='wrong-reader-pw'))
        assert rc == 0, out
        monitoring = [c for c in report_of(tmp_path, run_dirs(tmp_path)[-1])['checks'] if c['id'] == 'monitoring'][0]
        assert monitoring['status'] == 'missing' and '401' in monitoring['summary'], monitoring

        rc, out = run_local_play(tmp_path, PLAY, dict(secured, golive_report_url=url(port),
                                                      prometheus_port=prometheus_port,
                                                      golive_report_prometheus_ca_file=pki['ca']))
        assert rc == 0, out
        monitoring = [c for c in report_of(tmp_path, run_dirs(tmp_path)[-1])['checks'] if c['id'] == 'monitoring'][0]
        assert monitoring['status'] == 'missing' and 'CERTIFICATE_VERIFY_FAILED' in monitoring['summary'], monitoring
