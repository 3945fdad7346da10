# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz.ops.golive_probe against real HTTPS servers on 127.0.0.1 (Python's
ssl behind http.server, certificates made here with cryptography): one set up
as Mozilla's intermediate profile asks, others with a weak cipher, missing
headers, a wrong status, an expiring certificate, another CA; and a port that
nothing listens on."""

from __future__ import annotations

import json
import os
import socket
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_probe
from ansible_collections.aiquiz.ops.plugins.modules import golive_probe

sys.path.insert(0, os.path.dirname(__file__))
import golive_servers as servers  # noqa: E402 (beside this file)

WEAK_CIPHERS = servers.INTERMEDIATE_CIPHERS + ':ECDHE-ECDSA-AES128-SHA'


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return servers.make_pki(tmp_path_factory.mktemp('pki'))


@pytest.fixture(scope='module')
def other_pki(tmp_path_factory):
    return servers.make_pki(tmp_path_factory.mktemp('other-pki'))


def run_module(capsys, args, check=False):
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            golive_probe.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def url(port):
    return 'https://%s:%d/quiz?x=1' % (servers.NAME, port)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_intermediate_server_passes_every_check(capsys, pki):
    with servers.https_server(pki) as (port, requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': pki['ca'],
                                           'samples': 4})
    assert code == 0, result
    assert result['changed'] is False
    assert result['passed'] is True and result['findings'] == []
    tls = result['tls']
    assert tls['reachable'] and tls['verified'] and tls['verify_error'] is None
    assert tls['protocol'] == 'TLSv1.3'
    assert tls['chain'][0]['subject'].startswith('CN=%s' % servers.NAME)
    assert 89 < tls['chain_days_left'] <= 90
    # The name of the URL went as Host (and SNI: the chain verified for it), the path and query kept.
    assert [r['host'] for r in requests] == ['%s:%d' % (servers.NAME, port)] * 4
    assert requests[0]['path'] == '/quiz?x=1'
    assert result['http']['statuses'] == [200] * 4
    latency = result['latency_ms']
    assert len(latency['samples']) == 4 and latency['min'] <= latency['median'] <= latency['p95'] <= latency['max']
    assert [h['ok'] for h in result['headers']] == [True, True, True]
    profile = result['tls_profile']
    assert profile['ran'] and profile['compliant'] is True and profile['issues'] == {}
    assert profile['protocols'] == ['TLSv1.2', 'TLSv1.3']
    assert 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' in profile['cipher_suites']


def test_weak_cipher_missing_headers_and_wrong_status_are_findings(capsys, pki):
    headers = {'Strict-Transport-Security': 'max-age=300'}
    with servers.https_server(pki, headers=headers, status=503, ciphers=WEAK_CIPHERS) as (port, _requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': pki['ca'],
                                           'samples': 2})
    assert code == 0, result
    assert result['passed'] is False
    findings = '\n'.join(result['findings'])
    assert 'answered 503, expected 200' in findings
    assert 'header Strict-Transport-Security: max-age 300 is below 15552000' in findings
    assert 'header X-Content-Type-Options: missing' in findings
    assert 'header Frame options: neither X-Frame-Options nor' in findings
    profile = result['tls_profile']
    assert profile['compliant'] is False
    assert 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA' in profile['issues']['ciphers']
    assert 'Mozilla intermediate profile, ciphers:' in findings


def test_cookies_are_not_kept(capsys, pki):
    headers = dict(servers.GOOD_HEADERS, **{'Set-Cookie': 'session=s3cr3t-value; Secure; HttpOnly'})
    with servers.https_server(pki, headers=headers) as (port, _requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': pki['ca'],
                                           'samples': 1, 'tls_profile': 'none'})
    assert code == 0 and result['passed'] is True
    assert result['http']['headers']['set-cookie'] == '<redacted>'
    assert 's3cr3t-value' not in json.dumps(result)


def test_ignored_profile_issue_is_reported_but_not_a_finding(capsys, pki):
    with servers.https_server(pki, ciphers=WEAK_CIPHERS) as (port, _requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': pki['ca'],
                                           'samples': 1, 'tls_profile_ignore': ['ciphers']})
    assert code == 0
    assert result['tls_profile']['compliant'] is False and 'ciphers' in result['tls_profile']['issues']
    assert result['passed'] is True, result['findings']


def test_chain_of_another_ca_does_not_verify(capsys, pki, other_pki):
    with servers.https_server(pki) as (port, _requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': other_pki['ca'],
                                           'samples': 1, 'tls_profile': 'none'})
    assert code == 0
    assert result['tls']['reachable'] and result['tls']['verified'] is False
    assert 'certificate verify failed' in result['tls']['verify_error'] or result['tls']['verify_error']
    assert any(f.startswith('the certificate chain does not verify for %s against' % servers.NAME)
               for f in result['findings'])
    # Headers and latency are still reported.
    assert result['http']['statuses'] == [200]
    assert result['tls_profile']['ran'] is False


def test_name_the_certificate_is_not_for_does_not_verify(capsys, pki):
    with servers.https_server(pki) as (port, _requests):
        code, result = run_module(capsys, {'url': 'https://other.aiquiz.test:%d/' % port, 'address': '127.0.0.1',
                                           'ca_file': pki['ca'], 'samples': 1, 'tls_profile': 'none'})
    assert code == 0
    assert result['tls']['verified'] is False and 'other.aiquiz.test' in result['tls']['verify_error']


def test_expiring_certificate_is_a_finding(capsys, tmp_path):
    short = servers.make_pki(tmp_path, leaf_days=5)
    with servers.https_server(short) as (port, _requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': short['ca'],
                                           'samples': 1, 'tls_profile': 'none', 'min_days': 14})
    assert code == 0
    assert 4 < result['tls']['chain_days_left'] <= 5
    assert any('expires in' in f and 'fewer than 14' in f for f in result['findings'])


def test_nothing_listening_is_a_finding_and_fail_on_findings_fails(capsys):
    port = free_port()
    args = {'url': url(port), 'address': '127.0.0.1', 'timeout': 2}
    code, result = run_module(capsys, args)
    assert code == 0
    assert result['tls']['reachable'] is False and result['passed'] is False
    assert result['tls_profile']['ran'] is False and result['http']['statuses'] == []
    assert 'TLS handshake with 127.0.0.1:%d' % port in result['findings'][0]
    code, result = run_module(capsys, dict(args, fail_on_findings=True))
    assert code == 1 and result['failed'] is True
    assert result['msg'].startswith(url(port) + ': TLS handshake')


def test_check_mode_probes_as_a_real_run(capsys, pki):
    with servers.https_server(pki) as (port, requests):
        code, result = run_module(capsys, {'url': url(port), 'address': '127.0.0.1', 'ca_file': pki['ca'],
                                           'samples': 2, 'tls_profile': 'none'}, check=True)
    assert code == 0 and result['passed'] is True and len(requests) == 2


@pytest.mark.parametrize('bad, message', [
    ({'url': 'http://quiz.aiquiz.test/'}, 'url must be an https:// URL'),
    ({'url': 'https://quiz.aiquiz.test/', 'samples': 0}, 'samples must be at least 1'),
    ({'url': 'https://quiz.aiquiz.test/', 'tls_profile': 'strict'}, 'tls_profile'),
])
def test_bad_options_fail_naming_them(capsys, bad, message):
    code, result = run_module(capsys, bad)
    assert code == 1 and message in result['msg']


@pytest.mark.parametrize('headers, ok', [
    ({'content-security-policy': "default-src 'self'; frame-ancestors 'none'"}, True),
    ({'x-frame-options': 'sameorigin'}, True),
    ({'x-frame-options': 'ALLOW-FROM https://x'}, False),
    ({'content-security-policy': "default-src 'self'"}, False),
])
def test_frame_options_by_header_or_csp(headers, ok):
    frame = _golive_probe.header_checks(headers, 100)[2]
    assert frame['ok'] is ok


def test_hsts_without_max_age_fails():
    hsts = _golive_probe.header_checks({'strict-transport-security': 'includeSubDomains'}, 100)[0]
    assert hsts['ok'] is False and hsts['reason'] == 'no max-age'


def test_percentile_nearest_rank():
    assert _golive_probe.percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert _golive_probe.percentile(list(range(1, 101)), 0.95) == 95
    assert _golive_probe.percentile([], 0.5) is None
