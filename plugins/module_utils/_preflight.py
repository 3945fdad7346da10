# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the
# aiquiz.ops.preflight_facts module only. Its functions may change or go away
# in any release; do not import it from outside this collection.
#
# Everything here runs on the managed host (Python 3.8+, standard library
# only). Gathering is split from judging: the read_*/parse_*/measure_*
# functions collect observations, evaluate() turns observations into checks.
# File-system roots are arguments so unit tests can point them at a fake tree.

from __future__ import annotations

import grp
import ipaddress
import os
import platform
import pwd
import re
import socket
import struct
import sys

MIB = 1024 * 1024

# /proc/net/* socket states (include/net/tcp_states.h).
TCP_LISTEN = '0A'
# An unconnected, bound UDP socket is reported as TCP_CLOSE (07).
UDP_UNCONNECTED = '07'

PROC_NET_TABLES = (
    # (file name under <proc>/net, proto, IPv6?, state that means "listening")
    ('tcp', 'tcp', False, TCP_LISTEN),
    ('tcp6', 'tcp', True, TCP_LISTEN),
    ('udp', 'udp', False, UDP_UNCONNECTED),
    ('udp6', 'udp', True, UDP_UNCONNECTED),
)

MIN_PYTHON_RE = re.compile(r'^[0-9]+(\.[0-9]+){0,2}$')

_SOCKET_LINK_RE = re.compile(r'^socket:\[([0-9]+)\]$')


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------

def parse_meminfo(text):
    """Return the memory available for new work, in MiB, from /proc/meminfo text.

    Uses MemAvailable (Linux 3.14+). Kernels without it get the classic
    estimate MemFree + Buffers + Cached. Returns None when neither is present.
    """
    fields = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(':')
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            value = int(parts[0])
        except ValueError:
            continue
        # Values are in kB unless a unit says otherwise (HugePages_* have none).
        if len(parts) > 1 and parts[1].lower() != 'kb':
            continue
        fields[name.strip()] = value
    if 'MemAvailable' in fields:
        kib = fields['MemAvailable']
    elif 'MemFree' in fields:
        kib = fields['MemFree'] + fields.get('Buffers', 0) + fields.get('Cached', 0)
    else:
        return None
    return kib // 1024


def read_memory_available_mb(proc_root='/proc'):
    """Read <proc_root>/meminfo and return (MiB available or None, error or None)."""
    path = os.path.join(proc_root, 'meminfo')
    try:
        with open(path) as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        return None, 'could not read %s: %s' % (path, exc)
    value = parse_meminfo(text)
    if value is None:
        return None, 'no MemAvailable or MemFree line in %s' % path
    return value, None


# --------------------------------------------------------------------------
# Disk
# --------------------------------------------------------------------------

def nearest_existing_path(path):
    """Return path itself if it exists, else its nearest existing ancestor."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def measure_path(path, statvfs=os.statvfs):
    """Measure the filesystem that holds (or will hold) path.

    Returns {path, measured_path, free_mb, total_mb} and, when statvfs failed,
    an 'error' key with free_mb/total_mb set to None. free_mb counts the
    blocks available to unprivileged users (f_bavail), which is what a
    service running as its own user can actually use.
    """
    measured = nearest_existing_path(path)
    result = {'path': path, 'measured_path': measured, 'free_mb': None, 'total_mb': None}
    try:
        stat = statvfs(measured)
    except (IOError, OSError) as exc:
        result['error'] = 'could not measure %s: %s' % (measured, exc)
        return result
    result['free_mb'] = (stat.f_bavail * stat.f_frsize) // MIB
    result['total_mb'] = (stat.f_blocks * stat.f_frsize) // MIB
    return result


# --------------------------------------------------------------------------
# Listening sockets
# --------------------------------------------------------------------------

def decode_address(hex_addr, ipv6):
    """Decode a /proc/net address field (without port) into text form.

    The kernel prints each 32-bit word of the address with %08X in the host's
    byte order, so the words are re-packed in native order to recover the
    bytes in network order.
    """
    if ipv6:
        if len(hex_addr) != 32:
            raise ValueError('bad IPv6 address field %r' % hex_addr)
        words = [int(hex_addr[i:i + 8], 16) for i in range(0, 32, 8)]
        return socket.inet_ntop(socket.AF_INET6, struct.pack('=4I', *words))
    if len(hex_addr) != 8:
        raise ValueError('bad IPv4 address field %r' % hex_addr)
    return socket.inet_ntop(socket.AF_INET, struct.pack('=I', int(hex_addr, 16)))


def parse_proc_net(text, proto, ipv6, listen_state=None):
    """Parse the text of /proc/net/{tcp,tcp6,udp,udp6} into listeners.

    Returns a list of {proto, port, address, inode} for sockets in the
    listening state (0A for tcp, 07 for udp unless listen_state says
    otherwise). The header line and malformed lines are skipped.
    """
    if listen_state is None:
        listen_state = TCP_LISTEN if proto == 'tcp' else UDP_UNCONNECTED
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        if len(fields) < 10 or not fields[0].endswith(':'):
            continue
        if fields[3].upper() != listen_state:
            continue
        addr_hex, sep, port_hex = fields[1].rpartition(':')
        if not sep:
            continue
        try:
            address = decode_address(addr_hex, ipv6)
            port = int(port_hex, 16)
            inode = int(fields[9])
        except ValueError:
            continue
        listeners.append({'proto': proto, 'port': port, 'address': address, 'inode': inode})
    return listeners


def read_listeners(proc_root='/proc'):
    """Read every /proc/net table; return (listeners, {proto: error}).

    A missing tcp6/udp6 table (IPv6 disabled) is not an error. An error is
    reported for a protocol only when none of its tables could be read.
    """
    listeners = []
    read_ok = {}
    errors = {}
    for name, proto, ipv6, state in PROC_NET_TABLES:
        path = os.path.join(proc_root, 'net', name)
        try:
            with open(path) as handle:
                text = handle.read()
        except (IOError, OSError) as exc:
            if ipv6 and not os.path.exists(path):
                continue
            errors.setdefault(proto, []).append('could not read %s: %s' % (path, exc))
            continue
        read_ok[proto] = True
        listeners.extend(parse_proc_net(text, proto, ipv6, state))
    failed = dict((proto, '; '.join(msgs)) for proto, msgs in errors.items() if not read_ok.get(proto))
    return listeners, failed


def map_socket_inodes(inodes, proc_root='/proc'):
    """Map socket inodes to (pid, process name).

    Scans <proc_root>/<pid>/fd/* for links to 'socket:[inode]' and reads
    <proc_root>/<pid>/comm. Processes are visited in pid order and the first
    owner wins, so a socket shared by a master and its workers is credited to
    the (usually lower-numbered) master. Processes and fds that vanish or
    cannot be read (not root) are skipped; their sockets stay unmapped.
    Returns {inode: {'pid': int, 'process': str}}.
    """
    wanted = set(inodes)
    found = {}
    if not wanted:
        return found
    try:
        entries = os.listdir(proc_root)
    except (IOError, OSError):
        return found
    pids = sorted(int(entry) for entry in entries if entry.isdigit())
    for pid in pids:
        fd_dir = os.path.join(proc_root, str(pid), 'fd')
        try:
            fds = os.listdir(fd_dir)
        except (IOError, OSError):
            continue
        hits = []
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except (IOError, OSError):
                continue
            match = _SOCKET_LINK_RE.match(target)
            if not match:
                continue
            inode = int(match.group(1))
            if inode in wanted and inode not in found:
                hits.append(inode)
        if not hits:
            continue
        name = read_process_name(pid, proc_root)
        for inode in hits:
            found[inode] = {'pid': pid, 'process': name}
        if len(found) == len(wanted):
            break
    return found


def read_process_name(pid, proc_root='/proc'):
    """Return the command name from <proc_root>/<pid>/comm, or None."""
    try:
        with open(os.path.join(proc_root, str(pid), 'comm')) as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def collect_listeners(proc_root='/proc'):
    """Return (listeners with pid/process, {proto: error}).

    Each listener is {proto, port, address, inode, pid, process}; pid and
    process are None when the owner cannot be seen.
    """
    listeners, errors = read_listeners(proc_root)
    owners = map_socket_inodes([item['inode'] for item in listeners if item['inode']], proc_root)
    for item in listeners:
        owner = owners.get(item['inode'], {})
        item['pid'] = owner.get('pid')
        item['process'] = owner.get('process')
    listeners.sort(key=lambda item: (item['proto'], item['port'], item['address'], item['pid'] or 0))
    return listeners, errors


# --------------------------------------------------------------------------
# DNS, clock, Python
# --------------------------------------------------------------------------

def resolve_name(name, getaddrinfo=socket.getaddrinfo):
    """Resolve name with the host's resolver; return (addresses, error or None)."""
    try:
        infos = getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (socket.gaierror, socket.herror, UnicodeError, OSError) as exc:
        return [], str(exc) or exc.__class__.__name__
    addresses = []
    for info in infos:
        address = info[4][0]
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        return [], 'the resolver returned no addresses'
    return addresses, None


def clock_skew(host_time, controller_time):
    """Seconds the host clock is ahead of the controller (negative: behind)."""
    if controller_time is None:
        return None
    return float(host_time) - float(controller_time)


def parse_version(text):
    """'3.9' -> (3, 9). Raises ValueError for anything else."""
    text = str(text).strip()
    if not MIN_PYTHON_RE.match(text):
        raise ValueError('expected a version like 3.9, got %r' % text)
    return tuple(int(part) for part in text.split('.'))


def python_version(version_info=None):
    """'3.11.2' for the running interpreter (or the given version_info)."""
    if version_info is None:
        return platform.python_version()
    return '.'.join(str(part) for part in tuple(version_info)[:3])


def python_ok(min_python, version_info=None):
    """True when the interpreter is at least min_python."""
    if version_info is None:
        version_info = sys.version_info
    wanted = parse_version(min_python)
    return tuple(version_info)[:len(wanted)] >= wanted


# --------------------------------------------------------------------------
# The controller's own access (lock-out)
# --------------------------------------------------------------------------

def _read_environ(pid, proc_root):
    with open(os.path.join(proc_root, str(pid), 'environ'), 'rb') as fh:
        data = fh.read()
    env = {}
    for item in data.split(b'\0'):
        name, sep, value = item.partition(b'=')
        if sep:
            env[name.decode('utf-8', 'replace')] = value.decode('utf-8', 'replace')
    return env


def _read_ppid_uid(pid, proc_root):
    ppid = uid = None
    with open(os.path.join(proc_root, str(pid), 'status'), encoding='utf-8', errors='replace') as fh:
        for line in fh:
            if line.startswith('PPid:'):
                ppid = int(line.split()[1])
            elif line.startswith('Uid:'):
                uid = int(line.split()[1])
    return ppid, uid


def read_ssh_session(pid=None, proc_root='/proc', getpwuid=pwd.getpwuid, max_depth=32):
    """The SSH session this process runs in: {client, client_port, server, server_port, user},
    or None when no ancestor has SSH_CONNECTION (a local or docker exec connection).

    sudo drops SSH_CONNECTION from the environment, so the process tree is
    walked up to the login shell that sshd started, whose owner is the user
    the controller logs in as.
    """
    pid = os.getpid() if pid is None else pid
    for _depth in range(max_depth):
        if pid is None or pid <= 1:
            return None
        try:
            env = _read_environ(pid, proc_root)
            ppid, uid = _read_ppid_uid(pid, proc_root)
        except (OSError, ValueError, IndexError):
            return None
        fields = env.get('SSH_CONNECTION', '').split()
        if len(fields) == 4:
            try:
                user = getpwuid(uid).pw_name if uid is not None else env.get('USER')
            except KeyError:
                user = env.get('USER') or env.get('LOGNAME')
            return {'client': fields[0], 'client_port': int(fields[1]),
                    'server': fields[2], 'server_port': int(fields[3]), 'user': user}
        pid = ppid
    return None


def user_groups(user, getpwnam=pwd.getpwnam, getgrgid=grp.getgrgid, getgrall=grp.getgrall):
    """Names of the groups the user is in now (primary and supplementary); [] for an unknown user."""
    try:
        entry = getpwnam(user)
    except KeyError:
        return []
    names = []
    try:
        names.append(getgrgid(entry.pw_gid).gr_name)
    except KeyError:
        pass
    names.extend(group.gr_name for group in getgrall() if user in group.gr_mem)
    return _unique(names)


def evaluate_access(spec, observations):
    """Checks that the run does not cut the controller's own SSH access:
    its address inside the admin networks, the SSH port the firewall opens
    equal to the one in use, the login user allowed by AllowGroups and by
    PermitRootLogin."""
    session = observations.get('ssh_session')
    if not session:
        return [_check('access', True, 'not connected over SSH: the firewall and sshd settings cannot '
                       'lock this connection out', '')]
    checks = []
    client, user = session['client'], session['user']
    networks = spec.get('admin_networks')
    if networks:
        try:
            address = ipaddress.ip_address(client.split('%')[0])
            if address.version == 6 and address.ipv4_mapped:
                address = address.ipv4_mapped
            inside = [net for net in networks if address in ipaddress.ip_network(net, strict=False)]
        except ValueError:
            inside = []
        checks.append(_check(
            'access:admin_networks', bool(inside),
            'the controller reaches the host from %s, %s firewall_admin_networks (%s)' % (
                client, 'inside' if inside else 'outside', ', '.join(networks)),
            'add %s (or the bastion or VPN range it belongs to) to firewall_admin_networks; '
            'the firewall would drop new SSH connections from it' % client))
    port = spec.get('ssh_port')
    if port:
        checks.append(_check(
            'access:ssh_port', session['server_port'] == port,
            'the controller uses SSH port %d, the firewall opens firewall_ssh_port %d' % (session['server_port'], port),
            'set firewall_ssh_port to %d (the port sshd answers on now), or move sshd and ansible_port to %d '
            'in one change you can reach' % (session['server_port'], port)))
    allow = spec.get('allow_groups') or []
    if allow:
        groups = _unique(list(observations.get('ssh_user_groups') or [])
                         + list((spec.get('declared_groups') or {}).get(user) or []))
        member = [group for group in groups if group in allow]
        checks.append(_check(
            'access:allow_groups', bool(member),
            'the controller logs in as %s, in groups %s; hardening_ssh_allow_groups admits only %s' % (
                user, ', '.join(groups) or 'none', ', '.join(allow)),
            'add %s to one of %s (base_users[].groups), or log in as a user who is' % (user, ', '.join(allow))))
    permit_root = spec.get('permit_root_login')
    if user == 'root' and permit_root:
        checks.append(_check(
            'access:root_login', permit_root not in ('no',),
            'the controller logs in as root and hardening_ssh_permit_root_login is "%s"' % permit_root,
            'log in as an admin user with sudo (ansible_user, base_users), or set hardening_ssh_permit_root_login '
            'to prohibit-password'))
    return checks


# --------------------------------------------------------------------------
# Gathering everything in one go
# --------------------------------------------------------------------------

def gather(params, host_time, proc_root='/proc', statvfs=os.statvfs, getaddrinfo=socket.getaddrinfo):
    """Collect the observations evaluate() needs, for the given module params."""
    observations = {
        'host_time': host_time,
        'python_version': python_version(),
        'python_executable': sys.executable,
        'python_version_info': tuple(sys.version_info)[:3],
        'euid': os.geteuid(),
    }
    observations['memory_available_mb'], observations['memory_error'] = read_memory_available_mb(proc_root)
    observations['paths'] = [measure_path(item['path'], statvfs) for item in params.get('paths') or []]
    observations['clock_skew'] = clock_skew(host_time, params.get('controller_time'))
    dns = {}
    dns_errors = {}
    for name in params.get('dns_names') or []:
        addresses, error = resolve_name(name, getaddrinfo)
        dns[name] = addresses
        if error:
            dns_errors[name] = error
    observations['dns'] = dns
    observations['dns_errors'] = dns_errors
    observations['listeners'], observations['listener_errors'] = collect_listeners(proc_root)
    if params.get('access'):
        session = read_ssh_session(proc_root=proc_root)
        observations['ssh_session'] = session
        observations['ssh_user_groups'] = user_groups(session['user']) if session and session['user'] else []
    return observations


def public_observations(observations):
    """The 'observed' return value: observations without internal keys."""
    return {
        'memory_available_mb': observations.get('memory_available_mb'),
        'paths': [dict((key, item.get(key)) for key in ('path', 'measured_path', 'free_mb', 'total_mb'))
                  for item in observations.get('paths', [])],
        'clock_skew': observations.get('clock_skew'),
        'host_time': observations.get('host_time'),
        'python_version': observations.get('python_version'),
        'dns': observations.get('dns', {}),
        'listeners': [dict((key, item.get(key)) for key in ('proto', 'port', 'address', 'pid', 'process'))
                      for item in observations.get('listeners', [])],
        'ssh_session': observations.get('ssh_session'),
    }


# --------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------

def _check(name, ok, detail, fix):
    return {'check': name, 'ok': bool(ok), 'detail': detail, 'fix': '' if ok else fix}


def _duration(seconds):
    """Human hint for large clock offsets: '', or ' (about 3 h)' and so on."""
    seconds = abs(seconds)
    if seconds < 120:
        return ''
    if seconds >= 2 * 86400:
        return ' (about %d days)' % round(seconds / 86400)
    if seconds >= 2 * 3600:
        return ' (about %d h)' % round(seconds / 3600)
    return ' (about %d min)' % round(seconds / 60)


def _owner_text(listener, as_root=False):
    if listener.get('pid') is None:
        if as_root:
            # Root sees every process of its PID namespace: the owner lives elsewhere.
            return 'unknown process (inode %s, owned outside this PID namespace)' % listener.get('inode')
        return 'unknown process (inode %s; run with become to identify it)' % listener.get('inode')
    return 'pid %s (%s)' % (listener['pid'], listener.get('process') or 'unknown name')


def _unique(items):
    result = []
    for item in items:
        if item not in result:
            result.append(item)
    return result


def evaluate_python(min_python, observations):
    version = observations.get('python_version')
    version_info = observations.get('python_version_info') or sys.version_info
    executable = observations.get('python_executable') or 'the module interpreter'
    ok = python_ok(min_python, version_info)
    detail = 'Python %s at %s, needs >= %s' % (version, executable, min_python)
    fix = ('install Python >= %s on the host and point ansible_python_interpreter at it' % min_python)
    return _check('python', ok, detail, fix)


def evaluate_memory(min_mb, observations):
    available = observations.get('memory_available_mb')
    if available is None:
        detail = observations.get('memory_error') or 'MemAvailable could not be read'
        return _check('memory_available', False, detail,
                      'check that /proc is mounted and readable on the host')
    ok = available >= min_mb
    detail = 'MemAvailable is %d MiB, needs %d MiB' % (available, min_mb)
    fix = ('free memory on the host (stop unneeded services) or add RAM, or lower preflight_min_memory_available_mb')
    return _check('memory_available', ok, detail, fix)


def evaluate_path(spec, measured):
    path = spec['path']
    name = 'disk_free:%s' % path
    if measured is None or measured.get('free_mb') is None:
        detail = (measured or {}).get('error') or 'no measurement for %s' % path
        fix = ('make %s (or its nearest existing parent) readable by the connecting user, '
               'or run preflight with become' % path)
        return _check(name, False, detail, fix)
    where = path
    if measured.get('measured_path') and measured['measured_path'] != path:
        where = '%s (measured on %s)' % (path, measured['measured_path'])
    ok = measured['free_mb'] >= spec['min_free_mb']
    detail = '%s has %d MiB free, needs %d MiB' % (where, measured['free_mb'], spec['min_free_mb'])
    fix = ('free space on the filesystem holding %s or lower its min_free_mb in preflight_disk_checks' % path)
    return _check(name, ok, detail, fix)


def evaluate_clock(max_skew, observations):
    skew = observations.get('clock_skew')
    ok = abs(skew) <= max_skew
    direction = 'ahead of' if skew >= 0 else 'behind'
    detail = 'host clock is %.3f s %s the controller%s (allowed: %.3f s)' % (
        abs(skew), direction, _duration(skew), max_skew)
    fix = ('enable time sync on the host (chrony or systemd-timesyncd, e.g. timedatectl set-ntp true) '
           'and check that the controller clock is synchronised too')
    return _check('clock_skew', ok, detail, fix)


def evaluate_dns(name, observations):
    addresses = observations.get('dns', {}).get(name) or []
    error = observations.get('dns_errors', {}).get(name)
    if addresses and not error:
        return _check('dns:%s' % name, True, '%s resolves to %s' % (name, ', '.join(addresses)), '')
    detail = '%s does not resolve: %s' % (name, error or 'no addresses')
    return _check('dns:%s' % name, False, detail, 'publish the record or fix /etc/resolv.conf on the host')


def evaluate_port(spec, observations):
    proto = spec.get('proto') or 'tcp'
    port = spec['port']
    allowed = spec.get('allowed_processes') or []
    name = 'port:%s/%s' % (proto, port)
    error = observations.get('listener_errors', {}).get(proto)
    if error:
        return _check(name, False, 'cannot tell whether %s/%s is free: %s' % (proto, port, error),
                      'check that /proc is mounted and readable on the host')
    listeners = [item for item in observations.get('listeners', [])
                 if item['proto'] == proto and item['port'] == port]
    if not listeners:
        return _check(name, True, '%s/%s is free' % (proto, port), '')
    as_root = observations.get('euid') == 0
    blocking = [item for item in listeners if item.get('process') is None or item.get('process') not in allowed]
    if not blocking:
        users = _unique('%s on %s' % (_owner_text(item, as_root), item['address']) for item in listeners)
        return _check(name, True, '%s/%s is served by allowed %s' % (proto, port, ', '.join(users)), '')
    users = _unique('on %s by %s' % (item['address'], _owner_text(item, as_root)) for item in blocking)
    detail = '%s/%s is in use %s' % (proto, port, ', '.join(users))
    names = _unique(item['process'] for item in blocking if item.get('process') is not None)
    if any(item.get('process') is None for item in blocking):
        names.append('the process listening on %s/%s (see ss -lnp)' % (proto, port))
    if len(names) == 1:
        fix = 'stop %s or move it off the port' % names[0]
    else:
        fix = 'stop %s or move them off the port' % ' and '.join(names)
    return _check(name, False, detail, fix)


def evaluate(params, observations):
    """Turn observations into checks: a list of {check, ok, detail, fix}.

    fix is an empty string for checks that pass.
    """
    checks = []
    if params.get('min_python'):
        checks.append(evaluate_python(params['min_python'], observations))
    if params.get('min_memory_available_mb'):
        checks.append(evaluate_memory(params['min_memory_available_mb'], observations))
    measured = observations.get('paths', [])
    for index, spec in enumerate(params.get('paths') or []):
        checks.append(evaluate_path(spec, measured[index] if index < len(measured) else None))
    if params.get('controller_time') is not None and observations.get('clock_skew') is not None:
        max_skew = params.get('max_clock_skew')
        checks.append(evaluate_clock(2.0 if max_skew is None else max_skew, observations))
    for name in params.get('dns_names') or []:
        checks.append(evaluate_dns(name, observations))
    for spec in params.get('ports') or []:
        checks.append(evaluate_port(spec, observations))
    if params.get('access'):
        checks.extend(evaluate_access(params['access'], observations))
    return checks


def failures(checks):
    return [check for check in checks if not check['ok']]


# --------------------------------------------------------------------------
# Argument validation beyond what argument_spec can express
# --------------------------------------------------------------------------

def validate_params(params):
    """Return a list of error messages naming the option and the bad item."""
    errors = []
    for index, spec in enumerate(params.get('paths') or []):
        path = spec.get('path')
        if not path or not os.path.isabs(path):
            errors.append('paths[%d]: path must be an absolute path, got %r' % (index, path))
        if spec.get('min_free_mb') is not None and spec['min_free_mb'] < 0:
            errors.append('paths[%d] (%s): min_free_mb must be >= 0, got %d' % (index, path, spec['min_free_mb']))
    if (params.get('min_memory_available_mb') or 0) < 0:
        errors.append('min_memory_available_mb must be >= 0, got %d' % params['min_memory_available_mb'])
    if params.get('max_clock_skew') is not None and params['max_clock_skew'] < 0:
        errors.append('max_clock_skew must be >= 0, got %s' % params['max_clock_skew'])
    for index, name in enumerate(params.get('dns_names') or []):
        if not name or not str(name).strip():
            errors.append('dns_names[%d]: must be a non-empty host name, got %r' % (index, name))
    for index, spec in enumerate(params.get('ports') or []):
        port = spec.get('port')
        if port is None or not 1 <= port <= 65535:
            errors.append('ports[%d]: port must be between 1 and 65535, got %s' % (index, port))
    access = params.get('access') or {}
    for index, net in enumerate(access.get('admin_networks') or []):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            errors.append('access.admin_networks[%d]: %r is not an IPv4 or IPv6 address or CIDR' % (index, net))
    if access.get('ssh_port') is not None and not 1 <= access['ssh_port'] <= 65535:
        errors.append('access.ssh_port must be between 1 and 65535, got %s' % access['ssh_port'])
    min_python = params.get('min_python')
    if min_python is not None:
        try:
            parse_version(min_python)
        except ValueError:
            errors.append('min_python must be a version like 3.9, got %r' % (min_python,))
    return errors
