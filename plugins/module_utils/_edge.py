# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Upstream server files of the edge's nginx (module nginx_backends).

Pure functions (validation, rendering, planning) and the few that touch the
host (the candidate test, atomic writes, reload and the wait for the old
workers), kept
apart so that the unit tests run the first kind directly and the second kind
against a temporary directory and stand-in commands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time

from ansible_collections.aiquiz.ops.plugins.module_utils import _files, _netnames
from ansible_collections.aiquiz.ops.plugins.module_utils._role_variables import whole_number

UPSTREAM_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_]*$')
SOURCE_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
NGINX_TIME_RE = re.compile(r'^[^\s;{}"\'$#\\]+$')


def _is_address(text):
    bare = text[1:-1] if text.startswith('[') and text.endswith(']') else text
    return _netnames.is_ip_address(bare) or _netnames.is_dns_name(text)


def validate(upstreams, source, fail_timeout, max_fails, drain_timeout, prefix='upstreams'):
    """Every problem of the input, each naming the offending field."""
    errors = []
    if not isinstance(source, str) or not SOURCE_RE.match(source):
        errors.append('source: "%s" must be letters, digits, "_", "." or "-"' % (source,))
    if not isinstance(upstreams, dict) or not upstreams:
        errors.append('%s: must name at least one upstream' % prefix)
        upstreams = {}
    for name, servers in upstreams.items():
        if not UPSTREAM_RE.match(str(name)):
            errors.append('%s: "%s" is not an upstream name (a letter, then letters, digits or "_")' % (prefix, name))
            continue
        if not isinstance(servers, list):
            errors.append('%s.%s: must be a list of servers (an empty list removes them)' % (prefix, name))
            continue
        for index, server in enumerate(servers):
            where = '%s.%s[%d]' % (prefix, name, index)
            if not isinstance(server, dict):
                errors.append('%s: must be a dict with address, port and weight' % where)
                continue
            unknown = sorted(set(server) - {'address', 'port', 'weight'})
            if unknown:
                errors.append('%s: unknown keys %s' % (where, ', '.join(unknown)))
            address = str(server.get('address', ''))
            if not address or '/' in address or not _is_address(address):
                errors.append('%s.address: "%s" is not a host name or an IP address' % (where, address))
            port = whole_number(server.get('port'))
            if port is None or not 1 <= port <= 65535:
                errors.append('%s.port: "%s" is not a port (1-65535)' % (where, server.get('port')))
            weight = whole_number(server.get('weight', 1))
            if weight is None or weight < 1:
                errors.append('%s.weight: "%s" must be an integer of 1 or more (leave a server out to give it no traffic)'
                              % (where, server.get('weight')))
    if not NGINX_TIME_RE.match(str(fail_timeout)):
        errors.append('fail_timeout: "%s" is not an nginx time' % (fail_timeout,))
    if whole_number(max_fails) is None or whole_number(max_fails) < 0:
        errors.append('max_fails: "%s" must be 0 or more' % (max_fails,))
    if drain_timeout is None or drain_timeout < 0:
        errors.append('drain_timeout: "%s" must be 0 or more seconds' % (drain_timeout,))
    return errors


def render(upstream, source, servers, max_fails, fail_timeout, header=''):
    """The file's text: one server line per server, in the given order."""
    lines = []
    if header:
        lines.append('# %s' % header)
    lines.append('# Servers of %s in upstream %s (aiquiz.ops.nginx_backends).' % (source, upstream))
    for server in servers:
        address = str(server['address'])
        if ':' in address and not address.startswith('['):
            address = '[%s]' % address
        lines.append('server %s:%d weight=%d max_fails=%d fail_timeout=%s;' % (
            address, whole_number(server['port']), whole_number(server.get('weight', 1)), whole_number(max_fails), fail_timeout))
    return '\n'.join(lines) + '\n'


def plan(directory, source, upstreams, max_fails, fail_timeout, header=''):
    """What to change: a list of {upstream, path, before, after} (None = no
    file), only for files whose content differs. Raises LookupError naming the
    first upstream whose directory does not exist."""
    changes = []
    for name in sorted(upstreams):
        updir = os.path.join(directory, name)
        if not os.path.isdir(updir):
            raise LookupError(name)
        path = os.path.join(updir, '%s.conf' % source)
        before = _read(path)
        servers = upstreams[name]
        after = render(name, source, servers, max_fails, fail_timeout, header) if servers else None
        if before != after:
            changes.append({'upstream': name, 'path': path, 'before': before, 'after': after})
    return changes


def _read(path):
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path, text, mode=0o644):
    """Write beside, fsync, rename over: readers see the old or the new file."""
    _files.write_atomic(path, text, mode)


def test_candidates(changes, command, timeout=180):
    """(rc, output) of the candidate test (command: an argv, the edge role's
    aiquiz_nginx_test_candidate.py with its interpreter): the new text of
    every changed file, or its removal, tested with the whole nginx
    configuration before anything under the live tree changes."""
    workdir = tempfile.mkdtemp(prefix='aiquiz-nginx-backends-')
    try:
        argv, removed = list(command), []
        for index, change in enumerate(changes):
            if change['after'] is None:
                removed += ['--remove', change['path']]
                continue
            candidate = os.path.join(workdir, '%d.conf' % index)
            with open(candidate, 'w', encoding='utf-8') as handle:
                handle.write(change['after'])
            argv += [change['path'], candidate]
        return run(argv + removed, timeout=timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def apply(changes):
    for change in changes:
        if change['after'] is None:
            if os.path.exists(change['path']):
                os.unlink(change['path'])
        else:
            write_atomic(change['path'], change['after'])


def children(pid, proc='/proc'):
    """PIDs whose parent is pid (nginx's workers)."""
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, 'stat'), encoding='utf-8') as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        fields = stat[stat.rfind(')') + 2:].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry))
    return sorted(found)


def alive(pid, proc='/proc'):
    """Running, not exited (a zombie waiting for its parent counts as exited)."""
    try:
        with open(os.path.join(proc, str(pid), 'stat'), encoding='utf-8') as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(')') + 2:][:1] != 'Z'


def cmdline(pid, proc='/proc'):
    try:
        with open(os.path.join(proc, str(pid), 'cmdline'), 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode('utf-8', 'replace').strip()
    except OSError:
        return None


def run(argv, timeout=60):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    return proc.returncode, proc.stdout.decode('utf-8', 'replace').strip()


def main_pid(service):
    rc, out = run(['systemctl', 'show', '--property', 'MainPID', '--value', service])
    try:
        return int(out) if rc == 0 else 0
    except ValueError:
        return 0


def reload_and_drain(service, drain_timeout, proc='/proc', sleep=0.05):
    """Reload gracefully, then wait (at most drain_timeout s) until the
    workers of the previous configuration have exited. Returns (error, info)."""
    master = main_pid(service)
    if master <= 0:
        return '%s is not running: the new servers take effect when it starts' % service, {}
    old = children(master, proc)
    started = time.monotonic()
    rc, out = run(['systemctl', 'reload', service])
    if rc != 0:
        return 'systemctl reload %s failed: %s' % (service, out), {}
    deadline = started + drain_timeout
    left = old
    while True:
        left = [pid for pid in left if alive(pid, proc)]
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(sleep)
    info = {'drained': not left, 'seconds': round(time.monotonic() - started, 3),
            'old_workers': len(old), 'left': len(left)}
    for pid in left:
        line = cmdline(pid, proc)
        # Still a normal worker: nginx kept its old configuration.
        if line is not None and 'shutting down' not in line:
            return ('nginx did not apply the reload (worker %d still runs the old configuration): '
                    'see /var/log/nginx/error.log' % pid), info
    return None, info
