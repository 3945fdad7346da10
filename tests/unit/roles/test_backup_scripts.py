# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup and restore roles' host scripts, run here with a configuration
of local targets in a temporary directory (openssl and zstd from the
controller; PostgreSQL and pgBackRest parts are covered by molecule/backup)."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import subprocess
import tarfile
import time

import pytest

from conftest import BACKUP_SCRIPT, RESTORE_SCRIPT, load_host_script

TOOLS = all(shutil.which(tool) for tool in ('restic', 'tar'))
pytestmark = pytest.mark.skipif(not TOOLS, reason='needs restic (Debian package restic) and tar on the controller')


@pytest.fixture
def backup(tmp_path):
    """The host script with two local targets whose restic repositories exist (aiquiz-backup init)."""
    module = load_host_script(tmp_path / 'lib', BACKUP_SCRIPT, 'aiquiz_backup_under_test')
    (tmp_path / 'passphrase').write_text('unit test passphrase')
    cfg = {
        'stanza': 'main', 'catalogue': str(tmp_path / 'catalogue.json'), 'staging': str(tmp_path / 'staging'),
        'passphrase_file': str(tmp_path / 'passphrase'), 'postgresql': False, 'host': 'data1',
        'restic_cache': str(tmp_path / 'cache'),
        'targets': [{'name': 'one', 'type': 'local', 'path': str(tmp_path / 'one'), 'repo': 1},
                    {'name': 'two', 'type': 'local', 'path': str(tmp_path / 'two'), 'repo': 2}],
        'paths': [{'name': 'data', 'paths': [str(tmp_path / 'data')]}], 'docker_volumes': [],
        'retention': {'daily': 1, 'weekly': 1, 'monthly': 1, 'yearly': 1},
    }
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'file.txt').write_text('precious\n' * 1000)
    assert [r['status'] for r in module.cmd_init(cfg, None)] == ['created', 'created']
    return module, cfg, tmp_path


class Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def entries(cfg):
    return json.load(open(cfg['catalogue']))['backups']


def restic_cli(cfg, target, *args):
    """restic as an operator would run it by hand on the host, without the host script."""
    env = dict(os.environ, RESTIC_PASSWORD_FILE=cfg['passphrase_file'], RESTIC_CACHE_DIR=cfg['restic_cache'])
    return subprocess.run(['restic', '-r', os.path.join(target['path'], 'restic')] + list(args), env=env,
                          check=True, stdout=subprocess.PIPE).stdout


def snapshots(cfg, target):
    return json.loads(restic_cli(cfg, target, 'snapshots', '--json'))


def stream_file(path):
    return lambda: open(path, 'rb')


def test_init_creates_a_repository_per_target_once(backup):
    module, cfg, tmp = backup
    assert [r['status'] for r in module.cmd_init(cfg, None)] == ['exists', 'exists']
    for target in cfg['targets']:
        config = json.loads(restic_cli(cfg, target, 'cat', 'config'))
        assert config['version'] == 2  # compressed, authenticated repository format


def test_files_backup_is_a_tagged_snapshot_on_every_target_and_fetch_gives_it_back(backup):
    module, cfg, tmp = backup
    results = module.cmd_files(cfg, Args())
    assert [r['status'] for r in results] == ['good', 'good']
    one, two = entries(cfg)
    assert (one['target'], two['target']) == ('one', 'two')
    for entry, target in ((one, cfg['targets'][0]), (two, cfg['targets'][1])):
        listed = snapshots(cfg, target)
        assert len(listed) == 1 and listed[0]['id'].startswith(module.rs.snapshot_of(entry))
        assert sorted(listed[0]['tags']) == ['host:data1', 'kind:files', 'service:files', 'subject:data']
        assert listed[0]['hostname'] == 'data1' and listed[0]['paths'] == [str(tmp / 'data')]
        # Encrypted at rest: the content is nowhere in the repository's files.
        for root, _dirs, files in os.walk(os.path.join(target['path'], 'restic')):
            for name in files:
                assert b'precious' not in open(os.path.join(root, name), 'rb').read()
    module.cmd_fetch(cfg, Args(id=two['id'], output=str(tmp / 'out.tar')))
    with tarfile.open(str(tmp / 'out.tar')) as archive:
        assert archive.extractfile(str(tmp / 'data' / 'file.txt').lstrip('/')).read() == b'precious\n' * 1000


def test_a_stream_is_stored_under_its_name_and_tagged_with_its_position(backup):
    module, cfg, tmp = backup
    dump = tmp / 'quiz.dump'
    dump.write_bytes(b'PGDMP' + os.urandom(4096))
    results = module.snapshot_backup(cfg, 'postgresql-dump', 'quiz', 'postgresql',
                                     ('stdin', 'quiz.dump', stream_file(str(dump))), position='0/3000060')
    assert [r['status'] for r in results] == ['good', 'good']
    listed = snapshots(cfg, cfg['targets'][0])
    assert listed[0]['paths'] == ['/quiz.dump']
    assert 'position:0/3000060' in listed[0]['tags'] and 'service:postgresql' in listed[0]['tags']
    entry = entries(cfg)[0]
    assert entry['source_position'] == '0/3000060' and entry['kind'] == 'postgresql-dump'
    module.cmd_fetch(cfg, Args(id=entry['id'], output=str(tmp / 'back.dump')))
    assert (tmp / 'back.dump').read_bytes() == dump.read_bytes()


def test_the_passphrase_never_reaches_a_command_line(backup, monkeypatch):
    module, cfg, tmp = backup
    seen = []
    real = module.subprocess.run

    def spy(cmd, **kw):
        seen.append((cmd, kw.get('env') or {}))
        return real(cmd, **kw)
    monkeypatch.setattr(module.subprocess, 'run', spy)
    module.cmd_files(cfg, Args())
    assert seen and all('unit test passphrase' not in ' '.join(cmd) for cmd, _env in seen)
    assert all(env.get('RESTIC_PASSWORD_FILE') == cfg['passphrase_file'] for _cmd, env in seen)
    assert all('RESTIC_PASSWORD' not in env for _cmd, env in seen)


def test_a_path_that_cannot_be_read_fails_the_backup_and_leaves_no_snapshot(backup):
    module, cfg, tmp = backup
    cfg['paths'] = [{'name': 'data', 'paths': [str(tmp / 'data'), str(tmp / 'missing')]}]
    results = module.cmd_files(cfg, Args())
    assert [r['status'] for r in results] == ['failed', 'failed']
    assert all(e['status'] == 'failed' for e in entries(cfg))
    assert 'missing does not exist' in results[0]['detail']
    assert snapshots(cfg, cfg['targets'][0]) == [] and snapshots(cfg, cfg['targets'][1]) == []


def test_a_target_whose_repository_is_missing_is_failed_and_the_other_good(backup):
    module, cfg, tmp = backup
    shutil.rmtree(str(tmp / 'two' / 'restic'))
    results = module.cmd_files(cfg, Args())
    assert [r['status'] for r in results] == ['good', 'failed']
    assert 'no restic repository there yet' in results[1]['detail']
    # Backups never create a repository: a wrong path or bucket is said, not silently started anew.
    assert not (tmp / 'two' / 'restic').exists()


def test_wrong_passphrase_is_refused_and_writes_nothing(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    ident = entries(cfg)[0]['id']
    (tmp / 'passphrase').write_text('not the passphrase')
    with pytest.raises(module.BackupError, match='wrong passphrase'):
        module.cmd_fetch(cfg, Args(id=ident, output=str(tmp / 'out.tar')))
    assert not os.path.exists(str(tmp / 'out.tar')) and not os.path.exists(str(tmp / 'out.tar.partial'))
    assert [r['status'] for r in module.cmd_init(cfg, None)] == ['failed', 'failed']


def damage_data(target):
    """Change bytes in every data pack of target's repository, as someone with write access to the bucket could."""
    for root, _dirs, files in os.walk(os.path.join(target['path'], 'restic', 'data')):
        for name in files:
            path = os.path.join(root, name)
            os.chmod(path, 0o600)
            with open(path, 'r+b') as handle:
                handle.seek(20)
                handle.write(b'XXXX')


def test_a_changed_object_is_caught_by_check_and_its_restore_refused(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    cfg['verify'] = {'read_data_subset': '100%'}
    ok = module.cmd_verify(cfg, Args(no_restore=True))
    assert [(r['id'], r['result']) for r in ok] == [('restic-one', 'ok'), ('restic-two', 'ok')]
    damage_data(cfg['targets'][0])
    found = module.cmd_verify(cfg, Args(no_restore=True))
    assert [(r['id'], r['result']) for r in found] == [('restic-one', 'failed'), ('restic-two', 'ok')]
    assert 'restic check (100% of the data read) failed' in found[0]['detail']
    one = [e for e in entries(cfg) if e['target'] == 'one'][0]
    assert one['verified']['result'] == 'failed'
    (tmp / 'data' / 'file.txt').write_text('current\n')
    with pytest.raises(module.BackupError, match='damaged in the repository of target one; marked corrupt'):
        module.cmd_restore(cfg, restore_args(target='one'))
    assert (tmp / 'data' / 'file.txt').read_text() == 'current\n'
    assert [e['status'] for e in entries(cfg) if e['target'] == 'one'] == ['corrupt']
    # The copy on the other target is intact and restores.
    assert module.cmd_restore(cfg, restore_args())[0]['target'] == 'two'
    assert (tmp / 'data' / 'file.txt').read_text() == 'precious\n' * 1000


def test_the_full_read_runs_on_its_day(backup, monkeypatch):
    module, cfg, tmp = backup
    calls = []
    real = module.restic

    def spy(cfg, target, args, **kw):
        calls.append(args)
        return real(cfg, target, args, **kw)
    monkeypatch.setattr(module, 'restic', spy)
    cfg['verify'] = {'read_data_subset': '10%', 'full_read_day': module.now().strftime('%a')}
    module.cmd_verify(cfg, Args(no_restore=True))
    assert ['check', '--read-data'] in calls
    calls.clear()
    cfg['verify']['full_read_day'] = ''
    module.cmd_verify(cfg, Args(no_restore=True))
    assert ['check', '--read-data-subset=10%'] in calls


def seed_days(module, cfg, tmp, days, subject='data'):
    """One files snapshot a day for the last `days` days (restic backup --time), newest first."""
    start = module.now().replace(hour=3, minute=0, second=0, microsecond=0)
    for n in range(days):
        module.snapshot_backup(cfg, 'files', subject, 'files', ('paths', [str(tmp / 'data')]),
                               moment=start - datetime.timedelta(days=n))


def test_retention_forgets_per_series_what_the_policy_does_not_keep(backup):
    module, cfg, tmp = backup
    cfg['targets'] = cfg['targets'][:1]
    seed_days(module, cfg, tmp, 5)
    seed_days(module, cfg, tmp, 2, subject='other')
    cfg['retention'] = {'daily': 2, 'weekly': 1, 'monthly': 1, 'yearly': 1}
    results = module.cmd_retention(cfg, Args())
    kept = sorted((e['subject'], e['started'][:10]) for e in entries(cfg))
    listed = snapshots(cfg, cfg['targets'][0])
    assert len(listed) == len(kept)
    # The series are apart: 'other' keeps both its days, 'data' its newest two and the older ones the weekly,
    # monthly and yearly periods name (restic's policy: the newest snapshot of each period).
    assert [day for subject, day in kept if subject == 'other'] == sorted(
        (module.now() - datetime.timedelta(days=n)).strftime('%Y-%m-%d') for n in range(2))
    assert len([1 for subject, _day in kept if subject == 'data']) < 5
    assert all(r['status'] == 'deleted' for r in results) and results
    # The repository shrank: what no snapshot needs is pruned.
    assert 'no snapshot' not in restic_cli(cfg, cfg['targets'][0], 'check').decode()


def test_the_catalogue_is_rebuilt_from_the_repositories(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    before = entries(cfg)
    os.unlink(cfg['catalogue'])
    out = module.cmd_refresh(cfg, Args())
    assert [r['status'] for r in out] == ['refreshed', 'refreshed']
    after = entries(cfg)
    assert [(e['id'], e['ended']) for e in after] == [(e['id'], e['ended']) for e in before]
    # The listing gives the full snapshot id where the backup's summary gave the short one.
    assert all(a['location'].startswith(b['location']) and len(a['location']) == len('restic:') + 64
               for a, b in zip(after, before))
    # Snapshots of another host in the same repository are not this host's backups.
    other = dict(cfg, host='data2', catalogue=str(tmp / 'other.json'))
    module.cmd_refresh(other, Args())
    assert module.cat.load(other['catalogue'])[0]['backups'] == []


def test_a_restore_works_on_a_host_whose_catalogue_is_absent(backup, monkeypatch):
    module, cfg, tmp = backup
    dump = tmp / 'rdb'
    dump.write_bytes(b'REDIS0011' + b'k' * 100)
    module.snapshot_backup(cfg, 'redis', 'redis', 'redis', ('stdin', 'redis.rdb', stream_file(str(dump))))
    defs = tmp / 'definitions.json'
    defs.write_text(json.dumps({'vhosts': [{'name': '/'}], 'users': [], 'queues': [{'name': 'q'}]}))
    module.snapshot_backup(cfg, 'rabbitmq', 'definitions', 'rabbitmq',
                           ('stdin', 'definitions.json', stream_file(str(defs))))
    module.cmd_files(cfg, Args())
    # A fresh host: same inventory name and configuration, no catalogue, no restic cache.
    os.unlink(cfg['catalogue'])
    shutil.rmtree(cfg['restic_cache'])
    restored = {}
    for kind in ('redis', 'rabbitmq'):
        monkeypatch.setattr(module, 'RESTORABLE', dict(module.RESTORABLE, **{
            kind: lambda cfg, entry, plain, moment, k=kind: restored.setdefault(k, open(plain, 'rb').read()) and {}}))
        result = module.cmd_restore(cfg, restore_args(kind=kind))[0]
        assert result['status'] == 'restored' and result['target'] == 'one'
    assert restored == {'redis': dump.read_bytes(), 'rabbitmq': defs.read_bytes()}
    monkeypatch.undo()
    os.unlink(cfg['catalogue'])
    (tmp / 'data' / 'file.txt').write_text('lost\n')
    result = module.cmd_restore(cfg, restore_args(kind='files', subject='data', target='two'))[0]
    assert result['status'] == 'restored' and result['paths'] == [str(tmp / 'data')]
    assert (tmp / 'data' / 'file.txt').read_text() == 'precious\n' * 1000


def test_pgbackrest_sets_are_rebuilt_from_its_info_and_expired_ones_dropped(backup, monkeypatch):
    module, cfg, tmp = backup
    info = {'backup': [
        {'label': '20261120-010000F', 'timestamp': {'start': 1795136400, 'stop': 1795136460},
         'lsn': {'stop': '0/2000100'}, 'info': {'repository': {'size': 100, 'delta': 100}}},
        {'label': '20261127-010000F', 'timestamp': {'start': 1795741200, 'stop': 1795741260},
         'lsn': {'stop': '0/9000100'}, 'info': {'repository': {'size': 200, 'delta': 200}}}]}
    monkeypatch.setattr(module, 'pgbackrest_info', lambda cfg, repo: info)
    cfg['postgresql'] = True
    cfg['targets'] = cfg['targets'][:1]
    module.refresh(cfg)
    sets = [(e['id'], e['location'], e['source_position']) for e in entries(cfg)]
    assert sets == [('pgbackrest-one-20261120-010000F', '20261120-010000F', '0/2000100'),
                    ('pgbackrest-one-20261127-010000F', '20261127-010000F', '0/9000100')]
    # pgBackRest's retention expired the older set: the catalogue follows.
    info['backup'] = info['backup'][1:]
    module.refresh(cfg)
    assert [e['id'] for e in entries(cfg)] == ['pgbackrest-one-20261127-010000F']


def test_a_retired_pgbackrest_generation_is_read_with_its_own_configuration_and_kept_apart(backup, monkeypatch):
    module, cfg, tmp = backup
    cfg['postgresql'] = True
    cfg['pgbackrest_retired'] = [{'generation': 1}]
    assert module.pgbackrest_cmd(cfg, cfg['targets'][1], 'info') == ['pgbackrest', '--stanza=main', '--repo=2', 'info']
    sources = module.pgbackrest_sources(cfg)
    assert [(s['name'], s['repo'], s['retired']) for s in sources] == [
        ('one', 1, False), ('two', 2, False), ('one.g1', 1, True), ('two.g1', 2, True)]
    assert module.pgbackrest_cmd(cfg, sources[3], 'verify') == [
        'pgbackrest', '--config=/etc/pgbackrest/retired-g1.conf', '--stanza=main', '--repo=2', 'verify']

    def info(cfg, source):
        label = '20261120-010000F' if source['retired'] else '20261201-010000F'
        return {'backup': [{'label': label, 'timestamp': {'start': 1795136400, 'stop': 1795136460},
                            'lsn': {'stop': '0/2000100'}, 'info': {'repository': {'size': 1, 'delta': 1}}}]}
    monkeypatch.setattr(module, 'pgbackrest_info', info)
    module.refresh(cfg)
    assert sorted(e['id'] for e in entries(cfg)) == [
        'pgbackrest-one-20261201-010000F', 'pgbackrest-one.g1-20261120-010000F',
        'pgbackrest-two-20261201-010000F', 'pgbackrest-two.g1-20261120-010000F']
    # A second refresh of the current generation leaves the retired one's sets alone.
    module.refresh(cfg)
    assert len(entries(cfg)) == 4


def test_a_passphrase_change_rotates_the_key_of_every_repository(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    old = (tmp / 'passphrase').read_text()
    wanted = tmp / 'passphrase.wanted'
    wanted.write_text('the new unit test passphrase')
    results = module.cmd_rotate_key(cfg, Args(new=str(wanted)))
    assert [r['status'] for r in results] == ['key added', 'key added', 'rotated', 'rotated'], results
    assert (tmp / 'passphrase').read_text() == 'the new unit test passphrase'
    assert oct(os.stat(str(tmp / 'passphrase')).st_mode & 0o777) == '0o600'
    # Every backup reads with the new passphrase; the old one opens nothing any more.
    ident = entries(cfg)[0]['id']
    module.cmd_fetch(cfg, Args(id=ident, output=str(tmp / 'out.tar')))
    for target in cfg['targets']:
        assert len(json.loads(restic_cli(cfg, target, 'key', 'list', '--json'))) == 1
    (tmp / 'old').write_text(old)
    with pytest.raises(module.BackupError, match='wrong passphrase'):
        module.restic(dict(cfg, passphrase_file=str(tmp / 'old')), cfg['targets'][0], ['snapshots'])
    # Run again: nothing to do.
    assert module.cmd_rotate_key(cfg, Args(new=str(wanted))) == [{'id': 'passphrase', 'status': 'unchanged'}]


def test_a_rotation_that_cannot_reach_a_target_keeps_the_old_passphrase_and_resumes(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    wanted = tmp / 'passphrase.wanted'
    wanted.write_text('the new unit test passphrase')
    two = tmp / 'two' / 'restic'
    os.rename(str(two), str(tmp / 'away'))
    os.makedirs(str(two))
    (two / 'config').write_text('not a repository')  # unreadable: neither passphrase opens it
    results = module.cmd_rotate_key(cfg, Args(new=str(wanted)))
    assert [r['status'] for r in results] == ['key added', 'failed'], results
    assert 'the current passphrase stays' in results[1]['detail']
    assert (tmp / 'passphrase').read_text() == 'unit test passphrase'
    assert module.cmd_files(cfg, Args())[0]['status'] == 'good'  # target one opens with both keys meanwhile
    shutil.rmtree(str(two))
    os.rename(str(tmp / 'away'), str(two))
    results = module.cmd_rotate_key(cfg, Args(new=str(wanted)))
    assert [r['status'] for r in results] == ['has the new key', 'key added', 'rotated', 'rotated'], results
    assert [r['status'] for r in module.cmd_files(cfg, Args())] == ['good', 'good']


def test_a_files_restore_takes_only_the_sets_paths_and_leaves_their_parents_alone(backup):
    module, cfg, tmp = backup
    module.cmd_files(cfg, Args())
    # restic's tar also holds every parent directory of the set, with the mode it had at backup time.
    os.chmod(str(tmp), 0o751)
    (tmp / 'sibling').write_text('not in the set\n')
    (tmp / 'data' / 'file.txt').write_text('changed\n')
    result = module.cmd_restore(cfg, restore_args(subject='data'))[0]
    assert result['paths'] == [str(tmp / 'data')]
    assert os.stat(str(tmp)).st_mode & 0o777 == 0o751
    assert (tmp / 'sibling').read_text() == 'not in the set\n'
    assert (tmp / 'data' / 'file.txt').read_text() == 'precious\n' * 1000


def test_docker_volumes_are_sets_of_their_own(backup):
    module = backup[0]
    sets = module.file_sets({'paths': [], 'docker_volumes': ['quiz_uploads']})
    assert sets == [{'name': 'volume-quiz_uploads', 'paths': ['/var/lib/docker/volumes/quiz_uploads/_data'],
                     'service': 'docker-volume'}]


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
    out = module.pgbackrest_verify(cfg, cfg['targets'][0])
    text = 'invalid, total files checked: 961, total valid files: 960; checksum invalid: 1'
    assert out == {'20261127-132224F': {'status': 'invalid', 'text': text}}
    Proc.returncode = 1
    Proc.stderr = 'ERROR: [039]: HTTP request failed'
    assert out != module.pgbackrest_verify(cfg, cfg['targets'][0])
    assert module.pgbackrest_verify(cfg, cfg['targets'][0])['*']['status'] == 'error'


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


def _metric_samples(path):
    parser = pytest.importorskip('prometheus_client.parser')
    with open(path, encoding='utf-8') as handle:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in parser.text_string_to_metric_families(handle.read()) for s in family.samples}


def test_every_run_leaves_metrics_a_stale_or_failed_backup_can_alert_on(backup, monkeypatch, capsys):
    module, cfg, tmp = backup
    cfg['metrics_file'] = str(tmp / 'textfile' / 'aiquiz_backup.prom')
    os.mkdir(str(tmp / 'textfile'))
    (tmp / 'config.json').write_text(json.dumps(cfg))
    monkeypatch.setattr(module, 'CONFIG', str(tmp / 'config.json'))
    before = time.time()
    assert module.main(['files']) == 0
    capsys.readouterr()
    assert stat.S_IMODE(os.stat(cfg['metrics_file']).st_mode) == 0o644
    got = _metric_samples(cfg['metrics_file'])
    series = (('kind', 'files'), ('subject', 'data'), ('target', 'one'))
    assert before - 1 <= got[('aiquiz_backup_last_good_timestamp_seconds', series)] <= time.time()
    assert got[('aiquiz_backup_last_attempt_failed', series)] == 0
    assert got[('aiquiz_backup_command_last_success', (('command', 'files'),))] == 1
    # The set's directory disappears: the next run fails and the metrics say so, the last good time stays.
    fresh = got[('aiquiz_backup_last_good_timestamp_seconds', series)]
    shutil.rmtree(str(tmp / 'data'))
    time.sleep(1)
    assert module.main(['files']) == 1
    capsys.readouterr()
    got = _metric_samples(cfg['metrics_file'])
    assert got[('aiquiz_backup_last_attempt_failed', series)] == 1
    assert got[('aiquiz_backup_last_good_timestamp_seconds', series)] == fresh
    assert got[('aiquiz_backup_command_last_success', (('command', 'files'),))] == 0
    # No secret and nothing but names, times and counts.
    assert 'unit test passphrase' not in open(cfg['metrics_file']).read()
