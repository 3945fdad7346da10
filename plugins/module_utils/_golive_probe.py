# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The go-live probe of the public URL (aiquiz.ops.golive_probe): TLS
handshake facts, the TLS configuration scored by sslyze against a Mozilla
profile, the HTTP status, the security headers and the latency.

Private to this collection: it may change or go away in any release; do not
import it from outside this collection."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import math
import re
import socket
import ssl
import time
import urllib.parse
import warnings

from ansible_collections.aiquiz.ops.plugins.module_utils import _certs

try:
    from sslyze import (CertificateInfoExtraArgument, ScanCommandsExtraArguments, Scanner, ServerNetworkConfiguration,
                        ServerNetworkLocation, ServerScanRequest, ServerScanStatusEnum)
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER, MozillaTlsConfiguration, ServerNotCompliantWithTlsConfiguration,
        ServerScanResultIncomplete, TlsConfigurationEnum, check_server_against_tls_configuration)
except ImportError:
    HAS_SSLYZE = False
else:
    HAS_SSLYZE = True

PROFILES = ('modern', 'intermediate', 'old')
# sslyze's names of the protocol scans, in order.
PROTOCOL_SCANS = (('ssl_2_0_cipher_suites', 'SSLv2'), ('ssl_3_0_cipher_suites', 'SSLv3'),
                  ('tls_1_0_cipher_suites', 'TLSv1'), ('tls_1_1_cipher_suites', 'TLSv1.1'),
                  ('tls_1_2_cipher_suites', 'TLSv1.2'), ('tls_1_3_cipher_suites', 'TLSv1.3'))
SECRET_HEADERS = ('set-cookie', 'authorization', 'proxy-authenticate', 'www-authenticate')
HSTS_MAX_AGE = re.compile(r'(?:^|;)\s*max-age\s*=\s*"?(\d+)"?\s*(?:;|$)', re.IGNORECASE)


class ProbeError(Exception):
    """A parameter the probe cannot work with."""


def parse_url(url):
    """(host, port, path with query) of an https URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != 'https':
        raise ProbeError('url must be an https:// URL, got %r' % url)
    if not parts.hostname:
        raise ProbeError('url has no host: %r' % url)
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ProbeError('url has a bad port: %s' % exc)
    path = parts.path or '/'
    if parts.query:
        path += '?' + parts.query
    return parts.hostname, port, path


def is_address(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _context(ca_file, verify):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect(address, port, server_name, context, timeout):
    raw = socket.create_connection((address, port), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise


def _chain(tls):
    # Public from Python 3.13; the same method is on the private _sslobj since 3.10.
    getter = getattr(tls, 'get_unverified_chain', None)
    if getter is None:
        getter = getattr(getattr(tls, '_sslobj', None), 'get_unverified_chain', None)
    chain = getter() if getter is not None else None
    if chain:
        return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER)  # pylint: disable=protected-access
                for c in chain]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def tls_facts(address, port, server_name, ca_file, timeout, now):
    """Protocol, cipher, the chain the server sends with each certificate's expiry, and whether
    the chain verifies against ca_file (the system's roots without it) for server_name."""
    facts = dict(reachable=False, error=None, protocol=None, cipher=None, cipher_bits=None, chain=[],
                 chain_not_after=None, chain_days_left=None, verified=False, verify_error=None,
                 handshake_ms=None)
    started = time.monotonic()
    try:
        with _connect(address, port, server_name, _context(None, False), timeout) as tls:
            facts['handshake_ms'] = round((time.monotonic() - started) * 1000, 1)
            facts['reachable'] = True
            facts['protocol'] = tls.version()
            cipher = tls.cipher()
            facts['cipher'], facts['cipher_bits'] = cipher[0], cipher[2]
            ders = _chain(tls)
    except (OSError, ssl.SSLError) as exc:
        facts['error'] = 'TLS handshake with %s:%d (SNI %s) failed: %s' % (address, port, server_name, exc)
        return facts
    earliest = None
    for der in ders:
        try:
            cert = _certs.x509.load_der_x509_certificate(der)
        except ValueError as exc:
            facts['chain'].append(dict(subject=None, error='unreadable certificate: %s' % exc))
            continue
        item = _certs.describe(cert, now)
        facts['chain'].append(dict((key, item[key]) for key in ('subject', 'issuer', 'not_after', 'days_left')))
        expiry = _certs.not_after(cert)
        if earliest is None or expiry < earliest:
            earliest = expiry
    if earliest is not None:
        facts['chain_not_after'] = _certs.iso(earliest)
        facts['chain_days_left'] = round((earliest - now).total_seconds() / 86400.0, 3)
    try:
        with _connect(address, port, server_name, _context(ca_file, True), timeout):
            facts['verified'] = True
    except ssl.SSLCertVerificationError as exc:
        facts['verify_error'] = exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        facts['verify_error'] = str(exc)
    return facts


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address with the URL's name as SNI and Host (curl --resolve)."""

    def __init__(self, address, port, server_name, context, timeout):
        super().__init__(server_name, port, timeout=timeout, context=context)
        self._address = address
        self._server_name = server_name
        self._tls_context = context

    def connect(self):
        self.sock = _connect(self._address, self.port, self._server_name, self._tls_context, self.timeout)


def http_sample(address, port, server_name, path, timeout):
    """(status, headers as a dict of lowercased names, milliseconds) of one GET on a new connection,
    the TLS handshake included in the time. Verification is the TLS part's job."""
    started = time.monotonic()
    conn = _PinnedHTTPSConnection(address, port, server_name, _context(None, False), timeout)
    try:
        conn.request('GET', path, headers={'User-Agent': 'aiquiz.ops-golive-probe', 'Connection': 'close'})
        response = conn.getresponse()
        response.read()
        headers = {}
        for name, value in response.getheaders():
            name = name.lower()
            if name in SECRET_HEADERS:
                # A session cookie is a credential; the report keeps that one was set.
                value = '<redacted>'
            headers[name] = value if name not in headers else headers[name] + ', ' + value
        return response.status, headers, round((time.monotonic() - started) * 1000, 1)
    finally:
        conn.close()


def percentile(values, share):
    """The nearest-rank percentile of values (share in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, int(math.ceil(share * len(ordered))))
    return ordered[rank - 1]


def latency_summary(samples):
    if not samples:
        return dict(samples=[], min=None, median=None, p95=None, max=None)
    return dict(samples=samples, min=min(samples), median=percentile(samples, 0.5), p95=percentile(samples, 0.95),
                max=max(samples))


def header_checks(headers, hsts_min_age):
    """One item per security header: name, present, value, ok, and why it is not ok."""
    checks = []
    hsts = headers.get('strict-transport-security')
    match = HSTS_MAX_AGE.search(hsts or '')
    age = int(match.group(1)) if match else None
    if hsts is None:
        reason = 'missing'
    elif age is None:
        reason = 'no max-age'
    elif age < hsts_min_age:
        reason = 'max-age %d is below %d' % (age, hsts_min_age)
    else:
        reason = None
    checks.append(dict(name='Strict-Transport-Security', value=hsts, ok=reason is None, reason=reason))

    nosniff = headers.get('x-content-type-options')
    reason = None if (nosniff or '').strip().lower() == 'nosniff' else ('missing' if nosniff is None else
                                                                        'should be nosniff')
    checks.append(dict(name='X-Content-Type-Options', value=nosniff, ok=reason is None, reason=reason))

    frame = headers.get('x-frame-options')
    csp = headers.get('content-security-policy')
    ancestors = csp is not None and re.search(r'(?:^|;)\s*frame-ancestors\s', csp + ' ', re.IGNORECASE) is not None
    frame_ok = (frame or '').strip().upper() in ('DENY', 'SAMEORIGIN')
    if frame_ok or ancestors:
        reason = None
    elif frame is None:
        reason = 'neither X-Frame-Options nor a Content-Security-Policy frame-ancestors directive'
    else:
        reason = 'X-Frame-Options should be DENY or SAMEORIGIN'
    value = '; '.join(v for v in ('X-Frame-Options: %s' % frame if frame else None,
                                  'Content-Security-Policy: %s' % csp if csp else None) if v) or None
    checks.append(dict(name='Frame options', value=value, ok=reason is None, reason=reason))
    return checks


def sslyze_scan(address, port, server_name, ca_file, profile, timeout):
    """The server's TLS configuration scored by sslyze against Mozilla's profile: compliant, issues
    (sslyze's check name to its text), the protocols and cipher suites accepted, or error."""
    result = dict(ran=False, profile=profile, compliant=None, issues={}, protocols=[], cipher_suites=[], error=None)
    if not HAS_SSLYZE:
        result['error'] = 'sslyze is not installed on the controller'
        return result
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=_path(ca_file))) if ca_file else None
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=server_name, port=port, ip_address=address),
        network_configuration=ServerNetworkConfiguration(tls_server_name_indication=server_name,
                                                         network_timeout=int(max(1, timeout))),
        scan_commands=set(SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER),
        scan_commands_extra_arguments=extra or ScanCommandsExtraArguments())
    scanner = Scanner(per_server_concurrent_connections_limit=5, concurrent_server_scans_limit=1)
    with warnings.catch_warnings():
        # sslyze's bundled trust stores hold old roots that cryptography warns about.
        warnings.simplefilter('ignore')
        scanner.queue_scans([request])
        scan = next(iter(scanner.get_results()))
    result['ran'] = True
    if scan.scan_status != ServerScanStatusEnum.COMPLETED:
        reason = scan.connectivity_error_trace
        result['error'] = 'sslyze could not connect to %s:%d: %s' % (
            address, port, reason.exc_type.__name__ + ': ' + str(reason) if reason else scan.connectivity_status)
        return result
    for field, name in PROTOCOL_SCANS:
        attempt = getattr(scan.scan_result, field)
        if attempt.result is not None and attempt.result.is_tls_version_supported:
            result['protocols'].append(name)
            result['cipher_suites'].extend(sorted(a.cipher_suite.name for a in attempt.result.accepted_cipher_suites))
    try:
        check_server_against_tls_configuration(scan, MozillaTlsConfiguration.get(TlsConfigurationEnum(profile)))
    except ServerNotCompliantWithTlsConfiguration as exc:
        result['compliant'] = False
        result['issues'] = dict(exc.issues)
    except ServerScanResultIncomplete as exc:
        result['error'] = 'sslyze scan incomplete: %s' % exc
    else:
        result['compliant'] = True
    return result


def _path(name):
    import pathlib  # only sslyze wants a Path
    return pathlib.Path(name)


def probe(params, now=None):
    """The whole probe of params (the module's options): a dict of its findings."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    host, port, path = parse_url(params['url'])
    address = params.get('address') or host
    server_name = host
    timeout = params['timeout']
    result = dict(url=params['url'], address=address, port=port, server_name=server_name, checked_at=_certs.iso(now))
    findings = []

    tls = tls_facts(address, port, server_name, params.get('ca_file'), timeout, now)
    result['tls'] = tls
    if not tls['reachable']:
        findings.append(tls['error'])
    else:
        if not tls['verified']:
            findings.append('the certificate chain does not verify for %s%s: %s' % (
                server_name, ' against %s' % params['ca_file'] if params.get('ca_file') else '', tls['verify_error']))
        days_left = tls['chain_days_left']
        if days_left is not None and days_left < params['min_days']:
            findings.append('a certificate of the chain expires in %.1f days (%s), fewer than %d' % (
                float(days_left), tls['chain_not_after'], params['min_days']))

    statuses = []
    samples = []
    headers = {}
    http_error = None
    if tls['reachable']:
        for _sample in range(params['samples']):
            try:
                status, headers, millis = http_sample(address, port, server_name, path, timeout)
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                http_error = 'GET %s failed: %s' % (params['url'], exc)
                break
            statuses.append(status)
            samples.append(millis)
    status = statuses[-1] if statuses else None
    result['http'] = dict(status=status, statuses=statuses, expected_status=params['status'], error=http_error,
                          headers=headers)
    result['latency_ms'] = latency_summary(samples)
    if http_error:
        findings.append(http_error)
    wrong = sorted(set(s for s in statuses if s not in params['status']))
    if wrong:
        findings.append('GET %s answered %s, expected %s' % (params['url'], ', '.join(str(s) for s in wrong),
                                                             ', '.join(str(s) for s in params['status'])))
    p95 = result['latency_ms']['p95']
    if params['latency_budget_ms'] and p95 is not None and p95 > params['latency_budget_ms']:
        findings.append('latency p95 %.1f ms is over the budget of %d ms' % (float(p95), params['latency_budget_ms']))

    result['headers'] = header_checks(headers, params['hsts_min_age']) if statuses else []
    for check in result['headers']:
        if not check['ok']:
            findings.append('header %s: %s' % (check['name'], check['reason']))

    if params['tls_profile'] != 'none' and tls['reachable']:
        scan = sslyze_scan(address, port, server_name, params.get('ca_file'), params['tls_profile'], timeout)
        if scan['error']:
            findings.append(scan['error'])
        for name, text in sorted(scan['issues'].items()):
            if name not in params['tls_profile_ignore']:
                findings.append('Mozilla %s profile, %s: %s' % (params['tls_profile'], name, text))
    else:
        scan = dict(ran=False, profile=params['tls_profile'], compliant=None, issues={}, protocols=[],
                    cipher_suites=[], error=None)
    result['tls_profile'] = scan
    result['findings'] = findings
    result['passed'] = not findings
    return result
