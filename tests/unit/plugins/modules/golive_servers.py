# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real HTTPS servers on 127.0.0.1 for the go-live tests: a small PKI made with
cryptography (a root CA and a leaf for a name) and a threaded http.server behind
Python's ssl, with the TLS settings and the headers a test asks for."""

from __future__ import annotations

import contextlib
import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NAME = 'quiz.aiquiz.test'
NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
# Mozilla's intermediate profile, TLS 1.2 part (ECDSA certificate).
INTERMEDIATE_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305'
GOOD_HEADERS = {
    'Strict-Transport-Security': 'max-age=63072000; includeSubDomains',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
}


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'aiquiz test'),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory, leaf_days=90, name=NAME, ips=()):
    """ca.pem (a root CA), cert.pem (leaf for name and the IP addresses ips, then the root) and key.pem in
    directory; their paths."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name('aiquiz test root')).issuer_name(_name('aiquiz test root'))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(NOW - DAY).not_valid_after(NOW + 3650 * DAY)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY).not_valid_after(NOW + leaf_days * DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)] + [
                x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = dict(ca=str(directory / 'ca.pem'), cert=str(directory / 'cert.pem'), key=str(directory / 'key.pem'),
                 not_after=leaf.not_valid_after_utc if hasattr(leaf, 'not_valid_after_utc') else leaf.not_valid_after)
    (directory / 'ca.pem').write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / 'cert.pem').write_bytes(leaf.public_bytes(serialization.Encoding.PEM)
                                         + ca.public_bytes(serialization.Encoding.PEM))
    (directory / 'key.pem').write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return paths


def _handler(headers, status, requests, quizzes=None):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def _json(self, code, data, extra=None):
            body = json.dumps(data).encode()
            self.send_response(code)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802 (http.server's name)
            # The two endpoints of the quiz API (tests/workloads/quiz-api/app.py) the synthetic transaction uses.
            data = json.loads(self.rfile.read(int(self.headers.get('Content-Length') or 0)) or b'{}')
            requests.append(dict(method='POST', path=self.path, host=self.headers.get('Host'), body=data))
            if quizzes is None or self.path != '/api/quizzes':
                return self._json(404, {'error': 'not found'})
            quiz = dict(id=len(quizzes) + 1, title=data.get('title'))
            quizzes.append(quiz)
            return self._json(201, quiz, {'Location': '/api/quizzes/%d' % quiz['id']})

        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(dict(path=self.path, host=self.headers.get('Host')))
            if quizzes is not None and self.path.startswith('/api/quizzes/'):
                found = [q for q in quizzes if '/api/quizzes/%d' % q['id'] == self.path]
                return self._json(200, found[0]) if found else self._json(404, {'error': 'not found'})
            body = b'<!doctype html><title>quiz</title>'
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header('Content-Type', 'text/html')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self._context = context

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(10)
        # The handshake happens on the first read, in the request's thread.
        return self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        # sslyze's probes break handshakes on purpose.
        pass


@contextlib.contextmanager
def https_server(pki, headers=None, status=200, ciphers=INTERMEDIATE_CIPHERS, minimum=ssl.TLSVersion.TLSv1_2,
                 quizzes=None):
    """An HTTPS server on 127.0.0.1 (a free port); yields (port, the requests it received). With quizzes (a
    list, the store), it also serves POST /api/quizzes and GET /api/quizzes/<id>."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = minimum
    context.set_ciphers(ciphers)
    # One curve that Mozilla's profiles accept: Python cannot set a group list.
    context.set_ecdh_curve('prime256v1')
    context.load_cert_chain(pki['cert'], pki['key'])
    requests = []
    server = _TLSServer(('127.0.0.1', 0),
                        _handler(GOOD_HEADERS if headers is None else headers, status, requests, quizzes),
                        context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# A stand-in for Prometheus' HTTP API: the JSON shape of /api/v1/targets and
# /api/v1/alerts (Prometheus 2.x, https://prometheus.io/docs/prometheus/latest/querying/api/),
# not Prometheus itself; the lab's end-to-end run asks the real one on mon1.

def prometheus_target(job, instance, health='up', error=''):
    return {'discoveredLabels': {'__address__': instance, 'job': job},
            'labels': {'instance': instance, 'job': job}, 'scrapePool': job,
            'scrapeUrl': 'http://%s/metrics' % instance, 'globalUrl': 'http://%s/metrics' % instance,
            'lastError': error, 'lastScrape': '2026-12-05T01:00:00.000Z', 'lastScrapeDuration': 0.004,
            'health': health, 'scrapeInterval': '15s', 'scrapeTimeout': '10s'}


def prometheus_alert(name, severity, instance, state='firing'):
    return {'labels': {'alertname': name, 'severity': severity, 'instance': instance},
            'annotations': {'summary': '%s on %s' % (name, instance)}, 'state': state,
            'activeAt': '2026-12-05T00:58:00.000Z', 'value': '0e+00'}


def prometheus_answers(targets, alerts=()):
    """The bodies of /api/v1/targets and /api/v1/alerts for these targets and alerts."""
    return ({'status': 'success', 'data': {'activeTargets': list(targets), 'droppedTargets': []}},
            {'status': 'success', 'data': {'alerts': list(alerts)}})


@contextlib.contextmanager
def prometheus_server(targets_body, alerts_body, pki=None, credentials=None):
    """An HTTP server on 127.0.0.1 answering the two API paths with these bodies; yields (port, requests).
    With pki, HTTPS with its certificate; with credentials ((user, password)), basic auth as Prometheus'
    web configuration does it (401 without them or with others)."""
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            if credentials:
                expected = 'Basic ' + base64.b64encode(('%s:%s' % credentials).encode()).decode()
                if self.headers.get('Authorization') != expected:
                    body = b'Unauthorized\n'
                    self.send_response(401)
                    self.send_header('WWW-Authenticate', 'Basic')
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
            path = self.path.partition('?')[0]
            data = {'/api/v1/targets': targets_body, '/api/v1/alerts': alerts_body}.get(path)
            body = json.dumps(data if data is not None else {'status': 'error', 'error': 'not found'}).encode()
            self.send_response(200 if data is not None else 404)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    if pki:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki['cert'], pki['key'])
        server = _TLSServer(('127.0.0.1', 0), Handler, context)
    else:
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
