# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File writing shared by the modules that keep state on a host (release
ledger, backup catalogue, certificate textfile, nginx upstream files): a
reader sees the old file or the new one, never a part, and writers of one
file take turns."""

from __future__ import annotations

import contextlib
import errno
import fcntl
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
