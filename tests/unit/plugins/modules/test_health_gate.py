# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _health
from ansible_collections.aiquiz.ops.plugins.modules import health_gate

RESULT_KEYS = ['attempts', 'consecutive', 'elapsed_s', 'last_error', 'last_status', 'latencies_ms', 'max_ms',
               'p50_ms', 'p99_ms', 'passed']


def run_module(capsys, args):
    """Run main() with args; return (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            health_gate.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out)


class Script:
    """Answers a local server gives, one per request: (status, delay s, body); the last one repeats."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        self.lock = threading.Lock()

    def next(self, handler):
        with self.lock:
            self.requests.append((handler.command, handler.path, dict(handler.headers)))
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def server():
    servers = []

    def start(answers, tls=None):
        script = Script(answers)

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                status, delay, body = script.next(self)
                time.sleep(delay)
                data = body.encode()
                self.send_response(status)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                if self.command != 'HEAD':
                    self.wfile.write(data)

            do_GET = do_HEAD = _answer

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        scheme = 'http'
        if tls is not None:
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
            scheme = 'https'
        httpd.daemon_threads = True
        # A gate that gave up closes the connection under a slow answer.
        httpd.handle_error = lambda request, address: None
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        servers.append(httpd)
        return '%s://127.0.0.1:%d' % (scheme, httpd.server_address[1]), script

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_passes_after_consecutive_successes(capsys, server):
    url, script = server([(200, 0, 'ok')])
    code, result = run_module(capsys, {'url': url + '/readyz?full=1', 'interval': 0.01,
                                       'headers': {'X-Probe': 'gate'}})
    assert code == 0
    assert sorted(k for k in result if k not in ('changed', 'invocation')) == RESULT_KEYS
    assert result['changed'] is False
    assert (result['passed'], result['attempts'], result['consecutive']) == (True, 3, 3)
    assert (result['last_status'], result['last_error']) == (200, None)
    assert len(result['latencies_ms']) == 3
    assert result['max_ms'] == max(result['latencies_ms'])
    assert result['p50_ms'] == sorted(result['latencies_ms'])[1]
    assert result['p99_ms'] == result['max_ms']
    assert [request[:2] for request in script.requests] == [('GET', '/readyz?full=1')] * 3
    assert script.requests[0][2]['X-Probe'] == 'gate'
    assert result['invocation']['module_args']['headers'] == {'X-Probe': 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'}


def test_a_503_resets_the_streak(capsys, server):
    url, script = server([(200, 0, ''), (200, 0, ''), (503, 0, ''), (200, 0, '')])
    code, result = run_module(capsys, {'url': url, 'interval': 0.01, 'successes': 3})
    assert code == 0
    assert (result['passed'], result['attempts'], result['consecutive']) == (True, 6, 3)
    assert len(result['latencies_ms']) == 6


def test_deadline_exceeded_fails_with_the_data(capsys, server):
    url, script = server([(200, 0, ''), (503, 0, 'not ready')])
    code, result = run_module(capsys, {'url': url + '/readyz', 'interval': 0.1, 'deadline': 1})
    assert code == 1
    assert result['passed'] is False
    # Where it ends is tested on a fake clock (module_utils/test_health_deadline.py): no
    # upper bound on a real one, which a loaded machine moves.
    assert result['elapsed_s'] >= 1.0
    assert 2 <= result['attempts'] <= 12
    assert (result['consecutive'], result['last_status'], result['last_error']) == (0, 503, 'status 503 not in [200]')
    assert len(result['latencies_ms']) == result['attempts']
    assert result['msg'] == (
        'health gate GET %s/readyz did not pass: 3 good answers in a row needed, 0 at the end, after %d attempts in '
        '%.1f s (deadline 1 s); the last answer was status 503 (status 503 not in [200])'
        % (url, result['attempts'], result['elapsed_s']))


def test_latency_budget_resets_the_streak(capsys, server):
    url, script = server([(200, 0, ''), (200, 0.3, ''), (200, 0, '')])
    code, result = run_module(capsys, {'url': url, 'interval': 0, 'successes': 2, 'latency_budget_ms': 150})
    assert code == 0
    assert (result['attempts'], result['consecutive']) == (4, 2)
    assert result['max_ms'] >= 300 and result['latencies_ms'][1] == result['max_ms']
    assert result['p99_ms'] == result['max_ms']

    url, script = server([(200, 0.3, '')])
    # The deadline passes during the pause after the first answer: one attempt.
    code, result = run_module(capsys, {'url': url, 'interval': 0.5, 'deadline': 0.7, 'latency_budget_ms': 100})
    assert code == 1
    assert result['last_error'].startswith('answered in ')
    assert result['last_error'].endswith(' ms, over the 100 ms latency budget')


def test_timeout_counts_as_a_failed_attempt(capsys, server):
    url, script = server([(200, 1.5, '')])
    # Each attempt times out after 0.2 s; the pause of 0.5 s then passes the deadline.
    code, result = run_module(capsys, {'url': url, 'timeout': 0.2, 'interval': 0.5, 'deadline': 0.5})
    assert code == 1
    assert (result['attempts'], result['last_status']) == (1, None)
    assert result['last_error'] == 'timed out after 0.2 s'
    assert result['latencies_ms'] == []
    assert (result['p50_ms'], result['p99_ms'], result['max_ms']) == (None, None, None)
    assert result['msg'].endswith('; the last attempt got no answer (timed out after 0.2 s)')

    # An attempt never runs past the deadline.
    code, result = run_module(capsys, {'url': url, 'timeout': 2, 'deadline': 0.5})
    assert code == 1
    assert (result['attempts'], result['last_error']) == (1, 'timed out in the 0.50 s left before the deadline')
    assert result['elapsed_s'] >= 0.5

    # Several timeouts in a row, the gate ends on time.
    code, result = run_module(capsys, {'url': url, 'timeout': 0.2, 'interval': 0, 'deadline': 1})
    assert code == 1
    assert result['attempts'] >= 3
    assert result['last_error'].startswith('timed out ')
    assert result['elapsed_s'] >= 1.0


def test_body_contains_and_status_codes(capsys, server):
    url, script = server([(202, 0, ''), (202, 0, 'ready')])
    code, result = run_module(capsys, {'url': url, 'interval': 0, 'successes': 2, 'status_codes': [200, 202],
                                       'body_contains': 'ready'})
    assert code == 0
    assert (result['attempts'], result['last_status']) == (3, 202)


def test_refused_connection(capsys):
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    code, result = run_module(capsys, {'url': 'http://127.0.0.1:%d/' % port, 'interval': 0.1, 'deadline': 0.5})
    assert code == 1
    assert result['last_error'].startswith('connection failed: ')
    assert 'Connection refused' in result['last_error']
    assert result['attempts'] >= 2


def test_head_method(capsys, server):
    url, script = server([(200, 0, 'body')])
    code, result = run_module(capsys, {'url': url, 'method': 'HEAD', 'successes': 1})
    assert code == 0
    assert script.requests[0][0] == 'HEAD'


def test_check_mode_probes_unless_told_to_skip(capsys, server):
    url, script = server([(200, 0, '')])
    code, result = run_module(capsys, {'url': url, 'successes': 1, '_ansible_check_mode': True})
    assert (code, result['passed']) == (0, True)
    assert len(script.requests) == 1
    code, result = run_module(capsys, {'url': url, 'successes': 1, '_ansible_check_mode': True,
                                       'skip_in_check_mode': True})
    assert (code, result['skipped']) == (0, True)
    assert 'passed' not in result
    assert len(script.requests) == 1


def test_several_urls_are_gated_side_by_side(capsys, server):
    web, _web_script = server([(200, 1.0, 'web')])
    api, _api_script = server([(503, 0, 'starting'), (200, 1.0, 'api')])
    started = time.monotonic()
    code, result = run_module(capsys, {'urls': [web + '/readyz', api + '/readyz'], 'successes': 2, 'interval': 0})
    took = time.monotonic() - started
    assert code == 0, result
    assert result['passed'] is True
    assert [g['url'] for g in result['gates']] == [web + '/readyz', api + '/readyz']
    assert [g['attempts'] for g in result['gates']] == [2, 3]
    assert all(sorted(k for k in g if k != 'url') == RESULT_KEYS for g in result['gates'])
    assert result['elapsed_s'] == max(g['elapsed_s'] for g in result['gates'])
    # Side by side: the run took about as long as the longer gate, not as both in a row (a
    # ratio of the same run's times, so a loaded machine stretches both sides alike).
    assert took < 0.9 * sum(g['elapsed_s'] for g in result['gates']), (took, result['gates'])


def test_several_urls_fail_naming_the_failing_one(capsys, server):
    good = server([(200, 0, 'ok')])[0]
    bad = server([(503, 0, 'no')])[0]
    code, result = run_module(capsys, {'urls': [good, bad], 'deadline': 0.5, 'interval': 0.05})
    assert code == 1
    assert result['passed'] is False
    assert [g['passed'] for g in result['gates']] == [True, False]
    assert bad in result['msg'] and good not in result['msg']


@pytest.mark.parametrize('args, message', [
    ({}, 'one of the following is required: url, urls'),
    ({'url': 'http://127.0.0.1:1/', 'urls': ['http://127.0.0.1:1/']}, 'mutually exclusive'),
    ({'urls': ['http://127.0.0.1:1/', 'ftp://x/']}, "url must be an http:// or https:// URL with a host, got 'ftp://x/'"),
])
def test_url_or_urls(capsys, args, message):
    code, result = run_module(capsys, args)
    assert code == 1
    assert message in result['msg']


def self_signed(directory):
    """A key and a self-signed certificate for 127.0.0.1 in directory; returns (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'health gate test')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = str(directory / 'cert.pem'), str(directory / 'key.pem')
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path


def test_https_verifies_the_certificate(capsys, server, tmp_path):
    cert_path, key_path = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    url, script = server([(200, 0, 'ok')], tls=tls)
    assert url.startswith('https://')

    code, result = run_module(capsys, {'url': url, 'successes': 1, 'deadline': 0.5, 'interval': 0.1})
    assert code == 1
    assert result['last_error'].startswith('TLS error: ')
    assert 'CERTIFICATE_VERIFY_FAILED' in result['last_error']

    code, result = run_module(capsys, {'url': url, 'successes': 2, 'interval': 0, 'ca_path': cert_path,
                                       'body_contains': 'ok'})
    assert (code, result['passed'], result['attempts']) == (0, True, 2)

    code, result = run_module(capsys, {'url': url, 'successes': 1, 'validate_certs': False})
    assert (code, result['passed']) == (0, True)


@pytest.mark.parametrize('args, message', [
    ({'url': 'ftp://x/'}, "url must be an http:// or https:// URL with a host, got 'ftp://x/'"),
    ({'url': 'http://x:99999/'}, "url has an invalid port: 'http://x:99999/'"),
    ({'successes': 0}, 'successes must be >= 1, got 0'),
    ({'timeout': 0}, 'timeout must be > 0, got 0.0'),
    ({'interval': -1}, 'interval must be >= 0, got -1.0'),
    ({'status_codes': [200, 700]}, 'status_codes: 700 is not an HTTP status (100-599)'),
    ({'latency_budget_ms': 0}, 'latency_budget_ms must be > 0, got 0.0'),
    ({'method': 'HEAD', 'body_contains': 'ok'}, 'body_contains needs method GET, a HEAD answer has no body'),
    ({'ca_path': '/nonexistent/ca.pem'}, 'ca_path /nonexistent/ca.pem is not a file'),
])
def test_invalid_arguments(capsys, args, message):
    args.setdefault('url', 'http://127.0.0.1:1/')
    code, result = run_module(capsys, args)
    assert code == 1
    assert result['msg'] == 'Invalid arguments: ' + message


def test_percentile_nearest_rank():
    assert _health.percentile([], 50) is None
    assert _health.percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert _health.percentile(values, 50) == 50.0
    assert _health.percentile(values, 99) == 99.0
    assert _health.percentile([3.0, 1.0, 2.0], 50) == 2.0
