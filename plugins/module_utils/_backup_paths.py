# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: copied beside the backup and restore
# roles' host scripts (/usr/local/lib/aiquiz-backup, /usr/local/lib/aiquiz-restore).
# Standard library only, Python 3.11+ (shutil.rmtree with dir_fd).
#
# Root's file operations in directories that a service user (postgres, redis,
# rabbitmq) can write. Such a user can put a symbolic link, a hard link or a
# FIFO where root expects its own file, or swap one in between two steps, so
# every operation here works on an open directory descriptor: each component
# is opened with O_NOFOLLOW, files are created with O_EXCL, owners are set
# with fchown on the opened descriptor, and removal never follows a link.
# A refusal raises UnsafePathError naming the path.

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import shutil
import stat

try:
    from ansible_collections.aiquiz.ops.plugins.module_utils import _files
except ImportError:
    # Copied beside the host scripts, with _files.py.
    import _files  # pylint: disable=import-error

CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(OSError):
    """A path root would have followed into another user's reach; nothing was done there."""


def ids(user):
    """(uid, gid) of a user name (its primary group), or of a (uid, gid) pair as given."""
    if isinstance(user, tuple):
        return user
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def group_id(name):
    return grp.getgrnam(name).gr_gid


def _refuse(path, exc):
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return UnsafePathError(exc.errno, 'refusing %s: it is a symbolic link or not a directory; root does not '
                                          'follow links in directories another user can write' % path)
    return exc


class Dir:
    """An open directory; every name below is one entry of it, never a path."""

    def __init__(self, fd, path):
        self.fd = fd
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def join(self, name):
        return os.path.join(self.path, name)

    @classmethod
    def open(cls, path, create=False, mode=0o711, root_only=False, start='/'):
        """Open an absolute path, one component at a time, never following a link.

        create: make missing directories (root-owned, mode). root_only: every
        component below start must be owned by root and writable by root alone,
        so that no other user can rename or replace anything on the way.
        """
        path = os.path.normpath(path)
        start = os.path.normpath(start)
        if not os.path.isabs(path) or os.path.commonpath([path, start]) != start:
            raise ValueError('%s is not an absolute path below %s' % (path, start))
        fd = os.open('/', _DIR_FLAGS)
        here = '/'
        try:
            for part in [p for p in path.split('/') if p]:
                here = os.path.join(here, part)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    made = True
                    try:
                        os.mkdir(part, mode, dir_fd=fd)
                    except FileExistsError:
                        made = False
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    if made:
                        os.fchmod(child, mode)  # not subject to the umask
                except OSError as exc:
                    raise _refuse(here, exc)
                os.close(fd)
                fd = child
                if root_only and len(here) > len(start) and here.startswith(start.rstrip('/') + '/'):
                    info = os.fstat(fd)
                    if info.st_uid != 0 or info.st_mode & 0o022:
                        raise UnsafePathError(errno.EPERM, 'refusing %s: root works below it, so it must be owned by '
                                                           'root and writable by root alone (owner uid %d, mode %04o)'
                                              % (here, info.st_uid, stat.S_IMODE(info.st_mode)))
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, path)

    def lstat(self, name):
        """os.lstat of an entry, or None."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def exists(self, name):
        return self.lstat(name) is not None

    def owner(self):
        return os.fstat(self.fd).st_uid

    def subdir(self, name, create=False, owner=None, mode=None):
        """Open entry name as a directory (never a link). create: mkdir it when missing.
        owner (user name or (uid, gid)) and mode are set on the opened directory."""
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=self.fd)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            raise _refuse(self.join(name), exc)
        try:
            if owner is not None:
                os.fchown(fd, *ids(owner))
            if mode is not None:
                os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        return Dir(fd, self.join(name))

    def leaf(self, name, owner, mode=0o700):
        """A fresh, empty directory name for a service user: whatever was there goes first."""
        self.remove(name)
        try:
            os.mkdir(name, 0o700, dir_fd=self.fd)
        except FileExistsError:
            raise UnsafePathError(errno.EEXIST, 'refusing %s: it came back while root was replacing it' % self.join(name))
        return self.subdir(name, owner=owner, mode=mode)

    def remove(self, name):
        """Remove an entry: a file or link itself, or a directory tree without following a link inside it."""
        info = self.lstat(name)
        if info is None:
            return False
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=self.fd)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self.fd)
        return True

    def clear(self):
        """Remove everything in this directory."""
        for name in os.listdir(self.fd):
            self.remove(name)

    def rename(self, name, new_name):
        """Rename within this directory (a rename moves a link itself, never what it points to)."""
        os.rename(name, new_name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def open_read(self, name, owners=None):
        """A binary file object of a regular file (not a link, FIFO or device), owned by one of owners
        (user names or uids; None: anyone). A file of root's or another user's hard-linked in is refused."""
        path = self.join(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePathError(exc.errno, 'refusing to read %s: it is a symbolic link' % path)
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UnsafePathError(errno.EINVAL, 'refusing to read %s: not a regular file' % path)
            if owners is not None:
                uids = set(ids(o)[0] if isinstance(o, str) else o for o in owners)
                if info.st_uid not in uids:
                    raise UnsafePathError(errno.EPERM, 'refusing to read %s: owned by uid %d, expected %s'
                                          % (path, info.st_uid, ', '.join(str(o) for o in owners)))
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, 'rb')

    def create(self, name, owner=None, mode=0o600):
        """A new file name opened for writing (binary): what was there is removed first, and a link or file
        that appears meanwhile is refused (O_EXCL, O_NOFOLLOW). Owner and mode are set on the descriptor."""
        self.remove(name)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self.fd)
        except FileExistsError:
            raise UnsafePathError(errno.EEXIST, 'refusing to write %s: it came back while root was replacing it'
                                  % self.join(name))
        try:
            if owner is not None:
                os.fchown(fd, *ids(owner))
            os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, 'wb')

    def write(self, name, data, owner=None, mode=0o600):
        """Write bytes, text or the contents of a binary file object to a new file name."""
        with self.create(name, owner=owner, mode=mode) as out:
            if hasattr(data, 'read'):
                shutil.copyfileobj(data, out, CHUNK)
            else:
                out.write(data.encode('utf-8') if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())


def parent_and_name(path, **kwargs):
    """(Dir of the parent, last component) of an absolute path, the parent opened without following links."""
    path = os.path.normpath(path)
    parent, name = os.path.split(path)
    if not name:
        raise ValueError('%s has no last component' % path)
    return Dir.open(parent, **kwargs), name


def read_tail(path, owners, lines=6, limit=65536):
    """The last lines of a log file owned by one of owners, read without following a link; '' when absent."""
    try:
        parent, name = parent_and_name(path)
    except (OSError, ValueError):
        return ''
    with parent:
        try:
            with parent.open_read(name, owners) as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(0, size - limit))
                text = handle.read().decode('utf-8', 'replace')
        except (OSError, ValueError):
            return ''
    return ' | '.join(line.strip() for line in text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# The marker of an operation in progress (root-owned, 0600)
# --------------------------------------------------------------------------

def write_marker(path, data):
    """Record what a long operation is about to do; a later run reads it to finish or roll back."""
    _files.write_atomic(path, json.dumps(data, sort_keys=True) + '\n', mode=0o600, dir_mode=0o700)


def read_marker(path):
    """The marker's data, or None. A marker that is not root's own 0600 file is refused."""
    try:
        parent, name = parent_and_name(path)
    except FileNotFoundError:
        return None
    with parent:
        try:
            with parent.open_read(name, owners=[0]) as handle:
                if stat.S_IMODE(os.fstat(handle.fileno()).st_mode) & 0o077:
                    raise UnsafePathError(errno.EPERM, 'refusing the marker %s: readable or writable by others' % path)
                return json.loads(handle.read().decode('utf-8'))
        except FileNotFoundError:
            return None


def clear_marker(path):
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
