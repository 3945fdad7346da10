# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the backup host script passes to restic, and the catalogue read back from its listings."""

from __future__ import annotations

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _backup_restic as rs

S3 = {'name': 's3', 'type': 's3', 'bucket': 'backups', 'endpoint': 'minio.example', 'port': 9000,
      'region': 'eu-west-1', 'access_key': 'AK', 'secret_key': 'SK', 'uri_style': 'path'}


def test_a_repository_per_target():
    assert rs.repository({'name': 'local', 'type': 'local', 'path': '/var/backups/aiquiz'}) == \
        '/var/backups/aiquiz/restic'
    assert rs.repository(S3) == 's3:https://minio.example:9000/backups/restic'
    assert rs.repository(dict(S3, prefix='/quiz/prod/')) == 's3:https://minio.example:9000/backups/quiz/prod/restic'
    assert rs.repository(dict(S3, endpoint='')) == 's3:s3.eu-west-1.amazonaws.com/backups/restic'
    with pytest.raises(rs.ResticConfigError, match='no restic repository'):
        rs.repository({'name': 'x', 'type': 'ftp'})


def test_tls_is_verified_unless_switched_off_explicitly():
    assert '--insecure-tls' not in rs.global_args(S3)
    assert '--insecure-tls' not in rs.global_args(dict(S3, verify_tls=True, ca_file=''))
    args = rs.global_args(dict(S3, ca_file='/etc/ssl/private-ca.pem'))
    assert args[args.index('--cacert') + 1] == '/etc/ssl/private-ca.pem'
    assert '--insecure-tls' in rs.global_args(dict(S3, verify_tls=False))
    assert rs.tls_insecure(dict(S3, verify_tls=False)) and not rs.tls_insecure(S3)
    assert 's3.bucket-lookup=dns' in rs.global_args(dict(S3, uri_style='host'))


def test_the_environment_carries_the_passphrase_file_and_nothing_inherited():
    base = {'PATH': '/usr/bin', 'RESTIC_PASSWORD': 'from the caller', 'RESTIC_REPOSITORY': '/elsewhere',
            'AWS_PROFILE': 'other'}
    env = rs.environment(S3, '/etc/aiquiz-backup/passphrase', '/var/cache/x', base=base)
    assert env == {'PATH': '/usr/bin', 'RESTIC_PASSWORD_FILE': '/etc/aiquiz-backup/passphrase',
                   'RESTIC_CACHE_DIR': '/var/cache/x', 'AWS_ACCESS_KEY_ID': 'AK', 'AWS_SECRET_ACCESS_KEY': 'SK',
                   'AWS_DEFAULT_REGION': 'eu-west-1'}


def test_tags_say_kind_host_service_and_subject():
    tags = rs.tags('postgresql-dump', 'data1', 'postgresql', 'quiz', position='0/3000060')
    assert tags == ['kind:postgresql-dump', 'host:data1', 'service:postgresql', 'subject:quiz',
                    'position:0/3000060']
    assert rs.tag_args(tags[:2]) == ['--tag', 'kind:postgresql-dump', '--tag', 'host:data1']
    with pytest.raises(rs.ResticConfigError, match='comma'):
        rs.tags('files', 'data1', 'files', 'a,b')
    assert rs.parse_tags(tags + ['unrelated', 'other:x'])['subject'] == 'quiz'


def snapshot(**kw):
    item = {'time': '2026-11-27T03:00:00.123456789+01:00', 'id': 'ab' * 32, 'short_id': 'abababab',
            'hostname': 'data1', 'paths': ['/quiz.dump'],
            'tags': ['kind:postgresql-dump', 'host:data1', 'service:postgresql', 'subject:quiz', 'position:0/9']}
    item.update(kw)
    return item


def test_a_snapshot_becomes_a_catalogue_entry_of_its_host_only():
    entry = rs.entry_from_snapshot(snapshot(), 's3', 'data1')
    assert entry['id'] == 'postgresql-dump-quiz-20261127T020000Z-s3-abababab'
    assert entry['started'] == entry['ended'] == '2026-11-27T02:00:00Z'
    assert entry['location'] == 'restic:' + 'ab' * 32 and entry['source_position'] == '0/9'
    assert rs.entry_from_snapshot(snapshot(), 's3', 'data2') is None
    assert rs.entry_from_snapshot(snapshot(tags=['kind:other', 'host:data1', 'subject:x']), 's3', 'data1') is None
    assert rs.snapshot_of(entry) == 'ab' * 32 and rs.snapshot_of({'location': '20261127-010000F'}) is None


def test_merge_makes_the_cache_what_the_repository_lists():
    kept = rs.entry_from_snapshot(snapshot(), 's3', 'data1')
    gone = rs.entry_from_snapshot(snapshot(id='cd' * 32, time='2026-11-26T03:00:00Z'), 's3', 'data1')
    new = rs.entry_from_snapshot(snapshot(id='ef' * 32, time='2026-11-28T03:00:00Z'), 's3', 'data1')
    failed = {'id': 'files-x-failed', 'kind': 'files', 'target': 's3', 'status': 'failed', 'started': '2026-11-25'}
    other_target = dict(gone, target='local', id='other')
    cached_kept = dict(kept, status='corrupt', detail='restic dump: ciphertext verification failed',
                       verified={'result': 'failed'})
    catalogue = {'version': 1, 'backups': [failed, gone, cached_kept, other_target]}
    added, dropped = rs.merge(catalogue, 's3', [kept, new])
    assert added == [new['id']] and dropped == [gone['id']]
    ids = [entry['id'] for entry in catalogue['backups']]
    assert ids == ['files-x-failed', 'other', kept['id'], new['id']]
    merged = catalogue['backups'][2]
    # What only the cache knows survives a rebuild.
    assert merged['status'] == 'corrupt' and merged['verified'] == {'result': 'failed'}


def test_retention_and_check_arguments():
    args = rs.forget_args({'daily': 7, 'weekly': 4, 'monthly': 12, 'yearly': 1}, 'data1', 'redis', 'redis')
    assert args == ['forget', '--host', 'data1', '--tag', 'kind:redis,subject:redis', '--group-by', 'host',
                    '--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '12', '--keep-yearly', '1']
    assert rs.check_args(subset='10%') == ['check', '--read-data-subset=10%']
    assert rs.check_args(subset='10%', full=True) == ['check', '--read-data']
    assert rs.stdin_filename('postgresql-dump', 'quiz') == 'quiz.dump'
    with pytest.raises(rs.ResticConfigError):
        rs.stdin_filename('redis', '../x')
