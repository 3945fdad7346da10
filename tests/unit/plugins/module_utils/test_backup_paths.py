# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root's file operations in directories a service user can write: a link,
FIFO or foreign file put where root expects its own is refused, never
followed."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _backup_paths as paths

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason='chown to another user needs root')
NOBODY = (65534, 65534)


@pytest.fixture
def outside(tmp_path):
    """A directory and a secret file that a planted link points at; must stay untouched."""
    place = tmp_path / 'outside'
    place.mkdir(mode=0o755)
    secret = place / 'shadow'
    secret.write_text('root:$6$secret-hash:19000::::::\n')
    secret.chmod(0o600)
    return place


def snapshot(path):
    info = os.lstat(path)
    content = sorted(os.listdir(path)) if stat.S_ISDIR(info.st_mode) else open(path, 'rb').read()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), content


def test_open_refuses_a_link_anywhere_on_the_way(tmp_path, outside):
    (tmp_path / 'service').mkdir()
    os.symlink(str(outside), str(tmp_path / 'service' / 'work'))
    with pytest.raises(paths.UnsafePathError, match='work: it is a symbolic link'):
        paths.Dir.open(str(tmp_path / 'service' / 'work' / 'leaf'))
    with pytest.raises(paths.UnsafePathError):
        paths.Dir.open(str(tmp_path / 'service' / 'work'), create=True)


def test_open_creates_missing_directories_with_their_mode(tmp_path):
    old = os.umask(0o077)
    try:
        with paths.Dir.open(str(tmp_path / 'a' / 'b'), create=True, mode=0o711) as made:
            assert made.path == str(tmp_path / 'a' / 'b')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'a' / 'b').st_mode) == 0o711


@needs_root
def test_root_only_refuses_a_component_another_user_owns_or_can_write(tmp_path):
    # pytest's tmp_path lies below /tmp (sticky, world-writable): start below a root-owned 0711 base.
    base = tmp_path / 'base'
    base.mkdir(mode=0o711)
    os.chmod(str(tmp_path), 0o711)
    work = base / 'work'
    work.mkdir(mode=0o711)
    os.chown(str(work), *NOBODY)
    with pytest.raises(paths.UnsafePathError, match='must be owned by root'):
        paths.Dir.open(str(work), root_only=True, start=str(tmp_path))
    os.chown(str(work), 0, 0)
    os.chmod(str(work), 0o777)
    with pytest.raises(paths.UnsafePathError, match='writable by root alone'):
        paths.Dir.open(str(work), root_only=True, start=str(tmp_path))
    os.chmod(str(work), 0o711)
    with paths.Dir.open(str(work), root_only=True, start=str(tmp_path)) as opened:
        assert opened.owner() == 0


@needs_root
def test_a_leaf_replaces_a_planted_link_and_chowns_only_itself(tmp_path, outside):
    before = snapshot(str(outside))
    os.symlink(str(outside), str(tmp_path / 'verify'))
    with paths.Dir.open(str(tmp_path)) as work, work.leaf('verify', NOBODY, 0o700) as leaf:
        assert (os.fstat(leaf.fd).st_uid, stat.S_IMODE(os.fstat(leaf.fd).st_mode)) == (65534, 0o700)
    assert not os.path.islink(str(tmp_path / 'verify'))
    assert snapshot(str(outside)) == before


def test_a_link_swapped_in_after_the_check_is_refused(tmp_path, outside, monkeypatch):
    before = snapshot(str(outside))
    with paths.Dir.open(str(tmp_path)) as work:
        real_mkdir = os.mkdir

        def swap(name, mode=0o777, *, dir_fd=None):
            real_mkdir(name, mode, dir_fd=dir_fd)
            os.rmdir(name, dir_fd=dir_fd)
            os.symlink(str(outside), name, dir_fd=dir_fd)
        monkeypatch.setattr(os, 'mkdir', swap)
        with pytest.raises(paths.UnsafePathError, match='dump: it is a symbolic link'):
            work.subdir('dump', create=True, owner=(os.geteuid(), os.getegid()), mode=0o777)
    assert snapshot(str(outside)) == before


def test_create_refuses_a_link_that_appears_between_removal_and_open(tmp_path, outside, monkeypatch):
    before = snapshot(str(outside / 'shadow'))
    with paths.Dir.open(str(tmp_path)) as work:
        real_remove = paths.Dir.remove

        def remove_then_plant(self, name):
            real_remove(self, name)
            os.symlink(str(outside / 'shadow'), name, dir_fd=self.fd)
        monkeypatch.setattr(paths.Dir, 'remove', remove_then_plant)
        with pytest.raises(paths.UnsafePathError, match='came back'):
            work.write('postgresql.conf', 'port = 1\n')
    assert snapshot(str(outside / 'shadow')) == before


def test_write_replaces_a_planted_link_instead_of_writing_through_it(tmp_path, outside):
    before = snapshot(str(outside / 'shadow'))
    os.symlink(str(outside / 'shadow'), str(tmp_path / 'pg_hba.conf'))
    with paths.Dir.open(str(tmp_path)) as work:
        work.write('pg_hba.conf', 'local all postgres peer\n', mode=0o640)
    assert snapshot(str(outside / 'shadow')) == before
    assert not os.path.islink(str(tmp_path / 'pg_hba.conf'))
    assert (tmp_path / 'pg_hba.conf').read_text() == 'local all postgres peer\n'
    assert stat.S_IMODE(os.stat(tmp_path / 'pg_hba.conf').st_mode) == 0o640


def test_open_read_refuses_a_link_a_fifo_and_a_foreign_owner(tmp_path, outside):
    os.symlink(str(outside / 'shadow'), str(tmp_path / 'quiz.dump'))
    os.mkfifo(str(tmp_path / 'fifo'))
    (tmp_path / 'mine').write_bytes(b'data')
    with paths.Dir.open(str(tmp_path)) as work:
        with pytest.raises(paths.UnsafePathError, match='quiz.dump: it is a symbolic link'):
            work.open_read('quiz.dump')
        with pytest.raises(paths.UnsafePathError, match='not a regular file'):
            work.open_read('fifo')
        with pytest.raises(paths.UnsafePathError, match='owned by uid'):
            work.open_read('mine', owners=[os.geteuid() + 1])
        with work.open_read('mine', owners=[os.geteuid()]) as handle:
            assert handle.read() == b'data'


@needs_root
def test_a_hard_link_to_a_file_of_root_is_refused_by_owner(tmp_path, outside):
    os.link(str(outside / 'shadow'), str(tmp_path / 'dump.rdb'))
    with paths.Dir.open(str(tmp_path)) as work:
        with pytest.raises(paths.UnsafePathError, match='owned by uid 0'):
            work.open_read('dump.rdb', owners=[NOBODY[0]])


def test_remove_takes_a_link_itself_and_never_what_it_points_at(tmp_path, outside):
    before = snapshot(str(outside))
    os.symlink(str(outside), str(tmp_path / 'verify'))
    (tmp_path / 'tree' / 'sub').mkdir(parents=True)
    os.symlink(str(outside), str(tmp_path / 'tree' / 'sub' / 'escape'))
    with paths.Dir.open(str(tmp_path)) as work:
        assert work.remove('verify') and work.remove('tree') and not work.remove('absent')
    assert sorted(os.listdir(str(tmp_path))) == ['outside']
    assert snapshot(str(outside)) == before


def test_rename_moves_a_link_itself(tmp_path, outside):
    os.symlink(str(outside), str(tmp_path / 'appendonlydir'))
    with paths.Dir.open(str(tmp_path)) as work:
        work.rename('appendonlydir', 'appendonlydir.aside')
    assert os.path.islink(str(tmp_path / 'appendonlydir.aside')) and os.path.isdir(str(outside))


def test_read_tail_gives_nothing_for_a_planted_link(tmp_path, outside):
    log = tmp_path / 'postgresql-15-main.log'
    os.symlink(str(outside / 'shadow'), str(log))
    assert paths.read_tail(str(log), owners=[os.geteuid()]) == ''
    log.unlink()
    log.write_text('\n'.join('line %d' % n for n in range(10)) + '\n')
    assert paths.read_tail(str(log), owners=[os.geteuid()], lines=2) == 'line 8 | line 9'


def test_marker_is_private_and_a_loose_one_is_refused(tmp_path):
    marker = tmp_path / 'state' / 'restore.json'
    assert paths.read_marker(str(marker)) is None
    paths.write_marker(str(marker), {'phase': 'moving'})
    assert stat.S_IMODE(os.stat(marker).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(marker.parent).st_mode) == 0o700
    if ROOT:
        assert paths.read_marker(str(marker)) == {'phase': 'moving'}
        os.chmod(str(marker), 0o644)
        with pytest.raises(paths.UnsafePathError, match='readable or writable by others'):
            paths.read_marker(str(marker))
    paths.clear_marker(str(marker))
    assert paths.read_marker(str(marker)) is None
