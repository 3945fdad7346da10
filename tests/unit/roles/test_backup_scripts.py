# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup and restore roles' host scripts, run here with a configuration
of local targets in a temporary directory (openssl and zstd from the
controller; PostgreSQL and pgBackRest parts are covered by molecule/backup)."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import BACKUP_SCRIPT, RESTORE_SCRIPT, load_host_script

TOOLS = all(shutil.which(tool) for tool in ('openssl', 'zstd'))
pytestmark = pytest.mark.skipif(not TOOLS, reason='needs openssl and zstd on the controller')


@pytest.fixture
def backup(tmp_path):
    module = load_host_script(tmp_path / 'lib', BACKUP_SCRIPT, 'aiquiz_backup_under_test')
    (tmp_path / 'passphrase').write_text('unit test passphrase')
    cfg = {
        'stanza': 'main', 'catalogue': str(tmp_path / 'catalogue.json'), 'staging': str(tmp_path / 'staging'),
        'passphrase_file': str(tmp_path / 'passphrase'), 'zstd_level': 3, 'postgresql': False,
        'targets': [{'name': 'one', 'type': 'local', 'path': str(tmp_path / 'one'), 'repo': 1},
                    {'name': 'two', 'type': 'local', 'path': str(tmp_path / 'two'), 'repo': 2}],
        'paths': [{'name': 'data', 'paths': [str(tmp_path / 'data')]}], 'docker_volumes': [],
        'retention': {'daily': 1, 'weekly': 1, 'monthly': 1, 'yearly': 1},
    }
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'file.txt').write_text('precious\n' * 1000)
    module.sync_pgbackrest = lambda cfg: None
    return module, cfg, tmp_path


class Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def entries(cfg):
    return json.load(open(cfg['catalogue']))['backups']


def test_files_backup_is_encrypted_on_every_target_and_fetch_gives_it_back(backup):
    module, cfg, tmp = backup
    results = module.cmd_files(cfg, Args())
    assert [r['status'] for r in results] == ['good', 'good']
    one, two = entries(cfg)
    assert (one['target'], two['target']) == ('one', 'two')
    for entry in (one, two):
        raw = open(entry['location'], 'rb').read()
        assert raw.startswith(b'Salted__') and b'precious' not in raw
        assert hashlib.sha256(raw).hexdigest() == entry['sha256'] and len(raw) == entry['size']
        assert entry['location'].endswith('.tar.zst.enc')
    module.cmd_fetch(cfg, Args(id=two['id'], output=str(tmp / 'out.tar')))
    with tarfile.open(str(tmp / 'out.tar')) as archive:
        names = archive.getnames()
    assert any(name.endswith('data/file.txt') for name in names)


def test_a_failing_producer_leaves_no_file_and_is_catalogued_failed(backup):
    module, cfg, tmp = backup
    results = module.file_backup(cfg, 'files', 'broken', 'tar', ['sh', '-c', 'echo half; echo oops >&2; exit 3'])
    assert [r['status'] for r in results] == ['failed', 'failed']
    assert 'sh exit 3: oops' in results[0]['detail']
    assert all(e['status'] == 'failed' for e in entries(cfg))
    leftovers = [name for root, dirs, files in os.walk(str(tmp / 'one')) for name in files]
    assert leftovers == []


def test_a_target_that_cannot_store_is_failed_and_the_other_good(backup):
    module, cfg, tmp = backup
    blocked = tmp / 'blocked'
    blocked.write_text('a file where a directory should be')
    cfg['targets'][1]['path'] = str(blocked)
    results = module.cmd_files(cfg, Args())
    assert [r['status'] for r in results] == ['good', 'failed']
    assert 'storing on two failed' in results[1]['detail']


def test_wrong_passphrase_at_fetch_writes_nothing(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    (tmp / 'passphrase').write_text('not the passphrase')
    with pytest.raises(module.BackupError, match='wrong passphrase or damaged file'):
        module.cmd_fetch(cfg, Args(id=entries(cfg)[0]['id'], output=str(tmp / 'out.tar')))
    assert not os.path.exists(str(tmp / 'out.tar')) and not os.path.exists(str(tmp / 'out.tar.partial'))


def test_damaged_copy_is_refused_and_marked_corrupt(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    entry = entries(cfg)[0]
    with open(entry['location'], 'r+b') as handle:
        handle.seek(40)
        handle.write(b'XXXX')
    with pytest.raises(module.BackupError, match='does not match its sha256; marked corrupt'):
        module.cmd_fetch(cfg, Args(id=entry['id'], output=str(tmp / 'out.tar')))
    assert entries(cfg)[0]['status'] == 'corrupt'
    with pytest.raises(module.BackupError, match='is corrupt'):
        module.cmd_fetch(cfg, Args(id=entry['id'], output=str(tmp / 'out.tar')))


def test_retention_deletes_files_and_entries_the_policy_does_not_keep(backup):
    module, cfg, tmp = backup
    cat = module.cat
    start = datetime.datetime(2026, 11, 27, 3, 0, tzinfo=datetime.timezone.utc)

    def seed(data):
        for n in range(5):
            moment = start - datetime.timedelta(days=n)
            path = tmp / 'one' / ('b%d.enc' % n)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b'x')
            cat.add(data, dict(id='b%d' % n, kind='files', subject='s', target='one', location=str(path), size=1,
                               sha256=hashlib.sha256(b'x').hexdigest(), started=moment.strftime('%Y-%m-%dT%H:%M:%SZ'),
                               ended=moment.strftime('%Y-%m-%dT%H:%M:%SZ')))
    cat.update(cfg['catalogue'], seed)
    results = module.cmd_retention(cfg, Args())
    assert sorted(r['id'] for r in results) == ['b1', 'b2', 'b3', 'b4']
    assert [e['id'] for e in entries(cfg)] == ['b0']
    assert sorted(os.listdir(str(tmp / 'one'))) == ['b0.enc']


def test_pgbackrest_verify_report_is_parsed(backup):
    module, cfg, tmp = backup
    report = ('2026-11-27 13:22:37.709 P00   INFO: stanza: main\n'
              '                                    status: error\n'
              '                                      backup: 20261127-132224F, status: invalid, total files checked: '
              '961, total valid files: 960\n'
              '                                        checksum invalid: 1\n'
              '2026-11-27 13:22:37.710 P00   INFO: verify command end: completed successfully (730ms)\n')

    class Proc:
        returncode = 0
        stdout = ''
        stderr = report
    module.run = lambda *a, **kw: Proc()
    out = module.pgbackrest_verify(cfg, 1)
    text = 'invalid, total files checked: 961, total valid files: 960; checksum invalid: 1'
    assert out == {'20261127-132224F': {'status': 'invalid', 'text': text}}
    Proc.returncode = 1
    Proc.stderr = 'ERROR: [039]: HTTP request failed'
    assert out != module.pgbackrest_verify(cfg, 1)
    assert module.pgbackrest_verify(cfg, 1)['*']['status'] == 'error'


def restore_args(**kw):
    args = dict(id=None, kind='files', subject=None, target=None, before=None, plan=False)
    args.update(kw)
    return Args(**args)


def test_files_restore_puts_the_set_back_and_keeps_what_it_replaced(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    (tmp / 'data' / 'file.txt').write_text('overwritten\n')
    (tmp / 'data' / 'stray').write_text('new since the backup\n')
    planned = module.cmd_restore(cfg, restore_args(plan=True))
    assert planned[0]['status'] == 'planned' and planned[0]['target'] == 'one'
    assert (tmp / 'data' / 'stray').exists()
    result = module.cmd_restore(cfg, restore_args(subject='data', target='two'))[0]
    assert result['status'] == 'restored' and result['paths'] == [str(tmp / 'data')] and result['target'] == 'two'
    assert (tmp / 'data' / 'file.txt').read_text() == 'precious\n' * 1000
    assert not (tmp / 'data' / 'stray').exists()
    aside = result['safety_copies'][0]
    assert aside.startswith(str(tmp / 'data') + '.before-restore-')
    assert open(os.path.join(aside, 'stray')).read() == 'new since the backup\n'


def test_a_failed_files_restore_puts_the_replaced_files_back(backup, monkeypatch):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    (tmp / 'data' / 'file.txt').write_text('current\n')
    real_run = module.run

    def run(cmd, **kw):
        if cmd[:2] == ['tar', '-C']:
            os.makedirs(str(tmp / 'data'))
            (tmp / 'data' / 'half').write_text('half extracted')
            raise module.BackupError('tar failed (exit 2): disk full')
        return real_run(cmd, **kw)
    monkeypatch.setattr(module, 'run', run)
    with pytest.raises(module.BackupError, match='the previous files are back in place: tar failed'):
        module.cmd_restore(cfg, restore_args())
    assert sorted(os.listdir(str(tmp / 'data'))) == ['file.txt']
    assert (tmp / 'data' / 'file.txt').read_text() == 'current\n'
    assert [n for n in os.listdir(str(tmp)) if '.before-restore-' in n] == []


def test_restore_chooses_the_newest_good_backup_before_the_time(backup):
    module, cfg, tmp = backup
    cat = module.cat

    def seed(data):
        for ident, ended, status in (('f1', '2026-11-25T03:00:00Z', 'good'), ('f2', '2026-11-26T03:00:00Z', 'good'),
                                     ('f3', '2026-11-27T03:00:00Z', 'corrupt'), ('r1', '2026-11-27T04:00:00Z', 'good')):
            cat.add(data, dict(id=ident, kind='redis' if ident == 'r1' else 'files', subject='data', target='one',
                               location='/nowhere/%s' % ident, started=ended, ended=ended, status=status))
    cat.update(cfg['catalogue'], seed)
    assert module.choose(cfg, restore_args())['id'] == 'f2'  # f3 is corrupt
    assert module.choose(cfg, restore_args(before='2026-11-25T12:00:00+00:00'))['id'] == 'f1'
    with pytest.raises(module.BackupError, match='no good files backup of data ended before 2026-11-24T00:00:00Z on one'):
        module.choose(cfg, restore_args(subject='data', target='one', before='2026-11-24T00:00:00Z'))
    with pytest.raises(module.BackupError, match='not an ISO 8601 time'):
        module.choose(cfg, restore_args(before='yesterday'))
    with pytest.raises(module.BackupError, match='backup f3 is corrupt'):
        module.choose(cfg, restore_args(id='f3'))
    with pytest.raises(module.BackupError, match='backup r1 is redis, not files'):
        module.cmd_restore(cfg, restore_args(id='r1'))


def test_a_table_missing_from_a_restored_set_fails_unless_the_set_predates_it(backup):
    module = backup[0]
    exists = {'quiz.markers': False, 'quiz.keep_me': True}.get
    count = {'quiz.keep_me': '500'}.get
    # Recorded absent when the set was taken: history, not damage.
    notes = module.check_tables(['quiz.keep_me', 'quiz.markers'], ['quiz.keep_me'], exists, count)
    assert notes == ['quiz.keep_me=500', 'quiz.markers absent (not there when the set was taken)']
    # Recorded present: the restore lost it.
    with pytest.raises(module.BackupError, match='quiz.markers is missing from the restored set, though it was there'):
        module.check_tables(['quiz.markers'], ['quiz.markers'], exists, count)
    # Nothing recorded: a missing table fails.
    with pytest.raises(module.BackupError, match='quiz.markers is missing from the restored set$'):
        module.check_tables(['quiz.markers'], None, exists, count)


def test_a_corrupt_set_in_the_chain_turns_the_next_diff_or_incr_into_a_full(backup):
    module = backup[0]

    def sets(*pairs):
        return [{'location': label, 'status': status} for label, status in pairs]
    clean = sets(('20261127-010000F', 'good'), ('20261127-010000F_20261127-020000I', 'good'))
    assert module.backup_type(clean, 'incr') == ('incr', None)
    assert module.backup_type([], 'diff') == ('diff', None)
    damaged = sets(('20261127-010000F', 'good'), ('20261127-010000F_20261127-020000I', 'corrupt'))
    kind, why = module.backup_type(damaged, 'incr')
    assert kind == 'full' and '20261127-010000F_20261127-020000I' in why
    # A damaged older chain does not matter once a newer full exists; failed entries have no set.
    later = sets(('20261126-010000F', 'corrupt'), ('20261127-010000F', 'good')) + [{'status': 'failed'}]
    assert module.backup_type(later, 'diff') == ('diff', None)
    assert module.backup_type(damaged, 'full') == ('full', None)


@pytest.fixture
def restore(tmp_path):
    return load_host_script(tmp_path / 'restore-lib', RESTORE_SCRIPT, 'aiquiz_restore_under_test')


INFO = [{'status': {'code': 0, 'message': 'ok'}, 'repo': [{'status': {'code': 0, 'message': 'ok'}}],
         'archive': [{'max': '000000010000000000000009'}],
         'backup': [{'label': '20261120-010000F', 'type': 'full', 'error': False, 'lsn': {'stop': '0/2000100'},
                     'timestamp': {'start': 1795136400, 'stop': 1795136460}},
                    {'label': '20261127-010000F', 'type': 'full', 'error': False, 'lsn': {'stop': '0/9000100'},
                     'timestamp': {'start': 1795741200, 'stop': 1795741260}}]}]


def plan(restore, tmp_path, monkeypatch, stdout, time=None, corrupt=()):
    catalogue = tmp_path / 'catalogue.json'
    catalogue.write_text(json.dumps({'version': 1, 'backups': [
        {'id': 'x-' + label, 'kind': 'postgresql-pgbackrest', 'target': 'local', 'location': label, 'status': 'corrupt',
         'detail': 'pgbackrest verify: invalid'} for label in corrupt]}))
    cfg = {'pgbackrest_config': '/dev/null', 'stanza': 'main', 'repo': 1, 'target': 'local',
           'catalogue': str(catalogue)}

    class Proc:
        returncode = 0
        stderr = ''
    Proc.stdout = stdout
    monkeypatch.setattr(restore, 'run', lambda *a, **kw: Proc())
    return restore.cmd_plan(cfg, type('A', (), {'time': time, 'set': None})())


def test_plan_chooses_the_newest_set_before_the_time(restore, tmp_path, monkeypatch):
    assert plan(restore, tmp_path, monkeypatch, json.dumps(INFO))['set'] == '20261127-010000F'
    result = plan(restore, tmp_path, monkeypatch, json.dumps(INFO), time='2026-11-25T00:00:00Z')
    assert result['set'] == '20261120-010000F' and result['target_time'] == '2026-11-25 00:00:00+00'


def test_plan_never_chooses_a_corrupt_set(restore, tmp_path, monkeypatch):
    result = plan(restore, tmp_path, monkeypatch, json.dumps(INFO), corrupt=['20261127-010000F'])
    assert result['set'] == '20261120-010000F'
    assert result['skipped'] == [{'label': '20261127-010000F', 'reason': 'pgbackrest verify: invalid'}]
    with pytest.raises(restore.RestoreError, match='no good backup set'):
        plan(restore, tmp_path, monkeypatch, json.dumps(INFO), corrupt=['20261127-010000F', '20261120-010000F'])


def test_plan_refuses_a_time_before_the_oldest_backup(restore, tmp_path, monkeypatch):
    with pytest.raises(restore.RestoreError, match='is before the end of the oldest backup .*nothing was touched'):
        plan(restore, tmp_path, monkeypatch, json.dumps(INFO), time='2026-11-01T00:00:00Z')
    with pytest.raises(restore.RestoreError, match='is not a time'):
        plan(restore, tmp_path, monkeypatch, json.dumps(INFO), time='last tuesday')


def test_plan_reads_a_wrong_passphrase_as_such(restore, tmp_path, monkeypatch):
    garbage = [{'status': {'code': 99, 'message': 'other'}, 'backup': [], 'repo': [{'status': {
        'code': 99, 'message': "[FormatError] unable to load info file 'backup.info':\nFormatError: key/value"}}]}]
    with pytest.raises(restore.RestoreError, match='wrong restore_passphrase'):
        plan(restore, tmp_path, monkeypatch, json.dumps(garbage))
    with pytest.raises(restore.RestoreError, match='wrong restore_passphrase'):
        plan(restore, tmp_path, monkeypatch, '[{"broken": "\x00')


def test_verification_tables_are_quoted_and_an_injection_is_refused(backup):
    module = backup[0]
    assert module.split_table('quiz.markers') == ('quiz', '"markers"')
    assert module.split_table('quiz.audit.events') == ('quiz', '"audit"."events"')
    for bad in ("quiz.x'); DROP TABLE keep_me; --", 'quiz.a b', 'quiz."x"', 'quiz.a.b.c', 'quiz.'):
        with pytest.raises(module.BackupError, match='backup_verify_tables'):
            module.split_table(bad)


def raise_(exc):
    raise exc


class FakeHost:
    """systemctl and pgBackRest of a restore, played on a data directory in tmp_path."""

    def __init__(self, restore, tmp_path, monkeypatch, fail_at=None):
        self.calls = []
        self.datadir = tmp_path / 'pg' / 'main'
        self.datadir.mkdir(parents=True)
        (self.datadir / 'PG_VERSION').write_text('live data\n')
        self.cfg = {'pgbackrest_config': '/dev/null', 'stanza': 'main', 'repo': 1, 'target': 'local',
                    'data_dir': str(self.datadir), 'service': 'postgresql@15-main.service', 'timeout': 60,
                    'safety_backup': True, 'state_dir': str(tmp_path / 'state'), 'port': 5432, 'version': '15'}
        self.fail_at = fail_at
        self.install(restore, monkeypatch)

    def install(self, restore, monkeypatch):
        me = self

        def run(cmd, user='postgres', check=True, timeout=None):
            me.calls.append('pgbackrest ' + cmd[-1])
            if me.fail_at == 'restore':
                raise restore.RestoreError('pgbackrest restore failed')
            (me.datadir / 'PG_VERSION').write_text('restored data\n')
            return type('P', (), {'returncode': 0, 'stdout': '', 'stderr': ''})()

        def systemctl(action, unit):
            me.calls.append('%s %s' % (action, unit))
            if me.fail_at == action:
                raise restore.RestoreError('systemctl %s failed' % action)

        def sub_run(cmd, **kw):
            me.calls.append(' '.join(cmd[1:3]))
            return type('P', (), {'returncode': 0, 'stdout': 'inactive\n'})()
        monkeypatch.setattr(restore, 'run', run)
        monkeypatch.setattr(restore, 'systemctl', systemctl)
        monkeypatch.setattr(restore, 'wait_serving', lambda cfg, deadline: None)
        monkeypatch.setattr(restore.subprocess, 'run', sub_run)
        monkeypatch.setattr(restore.paths, 'ids', lambda user: (os.geteuid(), os.getegid()))

    def content(self):
        return (self.datadir / 'PG_VERSION').read_text()

    def marker(self):
        path = os.path.join(self.cfg['state_dir'], 'in-progress.json')
        return json.load(open(path)) if os.path.exists(path) else None


def apply_args(**kw):
    return type('A', (), dict({'set': '20261127-010000F', 'time': None}, **kw))()


def test_apply_restores_and_leaves_no_marker(restore, tmp_path, monkeypatch):
    fake = FakeHost(restore, tmp_path, monkeypatch)
    result = restore.cmd_apply(fake.cfg, apply_args())
    assert fake.content() == 'restored data\n' and fake.marker() is None
    assert open(result['safety_copy'] + '/PG_VERSION').read() == 'live data\n'


def test_a_failed_apply_is_rolled_back_and_says_so(restore, tmp_path, monkeypatch):
    fake = FakeHost(restore, tmp_path, monkeypatch, fail_at='restore')
    with pytest.raises(restore.RestoreError, match='rolled back'):
        restore.cmd_apply(fake.cfg, apply_args())
    assert fake.content() == 'live data\n' and fake.marker() is None
    assert fake.calls[-1] == 'start postgresql@15-main.service'


def test_an_apply_cut_off_while_restoring_is_rolled_back_by_recover(restore, tmp_path, monkeypatch):
    fake = FakeHost(restore, tmp_path, monkeypatch)
    # As a SIGKILL would leave it: the marker says restoring, the live data is aside, a partial directory in place.
    monkeypatch.setattr(restore, 'run', lambda *a, **kw: raise_(KeyboardInterrupt()))
    monkeypatch.setattr(restore, 'roll_back', lambda cfg, state: False)
    with pytest.raises(KeyboardInterrupt):
        restore.cmd_apply(fake.cfg, apply_args())
    assert fake.marker()['phase'] == 'restoring' and not (fake.datadir / 'PG_VERSION').exists()
    with pytest.raises(restore.RestoreError, match='interrupted restore left'):
        restore.cmd_apply(fake.cfg, apply_args())
    monkeypatch.undo()
    fake.install(restore, monkeypatch)
    result = restore.cmd_recover(fake.cfg, type('A', (), {'from_unit': False})())
    assert result['recovered'] == 'rolled back' and 'rolled back' in result['msg']
    assert fake.content() == 'live data\n' and fake.marker() is None
    assert fake.calls[-1] == 'start postgresql@15-main.service'


def test_an_apply_cut_off_after_the_restore_is_finished_by_recover(restore, tmp_path, monkeypatch):
    fake = FakeHost(restore, tmp_path, monkeypatch)
    monkeypatch.setattr(restore, 'start_and_wait', lambda cfg, state, started: (
        restore.mark(cfg, state, 'starting'), raise_(KeyboardInterrupt())))
    monkeypatch.setattr(restore, 'roll_back', lambda cfg, state: False)
    with pytest.raises(KeyboardInterrupt):
        restore.cmd_apply(fake.cfg, apply_args())
    assert fake.marker()['phase'] == 'starting'
    monkeypatch.undo()
    fake.install(restore, monkeypatch)
    result = restore.cmd_recover(fake.cfg, type('A', (), {'from_unit': True})())
    assert result['recovered'] == 'finished'
    assert fake.content() == 'restored data\n' and fake.marker() is None


def test_recover_refuses_while_the_apply_unit_runs(restore, tmp_path, monkeypatch):
    fake = FakeHost(restore, tmp_path, monkeypatch)
    restore.mark(fake.cfg, {'set': 'x', 'data_dir': fake.cfg['data_dir'], 'started': 'now', 'safety': None},
                 'restoring')
    monkeypatch.setattr(restore, 'unit_active', lambda: True)
    with pytest.raises(restore.RestoreError, match='a restore is running'):
        restore.cmd_recover(fake.cfg, type('A', (), {'from_unit': False})())
    assert fake.marker()['phase'] == 'restoring'


def redis_host(module, tmp_path, monkeypatch, owner):
    base = tmp_path / 'redis'
    base.mkdir()
    (base / 'appendonlydir').mkdir()
    (base / 'appendonlydir' / 'appendonly.aof.1.base.rdb').write_text('old snapshot')
    layout = {'dir': str(base), 'dbfilename': 'dump.rdb', 'appendonly': 'yes', 'appenddirname': 'appendonlydir',
              'appendfilename': 'appendonly.aof'}
    calls = []
    monkeypatch.setattr(module, 'redis_layout', lambda cfg: layout)
    monkeypatch.setattr(module, 'wait_redis', lambda cfg, timeout: None)
    monkeypatch.setattr(module, 'run', lambda cmd, **kw: calls.append(' '.join(cmd)))
    monkeypatch.setattr(module, 'redis_cli', lambda cfg, *words, **kw: type('P', (), {'stdout': '1'})())
    plain = tmp_path / 'plain'
    plain.write_text('new snapshot')
    return base, calls, str(plain), {'redis': {'user': owner, 'service': 'redis-server'}}


def test_redis_restore_creates_its_files_by_descriptor_and_never_follows_a_planted_link(backup, monkeypatch):
    module, cfg, tmp_path = backup
    outside = tmp_path / 'usr-local-sbin'
    outside.mkdir()
    (outside / 'aiquiz-backup').write_text('#!/bin/sh\n')
    base, calls, plain, extra = redis_host(module, tmp_path, monkeypatch, (os.geteuid(), os.getegid()))
    cfg.update(extra)
    real_rename = module.paths.Dir.rename

    def rename_then_plant(self, name, new_name):
        # The redis user's move: as soon as the live directory is aside, a link where root will write.
        real_rename(self, name, new_name)
        if name == 'appendonlydir':
            os.symlink(str(outside), name, dir_fd=self.fd)
    monkeypatch.setattr(module.paths.Dir, 'rename', rename_then_plant)
    result = module.restore_redis(cfg, {'id': 'redis-x'}, plain, module.now())
    assert sorted(os.listdir(str(outside))) == ['aiquiz-backup']
    assert not os.path.islink(str(base / 'appendonlydir'))
    assert (base / 'appendonlydir' / 'appendonly.aof.1.base.rdb').read_text() == 'new snapshot'
    assert result['safety_copies'][0].startswith(str(base / 'appendonlydir.before-restore-'))
    assert calls == ['systemctl stop redis-server', 'systemctl start redis-server']


def test_redis_restore_refuses_a_directory_the_redis_user_does_not_own(backup, monkeypatch):
    module, cfg, tmp_path = backup
    base, calls, plain, extra = redis_host(module, tmp_path, monkeypatch, (os.geteuid() + 1, os.getegid()))
    cfg.update(extra)
    with pytest.raises(module.BackupError, match='does not own: refusing to write there'):
        module.restore_redis(cfg, {'id': 'redis-x'}, plain, module.now())
    assert (base / 'appendonlydir' / 'appendonly.aof.1.base.rdb').read_text() == 'old snapshot'


def test_a_service_data_restore_cut_off_is_rolled_back_by_recover(backup, monkeypatch):
    module, cfg, tmp_path = backup
    base, calls, plain, extra = redis_host(module, tmp_path, monkeypatch, (os.geteuid(), os.getegid()))
    cfg.update(extra)
    monkeypatch.setattr(module, 'wait_redis', lambda cfg, timeout: raise_(KeyboardInterrupt()))
    real_put_aside = module.put_aside

    def killed(cfg, items, suffix, replace, service=None):
        # As SIGKILL would: no rollback, the marker stays.
        items_before = [(w, n) for w, n in items if w.exists(n)]
        module.paths.write_marker(module.marker_path(cfg), {
            'kind': 'service-data', 'phase': 'moving', 'service': service, 'suffix': suffix,
            'paths': [w.join(n) for w, n in items], 'existed': [w.join(n) for w, n in items_before]})
        for where, name in items_before:
            where.rename(name, name + suffix)
        with pytest.raises(KeyboardInterrupt):
            replace()
        raise module.BackupError('cut off')
    monkeypatch.setattr(module, 'put_aside', killed)
    with pytest.raises(module.BackupError):
        module.restore_redis(cfg, {'id': 'redis-x'}, plain, module.now())
    assert (base / 'appendonlydir' / 'appendonly.aof.1.base.rdb').read_text() == 'new snapshot'
    monkeypatch.setattr(module, 'put_aside', real_put_aside)
    result = module.cmd_recover(cfg, Args(result_file=None))[0]
    assert result['status'] == 'rolled back' and str(base / 'appendonlydir') in result['put_back']
    assert (base / 'appendonlydir' / 'appendonly.aof.1.base.rdb').read_text() == 'old snapshot'
    assert not os.path.exists(module.marker_path(cfg)) and calls[-1] == 'systemctl start redis-server'


def test_an_interrupted_command_leaves_no_process_of_its_group_behind(restore, tmp_path):
    # As pgbackrest under runuser: the worker is a grandchild that goes on writing
    # unless the whole group is killed before the rollback puts the old data back.
    late = tmp_path / 'written-after-the-interrupt'
    script = '(sleep 1; touch %s) & echo $! > %s/worker; wait' % (late, tmp_path)
    with pytest.raises(subprocess.TimeoutExpired):
        restore.run(['sh', '-c', script], user=None, timeout=0.5)
    worker = int((tmp_path / 'worker').read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    time.sleep(1.5)
    assert not late.exists()


def test_a_check_table_whose_database_the_set_lacks_is_refused_before_anything(restore):
    databases = ['postgres', 'quiz']
    restore.check_tables(['quiz.answers', 'quiz.public.answers', 'postgres.pg_catalog.pg_class'], databases, 'S')
    with pytest.raises(restore.RestoreError) as err:
        restore.check_tables(['public.ceo_truth', 'quiz.ok', 'nope.x.y'], databases, '20261203-010000F')
    text = str(err.value)
    assert 'restore_check_tables: "public.ceo_truth": set 20261203-010000F holds no database "public"' in text
    assert 'e.g. quiz.public.ceo_truth' in text and '"nope.x.y"' in text and '"quiz.ok"' not in text
    assert text.endswith('nothing was touched')
    restore.check_tables(['public.ceo_truth'], None, 'S')  # a pgBackRest that lists no databases: checked after


def test_plan_lists_the_sets_databases_and_checks_the_tables_with_them(restore, tmp_path, monkeypatch):
    refs = json.dumps([{'backup': [{'database-ref': [{'name': 'postgres', 'oid': 5}, {'name': 'quiz', 'oid': 16385},
                                                     {'name': 'template1', 'oid': 1}]}]}])
    info = json.dumps(INFO)

    class Proc:
        returncode = 0
        stderr = ''

    def fake_run(cmd, **kw):
        proc = Proc()
        proc.stdout = refs if any(arg.startswith('--set=') for arg in cmd) else info
        return proc
    monkeypatch.setattr(restore, 'run', fake_run)
    cfg = {'pgbackrest_config': '/dev/null', 'stanza': 'main', 'repo': 1, 'target': 'local',
           'catalogue': str(tmp_path / 'none.json')}
    args = type('A', (), {'time': None, 'set': None, 'check_table': ['quiz.public.answers']})()
    assert restore.cmd_plan(cfg, args)['databases'] == ['postgres', 'quiz']
    args.check_table = ['public.answers']
    with pytest.raises(restore.RestoreError, match='holds no database "public"'):
        restore.cmd_plan(cfg, args)
