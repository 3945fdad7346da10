# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _backup_catalogue as bc
from ansible_collections.aiquiz.ops.plugins.modules import backup_catalogue


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            backup_catalogue.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def cat_path(tmp_path):
    return str(tmp_path / 'backup' / 'catalogue.json')


def dump_file(tmp_path, name, content=b'encrypted dump bytes'):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path), hashlib.sha256(content).hexdigest(), len(content)


def entry(ident, ended, kind='postgresql-dump', target='local', **extra):
    out = dict(id=ident, kind=kind, target=target, started=ended, ended=ended, status='good')
    out.update(extra)
    return out


def add(capsys, path, item, check=False):
    return run_module(capsys, dict(path=path, action='add', entry=item), check=check)


def test_list_of_a_missing_catalogue_writes_nothing(capsys, cat_path):
    code, result = run_module(capsys, dict(path=cat_path))
    assert code == 0 and result['changed'] is False
    assert result['catalogue'] == {'version': 1, 'backups': []}
    assert not os.path.exists(os.path.dirname(cat_path))


def test_add_is_atomic_private_and_idempotent(capsys, cat_path, tmp_path):
    location, sha, size = dump_file(tmp_path, 'a.enc')
    item = entry('dump-a', '2026-11-27T03:00:00Z', location=location, sha256=sha, size=size, source_position='0/3000060')
    code, result = add(capsys, cat_path, item)
    assert code == 0 and result['changed'] is True
    assert result['entry']['verified'] is None and result['entry']['detail'] is None
    on_disk = json.load(open(cat_path))
    assert on_disk == result['catalogue']
    assert stat.S_IMODE(os.stat(cat_path).st_mode) == 0o640
    assert [name for name in os.listdir(os.path.dirname(cat_path)) if name.startswith('.')] == []
    code, result = add(capsys, cat_path, item)
    assert (code, result['changed']) == (0, False)


def test_check_mode_writes_nothing(capsys, cat_path):
    code, result = add(capsys, cat_path, entry('dump-a', '2026-11-27T03:00:00Z'), check=True)
    assert code == 0 and result['changed'] is True
    assert result['catalogue']['backups'][0]['id'] == 'dump-a'
    assert not os.path.exists(cat_path) and not os.path.exists(cat_path + '.lock')


def test_diff_shows_before_and_after(capsys, cat_path):
    add(capsys, cat_path, entry('dump-a', '2026-11-27T03:00:00Z'))
    code, result = run_module(capsys, dict(path=cat_path, action='add', entry=entry('dump-b', '2026-11-28T03:00:00Z'),
                                           _ansible_diff=True))
    assert [e['id'] for e in result['diff']['before']['backups']] == ['dump-a']
    assert [e['id'] for e in result['diff']['after']['backups']] == ['dump-a', 'dump-b']


def test_latest_good_skips_failed_and_corrupt(capsys, cat_path):
    add(capsys, cat_path, entry('d1', '2026-11-25T03:00:00Z'))
    add(capsys, cat_path, entry('d2', '2026-11-26T03:00:00Z'))
    add(capsys, cat_path, entry('d3', '2026-11-27T03:00:00Z', status='failed', detail='No space left on device'))
    add(capsys, cat_path, entry('d4', '2026-11-28T03:00:00Z', status='corrupt'))
    add(capsys, cat_path, entry('r1', '2026-11-29T03:00:00Z', kind='redis'))
    code, result = run_module(capsys, dict(path=cat_path, action='latest', kind='postgresql-dump'))
    assert code == 0 and result['latest']['id'] == 'd2'
    code, result = run_module(capsys, dict(path=cat_path, action='latest', kind='postgresql-dump',
                                           before='2026-11-25T12:00:00Z'))
    assert result['latest']['id'] == 'd1'
    code, result = run_module(capsys, dict(path=cat_path, action='latest', kind='postgresql-dump', target='s3'))
    assert code == 0 and result['latest'] is None
    code, result = run_module(capsys, dict(path=cat_path, action='latest', kind='postgresql-dump', target='s3',
                                           require_latest=True))
    assert code == 1 and 'no good backup of kind postgresql-dump on target s3' in result['msg']
    code, result = run_module(capsys, dict(path=cat_path, status=['failed', 'corrupt']))
    assert [e['id'] for e in result['backups']] == ['d3', 'd4']


def test_verify_marks_a_changed_or_missing_file_corrupt(capsys, cat_path, tmp_path):
    good, sha_good, size_good = dump_file(tmp_path, 'good.enc', b'good')
    bad, sha_bad, size_bad = dump_file(tmp_path, 'bad.enc', b'will be flipped')
    gone, sha_gone, size_gone = dump_file(tmp_path, 'gone.enc', b'will be removed')
    add(capsys, cat_path, entry('good', '2026-11-25T03:00:00Z', location=good, sha256=sha_good, size=size_good))
    add(capsys, cat_path, entry('bad', '2026-11-26T03:00:00Z', location=bad, sha256=sha_bad, size=size_bad))
    add(capsys, cat_path, entry('gone', '2026-11-27T03:00:00Z', location=gone, sha256=sha_gone, size=size_gone))
    add(capsys, cat_path, entry('remote', '2026-11-27T04:00:00Z', target='s3', location='s3://b/k', sha256=sha_good))
    with open(bad, 'r+b') as handle:
        handle.write(b'W')
    os.unlink(gone)

    code, result = run_module(capsys, dict(path=cat_path, action='verify'), check=True)
    assert code == 0 and result['changed'] is True and sorted(result['corrupt']) == ['bad', 'gone']
    assert json.load(open(cat_path))['backups'][1]['status'] == 'good'

    code, result = run_module(capsys, dict(path=cat_path, action='verify'))
    by_id = dict((item['id'], item) for item in result['results'])
    assert by_id['good']['result'] == 'ok'
    assert by_id['bad']['result'] == 'failed' and 'sha256 of' in by_id['bad']['detail']
    assert by_id['gone']['result'] == 'failed' and 'cannot read' in by_id['gone']['detail']
    assert by_id['remote']['result'] == 'skipped'
    stored = dict((e['id'], e) for e in json.load(open(cat_path))['backups'])
    assert stored['bad']['status'] == 'corrupt' and stored['bad']['verified']['result'] == 'failed'
    assert stored['good']['status'] == 'good' and stored['good']['verified']['result'] == 'ok'
    code, result = run_module(capsys, dict(path=cat_path, action='latest', kind='postgresql-dump', target='local'))
    assert result['latest']['id'] == 'good'
    # A corrupt entry stays corrupt even when the file is put back: verification never promotes it.
    code, result = run_module(capsys, dict(path=cat_path, action='verify', ids=['bad']))
    assert result['corrupt'] == []
    assert json.load(open(cat_path))['backups'][1]['status'] == 'corrupt'


def test_size_mismatch_is_corrupt(capsys, cat_path, tmp_path):
    location, sha, size = dump_file(tmp_path, 'a.enc')
    add(capsys, cat_path, entry('a', '2026-11-27T03:00:00Z', location=location, sha256=sha, size=size + 1))
    code, result = run_module(capsys, dict(path=cat_path, action='verify'))
    assert result['corrupt'] == ['a'] and 'size of' in result['results'][0]['detail']


def test_record_verification_and_readd_keeps_it(capsys, cat_path):
    add(capsys, cat_path, entry('full-1', '2026-11-27T03:00:00Z', kind='postgresql-pgbackrest'))
    code, result = run_module(capsys, dict(path=cat_path, action='record_verification', ids=['full-1'], result='ok',
                                           detail='restored into scratch on port 5499, 12 tables checked'))
    assert code == 0 and result['changed'] is True
    code, result = add(capsys, cat_path, entry('full-1', '2026-11-27T03:00:00Z', kind='postgresql-pgbackrest'))
    assert result['changed'] is False and result['entry']['verified']['result'] == 'ok'
    code, result = run_module(capsys, dict(path=cat_path, action='record_verification', ids=['full-1'],
                                           result='failed', detail='pg_amcheck found errors'))
    assert result['corrupt'] == ['full-1']
    code, result = run_module(capsys, dict(path=cat_path, action='record_verification', ids=['nope'], result='ok'))
    assert code == 1 and 'no backup with id nope' in result['msg']


def test_remove(capsys, cat_path):
    add(capsys, cat_path, entry('a', '2026-11-26T03:00:00Z'))
    add(capsys, cat_path, entry('b', '2026-11-27T03:00:00Z'))
    code, result = run_module(capsys, dict(path=cat_path, action='remove', ids=['a', 'zz']))
    assert (result['changed'], result['removed']) == (True, ['a'])
    code, result = run_module(capsys, dict(path=cat_path, action='remove', ids=['a']))
    assert (result['changed'], result['removed']) == (False, [])


@pytest.mark.parametrize('item, message', [
    (dict(id='x', kind='tape', target='local', ended='t'), 'kind must be one of'),
    (dict(id='-x', kind='redis', target='local', ended='t'), 'id must be'),
    (dict(id='x', kind='redis', target='', ended='t'), 'target must name'),
    (dict(id='x', kind='redis', target='local'), 'a good backup needs its ended time'),
    (dict(id='x', kind='redis', target='local', ended='t', sha256='abc'), 'sha256 must be 64'),
    (dict(id='x', kind='redis', target='local', ended='t', size=-1), 'size must be'),
    (dict(id='x', kind='redis', target='local', ended='t', status='fine'), 'status must be one of'),
    (dict(id='x', kind='redis', target='local', ended='t', colour='blue'), 'unknown keys colour'),
])
def test_bad_entries_are_refused_before_any_write(capsys, cat_path, item, message):
    code, result = add(capsys, cat_path, item)
    assert code == 1 and message in result['msg']
    assert not os.path.exists(cat_path)


def test_failed_backup_is_recorded_without_end(capsys, cat_path):
    code, result = add(capsys, cat_path, dict(id='x', kind='files', target='s3', started='2026-11-27T03:00:00Z',
                                              status='failed', detail='upload failed: 403'))
    assert code == 0 and result['entry']['status'] == 'failed'


def test_bad_arguments(capsys, cat_path):
    code, result = run_module(capsys, dict(path=cat_path, action='latest', before='yesterday'))
    assert code == 1 and 'before must be a UTC time' in result['msg']
    code, result = run_module(capsys, dict(path='relative.json'))
    assert code == 1 and 'path must be absolute' in result['msg']


def test_unreadable_catalogue_is_never_overwritten(capsys, cat_path):
    os.makedirs(os.path.dirname(cat_path))
    for content in ('not json', '{"version": 2, "backups": []}', '{"version": 1, "backups": {}}',
                    '{"version": 1, "backups": [{"id": "a", "status": "good"}, {"id": "a", "status": "good"}]}'):
        with open(cat_path, 'w') as handle:
            handle.write(content)
        code, result = add(capsys, cat_path, entry('x', '2026-11-27T03:00:00Z'))
        assert code == 1 and cat_path in result['msg']
        assert open(cat_path).read() == content


def test_lock_timeout(capsys, cat_path):
    with bc.locked(cat_path, 1):
        code, result = run_module(capsys, dict(path=cat_path, action='add', lock_timeout=0.2,
                                               entry=entry('x', '2026-11-27T03:00:00Z')))
    assert code == 1 and 'stayed locked' in result['msg']


def test_concurrent_updates_lose_nothing(cat_path):
    def worker(n):
        for i in range(10):
            bc.update(cat_path, lambda cat, i=i: bc.add(cat, entry('w%d-%d' % (n, i), '2026-11-27T03:00:00Z')))
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(json.load(open(cat_path))['backups']) == 40


def test_tables_of_a_pgbackrest_set_are_kept_and_checked(capsys, cat_path):
    item = entry('pgbackrest-local-20261127-030000F', '2026-11-27T03:00:00Z', kind='postgresql-pgbackrest',
                 location='20261127-030000F', tables=['quiz.keep_me'])
    code, result = add(capsys, cat_path, item)
    assert code == 0 and result['entry']['tables'] == ['quiz.keep_me']
    code, result = add(capsys, cat_path, dict(item, id='bad-tables', tables='quiz.keep_me'))
    assert code == 1 and "tables must be a list of table names" in result['msg']
    assert [e['id'] for e in json.load(open(cat_path))['backups']] == ['pgbackrest-local-20261127-030000F']


def _metrics(text):
    parser = pytest.importorskip('prometheus_client.parser')
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_say_per_series_how_fresh_how_many_and_what_verification_found():
    data = bc.empty_catalogue()
    good = dict(kind='redis', subject='redis', target='s3', status='good', location='restic:1',
                started='2026-12-01T01:00:00Z', ended='2026-12-01T01:00:05Z')
    data['backups'] = [
        dict(good, id='r1', verified={'at': '2026-12-01T02:00:00Z', 'result': 'ok', 'detail': 'check'}),
        dict(good, id='r2', started='2026-12-02T01:00:00Z', ended='2026-12-02T01:00:05Z',
             verified={'at': '2026-12-02T02:00:00Z', 'result': 'failed', 'detail': 'damaged pack'}),
        dict(good, id='r3', status='failed', started='2026-12-03T01:00:00Z', ended='2026-12-03T01:00:01Z'),
        dict(good, id='d1', kind='postgresql-dump', subject='quiz "main"', status='corrupt'),
    ]
    runs = {'redis': {'at': '2026-12-03T01:00:01Z', 'ok': False}, 'verify': {'at': '2026-12-02T02:00:00Z', 'ok': True}}
    got = _metrics(bc.metrics_text(data, runs))
    redis = (('kind', 'redis'), ('subject', 'redis'), ('target', 's3'))
    dump = (('kind', 'postgresql-dump'), ('subject', 'quiz "main"'), ('target', 's3'))
    assert got[('aiquiz_backup_last_good_timestamp_seconds', redis)] == bc.iso_epoch('2026-12-02T01:00:05Z')
    assert got[('aiquiz_backup_good', redis)] == 2
    assert got[('aiquiz_backup_last_attempt_failed', redis)] == 1
    assert got[('aiquiz_backup_last_verification_timestamp_seconds', redis)] == bc.iso_epoch('2026-12-02T02:00:00Z')
    assert got[('aiquiz_backup_last_verification_ok', redis)] == 0
    assert got[('aiquiz_backup_corrupt', dump)] == 1 and got[('aiquiz_backup_good', dump)] == 0
    # A series with no good backup has no freshness sample to look fine with.
    assert ('aiquiz_backup_last_good_timestamp_seconds', dump) not in got
    assert got[('aiquiz_backup_command_last_success', (('command', 'redis'),))] == 0
    assert got[('aiquiz_backup_command_last_success', (('command', 'verify'),))] == 1
    assert bc.iso_epoch('2026-12-01T00:00:00Z') == 1796083200.0


def test_metrics_of_an_empty_catalogue_are_valid_and_empty():
    assert _metrics(bc.metrics_text(bc.empty_catalogue())) == {}
