# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the
# aiquiz.ops.canary_watch module only. Its functions may change or go away in
# any release; do not import it from outside this collection.
#
# Runs on the edge host: Python 3.8+ and the standard library only.

from __future__ import annotations

import json
import os
import socket
import time

# Seconds between two reads of the log when nothing new came.
POLL = 0.2


def _split(value):
    """nginx's list of upstream attempts: 'a, b : c' (retries, then the next upstream group)."""
    return [part.strip() for part in str(value).replace(' : ', ',').split(',')]


def attempts(entry, targets):
    """(attempts, failures) of one access log entry against the canary's addresses.

    A failure is a 5xx answer or no answer at all (status '-' or missing)."""
    addrs = _split(entry.get('upstream_addr', ''))
    codes = _split(entry.get('upstream_status', ''))
    seen = failed = 0
    for i, addr in enumerate(addrs):
        if addr not in targets:
            continue
        seen += 1
        code = codes[i] if i < len(codes) else '-'
        if not code.isdigit() or int(code) >= 500:
            failed += 1
    return seen, failed


def resolve(matches, getaddrinfo=socket.getaddrinfo):
    """The addr:port strings to count, names resolved too: nginx logs the address it used."""
    out = set()
    for match in matches:
        host, sep, port = match.rpartition(':')
        if not sep or not host:
            continue
        out.add(match)
        try:
            for info in getaddrinfo(host.strip('[]'), int(port), proto=socket.IPPROTO_TCP):
                addr = info[4][0]
                out.add(('[%s]:%s' if ':' in addr else '%s:%s') % (addr, port))
        except (OSError, ValueError):
            pass
    return out


def validate_params(params):
    """Readable errors in the module arguments."""
    errors = []
    if not params['targets']:
        errors.append('targets must name at least one address:port')
    for target in params['targets'] or []:
        host, sep, port = target.rpartition(':')
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            errors.append('targets: %r is not address:port' % target)
    if params['seconds'] <= 0:
        errors.append('seconds must be > 0, got %s' % params['seconds'])
    if not 0 <= params['error_budget'] <= 1:
        errors.append('error_budget must be within 0..1, got %s' % params['error_budget'])
    if params['min_requests'] < 0:
        errors.append('min_requests must be >= 0, got %d' % params['min_requests'])
    return errors


class Tally:
    """Counts of the canary's attempts in the log lines read so far."""

    def __init__(self, targets):
        self.targets = targets
        self.requests = self.failed = self.lines = self.unparsed = 0

    def feed(self, raw):
        self.lines += 1
        try:
            entry = json.loads(raw)
        except ValueError:
            self.unparsed += 1
            return
        if not isinstance(entry, dict):
            self.unparsed += 1
            return
        seen, fails = attempts(entry, self.targets)
        self.requests += seen
        self.failed += fails


def verdict(tally, budget, min_requests, seconds):
    """The module's result from the counts: passed, and a reason when not."""
    rate = tally.failed / tally.requests if tally.requests else 0.0
    # Not `failed`: Ansible owns that key of a module's result.
    result = {'requests': tally.requests, 'failed_requests': tally.failed, 'error_rate': round(rate, 4), 'budget': budget,
              'log_lines': tally.lines, 'unparsed_lines': tally.unparsed, 'seconds': round(seconds, 1),
              'targets': sorted(tally.targets)}
    passed = tally.requests >= min_requests and rate <= budget
    result['passed'] = passed
    if tally.requests < min_requests:
        result['reason'] = 'only %d requests reached the canary (minimum %d)' % (tally.requests, min_requests)
    elif not passed:
        result['reason'] = 'error rate %.4f is over the budget %.4f' % (rate, budget)
    return result


def watch(path, targets, seconds, budget, min_requests, clock=time.monotonic, sleep=time.sleep):
    """Follow the log at path from its current end for `seconds` and judge the canary.

    Only whole lines count; a line still being written when the window ends is left out."""
    tally = Tally(targets)
    start = clock()
    with open(path, 'rb') as fh:
        fh.seek(0, os.SEEK_END)
        buf = b''
        while clock() - start < seconds:
            chunk = fh.read()
            if not chunk:
                sleep(POLL)
                continue
            buf += chunk
            *complete, buf = buf.split(b'\n')
            for raw in complete:
                tally.feed(raw)
    return verdict(tally, budget, min_requests, clock() - start)
