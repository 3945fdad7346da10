# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File writing shared by the modules that keep state on a host (release
ledger, backup catalogue, certificate textfile, nginx upstream files): a
reader sees the old file or the new one, never a part, and writers of one
file take turns. Run locks (run_lock) keep a whole run of a job, across its
tasks, to itself on a host."""

from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time


def ensure_parent(path, mode=0o755):
    """Create the missing parent directories of path with mode (not subject to the umask)."""
    parent = os.path.dirname(path)
    missing = []
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        else:
            os.chmod(directory, mode)


def write_atomic(path, text, mode=0o644, dir_mode=0o755, keep_owner=False):
    """Write text to a temporary file beside path (named .<name>.*.tmp), fsync
    it, rename it over path, fsync the directory. keep_owner: the new file
    gets the owner and group of the file it replaces."""
    ensure_parent(path, dir_mode)
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if keep_owner and os.path.exists(path):
                stat = os.stat(path)
                with contextlib.suppress(OSError):
                    os.fchown(handle.fileno(), stat.st_uid, stat.st_gid)
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def locked(path, timeout, on_timeout, poll=0.05, mode=0o644, dir_mode=0o755):
    """Hold an exclusive fcntl lock on <path>.lock, waiting up to timeout
    seconds; then raise on_timeout(lock file name)."""
    ensure_parent(path, dir_mode)
    name = path + '.lock'
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        give_up = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= give_up:
                    raise on_timeout(name)
                time.sleep(poll)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Run locks: one run of a job at a time on a host, held across the many tasks
# (processes) of an Ansible run. A run lock is a JSON file naming its holder
# with a lease; the holder renews the lease between its steps and removes the
# file when done. Another run takes it over only when the holder can no
# longer be at work: its lease ended, the host restarted since it was taken,
# or the caller proved the holder's process gone (take_over). Every read and
# change of the file happens under locked() on it, so two runs never both
# take over one lock.

RUN_LOCK_VERSION = 1
ISO_FORMAT = '%Y-%m-%dT%H:%M:%SZ'


def iso(moment):
    """Epoch seconds as UTC ISO-8601 with a Z suffix, to the second."""
    return time.strftime(ISO_FORMAT, time.gmtime(moment))


def from_iso(text):
    """Epoch seconds of a UTC ISO-8601 time written by iso(); None when it is not one."""
    try:
        return float(calendar.timegm(time.strptime(text, ISO_FORMAT)))
    except (TypeError, ValueError):
        return None


def boot_id():
    """This boot's id (Linux), None elsewhere."""
    try:
        with open('/proc/sys/kernel/random/boot_id', encoding='ascii') as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def read_run_lock(path):
    """The record of a run lock, None when there is no lock file, or
    {'unreadable': reason} when the file is not a record run_lock wrote."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    try:
        record = json.loads(raw.decode('utf-8'))
    except ValueError as exc:
        return {'unreadable': 'not a JSON record (%s)' % exc}
    if not isinstance(record, dict) or not isinstance(record.get('token'), str):
        return {'unreadable': 'no holder token in it'}
    return record


def describe_holder(record):
    """One line naming who holds a run lock: who, which run, controller pid
    and host, what for, since when, lease end."""
    if record is None:
        return 'nobody'
    if 'unreadable' in record:
        return 'an unreadable lock file (%s)' % record['unreadable']
    who = record.get('who') or 'someone'
    run = record.get('run')
    text = '%s%s (ansible-playbook pid %s on %s)' % (
        who, ', ' + run if run else '', record.get('pid', '?'), record.get('controller') or 'an unknown controller')
    if record.get('purpose'):
        text += ', ' + record['purpose']
    text += ', since %s' % record.get('since', '?')
    if record.get('expires'):
        text += ' (lease until %s)' % record['expires']
    return text


def stale_reason(record, now, current_boot, take_over=None):
    """Why the holder of record can no longer be at work, or None when it may be."""
    if 'unreadable' in record:
        # Holders write the record by an atomic rename: a live one never
        # leaves a file that cannot be read.
        return 'its lock file was unreadable (%s)' % record['unreadable']
    if take_over and record.get('token') == take_over:
        return 'its run is gone (ansible-playbook pid %s on %s is no longer running)' % (
            record.get('pid', '?'), record.get('controller', '?'))
    if current_boot and record.get('boot_id') and record['boot_id'] != current_boot:
        return 'the host restarted after it was taken'
    expires = from_iso(record.get('expires'))
    if expires is None:
        return 'it had no lease end'
    if expires < now:
        return 'its lease ended at %s without a renewal' % record['expires']
    return None


def run_lock(path, token, holder, lease, wait=0.0, take_over=None, poll=1.0, mode=0o600, dir_mode=0o755,
             clock=time.time, sleep=time.sleep):
    """Take (or renew, for the same token) the run lock at path, waiting up
    to wait seconds for another holder to release it or go stale.

    holder: what to record about the run (who, run, controller, pid,
    purpose...). Returns a dict: acquired (bool), record (ours, or the
    holder's when not acquired), renewed (the token held it already),
    previous and reason (the stale record taken over and why), waited
    (seconds).
    """
    started = clock()
    deadline = started + max(wait, 0.0)
    current_boot = boot_id()
    while True:
        with locked(path, 30, _busy, mode=mode, dir_mode=dir_mode):
            now = clock()
            record = read_run_lock(path)
            reason = None
            if record is not None and record.get('token') != token:
                reason = stale_reason(record, now, current_boot, take_over)
            if record is None or record.get('token') == token or reason:
                renewed = record is not None and record.get('token') == token
                mine = dict(holder)
                mine.update(version=RUN_LOCK_VERSION, token=token, boot_id=current_boot, renewed=iso(now),
                            expires=iso(now + lease),
                            since=record.get('since', iso(now)) if renewed else iso(now))
                write_atomic(path, json.dumps(mine, indent=2, sort_keys=True) + '\n', mode, dir_mode)
                return {'acquired': True, 'record': mine, 'renewed': renewed,
                        'previous': record if reason else None, 'reason': reason, 'waited': now - started}
        if now >= deadline:
            return {'acquired': False, 'record': record, 'renewed': False, 'previous': None, 'reason': None,
                    'waited': now - started}
        sleep(min(poll, max(deadline - now, 0.0)))


def release_run_lock(path, token, mode=0o600, dir_mode=0o755):
    """Remove the run lock at path when token holds it. Returns (released,
    record found): a lock taken over by another run is left to it."""
    if not os.path.exists(path):
        return False, None
    with locked(path, 30, _busy, mode=mode, dir_mode=dir_mode):
        record = read_run_lock(path)
        if record is None or record.get('token') != token:
            return False, record
        os.unlink(path)
    return True, record


def _busy(name):
    return OSError(errno.EAGAIN, 'lock file %s stayed locked for 30 s' % name)
