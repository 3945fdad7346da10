"""Read-only probe of a host's state, in one round trip (aiquiz.ops roles).

Usage: python3 -c "$(cat host_probe.py)" SPEC_JSON

SPEC_JSON names what to read; every key is optional:
  files     paths: "TYPE MODE OWNER:GROUP" plus the sha1 of a regular file
  modes     paths: "TYPE MODE OWNER:GROUP" (no checksum)
            (a link is "link OWNER:GROUP -> TARGET (TARGET'S TYPE MODE OWNER:GROUP)",
            a missing path "absent")
  read      paths: the text of the file (null when it cannot be read)
  sysctl    kernel settings: {"value": ..., "writable": bool}, null when unknown
            (value null when the setting cannot be read)
  packages  Debian packages: dpkg's status ("installed", "config-files",
            "not-installed"; "unknown" when dpkg does not know the name)
  units     systemd units: {"enabled": is-enabled, "active": is-active}
  commands  name: argv; {"rc": ..., "stdout": ...} (rc 127 when not found)
  groups    group names: the group's ID, null when there is no such group
  apt_cache true: seconds since apt's cache was refreshed, as the apt module
            reckons it (its success stamp, else the lists directory)
Prints one JSON document and changes nothing.

It runs as root and follows links on the way to a path, so every path must
be absolute and on a root-owned path: never a user's home, where the user
could plant a link to a file only root may read (a role that manages files
in a home does so as that user).
"""
import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import sys
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


def main():
    spec = json.loads(sys.argv[1])
    relative = [path for key in ("files", "modes", "read") for path in spec.get(key, []) if not path.startswith("/")]
    if relative:
        sys.exit("host_probe: paths must be absolute (no ~ or relative paths): %s" % ", ".join(relative))
    json.dump({
        "files": {path: describe(path, True) for path in spec.get("files", [])},
        "modes": {path: describe(path, False) for path in spec.get("modes", [])},
        "read": {path: read(path) for path in spec.get("read", [])},
        "sysctl": {key: sysctl(key) for key in spec.get("sysctl", [])},
        "packages": packages(list(spec.get("packages", []))),
        "units": {name: unit(name) for name in spec.get("units", [])},
        "commands": {name: run(argv) for name, argv in spec.get("commands", {}).items()},
        "groups": {name: group(name) for name in spec.get("groups", [])},
        "apt_cache_age": apt_cache_age() if spec.get("apt_cache") else None,
    }, sys.stdout, sort_keys=True)


main()
