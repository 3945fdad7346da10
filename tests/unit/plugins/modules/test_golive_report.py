# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz.ops.golive_report on real files: an audit trail written by the
aiquiz.ops.audit callback during a real ansible-playbook run on localhost, the
result of aiquiz.ops.golive_probe against a real HTTPS server on 127.0.0.1, this
git checkout; then the evidence chain edited, removed and verified."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_probe
from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_report
from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_synthetic
from ansible_collections.aiquiz.ops.plugins.modules import golive_report

sys.path.insert(0, os.path.dirname(__file__))
import golive_servers as servers  # noqa: E402 (beside this file)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
SECTIONS = ['summary', 'run', 'phases', 'preflight', 'changes', 'checks', 'check-public-url', 'check-readiness', 'check-backups',
            'check-certificates', 'check-synthetic', 'check-monitoring', 'check-drill', 'signoff', 'evidence']
PLAY = """
- name: "Phase 1: preflight"
  hosts: localhost
  gather_facts: false
  vars:
    aiquiz_environment: test
    aiquiz_public_hostname: quiz.aiquiz.test
    # Localhost is no go-live target: report its checks, do not stop.
    preflight_fail_on_error: false
  roles:
    - role: aiquiz.ops.preflight
  tasks:
    - name: Write a marker
      ansible.builtin.copy:
        content: "go-live\\n"
        dest: "{{ marker }}"
        mode: "0600"
    - name: A check that fails and is ignored
      ansible.builtin.command: "false"
      changed_when: false
      ignore_errors: true

- name: "Phase 2: hosts"
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Wait a little
      ansible.builtin.pause:
        seconds: 1
    - name: Touch the marker
      ansible.builtin.file:
        path: "{{ marker }}"
        mode: "0640"
"""


def run_module(capsys, args, check=False, diff=False):
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            golive_report.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope='module')
def audit_trail(tmp_path_factory):
    """The audit trail of a real two-phase run on localhost."""
    work = tmp_path_factory.mktemp('run')
    (work / 'play.yml').write_text(PLAY)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               AIQUIZ_AUDIT_DIR=str(work / 'audit'))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                           '-c', 'local', '-e', json.dumps({'ansible_python_interpreter': sys.executable,
                                                            'marker': str(work / 'marker')}),
                           str(work / 'play.yml')], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [trail] = list((work / 'audit').glob('*.jsonl'))
    return str(trail)


@pytest.fixture(scope='module')
def probe(tmp_path_factory):
    """A real golive_probe result for a server that passes, without the slow sslyze scan."""
    pki = servers.make_pki(tmp_path_factory.mktemp('pki'))
    with servers.https_server(pki) as (port, _requests):
        return _golive_probe.probe(dict(
            url='https://%s:%d/' % (servers.NAME, port), address='127.0.0.1', ca_file=pki['ca'], status=[200],
            samples=3, latency_budget_ms=0, timeout=5, min_days=14, hsts_min_age=15552000, tls_profile='none',
            tls_profile_ignore=[]))


def backups(hours_ago_ended):
    """A backup_catalogue list result with one verified dump that ended hours_ago_ended hours ago."""
    ended = _golive_report.utc_now() - __import__('datetime').timedelta(hours=hours_ago_ended)
    return {'changed': False, 'backups': [
        {'id': 'postgresql-dump-quiz-1', 'kind': 'postgresql-dump', 'subject': 'quiz', 'target': 'local',
         'status': 'good', 'ended': _golive_report.iso(ended),
         'verified': {'at': _golive_report.iso(ended), 'result': 'ok', 'detail': 'sha256 matches'}}]}


def args_for(dest, audit_trail, probe, **extra):
    args = {
        'dest': str(dest), 'audit_trail': audit_trail, 'public_url': probe,
        'readiness': {'app1': {'changed': False, 'passed': True,
                               'gates': [{'url': 'http://127.0.0.1:8010/readyz', 'passed': True, 'last_status': 200}]},
                      'app2': {'skipped': True, 'skip_reason': 'no release ledger on the host'}},
        'backups': {'data1': backups(3)},
        'certificates': {'edge1': {'changed': False, 'certificates': [
            {'source': '/etc/aiquiz/tls/edge/fullchain.pem', 'subject': 'CN=quiz', 'not_after': '2027-03-01T00:00:00Z',
             'days_left': 87.0, 'error': None}]}},
        'collection_path': ROOT,
        'inventory_path': str(dest.parent),
    }
    args.update(extra)
    return args


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_report_from_a_real_run(capsys, tmp_path, audit_trail, probe):
    dest = tmp_path / 'evidence'
    code, result = run_module(capsys, args_for(dest, audit_trail, probe), diff=True)
    assert code == 0, result
    assert result['changed'] is True
    run_id = os.path.basename(audit_trail)[:-len('.jsonl')]
    assert result['run_id'] == run_id and result['directory'] == str(dest / run_id)
    # app2 has no ledger: missing, said so, not a failure.
    assert result['verdict'] == 'incomplete'
    statuses = dict((c['id'], c['status']) for c in result['checks'])
    assert statuses == {'public_url': 'pass', 'readiness': 'missing', 'backups': 'pass', 'certificates': 'pass',
                        'synthetic': 'missing', 'monitoring': 'missing', 'drill': 'missing', 'hardening': 'missing'}
    readiness = [c for c in result['checks'] if c['id'] == 'readiness'][0]
    assert 'app2: no release ledger on the host' in readiness['summary']

    report = json.loads((dest / run_id / 'report.json').read_text())
    phases = report['phases']
    assert [p['name'] for p in phases] == ['Phase 1: preflight', 'Phase 2: hosts']
    assert phases[1]['seconds'] >= 1.0 and all(p['status'] == 'ok' for p in phases)
    assert [t['task'] for t in report['changes']['localhost']] == ['Write a marker', 'Touch the marker']
    assert report['failures'] == []  # the failure was ignored
    # The preflight role's summary line, from the trail.
    [preflight] = report['preflight']
    assert preflight['host'] == 'localhost' and re.match(r'^\d+ checks, \d+ failed', preflight['msg']), preflight
    assert report['run']['who']['user'] and report['run']['audit_trail']['chosen'] == 'given'
    commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', 'HEAD'], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert report['commits']['collection']['commit'] == commit
    assert report['commits']['inventory']['commit'] is None
    assert 'not a git checkout' in report['commits']['inventory']['error']

    # Evidence: 0700 directories, 0600 files, each file in the manifest with its hash.
    assert mode(dest) == 0o700 and mode(dest / run_id) == 0o700
    names = sorted(os.listdir(dest / run_id))
    assert names == ['MANIFEST.json', 'audit.jsonl', 'report.html', 'report.json']
    assert all(mode(dest / run_id / name) == 0o600 for name in names)
    manifest = json.loads((dest / run_id / 'MANIFEST.json').read_text())
    assert manifest['previous'] is None and manifest['run'] == run_id
    for name in names[1:]:
        assert manifest['files'][name] == _golive_report.sha256_file(str(dest / run_id / name))
    assert (dest / run_id / 'audit.jsonl').read_text() == open(audit_trail, encoding='utf-8').read()
    assert result['manifest_sha256'] == _golive_report.sha256_file(str(dest / run_id / 'MANIFEST.json'))
    assert result['diff']['before'] == '' and '"report.html"' in result['diff']['after']


def test_html_is_self_contained_with_every_section(capsys, tmp_path, audit_trail, probe):
    dest = tmp_path / 'evidence'
    code, result = run_module(capsys, args_for(dest, audit_trail, probe))
    assert code == 0
    page = open(result['html'], encoding='utf-8').read()
    for section in SECTIONS:
        assert 'id="%s"' % section in page
    assert page.count('<svg') == 2  # phase timings and the probe's latency
    assert not re.search(r'<(script|link|img|iframe)\b', page, re.IGNORECASE)
    assert not re.search(r'(src|href)\s*=', page, re.IGNORECASE)
    assert not re.search(r'url\(', page)
    assert 'Phase 2: hosts' in page and 'Release manager' in page


def test_check_mode_writes_nothing(capsys, tmp_path, audit_trail, probe):
    dest = tmp_path / 'evidence'
    code, result = run_module(capsys, args_for(dest, audit_trail, probe), check=True)
    assert code == 0 and result['changed'] is True
    assert not dest.exists()


def test_missing_sources_are_reported_and_the_url_fails(capsys, tmp_path):
    dest = tmp_path / 'evidence'
    code, result = run_module(capsys, {'dest': str(dest), 'audit_trail': str(tmp_path / 'no-audit'),
                                       'run_id': '20261204T170000Z-test'})
    assert code == 0
    assert result['verdict'] == 'fail'
    checks = dict((c['id'], c) for c in result['checks'])
    assert checks['public_url']['status'] == 'fail'
    assert checks['public_url']['summary'] == 'the public URL was not probed'
    assert [checks[k]['status'] for k in ('readiness', 'backups', 'certificates', 'synthetic', 'monitoring',
                                          'drill')] == ['missing'] * 6
    assert checks['synthetic']['summary'] == 'not checked (no synthetic result given)'
    report = json.loads((dest / '20261204T170000Z-test' / 'report.json').read_text())
    assert report['phases'] == [] and report['run']['audit_trail']['chosen'].startswith('no audit trail at')
    assert 'audit.jsonl' not in os.listdir(dest / '20261204T170000Z-test')


def test_stale_backup_expiring_certificate_and_unready_host_fail(capsys, tmp_path, audit_trail, probe):
    dest = tmp_path / 'evidence'
    unready = {'app1': {'failed': True, 'passed': False, 'msg': 'http://127.0.0.1:8010/readyz: 503'}}
    args = args_for(dest, audit_trail, probe, readiness=unready,
                    backups={'data1': backups(50), 'data2': {'changed': False, 'backups': []}})
    args['certificates']['edge1']['certificates'][0]['days_left'] = 5.0
    code, result = run_module(capsys, args)
    assert code == 0 and result['verdict'] == 'fail'
    checks = dict((c['id'], c) for c in result['checks'])
    assert checks['readiness']['status'] == 'fail' and '503' in checks['readiness']['summary']
    assert checks['backups']['status'] == 'fail'
    assert 'older than 26.0 h' in checks['backups']['summary']
    assert 'data2: no backup in the catalogue' in checks['backups']['summary']
    assert checks['certificates']['status'] == 'fail' and '5.0 days left' in checks['certificates']['summary']


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    """Real golive_synthetic results: a quiz created and read back, and a server without the API."""
    pki = servers.make_pki(tmp_path_factory.mktemp('pki-api'))
    params = dict(address='127.0.0.1', ca_file=pki['ca'], path='/api/quizzes', title='go-live synthetic t', timeout=5)
    with servers.https_server(pki, quizzes=[]) as (port, _requests):
        good = _golive_synthetic.transaction(dict(params, url='https://%s:%d/' % (servers.NAME, port)))
        skipped = _golive_synthetic.transaction(dict(params, url='https://%s:%d/' % (servers.NAME, port)), True)
    with servers.https_server(pki) as (port, _requests):
        bad = _golive_synthetic.transaction(dict(params, url='https://%s:%d/' % (servers.NAME, port)))
    return dict(good=good, skipped=skipped, bad=bad)


def prometheus(targets, alerts=()):
    """What ansible.builtin.uri registers for the two API answers (status and the decoded json)."""
    targets_body, alerts_body = servers.prometheus_answers(targets, alerts)
    return {'host': 'mon1', 'url': 'http://10.0.0.9:9090',
            'targets': {'changed': False, 'status': 200, 'json': targets_body},
            'alerts': {'changed': False, 'status': 200, 'json': alerts_body}}


ALL_UP = [servers.prometheus_target('node', '10.0.0.%d:9100' % n) for n in (1, 2, 3)] + [
    servers.prometheus_target('prometheus', '10.0.0.9:9090')]


def drill_report(tmp_path, days_ago=3, rto=187.4, rpo=4.2, name='dr-drill-report.json'):
    ran = _golive_report.utc_now() - __import__('datetime').timedelta(days=days_ago)
    path = tmp_path / name
    # The keys playbooks/dr-drill.yml writes.
    path.write_text(json.dumps({'source': 'data1', 'restored_on': 'mon1', 'target': 's3', 'backup_set': 'x',
                                'rto_seconds': rto, 'rpo_seconds': rpo, 'rto_all_seconds': rto + 60,
                                'drill_at': _golive_report.iso(ran)}, indent=4))
    return str(path)


def test_synthetic_monitoring_and_drill_pass(capsys, tmp_path, audit_trail, probe, synthetic):
    dest = tmp_path / 'evidence'
    args = args_for(dest, audit_trail, probe, synthetic=synthetic['good'],
                    monitoring=prometheus(ALL_UP, [servers.prometheus_alert('DiskFilling', 'warning', '10.0.0.2:9100'),
                                                   servers.prometheus_alert('InstanceDown', 'critical', 'x', 'pending')]),
                    drill={'path': drill_report(tmp_path)},
                    hardening={'data1': _loosened(HARDENED, unit=('chrony.service', 'active', 'active'))})
    del args['readiness']['app2']
    code, result = run_module(capsys, args)
    assert code == 0, result
    checks = dict((c['id'], c) for c in result['checks'])
    assert result['verdict'] == 'pass', [c['summary'] for c in result['checks']]
    assert checks['hardening']['status'] == 'pass' and len(checks['hardening']['items']) == 5
    assert [i['subject'].split()[0] for i in checks['synthetic']['items']] == ['POST', 'GET']
    assert [i['subject'] for i in checks['monitoring']['items']] == ['job node', 'job prometheus', 'alert DiskFilling']
    assert checks['monitoring']['items'][0]['detail'] == '3 up'
    assert [i['status'] for i in checks['drill']['items']] == ['pass', 'pass', 'pass']
    assert checks['drill']['items'][1]['detail'] == '187.4 s, aim 300 s (every service: 247.4 s)'
    report = json.loads(open(result['json'], encoding='utf-8').read())
    by_id = dict((c['id'], c) for c in report['checks'])
    steps = by_id['synthetic']['transaction']['steps']
    assert [(s['name'], s['status']) for s in steps] == [('create', 201), ('read', 200)]
    assert all(s['elapsed_ms'] > 0 for s in steps)
    assert by_id['monitoring']['monitoring']['firing'] == [
        {'name': 'DiskFilling', 'severity': 'warning', 'instance': '10.0.0.2:9100', 'since': '2026-12-05T00:58:00.000Z'}]
    assert by_id['drill']['drill']['rpo_seconds'] == 4.2
    page = open(result['html'], encoding='utf-8').read()
    assert 'go-live synthetic t' in page and 'DiskFilling' in page and '187.4 s (aim 300.0 s)' in page


def test_down_target_critical_alert_and_old_slow_drill_warn(capsys, tmp_path, audit_trail, probe, synthetic):
    dest = tmp_path / 'evidence'
    targets = ALL_UP + [servers.prometheus_target('postgres', '10.0.0.5:9187', 'down', 'connection refused')]
    alerts = [servers.prometheus_alert('PostgresDown', 'critical', '10.0.0.5:9187')]
    older = drill_report(tmp_path, days_ago=40, rto=311.0, rpo=75.5, name='dr-drill-old.json')
    args = args_for(dest, audit_trail, probe, synthetic=synthetic['good'], monitoring=prometheus(targets, alerts),
                    drill={'path': older, 'max_age_days': 35, 'rto_seconds': 300, 'rpo_seconds': 60})
    del args['readiness']['app2']
    code, result = run_module(capsys, args)
    assert code == 0
    checks = dict((c['id'], c) for c in result['checks'])
    assert result['verdict'] == 'incomplete'
    assert checks['monitoring']['status'] == 'warn'
    assert 'job postgres: 0 up, 1 down: 10.0.0.5:9187 (down: connection refused)' in checks['monitoring']['summary']
    assert 'alert PostgresDown: firing on 10.0.0.5:9187, severity critical' in checks['monitoring']['summary']
    assert checks['drill']['status'] == 'warn'
    assert [i['status'] for i in checks['drill']['items']] == ['warn', 'warn', 'warn']
    assert 'RTO: 311 s, aim 300 s' in checks['drill']['summary'] and 'RPO: 75.5 s, aim 60 s' in checks['drill']['summary']


def test_failed_or_skipped_synthetic_and_absent_sources(capsys, tmp_path, audit_trail, probe, synthetic):
    dest = tmp_path / 'evidence'
    unreachable = {'host': 'mon1', 'url': 'http://10.0.0.9:9090',
                   'targets': {'unreachable': True, 'msg': 'ssh: connect to host mon1 port 22: refused'},
                   'alerts': {'unreachable': True, 'msg': 'ssh: connect to host mon1 port 22: refused'}}
    code, result = run_module(capsys, args_for(dest, audit_trail, probe, synthetic=synthetic['bad'],
                                               monitoring=unreachable, drill={'path': ''}))
    assert code == 0 and result['verdict'] == 'fail'
    checks = dict((c['id'], c) for c in result['checks'])
    assert checks['synthetic']['status'] == 'fail'
    assert checks['synthetic']['summary'].endswith('404 (expected 201) in %s ms: answered 404, expected 201'
                                                   % synthetic['bad']['steps'][0]['elapsed_ms'])
    assert checks['monitoring']['status'] == 'missing'
    assert checks['monitoring']['summary'] == ('Prometheus targets of mon1 (http://10.0.0.9:9090): unreachable: '
                                               'ssh: connect to host mon1 port 22: refused')
    assert checks['drill']['status'] == 'missing'
    assert checks['drill']['summary'] == 'no drill report (golive_report_drill_report is empty)'

    code, result = run_module(capsys, args_for(dest, audit_trail, probe, synthetic=synthetic['skipped'],
                                               monitoring={'skipped': True, 'skip_reason': 'no monitoring host'},
                                               drill={'path': str(tmp_path / 'none-*.json')}))
    checks = dict((c['id'], c) for c in result['checks'])
    assert checks['synthetic'] == dict(id='synthetic', title='Synthetic transaction through the public URL',
                                       status='missing', summary='skipped in check mode: the POST would create a quiz',
                                       items=[])
    assert checks['monitoring']['summary'] == 'no monitoring host'
    assert checks['drill']['summary'] == 'no drill report at %s' % (tmp_path / 'none-*.json')


def test_the_newest_drill_report_of_a_glob_is_read(capsys, tmp_path, audit_trail, probe):
    old = drill_report(tmp_path, days_ago=60, name='dr-drill-a.json')
    new = drill_report(tmp_path, days_ago=1, name='dr-drill-b.json')
    os.utime(old, (1, 1))
    code, result = run_module(capsys, args_for(tmp_path / 'evidence', audit_trail, probe,
                                               drill={'path': str(tmp_path / 'dr-drill-*.json')}))
    assert code == 0
    report = json.loads(open(result['json'], encoding='utf-8').read())
    drill = [c for c in report['checks'] if c['id'] == 'drill'][0]
    assert drill['status'] == 'pass' and drill['drill']['path'] == new


def test_audit_trail_of_the_running_playbook_is_found_by_pid(tmp_path):
    for name in ('20261204T160000Z-go-live-111.jsonl', '20261204T170000Z-go-live-222.jsonl'):
        (tmp_path / name).write_text('{}\n')
    assert _golive_report.find_audit_trail(str(tmp_path), pids=[999, 111]) == (
        str(tmp_path / '20261204T160000Z-go-live-111.jsonl'), 'this run')
    found, how = _golive_report.find_audit_trail(str(tmp_path), pids=[999])
    assert found.endswith('-222.jsonl') and how.startswith('newest in')


def three_runs(capsys, tmp_path, audit_trail, probe):
    dest = tmp_path / 'evidence'
    for run_id in ('20261201T100000Z-go-live-1', '20261202T100000Z-go-live-2', '20261203T100000Z-go-live-3'):
        code, result = run_module(capsys, args_for(dest, audit_trail, probe, run_id=run_id))
        assert code == 0, result
    return dest


def test_manifests_chain_and_verify(capsys, tmp_path, audit_trail, probe):
    dest = three_runs(capsys, tmp_path, audit_trail, probe)
    second = json.loads((dest / '20261202T100000Z-go-live-2' / 'MANIFEST.json').read_text())
    assert second['previous'] == {'run': '20261201T100000Z-go-live-1', 'manifest_sha256': _golive_report.sha256_file(
        str(dest / '20261201T100000Z-go-live-1' / 'MANIFEST.json'))}
    code, result = run_module(capsys, {'dest': str(dest), 'state': 'verify'})
    assert code == 0, result
    assert result['changed'] is False and result['problems'] == []
    assert result['runs'] == sorted(os.listdir(dest))
    assert result['manifest_sha256'] == _golive_report.sha256_file(
        str(dest / '20261203T100000Z-go-live-3' / 'MANIFEST.json'))


@pytest.mark.parametrize('tamper, problem', [
    (lambda d: (d / '20261201T100000Z-go-live-1' / 'report.json').write_text('{"verdict": "pass"}\n'),
     '20261201T100000Z-go-live-1: report.json was changed'),
    (lambda d: (d / '20261202T100000Z-go-live-2' / 'audit.jsonl').unlink(),
     '20261202T100000Z-go-live-2: audit.jsonl is listed but removed'),
    (lambda d: (d / '20261202T100000Z-go-live-2' / 'extra.txt').write_text('x'),
     '20261202T100000Z-go-live-2: extra.txt is not in the manifest'),
    (lambda d: shutil.rmtree(d / '20261202T100000Z-go-live-2'),
     '20261203T100000Z-go-live-3: the manifest links to run 20261202T100000Z-go-live-2, which is missing'),
    (lambda d: (d / '20261201T100000Z-go-live-1' / 'MANIFEST.json').write_text(
        (d / '20261201T100000Z-go-live-1' / 'MANIFEST.json').read_text().replace('"version": 1', '"version": 1 ')),
     '20261202T100000Z-go-live-2: the manifest of the previous run 20261201T100000Z-go-live-1 was changed since'),
])
def test_verify_names_an_edited_or_removed_file(capsys, tmp_path, audit_trail, probe, tamper, problem):
    dest = three_runs(capsys, tmp_path, audit_trail, probe)
    tamper(dest)
    code, result = run_module(capsys, {'dest': str(dest), 'state': 'verify'})
    assert code == 1 and result['failed'] is True
    assert any(p.startswith(problem) for p in result['problems']), result['problems']
    assert problem in result['msg']


def test_a_looser_destination_is_narrowed(capsys, tmp_path, audit_trail, probe):
    dest = tmp_path / 'evidence'
    dest.mkdir(mode=0o755)
    os.chmod(dest, 0o755)
    code, _result = run_module(capsys, args_for(dest, audit_trail, probe, run_id='20261204T170000Z-x'))
    assert code == 0 and mode(dest) == 0o700


def test_bad_run_id_fails(capsys, tmp_path):
    code, result = run_module(capsys, {'dest': str(tmp_path), 'run_id': '../x'})
    assert code == 1 and 'run_id must begin with the UTC time' in result['msg']


def png_facts(path):
    """(width, height, distinct byte values of the decoded image data) of a PNG."""
    import struct
    import zlib
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    width, height = struct.unpack('>II', data[16:24])
    offset, idat = 8, b''
    while offset < len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        if kind == b'IDAT':
            idat += data[offset + 8:offset + 8 + length]
        offset += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_report_renders_in_headless_chromium(capsys, tmp_path, audit_trail, probe):
    """Debian's chromium (tests/lab/setup.sh installs it) parses the page into every section; the screenshot
    is kept in tests/output/golive-report.png."""
    chromium = shutil.which('chromium')
    assert chromium, 'chromium is not installed: run tests/lab/setup.sh (apt-get install chromium)'
    dest = tmp_path / 'evidence'
    code, result = run_module(capsys, args_for(dest, audit_trail, probe))
    assert code == 0
    url = 'file://' + result['html']
    base = [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
            '--user-data-dir=%s' % (tmp_path / 'profile'), '--disable-extensions', '--disable-background-networking']
    dom = subprocess.run(base + ['--dump-dom', url], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert re.search(r'<(section|header) id="%s"' % section, dom.stdout), section
    assert dom.stdout.count('<rect') == len(json.loads(open(result['json']).read())['phases']) + 3
    assert 'Phase 1: preflight' in dom.stdout and 'Sign-off' in dom.stdout

    out = os.path.join(ROOT, 'tests', 'output')
    os.makedirs(out, exist_ok=True)
    shot = os.path.join(out, 'golive-report.png')
    if os.path.exists(shot):
        os.unlink(shot)
    proc = subprocess.run(base + ['--hide-scrollbars', '--window-size=1280,3200', '--screenshot=%s' % shot, url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    width, height, distinct = png_facts(shot)
    assert (width, height) == (1280, 3200)
    assert distinct > 20  # text, badges and bars, not a blank page


# What aiquiz.ops.host_state answered on a lab data host after go-live (tests/e2e); chrony is inactive
# there because a container may not set the clock.
HARDENED = json.loads(open(os.path.join(os.path.dirname(__file__), 'data', 'host_state_hardened.json'),
                           encoding='utf-8').read())


def _loosened(answer, sshd=None, policy=None, unit=None, sysctl=None):
    answer = json.loads(json.dumps(answer))
    if sshd:
        key, value = sshd
        answer['commands']['sshd']['stdout'] = re.sub(r'(?m)^%s .*$' % key, '%s %s' % (key, value),
                                                      answer['commands']['sshd']['stdout'])
    if policy:
        answer['commands']['nft_input']['stdout'] = answer['commands']['nft_input']['stdout'].replace(
            'policy drop;', 'policy %s;' % policy)
    if unit:
        name, field, value = unit
        answer['units'][name][field] = value
    if sysctl:
        answer['sysctl'][sysctl[0]]['value'] = sysctl[1]
    return answer


def test_hardening_of_a_hardened_host_passes_but_a_stopped_clock_sync_warns():
    check = _golive_report.check_hardening({'data1': HARDENED})
    status = {item['subject']: item['status'] for item in check['items']}
    assert status == {'data1 sshd': 'pass', 'data1 firewall': 'pass', 'data1 security updates': 'pass',
                      'data1 time': 'warn', 'data1 kernel': 'pass'}
    assert check['status'] == 'warn' and check['summary'] == 'data1 time: chrony inactive'
    running = _loosened(HARDENED, unit=('chrony.service', 'active', 'active'))
    assert _golive_report.check_hardening({'data1': running})['status'] == 'pass'


@pytest.mark.parametrize('change, subject, status, detail', [
    ({'sshd': ('permitrootlogin', 'yes')}, 'data1 sshd', 'fail', 'allows permitrootlogin yes'),
    ({'sshd': ('passwordauthentication', 'yes')}, 'data1 sshd', 'fail', 'allows passwordauthentication yes'),
    ({'policy': 'accept'}, 'data1 firewall', 'fail', 'input policy is not drop'),
    ({'unit': ('nftables.service', 'enabled', 'disabled')}, 'data1 firewall', 'warn',
     'input policy drop; nftables.service is disabled at boot'),
    ({'unit': ('unattended-upgrades.service', 'enabled', 'disabled')}, 'data1 security updates', 'warn',
     'unattended-upgrades disabled'),
    ({'sysctl': ('kernel.randomize_va_space', '0')}, 'data1 kernel', 'warn',
     'kernel.randomize_va_space = 0 (want 2)'),
])
def test_hardening_that_was_loosened_by_hand_is_named(change, subject, status, detail):
    items = _golive_report.check_hardening({'data1': _loosened(HARDENED, **change)})['items']
    item = [i for i in items if i['subject'] == subject][0]
    assert (item['status'], item['detail']) == (status, detail)


def test_hardening_without_an_answer_is_missing_and_no_firewall_fails():
    check = _golive_report.check_hardening({'edge1': {'skipped': True, 'skip_reason': 'Conditional result was False'},
                                            'app1': {'failed': True, 'msg': 'sudo: a password is required'}})
    assert [(i['subject'], i['status'], i['detail']) for i in check['items']] == [
        ('app1', 'missing', 'sudo: a password is required'), ('edge1', 'missing', 'Conditional result was False')]
    none = json.loads(json.dumps(HARDENED))
    none['commands']['nft_input'] = {'rc': 1, 'stdout': ''}
    items = _golive_report.check_hardening({'data1': none})['items']
    assert ('data1 firewall', 'fail') in [(i['subject'], i['status']) for i in items]
    assert _golive_report.check_hardening({})['status'] == 'missing'
