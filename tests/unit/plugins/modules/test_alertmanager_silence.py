# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alertmanager_silence against a real Alertmanager on loopback (Debian's prometheus-alertmanager,
which tests/lab/setup.sh installs for amtool), behind basic auth: create, find again, check mode,
expire, and the refusals before any request."""

from __future__ import annotations

import base64
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import warnings

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _alertmanager
from ansible_collections.aiquiz.ops.plugins.modules import alertmanager_silence

with warnings.catch_warnings():
    warnings.simplefilter('ignore', DeprecationWarning)
    import crypt  # pylint: disable=deprecated-module

PASSWORD = 'unit-alertmanager-password-never-shown'


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def alertmanager(tmp_path_factory):
    binary = shutil.which('prometheus-alertmanager')
    assert binary, 'prometheus-alertmanager is missing (tests/lab/setup.sh installs it)'
    tmp = tmp_path_factory.mktemp('alertmanager')
    (tmp / 'am.yml').write_text('route:\n  receiver: none\nreceivers:\n  - name: none\n')
    hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))
    (tmp / 'web.yml').write_text(json.dumps({'basic_auth_users': {'prometheus': hashed}}))
    port = free_port()
    proc = subprocess.Popen([binary, '--config.file=%s' % (tmp / 'am.yml'), '--storage.path=%s' % (tmp / 'data'),
                             '--web.listen-address=127.0.0.1:%d' % port, '--cluster.listen-address=',
                             '--web.config.file=%s' % (tmp / 'web.yml')],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / 'log', 'w'))
    url = 'http://127.0.0.1:%d' % port
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, (tmp / 'log').read_text()
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def call(capsys, url, check=False, **args):
    args = dict({'url': url, 'username': 'prometheus', 'password': PASSWORD}, **args)
    if check:
        args['_ansible_check_mode'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            alertmanager_silence.main()
    captured = capsys.readouterr()
    # ansible-core 2.19 prints a module's warnings on stderr when no controller runs it.
    return exit_info.value.code, json.loads(captured.out), captured.out + captured.err


def silences(url):
    request = urllib.request.Request(url + '/api/v2/silences')
    request.add_header('Authorization', 'Basic ' + base64.b64encode(('prometheus:' + PASSWORD).encode()).decode())
    return json.loads(urllib.request.urlopen(request, timeout=5).read())


def live(url, comment):
    return [s for s in silences(url) if s['comment'] == comment and s['status']['state'] in ('active', 'pending')]


def test_create_find_again_and_expire(capsys, alertmanager):
    comment = 'deploy of release 1.2.0 on app1 (%s)' % time.time()
    matchers = ['instance="app1"', 'alertname!="HostDown"']
    code, result, out = call(capsys, alertmanager, matchers=matchers, comment=comment, duration='30m')
    assert (code, result['changed'], result['created']) == (0, True, True)
    made = live(alertmanager, comment)
    assert [s['id'] for s in made] == [result['silence_id']]
    assert made[0]['createdBy'] == 'aiquiz.ops'
    assert sorted((m['name'], m['value'], m['isEqual']) for m in made[0]['matchers']) == [
        ('alertname', 'HostDown', False), ('instance', 'app1', True)]
    assert PASSWORD not in out
    # Again: the same silence is found, none is added.
    code, again, _out = call(capsys, alertmanager, matchers=list(reversed(matchers)), comment=comment)
    assert (code, again['changed'], again['created'], again['silence_id']) == (0, False, False, result['silence_id'])
    assert len(live(alertmanager, comment)) == 1
    # Check mode of absent: says what it would expire, expires nothing.
    code, checked, _out = call(capsys, alertmanager, check=True, comment=comment, state='absent')
    assert (code, checked['changed'], checked['expired']) == (0, True, [result['silence_id']])
    assert len(live(alertmanager, comment)) == 1
    code, gone, _out = call(capsys, alertmanager, comment=comment, state='absent')
    assert (code, gone['changed'], gone['expired']) == (0, True, [result['silence_id']])
    assert live(alertmanager, comment) == []
    assert [s['status']['state'] for s in silences(alertmanager) if s['id'] == result['silence_id']] == ['expired']
    code, none, _out = call(capsys, alertmanager, comment=comment, state='absent')
    assert (code, none['changed'], none['expired']) == (0, False, [])


def test_check_mode_creates_nothing(capsys, alertmanager):
    comment = 'check mode %s' % time.time()
    code, result, _out = call(capsys, alertmanager, check=True, matchers=['instance="app2"'], comment=comment)
    assert (code, result['changed'], result['created'], result['silence_id']) == (0, True, False, '')
    assert live(alertmanager, comment) == []


def test_absent_leaves_other_authors_and_comments_alone(capsys, alertmanager):
    stamp = time.time()
    call(capsys, alertmanager, matchers=['instance="app1"'], comment='ours %s' % stamp)
    call(capsys, alertmanager, matchers=['instance="app1"'], comment='ours %s' % stamp, created_by='alice')
    call(capsys, alertmanager, matchers=['instance="app1"'], comment='theirs %s' % stamp)
    code, result, _out = call(capsys, alertmanager, comment='ours %s' % stamp, state='absent')
    assert (code, len(result['expired'])) == (0, 1)
    assert [s['createdBy'] for s in live(alertmanager, 'ours %s' % stamp)] == ['alice']
    assert len(live(alertmanager, 'theirs %s' % stamp)) == 1


def test_wrong_password_fails_naming_the_answer_not_the_password(capsys, alertmanager):
    code, result, out = call(capsys, alertmanager, password='wrong-' + PASSWORD, matchers=['instance="x"'],
                             comment='never')
    assert code == 1
    assert re.search(r'GET http://127\.0\.0\.1:\d+/api/v2/silences answered 401', result['msg'])
    assert PASSWORD not in out


def test_unreachable_alertmanager_fails_naming_the_url(capsys):
    url = 'http://127.0.0.1:%d' % free_port()
    code, result, _out = call(capsys, url, matchers=['instance="x"'], comment='never', timeout=2)
    assert code == 1 and result['msg'].startswith('GET %s/api/v2/silences failed' % url)


def test_unreachable_alertmanager_can_be_a_warning(capsys):
    url = 'http://127.0.0.1:%d' % free_port()
    for state in ('present', 'absent'):
        code, result, out = call(capsys, url, matchers=['instance="x"'], comment='deploy of 1.2.0 on app1', timeout=2,
                                 unreachable='warn', state=state)
        assert (code, result['changed'], result['silence_id'], result['expired']) == (0, False, '', [])
        assert 'no Alertmanager answers (GET %s/api/v2/silences failed' % url in out
        assert 'the alerts of \"deploy of 1.2.0 on app1\" are not %s there' % (
            'silenced' if state == 'present' else 'unsilenced') in out


def test_a_tls_failure_or_a_missing_ca_file_is_unreachable_too(capsys, alertmanager, tmp_path):
    """The first go-live deploys before the web certificate exists: a missing CA file, or TLS spoken
    to a plain HTTP Alertmanager, is a warning with unreachable=warn, and a failure without it."""
    https = alertmanager.replace('http://', 'https://')
    for ca_path in (str(tmp_path / 'missing-ca.pem'), None):
        args = dict(matchers=['instance="x"'], comment='never', unreachable='warn', timeout=3)
        if ca_path:
            args['ca_path'] = ca_path
        code, result, out = call(capsys, https, **args)
        assert (code, result['changed']) == (0, False), out
        assert 'no Alertmanager answers' in out
        args['unreachable'] = 'fail'
        code, result, out = call(capsys, https, **args)
        assert code == 1 and result['msg'].startswith('GET %s/api/v2/silences failed' % https), result['msg']


def test_http_error_fails_even_when_unreachable_is_a_warning(capsys, alertmanager):
    code, result, _out = call(capsys, alertmanager, password='wrong', matchers=['instance="x"'], comment='never',
                              unreachable='warn')
    assert code == 1 and 'answered 401' in result['msg']


@pytest.mark.parametrize('args, message', [
    ({'matchers': ['instance=app1']}, 'matchers/duration: "instance=app1" is not a matcher'),
    ({'matchers': ['alertname!="HostDown"']}, 'at least one matcher must select alerts by a non-empty value'),
    ({'matchers': ['instance=~".*"']}, 'at least one matcher must select alerts by a non-empty value'),
    ({'matchers': ['instance=~"("']}, 'the regex does not compile'),
    ({'matchers': ['instance="a"'], 'duration': '0m'}, '"0m" is not a duration longer than 0'),
    ({'matchers': ['instance="a"'], 'duration': 'soon'}, '"soon" is not a duration such as 30m'),
    ({'matchers': ['instance="a"'], 'comment': '  '}, 'comment must say why'),
    ({}, 'matchers: at least one matcher is needed'),
])
def test_bad_arguments_are_refused_before_any_request(capsys, args, message):
    # Port 9 on loopback: any request would fail with another message.
    args = dict({'comment': 'x'}, **args)
    code, result, _out = call(capsys, 'http://127.0.0.1:9', **args)
    assert code == 1
    assert message in result['msg'], result['msg']


@pytest.mark.parametrize('text, expected', [
    ('instance="app1"', {'name': 'instance', 'value': 'app1', 'isRegex': False, 'isEqual': True}),
    ('job=~"node|nginx"', {'name': 'job', 'value': 'node|nginx', 'isRegex': True, 'isEqual': True}),
    (' alertname != "HostDown" ', {'name': 'alertname', 'value': 'HostDown', 'isRegex': False, 'isEqual': False}),
    ('severity!~"info|warning"', {'name': 'severity', 'value': 'info|warning', 'isRegex': True, 'isEqual': False}),
    (r'summary="say \"hi\""', {'name': 'summary', 'value': 'say "hi"', 'isRegex': False, 'isEqual': True}),
])
def test_matchers_as_routes_write_them(text, expected):
    assert _alertmanager.parse_matcher(text) == expected


@pytest.mark.parametrize('text, seconds', [('30m', 1800), ('2h', 7200), ('1h30m', 5400), ('90s', 90)])
def test_durations(text, seconds):
    assert _alertmanager.duration_seconds(text) == seconds
