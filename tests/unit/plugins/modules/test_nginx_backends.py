# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _edge
from ansible_collections.aiquiz.ops.plugins.modules import nginx_backends

WEB = [{'address': '10.0.0.5', 'port': 8010, 'weight': 90}, {'address': '10.0.0.5', 'port': 8020, 'weight': 10}]


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            nginx_backends.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def updir(tmp_path):
    for name in ('quiz_web', 'quiz_api'):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture
def fake_nginx(tmp_path, monkeypatch):
    """The candidate test and systemctl stand-ins: a 'master' process with one
    'worker' child; reload ends the worker as nginx ends an old worker. The
    test fails while <bin>/refuse exists, and records in <bin>/tested which
    live files existed while it ran."""
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    master = subprocess.Popen([sys.executable, '-c',
                               'import subprocess, sys, time\n'
                               'w = subprocess.Popen(["sleep", "60"])\n'
                               'print(w.pid, flush=True)\n'
                               'w.wait()\n'
                               'time.sleep(60)'], stdout=subprocess.PIPE, text=True)
    worker = int(master.stdout.readline())
    reloads = bindir / 'reloads'
    scripts = {
        'candidate-test.py': 'import os, sys\n'
                             'with open(%r, "a") as log:\n'
                             '    log.writelines(f + "\\n" for f in sys.argv[1:] if os.path.exists(f))\n'
                             'if os.path.exists(%r):\n'
                             '    print(\'nginx: [emerg] invalid parameter "fail_timeout=10x"\')\n'
                             '    sys.exit(1)\n' % (str(bindir / 'tested'), str(bindir / 'refuse')),
        'systemctl': '#!/bin/sh\ncase "$1" in\n  show) echo %d ;;\n  reload) echo x >> %s; kill %d ;;\nesac\n'
                     % (master.pid, reloads, worker),
    }
    for name, text in scripts.items():
        path = bindir / name
        path.write_text(text)
        path.chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bindir, os.environ['PATH']))
    yield bindir, reloads
    master.kill()
    master.wait()
    subprocess.run(['kill', str(worker)], check=False, capture_output=True)


def test_validate_names_every_bad_field():
    errors = _edge.validate({'quiz_web': [{'address': '127.0.0.1; evil', 'port': 70000, 'weight': 0, 'x': 1}],
                             'bad-name': [], 'quiz_api': 'nope'}, 'app 1', '10s', 3, 5)
    text = '; '.join(errors)
    assert 'source: "app 1" must be letters' in text
    assert 'upstreams.quiz_web[0]: unknown keys x' in text
    assert 'upstreams.quiz_web[0].address: "127.0.0.1; evil" is not a host name or an IP address' in text
    assert 'upstreams.quiz_web[0].port: "70000" is not a port (1-65535)' in text
    assert 'upstreams.quiz_web[0].weight: "0" must be an integer of 1 or more' in text
    assert 'upstreams: "bad-name" is not an upstream name' in text
    assert 'upstreams.quiz_api: must be a list of servers' in text


@pytest.mark.parametrize('address', ['10.0.0.5', 'fd00::5', '[fd00::5]', 'app1.example.com', 'app1'])
def test_validate_accepts_addresses(address):
    assert _edge.validate({'quiz_web': [{'address': address, 'port': 1, 'weight': '2'}]}, 'app1', '10s', 3, 0) == []


# The collection's one check of names and addresses (module_utils/_netnames):
# before it, this module took all-digit names, labels longer than 63 and IPv6 zone ids.
@pytest.mark.parametrize('address', ['10.0.0.300', 'a' * 64 + '.example', 'fe80::5%eth0', '[app1]', 'app_1', ''])
def test_validate_refuses_addresses(address):
    errors = _edge.validate({'quiz_web': [{'address': address, 'port': 1}]}, 'app1', '10s', 3, 0)
    assert errors == ['upstreams.quiz_web[0].address: "%s" is not a host name or an IP address' % address]


@pytest.mark.parametrize('bad', [{'fail_timeout': '10 s'}, {'max_fails': -1}, {'drain_timeout': -1}])
def test_validate_refuses_bad_settings(bad):
    args = dict(fail_timeout='10s', max_fails=3, drain_timeout=1)
    args.update(bad)
    assert len(_edge.validate({'quiz_web': []}, 'app1', **args)) == 1


def test_render_brackets_ipv6_and_defaults_weight():
    text = _edge.render('quiz_api', 'app1', [{'address': 'fd00::5', 'port': 8011}], 3, '10s')
    assert 'server [fd00::5]:8011 weight=1 max_fails=3 fail_timeout=10s;\n' in text
    assert text.startswith('# Servers of app1 in upstream quiz_api')


def test_plan_lists_only_changed_files_and_refuses_undeclared_upstreams(updir):
    changes = _edge.plan(str(updir), 'app1', {'quiz_web': WEB, 'quiz_api': []}, 3, '10s')
    # quiz_api has no file and none is wanted: nothing to do there.
    assert [c['upstream'] for c in changes] == ['quiz_web']
    _edge.apply(changes)
    assert _edge.plan(str(updir), 'app1', {'quiz_web': WEB, 'quiz_api': []}, 3, '10s') == []
    with pytest.raises(LookupError) as info:
        _edge.plan(str(updir), 'app1', {'quiz_nope': WEB}, 3, '10s')
    assert info.value.args == ('quiz_nope',)


def test_apply_writes_and_removes_files(updir):
    first = _edge.plan(str(updir), 'app1', {'quiz_web': WEB, 'quiz_api': WEB}, 3, '10s')
    _edge.apply(first)
    path = updir / 'quiz_web' / 'app1.conf'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    second = _edge.plan(str(updir), 'app1', {'quiz_web': WEB[:1], 'quiz_api': []}, 3, '10s')
    _edge.apply(second)
    assert not (updir / 'quiz_api' / 'app1.conf').exists()
    assert path.read_text() == second[1]['after'] and path.read_text().count('server ') == 1
    # No temporary file is left behind.
    assert sorted(os.listdir(updir / 'quiz_web')) == ['app1.conf']


def test_candidates_are_passed_as_pairs_and_removals_and_cleaned_up(updir, tmp_path):
    _edge.apply(_edge.plan(str(updir), 'app1', {'quiz_api': WEB}, 3, '10s'))
    changes = _edge.plan(str(updir), 'app1', {'quiz_web': WEB, 'quiz_api': []}, 3, '10s')
    log = tmp_path / 'argv.json'
    command = tmp_path / 'candidate-test.py'
    command.write_text('import json, sys\nargs = sys.argv[1:]\n'
                       'json.dump([args, open(args[1]).read()], open(%r, "w"))\nprint("refused")\nsys.exit(1)\n'
                       % str(log))
    rc, out = _edge.test_candidates(changes, [sys.executable, str(command)])
    assert (rc, out) == (1, 'refused')
    args, text = json.loads(log.read_text())
    assert args[0] == str(updir / 'quiz_web' / 'app1.conf') and text == changes[1]['after']
    assert args[2:] == ['--remove', str(updir / 'quiz_api' / 'app1.conf')]
    # The candidate files are gone; the live ones untouched.
    assert not os.path.exists(args[1])
    assert (updir / 'quiz_api' / 'app1.conf').exists() and not (updir / 'quiz_web' / 'app1.conf').exists()


def test_children_reads_parents_from_proc(tmp_path):
    for pid, ppid, comm in ((10, 1, 'nginx'), (11, 10, 'nginx: worker (x) y'), (12, 10, 'nginx'), (13, 11, 'z')):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / 'stat').write_text('%d (%s) S %d 0 0\n' % (pid, comm, ppid))
    (tmp_path / 'self').mkdir()
    assert _edge.children(10, str(tmp_path)) == [11, 12]
    (tmp_path / '12' / 'stat').write_text('12 (nginx) Z 10 0 0\n')
    assert [_edge.alive(pid, str(tmp_path)) for pid in (11, 12, 99)] == [True, False, False]


def test_check_mode_reports_the_diff_and_writes_nothing(capsys, updir):
    code, result = run_module(capsys, {'dir': str(updir), 'source': 'app1', 'upstreams': {'quiz_web': WEB}}, check=True)
    assert code == 0, result
    assert result['changed'] is True and result['reloaded'] is False
    assert result['files'] == [str(updir / 'quiz_web' / 'app1.conf')]
    assert 'weight=90' in result['diff'][0]['after'] and result['diff'][0]['before'] == ''
    assert not (updir / 'quiz_web' / 'app1.conf').exists()


def test_one_test_and_one_reload_for_several_upstreams_then_idempotent(capsys, updir, fake_nginx):
    bindir, reloads = fake_nginx
    args = {'dir': str(updir), 'source': 'app1', 'upstreams': {'quiz_web': WEB, 'quiz_api': WEB[:1]}, 'drain_timeout': 5,
            'test_script': str(bindir / 'candidate-test.py')}
    code, result = run_module(capsys, args)
    assert code == 0, result
    assert result['changed'] and result['reloaded']
    assert len(result['files']) == 2
    # Tested before they were written: only the candidates existed then.
    tested = (bindir / 'tested').read_text().split()
    assert len(tested) == 2 and not [path for path in tested if path.startswith(str(updir))]
    assert reloads.read_text().count('x') == 1
    assert result['drain']['drained'] is True and result['drain']['old_workers'] == 1
    assert (updir / 'quiz_api' / 'app1.conf').read_text().count('server ') == 1
    code, result = run_module(capsys, args)
    assert code == 0 and result['changed'] is False and result['files'] == []
    assert reloads.read_text().count('x') == 1


def test_refused_configuration_never_reaches_the_live_files(capsys, updir, fake_nginx):
    bindir, reloads = fake_nginx
    _edge.apply(_edge.plan(str(updir), 'app1', {'quiz_web': WEB}, 3, '10s'))
    before = (updir / 'quiz_web' / 'app1.conf').read_text()
    mtime = (updir / 'quiz_web' / 'app1.conf').stat().st_mtime_ns
    (bindir / 'refuse').write_text('')
    code, result = run_module(capsys, {'dir': str(updir), 'source': 'app1', 'fail_timeout': '10x',
                                       'upstreams': {'quiz_web': WEB[:1], 'quiz_api': WEB},
                                       'test_script': str(bindir / 'candidate-test.py')})
    assert code == 1
    assert result['msg'].startswith('nginx -t refused it;')
    assert 'are unchanged and nginx was not reloaded' in result['msg']
    assert 'invalid parameter "fail_timeout=10x"' in result['msg']
    assert result['changed'] is False
    # Never written, not even for a moment.
    assert (updir / 'quiz_web' / 'app1.conf').read_text() == before
    assert (updir / 'quiz_web' / 'app1.conf').stat().st_mtime_ns == mtime
    assert not (updir / 'quiz_api' / 'app1.conf').exists()
    assert not reloads.exists()


def test_missing_candidate_test_fails_before_any_change(capsys, updir, tmp_path):
    code, result = run_module(capsys, {'dir': str(updir), 'source': 'app1', 'upstreams': {'quiz_web': WEB},
                                       'test_script': str(tmp_path / 'nope')})
    assert code == 1 and result['changed'] is False
    assert 'the candidate test %s is missing on the edge host: apply the edge role there first' % (tmp_path / 'nope') \
        in result['msg']
    assert os.listdir(updir / 'quiz_web') == []


def test_bad_input_and_undeclared_upstream_fail_before_any_change(capsys, updir):
    code, result = run_module(capsys, {'dir': str(updir), 'source': 'app1',
                                       'upstreams': {'quiz_web': [{'address': 'x y', 'port': 1}]}})
    assert code == 1 and 'upstreams.quiz_web[0].address' in result['msg']
    code, result = run_module(capsys, {'dir': str(updir), 'source': 'app1', 'upstreams': {'quiz_nope': WEB}})
    assert code == 1 and 'upstream quiz_nope is not declared on the edge host' in result['msg']
    assert sorted(os.listdir(updir / 'quiz_web')) == []


def test_reload_reports_a_stopped_nginx(monkeypatch, tmp_path):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (bindir / 'systemctl').write_text('#!/bin/sh\necho 0\n')
    (bindir / 'systemctl').chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bindir, os.environ['PATH']))
    started = time.monotonic()
    error, info = _edge.reload_and_drain('nginx.service', 5)
    assert 'nginx.service is not running' in error and info == {}
    assert time.monotonic() - started < 2
