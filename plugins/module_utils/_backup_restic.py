# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: copied beside the backup role's host
# script (/usr/local/lib/aiquiz-backup). Standard library only, Python 3.8+.
#
# restic as the storage layer of every backup but pgBackRest's: one restic
# repository per backup target, what to pass to restic for it (repository,
# TLS, environment), the tags that make a snapshot findable without any
# host-side state, and the catalogue entries read back from
# `restic snapshots --json`. Running restic is the host script's job.

from __future__ import annotations

import datetime
import os

# Tags of every snapshot this collection takes: kind:<catalogue kind>, host:<inventory host>,
# service:<what produced it>, subject:<database, set name...>, and for dumps the WAL position.
TAG_KEYS = ('kind', 'host', 'service', 'subject', 'position')
RESTIC_KINDS = ('postgresql-dump', 'redis', 'rabbitmq', 'files')
# Inherited variables that would change which repository or key restic uses.
_SCRUBBED_ENV = ('RESTIC_', 'AWS_')


class ResticConfigError(ValueError):
    """A target restic cannot be pointed at."""


def repository(target):
    """The restic repository of a backup target: <path>/restic on a local one, an s3: URL on S3."""
    if target['type'] == 'local':
        return os.path.join(target['path'], 'restic')
    if target['type'] != 's3':
        raise ResticConfigError('backup target %s: type %r has no restic repository'
                                % (target.get('name'), target['type']))
    prefix = (target.get('prefix') or '').strip('/')
    path = '/'.join(part for part in (target['bucket'], prefix, 'restic') if part)
    endpoint = target.get('endpoint')
    if endpoint:
        return 's3:https://%s:%s/%s' % (endpoint, target.get('port') or 443, path)
    # AWS: the region's endpoint, as pgBackRest's repository of the same target uses.
    return 's3:s3.%s.amazonaws.com/%s' % (target.get('region') or 'us-east-1', path)


def tls_insecure(target):
    return target['type'] == 's3' and target.get('verify_tls', True) is False


def global_args(target):
    """restic's options for the target (before the command): repository, TLS, S3 addressing."""
    args = ['--repo', repository(target)]
    if target['type'] == 's3':
        if target.get('ca_file'):
            args += ['--cacert', target['ca_file']]
        if tls_insecure(target):
            args.append('--insecure-tls')
        lookup = 'path' if target.get('uri_style', 'path') == 'path' else 'dns'
        args += ['--option', 's3.bucket-lookup=%s' % lookup]
        if target.get('region'):
            args += ['--option', 's3.region=%s' % target['region']]
    return args


def environment(target, passphrase_file, cache_dir, base=None):
    """restic's environment: the passphrase by file (never on a command line), the S3 keys, the cache.
    Inherited RESTIC_* and AWS_* variables are dropped so that nothing outside the configuration
    chooses the repository, the key or the credentials."""
    env = dict((key, value) for key, value in (os.environ if base is None else base).items()
               if not key.startswith(_SCRUBBED_ENV))
    env['RESTIC_PASSWORD_FILE'] = passphrase_file
    env['RESTIC_CACHE_DIR'] = cache_dir
    if target['type'] == 's3':
        if target.get('access_key'):
            env['AWS_ACCESS_KEY_ID'] = target['access_key']
        if target.get('secret_key'):
            env['AWS_SECRET_ACCESS_KEY'] = target['secret_key']
        if target.get('region'):
            env['AWS_DEFAULT_REGION'] = target['region']
    return env


def tags(kind, host, service, subject, position=None):
    out = ['kind:%s' % kind, 'host:%s' % host, 'service:%s' % service, 'subject:%s' % subject]
    if position:
        out.append('position:%s' % position)
    for tag in out:
        if ',' in tag or not tag.split(':', 1)[1]:
            raise ResticConfigError('snapshot tag %r is empty or holds a comma' % tag)
    return out


def stdin_filename(kind, subject):
    """The file name a stream is stored under in its snapshot (restic backup --stdin-filename)."""
    ext = {'postgresql-dump': 'dump', 'redis': 'rdb', 'rabbitmq': 'json'}[kind]
    if '/' in subject or subject in ('', '.', '..'):
        raise ResticConfigError('%s subject %r cannot name a file' % (kind, subject))
    return '%s.%s' % (subject, ext)


def tag_args(tag_list):
    args = []
    for tag in tag_list:
        args += ['--tag', tag]
    return args


def parse_tags(tag_list):
    out = {}
    for tag in tag_list or []:
        key, sep, value = tag.partition(':')
        if sep and key in TAG_KEYS:
            out[key] = value
    return out


def snapshot_time(text):
    """restic's snapshot time (RFC 3339, nanoseconds, any offset) as ISO 8601 UTC to the second."""
    text = text.strip()
    if text.endswith(('Z', 'z')):
        text = text[:-1] + '+00:00'
    main, _dot, rest = text.partition('.')
    if rest:
        # Python's fromisoformat takes at most microseconds: drop the fraction, keep the offset.
        offset = next((rest[i:] for i in range(len(rest)) if rest[i] in '+-'), '')
        text = main + offset
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def entry_id(kind, subject, moment, target_name, snapshot_id):
    stamp = moment.replace('-', '').replace(':', '')
    return '%s-%s-%s-%s-%s' % (kind, subject, stamp, target_name, snapshot_id[:8])


def entry_from_snapshot(snapshot, target_name, host):
    """The catalogue entry of one snapshot of `restic snapshots --json`; None for a snapshot that is
    not one of this host's backups (another host, or no kind tag of ours)."""
    info = parse_tags(snapshot.get('tags'))
    if info.get('kind') not in RESTIC_KINDS or info.get('host') != host or not info.get('subject'):
        return None
    moment = snapshot_time(snapshot['time'])
    return {
        'id': entry_id(info['kind'], info['subject'], moment, target_name, snapshot['id']),
        'kind': info['kind'], 'subject': info['subject'], 'target': target_name,
        'location': 'restic:%s' % snapshot['id'], 'started': moment, 'ended': moment,
        'source_position': info.get('position'), 'status': 'good', 'detail': None, 'verified': None,
        'size': None, 'sha256': None, 'tables': None,
    }


def snapshot_of(entry):
    """The restic snapshot id of a catalogue entry, None when it is not a restic one."""
    location = entry.get('location') or ''
    return location[len('restic:'):] if location.startswith('restic:') else None


def merge(catalogue, target_name, listed):
    """Make the catalogue's restic entries of target_name exactly the listed ones (the repository is the
    record): entries whose snapshot is gone are dropped, new snapshots are added. What the cache alone
    knows is kept: verification results, a corrupt mark, and failed attempts (they have no snapshot).
    Returns (added ids, dropped ids)."""
    old = dict((entry['id'], entry) for entry in catalogue['backups']
               if entry.get('target') == target_name and snapshot_of(entry))
    new_ids = set(entry['id'] for entry in listed)
    dropped = sorted(ident for ident in old if ident not in new_ids)
    added = []
    kept = [entry for entry in catalogue['backups'] if entry['id'] not in old]
    for entry in listed:
        previous = old.get(entry['id'])
        if previous is None:
            added.append(entry['id'])
        else:
            entry = dict(entry, verified=previous.get('verified'))
            if previous.get('status') == 'corrupt':
                entry.update(status='corrupt', detail=previous.get('detail'))
        kept.append(entry)
    kept.sort(key=lambda item: (item.get('started') or item.get('ended') or '', item['id']))
    catalogue['backups'] = kept
    return sorted(added), dropped


def forget_args(policy, host, kind, subject):
    """`restic forget` of one series (this host's snapshots of one kind and subject) with the role's
    grandfather-father-son policy. Each series is its own group whatever else its tags say (a dump's
    position differs every time); the host script prunes once after all series."""
    args = ['forget', '--host', host, '--tag', 'kind:%s,subject:%s' % (kind, subject), '--group-by', 'host']
    for period in ('daily', 'weekly', 'monthly', 'yearly'):
        args += ['--keep-%s' % period, str(int(policy[period]))]
    return args


def check_args(subset=None, full=False):
    """`restic check`, reading back all the data (full) or a subset of it (such as 10% or 1/7)."""
    if full:
        return ['check', '--read-data']
    if subset:
        return ['check', '--read-data-subset=%s' % subset]
    return ['check']
