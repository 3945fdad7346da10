# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _files


def test_write_atomic_creates_parents_sets_modes_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / 'a' / 'b' / 'state.json'
    old = os.umask(0o077)
    try:
        _files.write_atomic(str(path), 'one\n', mode=0o640, dir_mode=0o750)
    finally:
        os.umask(old)
    assert path.read_text() == 'one\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / 'a').stat().st_mode) == 0o750
    _files.write_atomic(str(path), 'two\n', mode=0o644)
    assert path.read_text() == 'two\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ['state.json']


def test_write_atomic_keeps_the_previous_file_when_writing_fails(tmp_path):
    path = tmp_path / 'state.json'
    path.write_text('kept\n')
    with pytest.raises(TypeError):
        _files.write_atomic(str(path), None)
    assert path.read_text() == 'kept\n'
    assert os.listdir(tmp_path) == ['state.json']


def test_locked_waits_its_turn_then_raises_the_callers_error(tmp_path):
    path = str(tmp_path / 'ledger.json')
    held = threading.Event()
    release = threading.Event()

    def holder():
        with _files.locked(path, 5, RuntimeError):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with pytest.raises(LookupError) as info:
        with _files.locked(path, 0.2, lambda name: LookupError('busy: ' + name)):
            pass
    assert str(info.value) == 'busy: %s.lock' % path
    release.set()
    thread.join(5)
    with _files.locked(path, 1, RuntimeError):
        pass


# --------------------------------------------------------------------------
# Run locks


class Clock:
    """A clock the test moves; sleeping moves it too."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


ALICE = {'who': 'alice', 'controller': 'ctl1', 'pid': 100, 'purpose': 'deploying release 1.1.0 of quiz'}
BOB = {'who': 'bob', 'controller': 'awx-1', 'pid': 200, 'run': 'AWX job 42', 'purpose': 'deploying release 1.2.0'}


def take(path, token, holder, clock, **kwargs):
    kwargs.setdefault('lease', 60)
    return _files.run_lock(path, token, holder, clock=clock, sleep=clock.sleep, **kwargs)


def test_run_lock_is_taken_renewed_by_its_run_and_released(tmp_path):
    path = str(tmp_path / 'releases' / 'quiz.run.lock')
    clock = Clock()
    first = take(path, 'ctl1:100:7', ALICE, clock)
    assert (first['acquired'], first['renewed'], first['previous'], first['waited']) == (True, False, None, 0)
    record = _files.read_run_lock(path)
    assert record == first['record']
    assert record['since'] == record['renewed'] == _files.iso(clock.now)
    assert record['expires'] == _files.iso(clock.now + 60)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    clock.sleep(30)
    again = take(path, 'ctl1:100:7', ALICE, clock, lease=100)
    assert (again['acquired'], again['renewed']) == (True, True)
    assert again['record']['since'] == record['since']
    assert again['record']['expires'] == _files.iso(clock.now + 100)
    assert _files.release_run_lock(path, 'ctl1:100:7') == (True, again['record'])
    assert not os.path.exists(path)
    assert _files.release_run_lock(path, 'ctl1:100:7') == (False, None)


def test_a_held_lock_makes_the_other_run_wait_then_fail_naming_the_holder(tmp_path):
    path = str(tmp_path / 'quiz.run.lock')
    clock = Clock()
    take(path, 'awx-1:200:9', BOB, clock)
    outcome = take(path, 'ctl1:100:7', ALICE, clock, wait=20, poll=3)
    assert outcome['acquired'] is False
    assert outcome['waited'] == 20  # looks 3 s apart, the last one at the deadline
    assert outcome['record']['token'] == 'awx-1:200:9'
    text = _files.describe_holder(outcome['record'])
    assert text.startswith('bob, AWX job 42 (ansible-playbook pid 200 on awx-1), deploying release 1.2.0, since ')
    assert text.endswith('(lease until %s)' % outcome['record']['expires'])
    # The holder's lock is untouched; releasing with another token leaves it.
    assert _files.release_run_lock(path, 'ctl1:100:7')[0] is False
    assert _files.read_run_lock(path)['token'] == 'awx-1:200:9'


def test_the_waiting_run_takes_the_lock_once_the_holder_releases_it(tmp_path):
    path = str(tmp_path / 'quiz.run.lock')
    _files.run_lock(path, 'awx-1:200:9', BOB, 60)

    def holder_finishes():
        time.sleep(0.5)
        _files.release_run_lock(path, 'awx-1:200:9')

    thread = threading.Thread(target=holder_finishes)
    thread.start()
    outcome = _files.run_lock(path, 'ctl1:100:7', ALICE, 60, wait=10, poll=0.05)
    thread.join(5)
    assert outcome['acquired'] is True and outcome['previous'] is None
    assert 0.4 < outcome['waited'] < 5
    assert _files.read_run_lock(path)['who'] == 'alice'


def test_a_lock_whose_lease_ended_is_taken_over_and_a_live_one_is_not(tmp_path):
    path = str(tmp_path / 'quiz.run.lock')
    clock = Clock()
    take(path, 'awx-1:200:9', BOB, clock, lease=60)
    clock.sleep(59)
    assert take(path, 'ctl1:100:7', ALICE, clock)['acquired'] is False
    clock.sleep(2)
    outcome = take(path, 'ctl1:100:7', ALICE, clock)
    assert outcome['acquired'] is True
    assert outcome['previous']['who'] == 'bob'
    assert outcome['reason'] == 'its lease ended at %s without a renewal' % outcome['previous']['expires']


def test_a_lock_from_before_a_restart_of_the_host_is_taken_over(tmp_path, monkeypatch):
    path = str(tmp_path / 'quiz.run.lock')
    clock = Clock()
    monkeypatch.setattr(_files, 'boot_id', lambda: 'boot-1')
    take(path, 'awx-1:200:9', BOB, clock, lease=3600)
    assert take(path, 'ctl1:100:7', ALICE, clock)['acquired'] is False
    monkeypatch.setattr(_files, 'boot_id', lambda: 'boot-2')
    outcome = take(path, 'ctl1:100:7', ALICE, clock)
    assert (outcome['acquired'], outcome['reason']) == (True, 'the host restarted after it was taken')


def test_take_over_applies_to_the_named_holder_only(tmp_path):
    path = str(tmp_path / 'quiz.run.lock')
    clock = Clock()
    take(path, 'awx-1:200:9', BOB, clock, lease=3600)
    assert take(path, 'ctl1:100:7', ALICE, clock, take_over='ctl1:99:1')['acquired'] is False
    outcome = take(path, 'ctl1:100:7', ALICE, clock, take_over='awx-1:200:9')
    assert outcome['acquired'] is True
    assert outcome['reason'] == 'its run is gone (ansible-playbook pid 200 on awx-1 is no longer running)'


@pytest.mark.parametrize('content', ['{"tok', '[]', '{"who": "x"}'])
def test_an_unreadable_lock_file_is_taken_over(tmp_path, content):
    path = tmp_path / 'quiz.run.lock'
    path.write_text(content)
    outcome = take(str(path), 'ctl1:100:7', ALICE, Clock())
    assert outcome['acquired'] is True
    assert outcome['reason'].startswith('its lock file was unreadable')


def _contend(path, token, barrier, results):
    barrier.wait(5)
    outcome = _files.run_lock(path, token, dict(ALICE, pid=int(token.split(':')[1])), 60, wait=0)
    results.put((token, outcome['acquired']))


def test_two_runs_taking_over_one_stale_lock_at_once_cannot_both_win(tmp_path):
    path = str(tmp_path / 'quiz.run.lock')
    clock = Clock(time.time() - 3600)
    take(path, 'awx-1:200:9', BOB, clock, lease=60)
    ctx = multiprocessing.get_context('fork')
    for _round in range(5):
        results = ctx.Queue()
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_contend, args=(path, 'ctl1:%d:1' % (300 + i), barrier, results))
                 for i in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(10)
        outcomes = [results.get(timeout=5) for _proc in procs]
        winners = [token for token, acquired in outcomes if acquired]
        assert len(winners) == 1, outcomes
        assert _files.read_run_lock(path)['token'] == winners[0]
        os.unlink(path)
        take(path, 'awx-1:200:9', BOB, clock, lease=60)


def test_iso_round_trip():
    assert _files.from_iso(_files.iso(1_800_000_000)) == 1_800_000_000
    assert _files.from_iso('yesterday') is None
    assert _files.from_iso(None) is None
    assert _files.describe_holder(None) == 'nobody'
