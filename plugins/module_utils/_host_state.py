# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only view of a host's state in one pass, for the host_state module.

Every key of the spec is optional; see the module's documentation for what
each one returns. Nothing here changes the host.

It runs as root and follows links on the way to a path, so every path must be
absolute and on a root-owned path: never a user's home, where the user could
plant a link to a file only root may read.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
import subprocess
import time

ENV = dict(os.environ, LC_ALL="C")


def _name(getter, ident):
    try:
        return getter(ident)[0]
    except KeyError:
        return str(ident)


def _kind(st):
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"


def _attrs(st):
    return "%s %04o %s:%s" % (_kind(st), stat.S_IMODE(st.st_mode),
                              _name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid))


def describe(path, checksum):
    try:
        st = os.lstat(path)
    except OSError:
        return "absent"
    if stat.S_ISLNK(st.st_mode):
        try:
            target = _attrs(os.stat(path))
        except OSError:
            target = "absent"
        return "link %s:%s -> %s (%s)" % (_name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid),
                                          os.readlink(path), target)
    out = _attrs(st)
    if checksum and stat.S_ISREG(st.st_mode):
        digest = hashlib.sha1()
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(65536), b""):
                    digest.update(block)
            out += " " + digest.hexdigest()
        except OSError:
            out += " unreadable"
    return out


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, check=False)
    except OSError:
        return {"rc": 127, "stdout": ""}
    return {"rc": proc.returncode, "stdout": proc.stdout.decode("utf-8", "replace")}


def sysctl(key):
    path = "/proc/sys/" + key.replace(".", "/")
    if not os.path.exists(path):
        return None
    value = read(path)
    return {"value": None if value is None else " ".join(value.split()), "writable": os.access(path, os.W_OK)}


def packages(names):
    status = dict.fromkeys(names, "unknown")
    if names:
        out = run(["dpkg-query", "-W", "-f", "${Package}\\t${db:Status-Status}\\n", "--"] + names)["stdout"]
        for line in out.splitlines():
            name, _sep, state = line.partition("\t")
            if name in status and status[name] != "installed":
                status[name] = state or "unknown"
    return status


def unit(name):
    return {"enabled": run(["systemctl", "is-enabled", name])["stdout"].strip(),
            "active": run(["systemctl", "is-active", name])["stdout"].strip()}


def group(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def apt_cache_age():
    for path in ("/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/lists"):
        if os.path.exists(path):
            return round(time.time() - os.stat(path).st_mtime)
    return round(time.time())


PATH_KEYS = ("files", "modes", "read")


def relative_paths(spec):
    """Paths of the spec that are not absolute (refused: see the module docstring)."""
    return [path for key in PATH_KEYS for path in (spec.get(key) or []) if not str(path).startswith("/")]


def collect(spec):
    """The state the spec asks for, as one dict."""
    return {
        "files": dict((path, describe(path, True)) for path in spec.get("files") or []),
        "modes": dict((path, describe(path, False)) for path in spec.get("modes") or []),
        "read": dict((path, read(path)) for path in spec.get("read") or []),
        "sysctl": dict((key, sysctl(key)) for key in spec.get("sysctl") or []),
        "packages": packages(list(spec.get("packages") or [])),
        "units": dict((name, unit(name)) for name in spec.get("units") or []),
        "commands": dict((name, run(argv)) for name, argv in (spec.get("commands") or {}).items()),
        "groups": dict((name, group(name)) for name in spec.get("groups") or []),
        "apt_cache_age": apt_cache_age() if spec.get("apt_cache") else None,
    }
