# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import re

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.modules import run_lock

ALICE = {'who': 'alice', 'controller': 'ctl1', 'pid': 100}
BOB = {'who': 'bob', 'controller': 'awx-1', 'pid': 200, 'run': 'AWX job 42'}


def call(capsys, path, **args):
    args['path'] = path
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            run_lock.main()
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    # ansible-core 2.19 shows a module's warnings itself when no controller runs it.
    result.setdefault('warnings', re.findall(r'\[WARNING\]: (.*)', captured.err))
    return exit_info.value.code, result


@pytest.fixture
def lock_path(tmp_path):
    return str(tmp_path / 'releases' / 'quiz.run.lock')


def test_take_renew_release(capsys, lock_path):
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', holder=ALICE, purpose='deploying 1.1.0', lease=60)
    assert code == 0
    assert (result['changed'], result['acquired'], result['renewed'], result['took_over']) == (False, True, False, None)
    assert result['holder']['purpose'] == 'deploying 1.1.0'
    assert result['holder_text'].startswith('alice (ansible-playbook pid 100 on ctl1), deploying 1.1.0, since ')
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', holder=ALICE, purpose='deploying 1.1.0')
    assert (code, result['acquired'], result['renewed']) == (0, True, True)
    code, result = call(capsys, lock_path, state='query')
    assert (result['acquired'], result['holder']['who']) == (False, 'alice')
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', state='absent')
    assert (code, result['changed'], result['released']) == (0, False, True)
    assert not os.path.exists(lock_path)


def test_held_by_another_run_fails_naming_it_and_check_mode_only_warns(capsys, lock_path):
    call(capsys, lock_path, run_id='awx-1:200:1', holder=BOB, purpose='deploying 1.2.0 of quiz')
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', holder=ALICE, wait=0.3, poll=0.1)
    assert code == 1
    assert result['acquired'] is False
    assert result['msg'].startswith('%s is held by bob, AWX job 42 (ansible-playbook pid 200 on awx-1), '
                                    'deploying 1.2.0 of quiz, since ' % lock_path)
    assert result['msg'].endswith('; waited 0 s')
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', holder=ALICE, _ansible_check_mode=True)
    assert (code, result['acquired'], result['holder']['who']) == (0, False, 'bob')
    assert 'a real run would wait for it' in result['warnings'][0]
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', state='absent')
    assert (result['released'], result['holder']['who']) == (False, 'bob')
    assert 'was not released: bob' in result['warnings'][0]


def test_take_over_is_reported(capsys, lock_path):
    call(capsys, lock_path, run_id='ctl1:99:1', holder=dict(ALICE, pid=99))
    code, result = call(capsys, lock_path, run_id='ctl1:100:1', holder=ALICE, take_over='ctl1:99:1')
    assert (code, result['acquired']) == (0, True)
    assert result['took_over']['reason'] == 'its run is gone (ansible-playbook pid 99 on ctl1 is no longer running)'
    assert result['warnings'][0].startswith('took over the run lock %s of alice (ansible-playbook pid 99 on ctl1)'
                                            % lock_path)


@pytest.mark.parametrize('args, message', [
    ({'path': 'rel/x.lock', 'run_id': 't'}, 'path must be absolute'),
    ({'lease': 0, 'run_id': 't'}, 'lease must be > 0'),
    ({'wait': -1, 'run_id': 't'}, 'wait must be >= 0'),
    ({}, 'run_id is missing: run the module through its action plugin'),
])
def test_invalid_arguments(capsys, lock_path, args, message):
    args.setdefault('path', lock_path)
    code, result = call(capsys, **dict(args, path=args['path']))
    assert code == 1
    assert message in result['msg']
