# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import socket
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.modules import preflight_facts


def run_module(capsys, args):
    """Run main() with args; return (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            preflight_facts.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out)


def free_tcp_port():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_passing_run(capsys, tmp_path):
    port = free_tcp_port()
    code, result = run_module(capsys, {
        'paths': [{'path': str(tmp_path), 'min_free_mb': 0}, {'path': str(tmp_path / 'later' / 'dir'), 'min_free_mb': 1}],
        'min_memory_available_mb': 1,
        'controller_time': time.time(),
        'max_clock_skew': 60,
        'dns_names': ['localhost'],
        'ports': [{'port': port}],
        'min_python': '3.8',
    })
    assert code == 0
    assert result['changed'] is False
    assert not result.get('failed')
    assert result['failures'] == []
    assert [check['check'] for check in result['checks']] == [
        'python', 'memory_available', 'disk_free:%s' % tmp_path, 'disk_free:%s/later/dir' % tmp_path,
        'clock_skew', 'dns:localhost', 'port:tcp/%d' % port,
    ]
    assert all(check['ok'] for check in result['checks'])
    observed = result['observed']
    assert sorted(observed) == ['clock_skew', 'dns', 'host_time', 'listeners', 'memory_available_mb', 'paths', 'python_version',
                                'ssh_session']
    assert observed['paths'][1]['measured_path'] == str(tmp_path)
    assert abs(observed['clock_skew']) < 60
    assert observed['dns']['localhost']
    assert observed['memory_available_mb'] > 0
    for listener in observed['listeners']:
        assert sorted(listener) == ['address', 'pid', 'port', 'process', 'proto']


def test_defaults_only_python_check(capsys):
    code, result = run_module(capsys, {})
    assert code == 0
    assert [check['check'] for check in result['checks']] == ['python']
    assert result['observed']['clock_skew'] is None
    assert result['observed']['paths'] == []


def test_failing_run_is_data_not_failure(capsys, tmp_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind(('127.0.0.1', 0))
        server.listen(1)
        port = server.getsockname()[1]
        code, result = run_module(capsys, {
            'paths': [{'path': str(tmp_path / 'docker'), 'min_free_mb': 1024 * 1024 * 1024}],
            'min_memory_available_mb': 1024 * 1024 * 1024,
            'controller_time': 0,
            'dns_names': ['does-not-exist.invalid'],
            'ports': [{'port': port, 'proto': 'tcp'}],
            'min_python': '99.0',
            '_ansible_check_mode': True,
        })
    finally:
        server.close()
    assert code == 0
    assert result['changed'] is False
    assert not result.get('failed')
    failed = dict((check['check'], check) for check in result['failures'])
    assert sorted(failed) == sorted([
        'python', 'memory_available', 'disk_free:%s/docker' % tmp_path, 'clock_skew',
        'dns:does-not-exist.invalid', 'port:tcp/%d' % port,
    ])
    assert failed == dict((check['check'], check) for check in result['checks'] if not check['ok'])
    disk = failed['disk_free:%s/docker' % tmp_path]
    assert disk['detail'].startswith('%s/docker (measured on %s) has ' % (tmp_path, tmp_path))
    assert disk['detail'].endswith(' MiB free, needs 1073741824 MiB')
    assert disk['fix'] == ('free space on the filesystem holding %s/docker or lower its min_free_mb '
                           'in preflight_disk_checks' % tmp_path)
    assert 'ahead of the controller' in failed['clock_skew']['detail']
    assert 'chrony or systemd-timesyncd' in failed['clock_skew']['fix']
    assert failed['dns:does-not-exist.invalid']['detail'].startswith('does-not-exist.invalid does not resolve: ')
    assert failed['port:tcp/%d' % port]['detail'].startswith('tcp/%d is in use on 127.0.0.1 by pid ' % port)
    for check in result['failures']:
        assert sorted(check) == ['check', 'detail', 'fix', 'ok']
        assert check['fix']


@pytest.mark.parametrize('args, message', [
    ({'paths': [{'path': '/var', 'min_free_mb': -1}]}, 'paths[0] (/var): min_free_mb must be >= 0, got -1'),
    ({'paths': [{'path': 'var', 'min_free_mb': 1}]}, "paths[0]: path must be an absolute path, got 'var'"),
    ({'ports': [{'port': 22}, {'port': 70000}]}, 'ports[1]: port must be between 1 and 65535, got 70000'),
    ({'min_python': 'latest'}, "min_python must be a version like 3.9, got 'latest'"),
    ({'max_clock_skew': -1}, 'max_clock_skew must be >= 0, got -1.0'),
])
def test_invalid_arguments(capsys, args, message):
    code, result = run_module(capsys, args)
    assert code == 1
    assert result['failed'] is True
    assert message in result['msg']
    assert result['msg'].startswith('Invalid arguments: ')


@pytest.mark.parametrize('args, words', [
    ({'ports': [{'port': 80, 'proto': 'sctp'}]}, ['proto', 'sctp', 'ports']),
    ({'paths': [{'path': '/var'}]}, ['min_free_mb', 'paths']),
    ({'nonsense': 1}, ['nonsense']),
])
def test_invalid_arguments_from_argument_spec(capsys, args, words):
    code, result = run_module(capsys, args)
    assert code == 1
    assert result['failed'] is True
    for word in words:
        assert word in result['msg']


def test_unexpected_error_is_reported(capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError('kaboom')

    monkeypatch.setattr(preflight_facts, 'gather', boom)
    code, result = run_module(capsys, {})
    assert code == 1
    assert result['failed'] is True
    assert 'RuntimeError: kaboom' in result['msg']
    assert 'preflight_facts' in result['msg']
