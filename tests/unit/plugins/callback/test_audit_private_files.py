# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit file and its directory: private from the moment they exist, never
another user's, and a callback that never breaks the run it records."""

from __future__ import annotations

import os
import stat

import pytest

from audit_driver import Trail, events_of


@pytest.fixture
def umask_zero():
    old = os.umask(0)
    yield
    os.umask(old)


def test_directories_and_file_are_created_private_with_no_looser_window(tmp_path, monkeypatch, umask_zero):
    """Every mkdir and the file's open ask for 0700/0600 themselves: no chmod has to close a gap later."""
    created = []
    real_mkdir, real_open = os.mkdir, os.open

    def mkdir(path, mode=0o777, *args, **kwargs):
        created.append(('dir', str(path), mode))
        return real_mkdir(path, mode, *args, **kwargs)

    def open_(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT:
            created.append(('file', str(path), mode, flags))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, 'mkdir', mkdir)
    monkeypatch.setattr(os, 'open', open_)
    log_dir = tmp_path / 'evidence' / 'change-1234' / 'audit'
    run = Trail(log_dir)
    run.send(run.task('One task'), {'msg': 'hello'})
    run.finish()
    dirs = [c for c in created if c[0] == 'dir']
    files = [c for c in created if c[0] == 'file']
    assert [d[1] for d in dirs] == [str(tmp_path / 'evidence'), str(tmp_path / 'evidence' / 'change-1234'), str(log_dir)]
    assert all(d[2] == 0o700 for d in dirs), dirs
    (made,) = files
    assert made[2] == 0o600 and made[3] & os.O_EXCL and made[3] & os.O_NOFOLLOW
    for path in (tmp_path / 'evidence', tmp_path / 'evidence' / 'change-1234', log_dir):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    (trail,) = log_dir.glob('*.jsonl')
    assert stat.S_IMODE(trail.stat().st_mode) == 0o600


def test_an_existing_directory_of_ours_is_narrowed_to_0700(tmp_path):
    log_dir = tmp_path / 'audit'
    log_dir.mkdir()
    log_dir.chmod(0o755)
    run = Trail(log_dir)
    run.finish()
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert run.display.warnings == ['aiquiz.ops.audit: mode of %s changed from 0755 to 0700: the audit trail is for its '
                                    'owner only' % log_dir]


@pytest.mark.skipif(os.geteuid() != 0, reason='giving a directory to another user needs root')
def test_a_directory_of_another_user_is_refused_and_the_run_goes_on(tmp_path):
    log_dir = tmp_path / 'audit'
    log_dir.mkdir(mode=0o777)
    log_dir.chmod(0o777)
    os.chown(log_dir, 65534, 65534)
    run = Trail(log_dir)
    run.send(run.task('One task'), {'msg': 'hello'})
    run.callback.v2_playbook_on_stats(run.stats)
    assert list(log_dir.iterdir()) == []
    (warning,) = run.display.warnings
    assert warning.startswith('aiquiz.ops.audit: cannot write the audit trail in %s, the run goes on without it:' % log_dir)
    assert 'belongs to uid 65534' in warning and 'chown it' in warning


def test_a_planted_link_is_never_followed(tmp_path, monkeypatch):
    """The file is created with O_EXCL | O_NOFOLLOW: a link planted at its name makes the audit stop, not write through it."""
    log_dir = tmp_path / 'audit'
    log_dir.mkdir(mode=0o700)
    target = tmp_path / 'elsewhere'
    target.write_text('untouched\n')
    real_open = os.open

    def open_planted(path, flags, mode=0o777, *args, **kwargs):
        if flags & os.O_CREAT and str(path).endswith('.jsonl'):
            os.symlink(target, os.path.join(log_dir, path))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, 'open', open_planted)
    run = Trail(log_dir)
    monkeypatch.undo()
    run.send(run.task('One task'), {'msg': 'hello'})
    run.callback.v2_playbook_on_stats(run.stats)
    assert target.read_text() == 'untouched\n'
    (warning,) = run.display.warnings
    assert 'cannot write the audit trail' in warning and 'File exists' in warning


def test_failing_to_learn_vault_values_withholds_free_text_never_the_run(tmp_path, monkeypatch):
    from ansible_collections.aiquiz.ops.plugins.callback import audit

    def broken(self, value, whole=False):
        raise RuntimeError('tag API moved')

    run = Trail(tmp_path / 'audit')
    monkeypatch.setattr(audit.VaultValues, 'learn', broken)
    run.send(run.task('Show a message'), {'msg': 'maybe a vault value'})
    run.send(run.task('Another'), {'msg': 'more', 'changed': True})
    events = events_of(run.finish())
    results = [e for e in events if e['event'] == 'task_result']
    assert [(e['task'], e['status'], e.get('details_withheld')) for e in results] == \
        [('Show a message', 'ok', True), ('Another', 'changed', True)]
    assert all('msg' not in e for e in results)
    assert events[-1]['event'] == 'playbook_end'
    (warning,) = run.display.warnings
    assert warning.startswith("aiquiz.ops.audit: cannot tell which values came from Ansible Vault (RuntimeError: tag API moved)")
