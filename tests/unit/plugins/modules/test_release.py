# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _release as rl
from ansible_collections.aiquiz.ops.plugins.modules import release

V1 = {'api': 'registry1:5000/aiquiz/quiz-api:1.0.0', 'web': 'registry1:5000/aiquiz/quiz-web:1.0.0'}
V2 = {'api': 'registry1:5000/aiquiz/quiz-api:1.1.0', 'web': 'registry1:5000/aiquiz/quiz-web:1.1.0'}
RETURN_KEYS = ['active', 'changed', 'colour', 'idle_colour', 'ledger', 'noop', 'previous_good', 'project',
               'projects', 'prunable', 'releases', 'removed']
ISO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')


def run_module(capsys, args):
    """Run main() with args; return (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            release.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out)


@pytest.fixture
def ledger_path(tmp_path):
    return str(tmp_path / 'releases' / 'quiz.json')


def call(capsys, path, **args):
    args.setdefault('workload', 'quiz')
    args['path'] = path
    return run_module(capsys, args)


def test_query_of_a_missing_ledger_writes_nothing(capsys, ledger_path):
    code, result = call(capsys, ledger_path)
    assert code == 0
    assert sorted(k for k in result if k != 'invocation') == RETURN_KEYS
    assert result['changed'] is False
    assert result['ledger'] == {'version': 1, 'workload': 'quiz', 'colours': {}, 'releases': []}
    assert (result['active'], result['previous_good'], result['colour']) == (None, None, None)
    assert result['idle_colour'] == 'blue'
    assert not os.path.exists(os.path.dirname(ledger_path))


def test_blue_green_cycle(capsys, ledger_path):
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    assert code == 0
    assert (result['changed'], result['noop'], result['colour']) == (True, False, 'blue')
    on_disk = json.load(open(ledger_path))
    assert on_disk == result['ledger']
    entry = on_disk['releases'][0]
    assert ISO.match(entry['created']) and entry['created'] == entry['updated']
    assert sorted(entry) == ['activated', 'colour', 'created', 'history', 'id', 'images', 'reason', 'state', 'updated']

    code, result = call(capsys, ledger_path, release='1.0.0', state='active')
    assert (code, result['changed']) == (0, True)
    assert result['active']['id'] == '1.0.0' and ISO.match(result['active']['activated'])
    assert result['idle_colour'] == 'green'

    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    assert (code, result['changed'], result['noop'], result['colour']) == (0, False, True, 'blue')

    code, result = call(capsys, ledger_path, release='1.1.0', images=V2, state='deploying')
    assert (result['changed'], result['noop'], result['colour']) == (True, False, 'green')
    code, result = call(capsys, ledger_path, release='1.1.0', state='active', images=V2)
    assert result['changed'] is True
    assert result['active']['id'] == '1.1.0'
    assert result['previous_good']['id'] == '1.0.0'
    assert result['previous_good']['state'] == 'standby'
    assert result['releases'] == ['1.1.0', '1.0.0']
    assert result['idle_colour'] == 'blue'

    code, result = call(capsys, ledger_path, release='1.1.0', state='active')
    assert (code, result['changed']) == (0, False)

    code, result = call(capsys, ledger_path, release='1.0.0', keep=1)
    assert (result['colour'], result['prunable']) == ('blue', [])


def test_failed_needs_a_reason_and_records_it(capsys, ledger_path):
    call(capsys, ledger_path, release='1.2.0', images=V2, state='deploying')
    code, result = call(capsys, ledger_path, release='1.2.0', state='failed')
    assert code == 1
    assert result['msg'] == 'state is failed but all of the following are missing: reason'
    code, result = call(capsys, ledger_path, release='1.2.0', state='failed', reason='/readyz 503')
    assert (code, result['changed']) == (0, True)
    assert result['ledger']['releases'][0]['reason'] == '/readyz 503'
    assert result['active'] is None


def test_rollback_target_must_exist(capsys, ledger_path):
    call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    call(capsys, ledger_path, release='1.0.0', state='active')
    code, result = call(capsys, ledger_path, release='0.9.0')
    assert code == 1
    assert result['msg'] == ('release 0.9.0 is not in the ledger %s of workload quiz; releases in the ledger, newest '
                             'first: 1.0.0 (active)' % ledger_path)


def test_check_mode_writes_nothing_and_diff_shows_the_change(capsys, ledger_path):
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying',
                        _ansible_check_mode=True, _ansible_diff=True)
    assert (code, result['changed'], result['colour']) == (0, True, 'blue')
    assert not os.path.exists(os.path.dirname(ledger_path))
    assert result['diff']['before'] == ''
    assert result['diff']['after']['releases'][0]['id'] == '1.0.0'
    assert result['diff']['before_header'] == ledger_path

    call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    before = open(ledger_path).read()
    mtime = os.stat(ledger_path).st_mtime_ns
    code, result = call(capsys, ledger_path, release='1.0.0', state='active', _ansible_check_mode=True,
                        _ansible_diff=True)
    assert (code, result['changed']) == (0, True)
    assert result['active']['id'] == '1.0.0'
    assert result['diff']['before']['releases'][0]['state'] == 'deploying'
    assert result['diff']['after']['releases'][0]['state'] == 'active'
    assert open(ledger_path).read() == before
    assert os.stat(ledger_path).st_mtime_ns == mtime
    assert sorted(os.listdir(os.path.dirname(ledger_path))) == ['quiz.json', 'quiz.json.lock']


def test_unchanged_run_does_not_rewrite_the_file(capsys, ledger_path):
    call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    mtime = os.stat(ledger_path).st_mtime_ns
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying', _ansible_diff=True)
    assert (code, result['changed']) == (0, False)
    assert result['diff']['before'] == result['diff']['after']
    assert os.stat(ledger_path).st_mtime_ns == mtime


def test_plan_of_a_deploy_in_check_mode_names_colour_and_project_and_writes_nothing(capsys, ledger_path):
    call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    call(capsys, ledger_path, release='1.0.0', state='active')
    before = open(ledger_path).read()
    code, result = call(capsys, ledger_path, release='1.1.0', images=V2, state='deploying', _ansible_check_mode=True)
    assert code == 0
    assert (result['noop'], result['colour'], result['project']) == (False, 'green', 'quiz_1-1-0_green')
    assert result['projects'] == {'1.1.0': 'quiz_1-1-0_green', '1.0.0': 'quiz_1-0-0_blue'}
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying', _ansible_check_mode=True)
    assert (result['noop'], result['colour'], result['project']) == (True, 'blue', 'quiz_1-0-0_blue')
    # A release id with the project names of 1.0.0 is refused, before any change.
    code, result = call(capsys, ledger_path, release='1-0-0', images=V1, state='deploying', _ansible_check_mode=True)
    assert code == 1
    assert 'release 1-0-0 would share its Compose project names (quiz_1-0-0_<colour>) with release 1.0.0' \
        in result['msg']
    assert open(ledger_path).read() == before


def test_ledger_is_root_only_and_a_loose_one_is_tightened(capsys, ledger_path):
    call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    assert stat.S_IMODE(os.stat(ledger_path).st_mode) == 0o600
    os.chmod(ledger_path, 0o644)
    # Nothing to change in the books, but the mode is put right: a change.
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    assert (code, result['changed']) == (0, True)
    assert stat.S_IMODE(os.stat(ledger_path).st_mode) == 0o600
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    assert (code, result['changed']) == (0, False)


def test_failed_reason_with_a_dsn_is_masked_in_result_and_file(capsys, ledger_path):
    call(capsys, ledger_path, release='1.2.0', images=V2, state='deploying')
    code, result = call(capsys, ledger_path, release='1.2.0', state='failed',
                        reason='migrations: FATAL: could not connect to postgresql://quiz:Canary-PW-1@db/quiz')
    assert code == 0
    assert result['ledger']['releases'][0]['reason'] == \
        'migrations: FATAL: could not connect to postgresql://quiz:<redacted:url-password>@db/quiz'
    assert 'Canary-PW-1' not in open(ledger_path).read()


def test_prune_with_absent_and_keep(capsys, ledger_path):
    for number in range(4):
        rid = '1.%d.0' % number
        call(capsys, ledger_path, release=rid, images={'api': 'api:%s' % rid}, state='deploying')
        call(capsys, ledger_path, release=rid, state='active')
    code, result = call(capsys, ledger_path, keep=1)
    assert result['prunable'] == ['1.1.0', '1.0.0']
    code, result = call(capsys, ledger_path, state='absent', keep=1)
    assert (code, result['changed'], result['removed']) == (0, True, ['1.1.0', '1.0.0'])
    assert result['releases'] == ['1.3.0', '1.2.0']
    assert result['prunable'] == []
    code, result = call(capsys, ledger_path, state='absent', release='1.3.0')
    assert code == 1
    assert 'release 1.3.0 is the active release of workload quiz and cannot be removed' in result['msg']
    code, result = call(capsys, ledger_path, state='absent')
    assert code == 1
    assert result['msg'] == 'state is absent but any of the following are missing: release, keep'


def test_corrupt_ledger_fails_clearly_and_is_kept(capsys, ledger_path):
    os.makedirs(os.path.dirname(ledger_path))
    with open(ledger_path, 'w') as handle:
        handle.write('{"version": 1, "workload": "quiz", ')
    code, result = call(capsys, ledger_path, release='1.0.0', images=V1, state='deploying')
    assert code == 1
    assert result['msg'].startswith('release ledger %s is corrupt: not valid JSON' % ledger_path)
    assert open(ledger_path).read() == '{"version": 1, "workload": "quiz", '


@pytest.mark.parametrize('args, message', [
    ({'state': 'deploying', 'release': '1.0.0'}, 'state is deploying but all of the following are missing: images'),
    ({'state': 'active'}, 'state is active but all of the following are missing: release'),
    ({'keep': 0}, 'Invalid arguments: keep must be >= 1, got 0'),
    ({'path': 'relative.json'}, "Invalid arguments: path must be an absolute path, got 'relative.json'"),
])
def test_invalid_arguments(capsys, ledger_path, args, message):
    args.setdefault('path', ledger_path)
    args.setdefault('workload', 'quiz')
    code, result = run_module(capsys, args)
    assert code == 1
    assert result['msg'] == message


COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'collections'))


def start_module_process(args):
    """Run the module in a process of its own, as a second play on the host would."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    child = subprocess.Popen(
        [sys.executable, '-m', 'ansible_collections.aiquiz.ops.plugins.modules.release'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd='/')
    child.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    child.stdin.close()
    return child


def test_concurrent_changes_take_turns(capsys, ledger_path):
    # While the lock is held, a second module run waits, then lands its change.
    with rl.locked(ledger_path, timeout=1):
        child = start_module_process(dict(path=ledger_path, workload='quiz', release='b', images={'api': 'b'},
                                          state='deploying', lock_timeout=20))
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(1.5)
        assert not os.path.exists(ledger_path), 'the second writer must wait for the lock'
    assert child.wait(20) == 0
    result = json.loads(child.stdout.read())
    assert (result['changed'], result['colour']) == (True, 'blue')
    code, result = call(capsys, ledger_path, release='a', images={'api': 'a'}, state='deploying')
    assert code == 0
    # b was deploying on blue with no active release, so a supersedes it.
    assert result['releases'] == ['a', 'b']
    assert rl.find(result['ledger'], 'b')['state'] == 'failed'


def test_parallel_module_runs_lose_no_update(ledger_path):
    children = [start_module_process(dict(path=ledger_path, workload='quiz', release='r%d' % number,
                                          images={'api': 'r%d' % number}, state='deploying'))
                for number in range(6)]
    assert [child.wait(60) for child in children] == [0] * 6
    ledger = rl.load(ledger_path, 'quiz')[0]
    assert sorted(rl.release_ids(ledger)) == ['r%d' % number for number in range(6)]
    # Every deploy but the last superseded the one before it on blue.
    assert [entry['state'] for entry in ledger['releases']] == ['deploying'] + ['failed'] * 5


def test_lock_timeout_fails_clearly(capsys, ledger_path):
    with rl.locked(ledger_path, timeout=1):
        code, result = call(capsys, ledger_path, release='a', images={'api': 'a'}, state='deploying', lock_timeout=0.2)
    assert code == 1
    assert result['msg'].startswith('release ledger %s is locked by another process (lock file %s.lock)'
                                    % (ledger_path, ledger_path))


def test_three_colours_keep_the_previous_good_release_after_a_failed_deploy(capsys, ledger_path):
    three = ['blue', 'green', 'amber']
    v3 = {'api': 'registry1:5000/aiquiz/quiz-api:1.2.0', 'web': 'registry1:5000/aiquiz/quiz-web:1.2.0'}
    for rel, images in (('1.0.0', V1), ('1.1.0', V2)):
        code, result = call(capsys, ledger_path, release=rel, images=images, state='deploying', colours=three)
        assert code == 0, result
        code, result = call(capsys, ledger_path, release=rel, state='active', colours=three)
        assert code == 0, result
    assert result['idle_colour'] == 'amber'
    # The plan (check mode) and the record agree: the failing release goes to amber.
    code, result = call(capsys, ledger_path, release='1.2.0', images=v3, state='deploying', colours=three,
                        _ansible_check_mode=True)
    assert (code, result['colour'], result['project']) == (0, 'amber', 'quiz_1-2-0_amber')
    code, result = call(capsys, ledger_path, release='1.2.0', images=v3, state='deploying', colours=three)
    assert (code, result['colour']) == (0, 'amber')
    code, result = call(capsys, ledger_path, release='1.2.0', state='failed', reason='gate', colours=three)
    assert result['previous_good']['id'] == '1.0.0'
    assert result['ledger']['colours'] == {'blue': '1.0.0', 'green': '1.1.0', 'amber': '1.2.0'}
    # Read without the third colour, the ledger is refused, naming it.
    code, result = call(capsys, ledger_path)
    assert code == 1
    assert "\"colour\" is 'amber', expected one of the configured colours blue, green" in result['msg']


def test_bad_colours_are_refused(capsys, ledger_path):
    code, result = call(capsys, ledger_path, colours=['blue'])
    assert code == 1
    assert 'colours must name at least two colours' in result['msg']
