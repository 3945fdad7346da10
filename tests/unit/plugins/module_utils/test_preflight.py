# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import collections
import os
import socket
import sys

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _preflight as pf

little_endian = pytest.mark.skipif(sys.byteorder != 'little', reason='sample /proc/net lines come from a little-endian host')

MEMINFO = """\
MemTotal:        8029236 kB
MemFree:          312044 kB
MemAvailable:    3093504 kB
Buffers:          204800 kB
Cached:          2621440 kB
SwapCached:            0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18221 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 21845 1 0000000000000000 100 0 0 10 0
   2: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:000A7B6A 00000000     0        0 23456 4 0000000000000000 20 4 29 10 -1
   3: 0F02000A:01BB 0202000A:C351 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
"""

TCP6 = '\n'.join([
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt '
    '  uid  timeout inode',
    '   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 '
    '    0        0 18223 1 0000000000000000 100 0 0 10 0',
    '   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 '
    '    0        0 18300 1 0000000000000000 100 0 0 10 0',
    '   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 '
    '   33        0 19001 1 0000000000000000 100 0 0 10 0',
    '   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 '
    '    0        0 19002 1 0000000000000000 100 0 0 10 0',
    '   4: 0000000000000000FFFF00000F02000A:0016 0000000000000000FFFF00000202000A:D431 01 00000000:00000000 02:00098D4B 00000000 '
    '    0        0 19003 2 0000000000000000 20 4 30 10 -1',
]) + '\n'

UDP = '\n'.join([
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  221: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 17001 2 0000000000000000 0',
    '  400: 0F02000A:E1D2 08080808:0035 01 00000000:00000000 00:00000000 00000000     0        0 17002 2 0000000000000000 0',
]) + '\n'

UDP6 = '\n'.join([
    '   sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt '
    '  uid  timeout inode ref pointer drops',
    '  1200: 00000000000000000000000000000000:CA6C 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 '
    '    0        0 17100 2 0000000000000000 0',
]) + '\n'

StatVfs = collections.namedtuple('StatVfs', 'f_bsize f_frsize f_blocks f_bfree f_bavail')


# ---------------------------------------------------------------- meminfo

def test_parse_meminfo_uses_memavailable():
    assert pf.parse_meminfo(MEMINFO) == 3093504 // 1024 == 3021


def test_parse_meminfo_falls_back_without_memavailable():
    text = '\n'.join(line for line in MEMINFO.splitlines() if not line.startswith('MemAvailable'))
    assert pf.parse_meminfo(text) == (312044 + 204800 + 2621440) // 1024


def test_parse_meminfo_garbage():
    assert pf.parse_meminfo('') is None
    assert pf.parse_meminfo('nonsense\nHugePages_Total: 0\n') is None


def test_read_memory_available_fake_proc(tmp_path):
    (tmp_path / 'meminfo').write_text(MEMINFO)
    assert pf.read_memory_available_mb(str(tmp_path)) == (3021, None)


def test_read_memory_available_missing_file(tmp_path):
    value, error = pf.read_memory_available_mb(str(tmp_path))
    assert value is None
    assert error.startswith('could not read %s/meminfo: ' % tmp_path)


def test_read_memory_available_real():
    value, error = pf.read_memory_available_mb()
    assert error is None
    assert value > 0


# ---------------------------------------------------------------- statvfs

def test_measure_existing_path(tmp_path):
    result = pf.measure_path(str(tmp_path))
    stat = os.statvfs(str(tmp_path))
    assert result['path'] == str(tmp_path)
    assert result['measured_path'] == str(tmp_path)
    assert result['free_mb'] == stat.f_bavail * stat.f_frsize // (1024 * 1024)
    assert result['total_mb'] == stat.f_blocks * stat.f_frsize // (1024 * 1024)
    assert result['total_mb'] >= result['free_mb'] >= 0
    assert 'error' not in result


def test_measure_missing_child_uses_ancestor(tmp_path):
    missing = tmp_path / 'not' / 'yet' / 'there'
    result = pf.measure_path(str(missing))
    assert result['path'] == str(missing)
    assert result['measured_path'] == str(tmp_path)
    assert result['free_mb'] is not None


def test_measure_with_fake_statvfs(tmp_path):
    seen = []

    def fake_statvfs(path):
        seen.append(path)
        return StatVfs(4096, 4096, 1024 * 256, 900, 812 * 256)

    result = pf.measure_path(str(tmp_path / 'docker'), statvfs=fake_statvfs)
    assert seen == [str(tmp_path)]
    assert result == {'path': str(tmp_path / 'docker'), 'measured_path': str(tmp_path), 'free_mb': 812, 'total_mb': 1024}


def test_measure_statvfs_error(tmp_path):
    def broken(path):
        raise OSError(13, 'Permission denied')

    result = pf.measure_path(str(tmp_path), statvfs=broken)
    assert result['free_mb'] is None and result['total_mb'] is None
    assert result['error'] == 'could not measure %s: [Errno 13] Permission denied' % tmp_path


def test_nearest_existing_path_root():
    assert pf.nearest_existing_path('/') == '/'
    assert pf.nearest_existing_path('/no-such-dir-preflight/x/y') == '/'


# ---------------------------------------------------------------- /proc/net

@little_endian
def test_parse_tcp():
    listeners = pf.parse_proc_net(TCP, 'tcp', ipv6=False)
    assert listeners == [
        {'proto': 'tcp', 'port': 22, 'address': '0.0.0.0', 'inode': 18221},
        {'proto': 'tcp', 'port': 3306, 'address': '127.0.0.1', 'inode': 21845},
    ]


@little_endian
def test_parse_tcp6_including_mapped_and_global():
    listeners = pf.parse_proc_net(TCP6, 'tcp', ipv6=True)
    assert listeners == [
        {'proto': 'tcp', 'port': 22, 'address': '::', 'inode': 18223},
        {'proto': 'tcp', 'port': 631, 'address': '::1', 'inode': 18300},
        {'proto': 'tcp', 'port': 8080, 'address': '::ffff:127.0.0.1', 'inode': 19001},
        {'proto': 'tcp', 'port': 443, 'address': '2001:db8::1', 'inode': 19002},
    ]


@little_endian
def test_parse_udp_only_unconnected():
    assert pf.parse_proc_net(UDP, 'udp', ipv6=False) == [
        {'proto': 'udp', 'port': 53, 'address': '127.0.0.53', 'inode': 17001},
    ]
    assert pf.parse_proc_net(UDP6, 'udp', ipv6=True) == [
        {'proto': 'udp', 'port': 51820, 'address': '::', 'inode': 17100},
    ]


def test_parse_proc_net_skips_malformed_lines():
    text = TCP.splitlines()[0] + '\n   9: ZZZZ:0016 00000000:0000 0A 0 0 0 0 0 1\n   10: short\n'
    assert pf.parse_proc_net(text, 'tcp', ipv6=False) == []


def _fake_proc(tmp_path, tables=None, processes=()):
    """Build <tmp>/proc with net tables and processes [(pid, comm, [fd targets])]."""
    proc = tmp_path / 'proc'
    (proc / 'net').mkdir(parents=True)
    for name, text in (tables or {}).items():
        (proc / 'net' / name).write_text(text)
    for pid, comm, targets in processes:
        fd_dir = proc / str(pid) / 'fd'
        fd_dir.mkdir(parents=True)
        if comm is not None:
            (proc / str(pid) / 'comm').write_text(comm + '\n')
        for number, target in enumerate(targets):
            os.symlink(target, str(fd_dir / str(number)))
    (proc / 'self').mkdir()  # not a pid: must be ignored
    return str(proc)


def test_map_socket_inodes_fake_proc(tmp_path):
    proc = _fake_proc(tmp_path, processes=[
        (1, 'systemd', ['/dev/null', 'socket:[999]']),
        (512, 'sshd', ['/dev/null', 'socket:[18221]', 'socket:[18223]', 'pipe:[4242]']),
        (812, 'nginx', ['anon_inode:[eventpoll]', 'socket:[19002]']),
        (813, 'nginx', ['socket:[19002]']),  # worker sharing the master's socket
        (900, None, ['socket:[19001]']),  # comm unreadable
    ])
    owners = pf.map_socket_inodes([18221, 18223, 19002, 19001, 4242, 77], proc)
    assert owners == {
        18221: {'pid': 512, 'process': 'sshd'},
        18223: {'pid': 512, 'process': 'sshd'},
        19002: {'pid': 812, 'process': 'nginx'},
        19001: {'pid': 900, 'process': None},
    }


def test_map_socket_inodes_nothing_wanted_or_no_proc(tmp_path):
    assert pf.map_socket_inodes([], str(tmp_path)) == {}
    assert pf.map_socket_inodes([1], str(tmp_path / 'missing')) == {}


@little_endian
def test_collect_listeners_fake_proc(tmp_path):
    proc = _fake_proc(tmp_path, tables={'tcp': TCP, 'tcp6': TCP6, 'udp': UDP}, processes=[
        (512, 'sshd', ['socket:[18221]', 'socket:[18223]']),
    ])
    listeners, errors = pf.collect_listeners(proc)
    # udp6 is missing (IPv6 disabled) and that is not an error.
    assert errors == {}
    ssh = [item for item in listeners if item['port'] == 22]
    assert ssh == [
        {'proto': 'tcp', 'port': 22, 'address': '0.0.0.0', 'inode': 18221, 'pid': 512, 'process': 'sshd'},
        {'proto': 'tcp', 'port': 22, 'address': '::', 'inode': 18223, 'pid': 512, 'process': 'sshd'},
    ]
    mysql = [item for item in listeners if item['port'] == 3306]
    assert mysql[0]['pid'] is None and mysql[0]['process'] is None
    assert [item['port'] for item in listeners if item['proto'] == 'udp'] == [53]


def test_collect_listeners_unreadable_tables(tmp_path):
    proc = _fake_proc(tmp_path, tables={'udp': UDP})
    listeners, errors = pf.collect_listeners(proc)
    assert set(errors) == {'tcp'}
    assert errors['tcp'].startswith('could not read %s/net/tcp: ' % proc)
    assert [item['proto'] for item in listeners] == ['udp']


# ---------------------------------------------------------------- real sockets

def _own_comm():
    with open('/proc/self/comm') as handle:
        return handle.read().strip()


@pytest.mark.skipif(not os.path.exists('/proc/net/tcp'), reason='needs Linux /proc')
def test_real_listener_found_with_this_process():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind(('127.0.0.1', 0))
        server.listen(1)
        port = server.getsockname()[1]
        listeners, errors = pf.collect_listeners('/proc')
        assert errors == {}
        mine = [item for item in listeners if item['proto'] == 'tcp' and item['port'] == port]
        assert len(mine) == 1
        assert mine[0]['address'] == '127.0.0.1'
        assert mine[0]['pid'] == os.getpid()
        assert mine[0]['process'] == _own_comm()

        params = {'ports': [{'port': port, 'proto': 'tcp', 'allowed_processes': []}]}
        observations = {'listeners': listeners, 'listener_errors': {}}
        [check] = pf.evaluate(params, observations)
        assert check == {
            'check': 'port:tcp/%d' % port,
            'ok': False,
            'detail': 'tcp/%d is in use on 127.0.0.1 by pid %d (%s)' % (port, os.getpid(), _own_comm()),
            'fix': 'stop %s or move it off the port' % _own_comm(),
        }
        allowed = {'ports': [{'port': port, 'proto': 'tcp', 'allowed_processes': [_own_comm()]}]}
        assert pf.evaluate(allowed, observations)[0]['ok'] is True
    finally:
        server.close()


@pytest.mark.skipif(not os.path.exists('/proc/net/tcp'), reason='needs Linux /proc')
def test_real_closed_port_is_free():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    listeners, errors = pf.collect_listeners('/proc')
    assert errors == {}
    assert not [item for item in listeners if item['proto'] == 'tcp' and item['port'] == port]
    params = {'ports': [{'port': port, 'proto': 'tcp', 'allowed_processes': []}]}
    [check] = pf.evaluate(params, {'listeners': listeners, 'listener_errors': {}})
    assert check == {'check': 'port:tcp/%d' % port, 'ok': True, 'detail': 'tcp/%d is free' % port, 'fix': ''}


# ---------------------------------------------------------------- DNS, clock, python

def test_resolve_name_success_dedupes():
    def fake(name, port, family, socktype):
        assert (name, port, socktype) == ('app2', None, socket.SOCK_STREAM)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, '', ('172.18.0.3', 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, '', ('172.18.0.3', 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, '', ('fd00::3', 0, 0, 0)),
        ]
    assert pf.resolve_name('app2', getaddrinfo=fake) == (['172.18.0.3', 'fd00::3'], None)


def test_resolve_name_error():
    def fake(*args):
        raise socket.gaierror(-2, 'Name or service not known')
    assert pf.resolve_name('nope.invalid', getaddrinfo=fake) == ([], '[Errno -2] Name or service not known')


def test_resolve_localhost_real():
    addresses, error = pf.resolve_name('localhost')
    assert error is None
    assert addresses


def test_clock_skew():
    assert pf.clock_skew(1000.5, None) is None
    assert pf.clock_skew(1000.5, 1000.0) == 0.5
    assert pf.clock_skew(1000.0, 1003.0) == -3.0


@pytest.mark.parametrize('text, expected', [('3.9', (3, 9)), ('3', (3,)), ('3.11.2', (3, 11, 2)), (' 3.10 ', (3, 10))])
def test_parse_version(text, expected):
    assert pf.parse_version(text) == expected


@pytest.mark.parametrize('text', ['', 'abc', '3.x', '3.9.1.2', 'v3.9', '3..9'])
def test_parse_version_bad(text):
    with pytest.raises(ValueError):
        pf.parse_version(text)


def test_python_ok():
    assert pf.python_ok('3.9', (3, 11, 2))
    assert pf.python_ok('3.11', (3, 11, 0))
    assert not pf.python_ok('3.12', (3, 11, 9))
    assert pf.python_ok('3.11.2', (3, 11, 2))
    assert not pf.python_ok('3.11.3', (3, 11, 2))
    assert pf.python_ok('3.0')  # the running interpreter
    assert pf.python_version((3, 11, 2, 'final', 0)) == '3.11.2'


# ---------------------------------------------------------------- evaluate

def _observations(**overrides):
    observations = {
        'host_time': 1785312000.0,
        'python_version': '3.11.2',
        'python_version_info': (3, 11, 2),
        'python_executable': '/usr/bin/python3',
        'memory_available_mb': 3021,
        'memory_error': None,
        'paths': [{'path': '/var/lib/docker', 'measured_path': '/var', 'free_mb': 812, 'total_mb': 20030}],
        'clock_skew': 0.4,
        'dns': {'app2': ['172.18.0.3'], 'nope.invalid': []},
        'dns_errors': {'nope.invalid': '[Errno -2] Name or service not known'},
        'listeners': [
            {'proto': 'tcp', 'port': 22, 'address': '0.0.0.0', 'inode': 1, 'pid': 512, 'process': 'sshd'},
            {'proto': 'tcp', 'port': 22, 'address': '::', 'inode': 2, 'pid': 512, 'process': 'sshd'},
            {'proto': 'tcp', 'port': 443, 'address': '0.0.0.0', 'inode': 3, 'pid': 812, 'process': 'nginx'},
            {'proto': 'tcp', 'port': 443, 'address': '::', 'inode': 4, 'pid': 812, 'process': 'nginx'},
            {'proto': 'tcp', 'port': 8080, 'address': '127.0.0.1', 'inode': 5, 'pid': None, 'process': None},
            {'proto': 'udp', 'port': 53, 'address': '127.0.0.53', 'inode': 6, 'pid': 300, 'process': 'systemd-resolve'},
        ],
        'listener_errors': {},
        'euid': 1000,
    }
    observations.update(overrides)
    return observations


def _params(**overrides):
    params = {
        'paths': [], 'min_memory_available_mb': 0, 'controller_time': None, 'max_clock_skew': 2.0,
        'dns_names': [], 'ports': [], 'min_python': '3.9',
    }
    params.update(overrides)
    return params


def _port(port, proto='tcp', allowed=None):
    return {'port': port, 'proto': proto, 'allowed_processes': allowed or []}


def _by_name(checks):
    return dict((check['check'], check) for check in checks)


def test_evaluate_all_passing():
    params = _params(
        paths=[{'path': '/var/lib/docker', 'min_free_mb': 512}],
        min_memory_available_mb=1024,
        controller_time=1785311999.6,
        dns_names=['app2'],
        ports=[_port(80), _port(443, allowed=['nginx']), _port(53)],
    )
    checks = pf.evaluate(params, _observations())
    assert [check['check'] for check in checks] == [
        'python', 'memory_available', 'disk_free:/var/lib/docker', 'clock_skew', 'dns:app2',
        'port:tcp/80', 'port:tcp/443', 'port:tcp/53',
    ]
    assert all(check['ok'] for check in checks)
    assert all(check['fix'] == '' for check in checks)
    assert pf.failures(checks) == []
    by_name = _by_name(checks)
    assert by_name['python']['detail'] == 'Python 3.11.2 at /usr/bin/python3, needs >= 3.9'
    assert by_name['memory_available']['detail'] == 'MemAvailable is 3021 MiB, needs 1024 MiB'
    assert by_name['disk_free:/var/lib/docker']['detail'] == '/var/lib/docker (measured on /var) has 812 MiB free, needs 512 MiB'
    assert by_name['clock_skew']['detail'] == 'host clock is 0.400 s ahead of the controller (allowed: 2.000 s)'
    assert by_name['dns:app2']['detail'] == 'app2 resolves to 172.18.0.3'
    assert by_name['port:tcp/80']['detail'] == 'tcp/80 is free'
    assert by_name['port:tcp/443']['detail'] == (
        'tcp/443 is served by allowed pid 812 (nginx) on 0.0.0.0, pid 812 (nginx) on ::')
    # udp/53 is taken, tcp/53 is not
    assert by_name['port:tcp/53']['ok'] is True


def test_evaluate_optional_checks_skipped():
    checks = pf.evaluate(_params(), _observations())
    assert [check['check'] for check in checks] == ['python']


def test_evaluate_disk_failure_text():
    params = _params(paths=[{'path': '/var/lib/docker', 'min_free_mb': 5120}])
    [python, disk] = pf.evaluate(params, _observations())
    assert python['ok']
    assert disk == {
        'check': 'disk_free:/var/lib/docker',
        'ok': False,
        'detail': '/var/lib/docker (measured on /var) has 812 MiB free, needs 5120 MiB',
        'fix': 'free space on the filesystem holding /var/lib/docker or lower its min_free_mb in preflight_disk_checks',
    }


def test_evaluate_disk_existing_path_and_error():
    params = _params(paths=[{'path': '/srv', 'min_free_mb': 10}, {'path': '/secret/x', 'min_free_mb': 10}])
    observations = _observations(paths=[
        {'path': '/srv', 'measured_path': '/srv', 'free_mb': 9, 'total_mb': 100},
        {'path': '/secret/x', 'measured_path': '/secret', 'free_mb': None, 'total_mb': None,
         'error': 'could not measure /secret: [Errno 13] Permission denied'},
    ])
    checks = _by_name(pf.evaluate(params, observations))
    assert checks['disk_free:/srv']['detail'] == '/srv has 9 MiB free, needs 10 MiB'
    assert checks['disk_free:/secret/x']['ok'] is False
    assert checks['disk_free:/secret/x']['detail'] == 'could not measure /secret: [Errno 13] Permission denied'
    assert 'become' in checks['disk_free:/secret/x']['fix']


def test_evaluate_memory_failure_and_unreadable():
    [_python, memory] = pf.evaluate(_params(min_memory_available_mb=4096), _observations())
    assert memory == {
        'check': 'memory_available',
        'ok': False,
        'detail': 'MemAvailable is 3021 MiB, needs 4096 MiB',
        'fix': 'free memory on the host (stop unneeded services) or add RAM, or lower preflight_min_memory_available_mb',
    }
    unreadable = _observations(memory_available_mb=None, memory_error='could not read /proc/meminfo: boom')
    [_python, memory] = pf.evaluate(_params(min_memory_available_mb=1), unreadable)
    assert memory['ok'] is False
    assert memory['detail'] == 'could not read /proc/meminfo: boom'


@pytest.mark.parametrize('skew, detail', [
    (-3.25, 'host clock is 3.250 s behind the controller (allowed: 2.000 s)'),
    (7200.0, 'host clock is 7200.000 s ahead of the controller (about 2 h) (allowed: 2.000 s)'),
    (1785312000.0, 'host clock is 1785312000.000 s ahead of the controller (about 20663 days) (allowed: 2.000 s)'),
])
def test_evaluate_clock_failure(skew, detail):
    [_python, clock] = pf.evaluate(_params(controller_time=0.0), _observations(clock_skew=skew))
    assert clock['check'] == 'clock_skew'
    assert clock['ok'] is False
    assert clock['detail'] == detail
    assert clock['fix'] == ('enable time sync on the host (chrony or systemd-timesyncd, e.g. timedatectl set-ntp true) '
                            'and check that the controller clock is synchronised too')


def test_evaluate_clock_boundary_passes():
    [_python, clock] = pf.evaluate(_params(controller_time=1.0, max_clock_skew=2.0), _observations(clock_skew=-2.0))
    assert clock['ok'] is True


def test_evaluate_dns_failure():
    [_python, dns] = pf.evaluate(_params(dns_names=['nope.invalid']), _observations())
    assert dns == {
        'check': 'dns:nope.invalid',
        'ok': False,
        'detail': 'nope.invalid does not resolve: [Errno -2] Name or service not known',
        'fix': 'publish the record or fix /etc/resolv.conf on the host',
    }


def test_evaluate_python_failure():
    [python] = pf.evaluate(_params(min_python='3.12'), _observations())
    assert python == {
        'check': 'python',
        'ok': False,
        'detail': 'Python 3.11.2 at /usr/bin/python3, needs >= 3.12',
        'fix': 'install Python >= 3.12 on the host and point ansible_python_interpreter at it',
    }


def test_evaluate_port_taken_on_both_families():
    [_python, ssh] = pf.evaluate(_params(ports=[_port(22)]), _observations())
    assert ssh == {
        'check': 'port:tcp/22',
        'ok': False,
        'detail': 'tcp/22 is in use on 0.0.0.0 by pid 512 (sshd), on :: by pid 512 (sshd)',
        'fix': 'stop sshd or move it off the port',
    }


def test_evaluate_port_ipv6_only_listener_blocks():
    observations = _observations(listeners=[
        {'proto': 'tcp', 'port': 9000, 'address': '::1', 'inode': 9, 'pid': 77, 'process': 'php-fpm'},
    ])
    [_python, check] = pf.evaluate(_params(ports=[_port(9000)]), observations)
    assert check['ok'] is False
    assert check['detail'] == 'tcp/9000 is in use on ::1 by pid 77 (php-fpm)'


def test_evaluate_port_allowed_processes():
    checks = pf.evaluate(_params(ports=[_port(443, allowed=['nginx']), _port(22, allowed=['nginx'])]), _observations())
    by_name = _by_name(checks)
    assert by_name['port:tcp/443']['ok'] is True
    assert by_name['port:tcp/443']['fix'] == ''
    assert by_name['port:tcp/22']['ok'] is False


def test_evaluate_port_allowed_plus_intruder():
    observations = _observations(listeners=[
        {'proto': 'tcp', 'port': 443, 'address': '0.0.0.0', 'inode': 3, 'pid': 812, 'process': 'nginx'},
        {'proto': 'tcp', 'port': 443, 'address': '::', 'inode': 4, 'pid': 900, 'process': 'apache2'},
    ])
    [_python, check] = pf.evaluate(_params(ports=[_port(443, allowed=['nginx'])]), observations)
    assert check['ok'] is False
    assert check['detail'] == 'tcp/443 is in use on :: by pid 900 (apache2)'
    assert check['fix'] == 'stop apache2 or move it off the port'


def test_evaluate_port_unknown_process():
    [_python, check] = pf.evaluate(_params(ports=[_port(8080, allowed=['java'])]), _observations())
    assert check == {
        'check': 'port:tcp/8080',
        'ok': False,
        'detail': 'tcp/8080 is in use on 127.0.0.1 by unknown process (inode 5; run with become to identify it)',
        'fix': 'stop the process listening on tcp/8080 (see ss -lnp) or move it off the port',
    }
    [_python, check] = pf.evaluate(_params(ports=[_port(8080)]), _observations(euid=0))
    assert check['detail'] == 'tcp/8080 is in use on 127.0.0.1 by unknown process (inode 5, owned outside this PID namespace)'


def test_evaluate_port_udp_and_several_owners():
    observations = _observations(listeners=[
        {'proto': 'udp', 'port': 53, 'address': '127.0.0.53', 'inode': 6, 'pid': 300, 'process': 'systemd-resolve'},
        {'proto': 'udp', 'port': 53, 'address': '0.0.0.0', 'inode': 7, 'pid': 301, 'process': 'dnsmasq'},
    ])
    [_python, check] = pf.evaluate(_params(ports=[_port(53, proto='udp')]), observations)
    assert check['check'] == 'port:udp/53'
    assert check['detail'] == 'udp/53 is in use on 127.0.0.53 by pid 300 (systemd-resolve), on 0.0.0.0 by pid 301 (dnsmasq)'
    assert check['fix'] == 'stop systemd-resolve and dnsmasq or move them off the port'


def test_evaluate_port_tables_unreadable():
    observations = _observations(listener_errors={'tcp': 'could not read /proc/net/tcp: denied'})
    [_python, check] = pf.evaluate(_params(ports=[_port(80)]), observations)
    assert check['ok'] is False
    assert check['detail'] == 'cannot tell whether tcp/80 is free: could not read /proc/net/tcp: denied'


# ---------------------------------------------------------------- gather / validate

def test_gather_and_public_observations(tmp_path):
    proc = _fake_proc(tmp_path, tables={'tcp': '', 'tcp6': '', 'udp': '', 'udp6': ''})
    with open(os.path.join(proc, 'meminfo'), 'w') as handle:
        handle.write(MEMINFO)

    def fake_dns(name, *args):
        if name == 'app2':
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, '', ('172.18.0.3', 0))]
        raise socket.gaierror(-2, 'Name or service not known')

    params = _params(paths=[{'path': str(tmp_path / 'new'), 'min_free_mb': 0}], controller_time=99.0,
                     dns_names=['app2', 'nope.invalid'])
    observations = pf.gather(params, 100.0, proc_root=proc, getaddrinfo=fake_dns)
    public = pf.public_observations(observations)
    assert sorted(public) == ['clock_skew', 'dns', 'host_time', 'listeners', 'memory_available_mb', 'paths', 'python_version',
                              'ssh_session']
    assert public['ssh_session'] is None  # access not asked for
    assert public['memory_available_mb'] == 3021
    assert public['clock_skew'] == 1.0
    assert public['host_time'] == 100.0
    assert public['dns'] == {'app2': ['172.18.0.3'], 'nope.invalid': []}
    assert public['listeners'] == []
    assert public['paths'][0]['measured_path'] == str(tmp_path)
    assert sorted(public['paths'][0]) == ['free_mb', 'measured_path', 'path', 'total_mb']
    assert public['python_version'] == '%d.%d.%d' % sys.version_info[:3]
    checks = _by_name(pf.evaluate(params, observations))
    assert checks['dns:nope.invalid']['ok'] is False
    assert checks['dns:app2']['ok'] is True


def test_validate_params():
    assert pf.validate_params(_params(paths=[{'path': '/var', 'min_free_mb': 0}], ports=[_port(1), _port(65535)])) == []
    errors = pf.validate_params(_params(
        paths=[{'path': '/var', 'min_free_mb': 1}, {'path': '/srv', 'min_free_mb': -5}, {'path': 'rel/dir', 'min_free_mb': 1}],
        ports=[_port(443), _port(0), _port(70000)],
        min_python='three',
        min_memory_available_mb=-1,
        max_clock_skew=-0.5,
        dns_names=['ok', ''],
    ))
    assert errors == [
        'paths[1] (/srv): min_free_mb must be >= 0, got -5',
        "paths[2]: path must be an absolute path, got 'rel/dir'",
        'min_memory_available_mb must be >= 0, got -1',
        'max_clock_skew must be >= 0, got -0.5',
        "dns_names[1]: must be a non-empty host name, got ''",
        'ports[1]: port must be between 1 and 65535, got 0',
        'ports[2]: port must be between 1 and 65535, got 70000',
        "min_python must be a version like 3.9, got 'three'",
    ]


# ---------------------------------------------------------------- access (lock-out)

Pw = collections.namedtuple('Pw', 'pw_name pw_gid')


def fake_proc(tmp_path, chain):
    """chain: [(pid, ppid, uid, environ dict)], the first is the module's own process."""
    for pid, ppid, uid, env in chain:
        d = tmp_path / str(pid)
        d.mkdir()
        (d / 'status').write_text('Name:\tx\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\n' % (ppid, uid, uid, uid, uid))
        (d / 'environ').write_bytes(b'\0'.join(('%s=%s' % kv).encode() for kv in env.items()) + b'\0')
    return str(tmp_path)


def test_ssh_session_found_above_sudo(tmp_path):
    # python (root, no SSH vars: sudo dropped them) <- sudo <- the login shell of deploy.
    proc = fake_proc(tmp_path, [(300, 200, 0, {'PATH': '/usr/bin'}), (200, 100, 0, {'SUDO_USER': 'deploy'}),
                                (100, 50, 1000, {'SSH_CONNECTION': '203.0.113.7 50122 10.0.0.5 22', 'USER': 'deploy'}),
                                (50, 1, 0, {})])
    session = pf.read_ssh_session(300, proc, getpwuid=lambda uid: Pw('deploy' if uid == 1000 else 'root', 1000))
    assert session == {'client': '203.0.113.7', 'client_port': 50122, 'server': '10.0.0.5', 'server_port': 22,
                       'user': 'deploy'}


def test_no_ssh_session_over_docker_exec(tmp_path):
    proc = fake_proc(tmp_path, [(300, 200, 0, {'PATH': '/usr/bin'}), (200, 1, 0, {'HOME': '/root'})])
    assert pf.read_ssh_session(300, proc) is None
    checks = pf.evaluate_access({'admin_networks': ['192.0.2.0/24']}, {'ssh_session': None})
    assert [(c['check'], c['ok']) for c in checks] == [('access', True)]


SESSION = {'client': '203.0.113.7', 'client_port': 50122, 'server': '10.0.0.5', 'server_port': 22, 'user': 'deploy'}


def by_name(checks):
    return {c['check']: c for c in checks}


def test_controller_outside_admin_networks_is_refused():
    checks = by_name(pf.evaluate_access({'admin_networks': ['198.51.100.0/24', '2001:db8::/32']},
                                        {'ssh_session': SESSION}))
    check = checks['access:admin_networks']
    assert not check['ok']
    assert '203.0.113.7, outside firewall_admin_networks' in check['detail']
    assert 'add 203.0.113.7' in check['fix']
    ok = by_name(pf.evaluate_access({'admin_networks': ['203.0.113.0/24']}, {'ssh_session': SESSION}))
    assert ok['access:admin_networks']['ok']


def test_ipv4_mapped_client_matches_an_ipv4_network():
    session = dict(SESSION, client='::ffff:203.0.113.7')
    checks = by_name(pf.evaluate_access({'admin_networks': ['203.0.113.7']}, {'ssh_session': session}))
    assert checks['access:admin_networks']['ok']


def test_ssh_port_other_than_the_one_in_use_is_refused():
    checks = by_name(pf.evaluate_access({'ssh_port': 2222}, {'ssh_session': SESSION}))
    assert not checks['access:ssh_port']['ok']
    assert 'uses SSH port 22, the firewall opens firewall_ssh_port 2222' in checks['access:ssh_port']['detail']
    assert pf.evaluate_access({'ssh_port': 22}, {'ssh_session': SESSION})[0]['ok']


def test_login_user_outside_allow_groups_is_refused_unless_the_run_adds_it():
    spec = {'allow_groups': ['sshusers']}
    checks = by_name(pf.evaluate_access(spec, {'ssh_session': SESSION, 'ssh_user_groups': ['deploy', 'sudo']}))
    assert not checks['access:allow_groups']['ok']
    assert 'logs in as deploy, in groups deploy, sudo' in checks['access:allow_groups']['detail']
    spec['declared_groups'] = {'deploy': ['sshusers']}
    checks = by_name(pf.evaluate_access(spec, {'ssh_session': SESSION, 'ssh_user_groups': ['deploy']}))
    assert checks['access:allow_groups']['ok']


def test_root_login_refused_when_sshd_will_forbid_it():
    session = dict(SESSION, user='root')
    checks = by_name(pf.evaluate_access({'permit_root_login': 'no'}, {'ssh_session': session}))
    assert not checks['access:root_login']['ok']
    checks = by_name(pf.evaluate_access({'permit_root_login': 'prohibit-password'}, {'ssh_session': session}))
    assert checks['access:root_login']['ok']
    assert 'access:root_login' not in by_name(pf.evaluate_access({'permit_root_login': 'no'}, {'ssh_session': SESSION}))


def _no_such_user(name):
    raise KeyError(name)


def test_user_groups_reads_primary_and_supplementary():
    Gr = collections.namedtuple('Gr', 'gr_name gr_mem')
    groups = pf.user_groups('deploy', getpwnam=lambda name: Pw(name, 1000),
                            getgrgid=lambda gid: Gr('deploy', []),
                            getgrall=lambda: [Gr('sshusers', ['deploy']), Gr('adm', ['other']), Gr('sudo', ['deploy'])])
    assert groups == ['deploy', 'sshusers', 'sudo']
    assert pf.user_groups('nobody-here', getpwnam=_no_such_user) == []


def test_access_arguments_are_validated():
    errors = pf.validate_params({'access': {'admin_networks': ['10.0.0.0/8', '10.0.0.300/8'], 'ssh_port': 70000}})
    assert "access.admin_networks[1]: '10.0.0.300/8'" in errors[0]
    assert 'access.ssh_port must be between 1 and 65535' in errors[1]
