# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The go-live synthetic transaction (aiquiz.ops.golive_synthetic): create a
quiz through the public URL (POST, 201 and a Location), then read it back (GET
the Location, 200 and the same title), each step timed.

It connects as aiquiz.ops.golive_probe does: to an address given instead of
resolving the URL's name, with that name as SNI and Host, and the chain
verified for the name against a CA file. ansible.builtin.uri cannot send a
name's SNI to another address: to the bare address the edge's catch-all server
answers with a self-signed certificate that cannot be verified (or, with
edge_tls_reject_unknown_sni, refuses the handshake).

Private to this collection: it may change or go away in any release; do not
import it from outside this collection."""

from __future__ import annotations

import json
import ssl
import time
import urllib.parse

from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_probe

USER_AGENT = 'aiquiz.ops-golive-synthetic'
BODY_LIMIT = 65536


def _request(address, port, server_name, ca_file, method, path, body, timeout):
    """(status, headers lowercased, decoded JSON body or None, milliseconds) of one request on a new verified
    connection; the handshake is part of the time."""
    started = time.monotonic()
    conn = _golive_probe._PinnedHTTPSConnection(  # pylint: disable=protected-access
        address, port, server_name, _golive_probe._context(ca_file, True), timeout)  # pylint: disable=protected-access
    try:
        headers = {'User-Agent': USER_AGENT, 'Accept': 'application/json', 'Connection': 'close'}
        data = None
        if body is not None:
            data = json.dumps(body).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read(BODY_LIMIT)
        millis = round((time.monotonic() - started) * 1000, 1)
        try:
            decoded = json.loads(raw.decode('utf-8')) if raw else None
        except ValueError:
            decoded = None
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), decoded, millis
    finally:
        conn.close()


def _step(name, method, url):
    return dict(name=name, method=method, url=url, status=None, expected_status=None, elapsed_ms=None,
                ok=False, detail=None)


def transaction(params, check_mode=False):
    """The transaction of params (the module's options): {url, address, title, steps, passed, findings,
    check_mode, sent}. In check mode nothing is sent (the POST writes a quiz)."""
    host, port, _base_path = _golive_probe.parse_url(params['url'])
    address = params.get('address') or host
    path = params['path']
    if not path.startswith('/'):
        raise _golive_probe.ProbeError('path must begin with /, got %r' % path)
    origin = 'https://%s%s' % (host, '' if port == 443 else ':%d' % port)
    result = dict(url=origin + path, address=address, port=port, server_name=host, title=params['title'],
                  check_mode=bool(check_mode), sent=False, steps=[], findings=[], passed=False)
    if check_mode:
        result['findings'].append('skipped in check mode: the POST would create a quiz')
        return result
    create = _step('create', 'POST', origin + path)
    create['expected_status'] = 201
    result['steps'].append(create)
    result['sent'] = True
    try:
        status, headers, body, millis = _request(address, port, host, params.get('ca_file'), 'POST', path,
                                                 {'title': params['title']}, params['timeout'])
    except ssl.SSLCertVerificationError as exc:
        create['detail'] = 'the chain does not verify for %s: %s' % (host, exc.verify_message or exc)
    except (OSError, ssl.SSLError, ValueError) as exc:
        create['detail'] = 'POST %s via %s:%d failed: %s' % (path, address, port, exc)
    else:
        create.update(status=status, elapsed_ms=millis)
        location = headers.get('location')
        create['location'] = location
        if status != 201:
            create['detail'] = 'answered %d, expected 201' % status
        elif not location:
            create['detail'] = 'answered 201 without a Location header'
        else:
            create['ok'] = True
            create['detail'] = 'created %s' % location
    if not create['ok']:
        result['findings'].append('create: %s' % create['detail'])
        return result

    target = urllib.parse.urljoin(origin + path, create['location'])
    parts = urllib.parse.urlsplit(target)
    read = _step('read', 'GET', target)
    read['expected_status'] = 200
    result['steps'].append(read)
    if parts.scheme != 'https' or parts.hostname != host or (parts.port or 443) != port:
        read['detail'] = 'the Location %s leaves %s' % (create['location'], origin)
        result['findings'].append('read: %s' % read['detail'])
        return result
    read_path = parts.path + ('?' + parts.query if parts.query else '')
    try:
        status, _headers, body, millis = _request(address, port, host, params.get('ca_file'), 'GET', read_path,
                                                  None, params['timeout'])
    except ssl.SSLCertVerificationError as exc:
        read['detail'] = 'the chain does not verify for %s: %s' % (host, exc.verify_message or exc)
    except (OSError, ssl.SSLError, ValueError) as exc:
        read['detail'] = 'GET %s via %s:%d failed: %s' % (read_path, address, port, exc)
    else:
        read.update(status=status, elapsed_ms=millis)
        title = body.get('title') if isinstance(body, dict) else None
        if status != 200:
            read['detail'] = 'answered %d, expected 200' % status
        elif title != params['title']:
            read['detail'] = 'the title read back is %r, expected %r' % (title, params['title'])
        else:
            read['ok'] = True
            read['detail'] = 'read back with the same title'
    if not read['ok']:
        result['findings'].append('read: %s' % read['detail'])
    result['passed'] = not result['findings']
    return result
