# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import stat
import threading

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
