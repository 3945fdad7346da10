# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: backs the aiquiz.ops.backup_catalogue
# module and the backup role's host script (/usr/local/lib/aiquiz-backup/,
# a copy of this file), so both write the same catalogue the same way.
# Standard library only, Python 3.8+.
#
# The catalogue of one host: a JSON file listing every backup taken there,
# with its checksum, its times, its source position and what verification
# found. Changes hold an exclusive fcntl lock on <path>.lock and are written
# atomically (temporary file, fsync, rename).

from __future__ import annotations

import copy
import datetime
import errno
import hashlib
import json
import re

try:
    from ansible_collections.aiquiz.ops.plugins.module_utils import _files
except ImportError:
    # Copied beside the backup role's host scripts (/usr/local/lib/aiquiz-backup), with _files.py.
    import _files  # pylint: disable=import-error

CATALOGUE_VERSION = 1
STATUSES = ('running', 'good', 'failed', 'corrupt')
KINDS = ('postgresql-pgbackrest', 'postgresql-dump', 'redis', 'rabbitmq', 'files')
ENTRY_KEYS = ('id', 'kind', 'subject', 'target', 'location', 'size', 'sha256', 'started', 'ended', 'source_position',
              'status', 'detail', 'verified', 'tables')
FILE_MODE = 0o640
DIR_MODE = 0o750
ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}$')
SHA_RE = re.compile(r'^[0-9a-f]{64}$')


class CatalogueError(Exception):
    """A catalogue that cannot be read, or a change it refuses."""


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def empty_catalogue():
    return {'version': CATALOGUE_VERSION, 'backups': []}


def check_catalogue(data, path):
    def bad(what):
        raise CatalogueError('backup catalogue %s is not valid: %s; fix or move the file away (the module '
                             'never overwrites a catalogue it cannot read)' % (path, what))
    if not isinstance(data, dict):
        bad('the top level is not an object')
    if data.get('version') != CATALOGUE_VERSION:
        bad('version is %r, expected %d' % (data.get('version'), CATALOGUE_VERSION))
    if not isinstance(data.get('backups'), list):
        bad('backups is not a list')
    seen = set()
    for index, entry in enumerate(data['backups']):
        if not isinstance(entry, dict) or not isinstance(entry.get('id'), str):
            bad('backups[%d] is not an entry with an id' % index)
        if entry['id'] in seen:
            bad('backup id %s appears twice' % entry['id'])
        seen.add(entry['id'])
        if entry.get('status') not in STATUSES:
            bad('backup %s has status %r' % (entry['id'], entry.get('status')))


def load(path):
    """(catalogue, existed). A missing file is an empty catalogue."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return empty_catalogue(), False
        raise
    try:
        data = json.loads(raw.decode('utf-8'))
    except ValueError as exc:
        raise CatalogueError('backup catalogue %s is not valid JSON (%s); fix or move the file away' % (path, exc))
    check_catalogue(data, path)
    return data, True


def serialize(catalogue):
    return json.dumps(catalogue, indent=2, sort_keys=True) + '\n'


def write_atomic(path, catalogue):
    _files.write_atomic(path, serialize(catalogue), FILE_MODE, DIR_MODE, keep_owner=True)


def locked(path, timeout, poll=0.05):
    """Hold an exclusive fcntl lock on <path>.lock, waiting up to timeout seconds."""
    return _files.locked(path, timeout, lambda name: CatalogueError(
        'backup catalogue %s stayed locked for %s s (lock file %s): another backup or verification is writing it'
        % (path, timeout, name)), poll, FILE_MODE, DIR_MODE)


def update(path, change, timeout=30):
    """Apply change(catalogue) -> result under the lock; write when the catalogue changed. Returns result."""
    with locked(path, timeout):
        before = load(path)[0]
        after = copy.deepcopy(before)
        result = change(after)
        if after != before:
            write_atomic(path, after)
        return result


# --------------------------------------------------------------------------
# Entries
# --------------------------------------------------------------------------

def normalise_entry(entry):
    """A complete entry from the given fields; raises CatalogueError on bad fields."""
    if not isinstance(entry, dict):
        raise CatalogueError('entry must be a dictionary, got %r' % (entry,))
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise CatalogueError('entry has unknown keys %s; known keys: %s' % (', '.join(unknown), ', '.join(ENTRY_KEYS)))
    errors = []
    ident = entry.get('id')
    if not isinstance(ident, str) or not ID_RE.match(ident):
        errors.append('id must be 1-200 letters, digits, ".", "_", ":", "+" or "-" starting with a letter or digit, '
                      'got %r' % (ident,))
    if entry.get('kind') not in KINDS:
        errors.append('kind must be one of %s, got %r' % (', '.join(KINDS), entry.get('kind')))
    if not isinstance(entry.get('target'), str) or not entry.get('target'):
        errors.append('target must name the backup target, got %r' % (entry.get('target'),))
    status = entry.get('status', 'good')
    if status not in STATUSES:
        errors.append('status must be one of %s, got %r' % (', '.join(STATUSES), status))
    sha = entry.get('sha256')
    if sha is not None and (not isinstance(sha, str) or not SHA_RE.match(sha)):
        errors.append('sha256 must be 64 lowercase hex digits, got %r' % (sha,))
    size = entry.get('size')
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        errors.append('size must be a whole number of bytes >= 0, got %r' % (size,))
    tables = entry.get('tables')
    if tables is not None and (not isinstance(tables, list) or not all(isinstance(t, str) and t for t in tables)):
        errors.append('tables must be a list of table names (database.table), got %r' % (tables,))
    if status == 'good' and not entry.get('ended'):
        errors.append('a good backup needs its ended time')
    if errors:
        raise CatalogueError('; '.join(errors))
    out = dict((key, entry.get(key)) for key in ENTRY_KEYS)
    out['status'] = status
    return out


def find(catalogue, ident):
    for entry in catalogue['backups']:
        if entry['id'] == ident:
            return entry
    return None


def add(catalogue, entry):
    """Insert or update an entry (sorted by started, then id). Returns the stored entry.

    An update keeps the recorded verification unless the entry gives one.
    """
    new = normalise_entry(entry)
    old = find(catalogue, new['id'])
    if old is not None:
        if new['verified'] is None:
            new['verified'] = old.get('verified')
        old.clear()
        old.update(new)
        return old
    catalogue['backups'].append(new)
    catalogue['backups'].sort(key=lambda item: (item.get('started') or item.get('ended') or '', item['id']))
    return new


def select(catalogue, kind=None, target=None, status=None, ids=None):
    out = []
    for entry in catalogue['backups']:
        if kind and entry.get('kind') != kind:
            continue
        if target and entry.get('target') != target:
            continue
        if status and entry.get('status') not in (status if isinstance(status, (list, tuple)) else [status]):
            continue
        if ids is not None and entry['id'] not in ids:
            continue
        out.append(entry)
    return out


def latest_good(catalogue, kind=None, target=None, before=None):
    """Newest good entry (by ended, then id), optionally ended at or before `before` (ISO text)."""
    best = None
    for entry in select(catalogue, kind=kind, target=target, status='good'):
        if before and (entry.get('ended') or '') > before:
            continue
        key = (entry.get('ended') or '', entry['id'])
        if best is None or key > (best.get('ended') or '', best['id']):
            best = entry
    return best


def sha256_stream(stream, chunk=1 << 20, sink=None):
    """(sha256 hex, size) of what a binary stream yields; each block also goes to sink when given."""
    digest = hashlib.sha256()
    size = 0
    while True:
        block = stream.read(chunk)
        if not block:
            break
        digest.update(block)
        size += len(block)
        if sink is not None:
            sink(block)
    return digest.hexdigest(), size


def sha256_file(path, chunk=1 << 20):
    with open(path, 'rb') as handle:
        return sha256_stream(handle, chunk)


def record_verification(entry, result, detail, at=None, mark_corrupt=True):
    """Record a verification result on an entry; a failed one makes a good entry corrupt."""
    entry['verified'] = {'at': at or utc_now(), 'result': result, 'detail': detail}
    if result == 'failed' and mark_corrupt and entry['status'] == 'good':
        entry['status'] = 'corrupt'
        entry['detail'] = 'verification failed: %s' % detail


def verify_files(catalogue, entries, at=None, reader=sha256_file):
    """Check sha256 and size of every entry whose location is a local file.

    Returns a list of {id, result: ok | failed | skipped, detail}. Entries
    without a local location or a checksum are skipped (not changed).
    """
    results = []
    for entry in entries:
        location = entry.get('location') or ''
        if entry['status'] in ('failed', 'running'):
            results.append({'id': entry['id'], 'result': 'skipped', 'detail': 'status is %s' % entry['status']})
            continue
        if not location.startswith('/') or not entry.get('sha256'):
            results.append({'id': entry['id'], 'result': 'skipped',
                            'detail': 'no local file with a checksum (location %r)' % location})
            continue
        try:
            digest, size = reader(location)
        except (IOError, OSError) as exc:
            detail = 'cannot read %s: %s' % (location, exc.strerror or exc)
            result = 'failed'
        else:
            if digest != entry['sha256']:
                result = 'failed'
                detail = 'sha256 of %s is %s, the catalogue has %s' % (location, digest, entry['sha256'])
            elif entry.get('size') is not None and size != entry['size']:
                result, detail = 'failed', 'size of %s is %d, the catalogue has %d' % (location, size, entry['size'])
            else:
                result, detail = 'ok', 'sha256 matches'
        record_verification(entry, result, detail, at=at)
        results.append({'id': entry['id'], 'result': result, 'detail': detail})
    return results


# --------------------------------------------------------------------------
# Metrics for the node exporter's textfile collector
# --------------------------------------------------------------------------

METRICS = (
    ('aiquiz_backup_last_good_timestamp_seconds', 'End of the newest good backup of the series (kind, subject, target).'),
    ('aiquiz_backup_good', 'Good backups of the series in the catalogue.'),
    ('aiquiz_backup_last_attempt_failed', '1 when the newest attempt of the series failed, else 0.'),
    ('aiquiz_backup_corrupt', 'Backups of the series a verification found damaged.'),
    ('aiquiz_backup_last_verification_timestamp_seconds', 'Time of the newest verification of the series.'),
    ('aiquiz_backup_last_verification_ok', '1 when the newest verification of the series passed, else 0.'),
    ('aiquiz_backup_command_last_run_timestamp_seconds', 'When aiquiz-backup last ran the command.'),
    ('aiquiz_backup_command_last_success', '1 when the last run of the command succeeded, else 0.'),
)


def iso_epoch(text):
    """Seconds since the epoch of a catalogue time (ISO 8601, UTC)."""
    moment = datetime.datetime.strptime(text.replace('Z', '+0000'), '%Y-%m-%dT%H:%M:%S%z')
    return moment.timestamp()


def _label_value(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def _labels(**labels):
    return '{%s}' % ','.join('%s="%s"' % (key, _label_value(labels[key])) for key in sorted(labels))


def metrics_text(catalogue, runs=None):
    """The catalogue's state in Prometheus' text format, for a stale, failed or damaged backup to alert on.

    A series is one kind, subject and target. runs: {command: {'at': ISO time, 'ok': bool}}, the last run of
    each aiquiz-backup command. Only what the catalogue records is written: a series that never had a good
    backup has no last_good sample (an alert on absent() or on last_attempt_failed catches it)."""
    series = {}
    for entry in catalogue['backups']:
        key = (entry['kind'], entry.get('subject') or '', entry['target'])
        series.setdefault(key, []).append(entry)
    samples = dict((name, []) for name, _help in METRICS)
    for (kind, subject, target), entries in sorted(series.items()):
        labels = _labels(kind=kind, subject=subject, target=target)
        good = [e for e in entries if e['status'] == 'good' and e.get('ended')]
        if good:
            newest = max(iso_epoch(e['ended']) for e in good)
            samples['aiquiz_backup_last_good_timestamp_seconds'].append((labels, newest))
        samples['aiquiz_backup_good'].append((labels, len(good)))
        attempts = [e for e in entries if e['status'] in ('good', 'failed', 'corrupt')
                    and (e.get('started') or e.get('ended'))]
        if attempts:
            last = max(attempts, key=lambda e: (e.get('started') or e.get('ended'), e['id']))
            samples['aiquiz_backup_last_attempt_failed'].append((labels, int(last['status'] == 'failed')))
        samples['aiquiz_backup_corrupt'].append((labels, sum(1 for e in entries if e['status'] == 'corrupt')))
        checks = [e['verified'] for e in entries if isinstance(e.get('verified'), dict) and e['verified'].get('at')]
        if checks:
            check = max(checks, key=lambda c: c['at'])
            samples['aiquiz_backup_last_verification_timestamp_seconds'].append((labels, iso_epoch(check['at'])))
            samples['aiquiz_backup_last_verification_ok'].append((labels, int(check.get('result') == 'ok')))
    for command, run in sorted((runs or {}).items()):
        labels = _labels(command=command)
        samples['aiquiz_backup_command_last_run_timestamp_seconds'].append((labels, iso_epoch(run['at'])))
        samples['aiquiz_backup_command_last_success'].append((labels, int(bool(run['ok']))))
    lines = []
    for name, text in METRICS:
        if not samples[name]:
            continue
        lines += ['# HELP %s %s' % (name, text), '# TYPE %s gauge' % name]
        lines += ['%s%s %s' % (name, labels, repr(float(value)) if isinstance(value, float) else value)
                  for labels, value in samples[name]]
    return '\n'.join(lines) + '\n'
