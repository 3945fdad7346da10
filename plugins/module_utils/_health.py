# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the
# aiquiz.ops.health_gate module only. Its functions may change or go away in
# any release; do not import it from outside this collection.
#
# Runs on the managed host: Python 3.8+ and the standard library only
# (http.client, ssl). No proxy from the environment is used: the gate probes
# the host's own ports.

from __future__ import annotations

import http.client
import math
import os
import socket
import ssl
import time
from urllib.parse import urlsplit

# Bytes of the body read per answer; body_contains looks at these only.
BODY_LIMIT = 1024 * 1024
# Latencies kept in the result, the most recent ones.
LATENCY_LIMIT = 1000


# Error of probe_once() for an attempt that ran out of time.
TIMED_OUT = 'timeout'


def validate_params(params):
    """Return a list of readable errors in the module arguments."""
    errors = []
    parts = urlsplit(params['url'])
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        errors.append('url must be an http:// or https:// URL with a host, got %r' % params['url'])
    else:
        try:
            parts.port
        except ValueError:
            errors.append('url has an invalid port: %r' % params['url'])
    if params['successes'] < 1:
        errors.append('successes must be >= 1, got %d' % params['successes'])
    for name in ('timeout', 'deadline'):
        if params[name] <= 0:
            errors.append('%s must be > 0, got %s' % (name, params[name]))
    if params['interval'] < 0:
        errors.append('interval must be >= 0, got %s' % params['interval'])
    if not params['status_codes']:
        errors.append('status_codes must list at least one status')
    for code in params['status_codes']:
        if not 100 <= code <= 599:
            errors.append('status_codes: %d is not an HTTP status (100-599)' % code)
    budget = params.get('latency_budget_ms')
    if budget is not None and budget <= 0:
        errors.append('latency_budget_ms must be > 0, got %s' % budget)
    ca_path = params.get('ca_path')
    if ca_path is not None and not os.path.isfile(ca_path):
        errors.append('ca_path %s is not a file' % ca_path)
    if params.get('body_contains') is not None and params['method'] == 'HEAD':
        errors.append('body_contains needs method GET, a HEAD answer has no body')
    return errors


def percentile(values, pct):
    """Nearest-rank percentile of values (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]


def ssl_context(validate_certs, ca_path):
    if not validate_certs:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_path)


def probe_once(parts, method, headers, timeout, context):
    """One request. Returns (status or None, body bytes, latency seconds, error or None).

    The error is TIMED_OUT when the exchange took longer than timeout.

    The latency runs from opening the connection to the end of the body (at most
    BODY_LIMIT bytes); timeout bounds the whole exchange, not each read.
    """
    host = parts.hostname
    port = parts.port
    target = parts.path or '/'
    if parts.query:
        target += '?' + parts.query
    start = time.monotonic()
    give_up = start + timeout
    if parts.scheme == 'https':
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, target, headers=headers)
        response = conn.getresponse()
        chunks = []
        size = 0
        while method != 'HEAD' and size < BODY_LIMIT:
            remaining = give_up - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            chunk = response.read1(min(65536, BODY_LIMIT - size)) if hasattr(response, 'read1') else response.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        latency = time.monotonic() - start
        if latency > timeout:
            raise socket.timeout()
        return response.status, b''.join(chunks), latency, None
    except (socket.timeout, TimeoutError):
        return None, b'', time.monotonic() - start, TIMED_OUT
    except ssl.SSLError as exc:
        return None, b'', time.monotonic() - start, 'TLS error: %s' % exc
    except (OSError, http.client.HTTPException) as exc:
        text = getattr(exc, 'strerror', None) or str(exc) or exc.__class__.__name__
        return None, b'', time.monotonic() - start, 'connection failed: %s' % text
    finally:
        conn.close()


def _num(value):
    return ('%g' % value) if isinstance(value, float) else str(value)


def judge(params, status, body, latency_ms):
    """Why an answer is not good, or None when it is."""
    if status not in params['status_codes']:
        return 'status %d not in %s' % (status, params['status_codes'])
    budget = params.get('latency_budget_ms')
    if budget is not None and latency_ms > budget:
        return 'answered in %.1f ms, over the %s ms latency budget' % (latency_ms, _num(budget))
    needle = params.get('body_contains')
    if needle is not None and needle.encode('utf-8') not in body:
        return 'body does not contain %r' % needle
    return None


def run_gate(params, clock=time.monotonic, sleep=time.sleep, probe=None):
    """Probe until params['successes'] good answers in a row or the deadline. Returns the result dict.

    clock, sleep and probe (probe_once's signature) are replaced by the unit tests, so that the
    deadline's arithmetic is tested without waiting on a real clock."""
    probe = probe or probe_once
    parts = urlsplit(params['url'])
    headers = dict((str(k), str(v)) for k, v in (params.get('headers') or {}).items())
    context = ssl_context(params['validate_certs'], params.get('ca_path')) if parts.scheme == 'https' else None
    start = clock()
    end = start + params['deadline']
    attempts = consecutive = 0
    latencies = []
    last_status = last_error = None
    passed = False
    while True:
        remaining = end - clock()
        if remaining <= 0:
            break
        attempts += 1
        limit = min(params['timeout'], remaining)
        status, body, latency, error = probe(parts, params['method'], headers, limit, context)
        if error == TIMED_OUT:
            error = 'timed out after %s s' % _num(params['timeout'])
            if limit < params['timeout']:
                error = 'timed out in the %.2f s left before the deadline' % limit
        last_status = status
        if error is None:
            latency_ms = round(latency * 1000.0, 1)
            latencies.append(latency_ms)
            if len(latencies) > LATENCY_LIMIT:
                del latencies[0]
            error = judge(params, status, body, latency_ms)
        last_error = error
        consecutive = consecutive + 1 if error is None else 0
        if consecutive >= params['successes']:
            passed = True
            break
        remaining = end - clock()
        if remaining <= 0:
            break
        if params['interval'] > 0:
            sleep(min(params['interval'], remaining))
    return {
        'passed': passed,
        'attempts': attempts,
        'consecutive': consecutive,
        'latencies_ms': latencies,
        'p50_ms': percentile(latencies, 50),
        'p99_ms': percentile(latencies, 99),
        'max_ms': max(latencies) if latencies else None,
        'elapsed_s': round(clock() - start, 3),
        'last_status': last_status,
        'last_error': last_error,
    }


def failure_message(params, result):
    if result['last_status'] is not None:
        seen = 'the last answer was status %d (%s)' % (result['last_status'], result['last_error'] or 'good')
    elif result['last_error']:
        seen = 'the last attempt got no answer (%s)' % result['last_error']
    else:
        seen = 'no attempt was made'
    return ('health gate %s %s did not pass: %d good answers in a row needed, %d at the end, after %d attempts in '
            '%.1f s (deadline %s s); %s' % (params['method'], params['url'], params['successes'], result['consecutive'],
                                            result['attempts'], result['elapsed_s'], _num(params['deadline']), seen))
