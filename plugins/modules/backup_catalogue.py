#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_catalogue
short_description: Keep the catalogue of the backups taken on a host and verify their checksums
version_added: 0.1.0
description:
  - Records, in a JSON file on the host, every backup taken there (id, kind, target, location, size, sha256, start and
    end times, source position such as the PostgreSQL WAL LSN, status and verification result) and answers which
    backup is the latest good one of a kind.
  - The aiquiz.ops.backup role keeps this file as a cache of its repositories' own listings (C(restic snapshots),
    C(pgbackrest info)); its host script rebuilds it (C(aiquiz-backup refresh)), so the file is never the only
    record of a backup.
  - Verifies backups whose O(action=verify) location is a local file by reading it again and comparing its sha256
    and size with the catalogue; a mismatch or a missing file marks the entry V(corrupt), so it is never chosen as
    the latest good backup again.
  - Records the result of other verifications (a test restore of a pgBackRest backup, a check of an object in S3)
    with O(action=record_verification).
  - 'The file is written atomically (temporary file beside it, C(fsync), rename) with mode C(0640); every change holds
    an exclusive C(fcntl) lock on O(path) plus C(.lock), shared with the backup role''s host script, which writes
    the same file with the same code.'
  - A catalogue that cannot be read is an error naming the file and the problem; the module never overwrites it.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Computes the same result as a real run (checksums are read) and writes nothing.
  diff_mode:
    support: full
    details: Returns the whole catalogue before and after the change.
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - Absolute path of the catalogue file. A missing file is an empty catalogue, created by the first change.
    type: path
    default: /var/lib/aiquiz/backup/catalogue.json
  action:
    description:
      - V(list) changes nothing and returns the entries matching O(kind), O(target), O(status) and O(ids).
      - V(latest) changes nothing and returns in RV(latest) the newest V(good) entry of O(kind) (and O(target)),
        ended at or before O(before) when given; null when there is none (or a failure with O(require_latest)).
      - V(add) inserts O(entry), or replaces the entry with its id (its recorded verification is kept unless O(entry)
        gives one). No change when the stored entry is already equal.
      - V(verify) reads every matching entry with a local file location again and records the result; RV(results)
        lists them. Entries whose status is V(failed) or V(running), or without a local file and a checksum, are
        reported as V(skipped) and left alone.
      - V(record_verification) records O(result) and O(detail) on the entries of O(ids); a V(failed) result makes a
        V(good) entry V(corrupt).
      - V(remove) deletes the entries of O(ids) (entries already gone are no change), for example after retention
        deleted their files.
    type: str
    choices: [list, latest, add, verify, record_verification, remove]
    default: list
  entry:
    description:
      - The entry for O(action=add).
      - 'Keys: C(id) (required; 1-200 letters, digits, C(.), C(_), C(:), C(+), C(-)), C(kind) (required; one of
        V(postgresql-pgbackrest), V(postgresql-dump), V(redis), V(rabbitmq), V(files)), C(subject) (what was backed
        up, for example the database name; retention counts each kind, subject and target apart), C(target) (required; the
        name of the backup target), C(location) (C(restic:<snapshot id>), pgBackRest label, or a file path), C(size)
        (bytes), C(sha256) (64 lowercase hex digits), C(started), C(ended) (ISO 8601 UTC; required when good),
        C(source_position) (for example the WAL LSN), C(status) (V(running), V(good), V(failed), V(corrupt);
        default V(good)), C(detail) (why it failed), C(verified), C(tables) (for pgBackRest sets, the verification
        tables, as C(database.table), that existed when the set was taken; a test restore missing one of them fails,
        one missing that is not listed was not there yet).'
    type: dict
  kind:
    description: Only entries of this kind (for V(list), V(latest), V(verify)).
    type: str
    choices: [postgresql-pgbackrest, postgresql-dump, redis, rabbitmq, files]
  target:
    description: Only entries of this backup target (for V(list), V(latest), V(verify)).
    type: str
  status:
    description: Only entries in one of these statuses (for V(list) and V(verify)).
    type: list
    elements: str
    choices: [running, good, failed, corrupt]
  ids:
    description:
      - Only these entries. Required for V(record_verification) and V(remove); with V(list) and V(verify) it narrows
        the selection. An unknown id is an error for V(record_verification).
    type: list
    elements: str
  before:
    description: For V(latest), only entries that ended at or before this ISO 8601 UTC time (C(YYYY-MM-DDTHH:MM:SSZ)).
    type: str
  require_latest:
    description: For V(latest), fail (naming the kind and target) when no good entry matches.
    type: bool
    default: false
  result:
    description: The result for V(record_verification).
    type: str
    choices: [ok, failed]
  detail:
    description: What the verification found, recorded with O(result).
    type: str
    default: ''
  lock_timeout:
    description: Seconds to wait for the lock held by another writer before failing.
    type: float
    default: 30
notes:
  - 'The file holds C(version) (V(1)) and C(backups), a list of entries ordered by start time, each with every key of
    O(entry) and C(verified), null or C({at, result, detail}).'
seealso:
  - module: aiquiz.ops.release
"""

EXAMPLES = r"""
- name: Record a logical dump
  aiquiz.ops.backup_catalogue:
    action: add
    entry:
      id: postgresql-dump-quiz-20261127T030000Z
      kind: postgresql-dump
      target: local
      location: /var/backups/aiquiz/postgresql-dump/quiz-20261127T030000Z.dump.zst.enc
      size: 104857600
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      started: '2026-11-27T03:00:00Z'
      ended: '2026-11-27T03:01:12Z'
      source_position: 0/3000060
      status: good

- name: Verify every local backup file again
  aiquiz.ops.backup_catalogue:
    action: verify
  register: verification

- name: Latest good dump to restore from
  aiquiz.ops.backup_catalogue:
    action: latest
    kind: postgresql-dump
    target: local
    require_latest: true
  register: latest_dump
"""

RETURN = r"""
catalogue:
  description: The whole catalogue after the action (what it would be, in check mode).
  returned: always
  type: dict
  sample:
    version: 1
    backups:
      - id: postgresql-dump-quiz-20261127T030000Z
        kind: postgresql-dump
        subject: quiz
        target: local
        location: /var/backups/aiquiz/postgresql-dump/quiz-20261127T030000Z.dump.zst.enc
        size: 104857600
        sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
        started: '2026-11-27T03:00:00Z'
        ended: '2026-11-27T03:01:12Z'
        source_position: 0/3000060
        status: good
        detail: null
        verified: {at: '2026-11-27T04:00:00Z', result: ok, detail: sha256 matches}
backups:
  description: The entries the selection (O(kind), O(target), O(status), O(ids)) matches, oldest first.
  returned: always
  type: list
  elements: dict
latest:
  description: For O(action=latest), the newest good entry matching, else null.
  returned: always
  type: dict
entry:
  description: For O(action=add), the entry as stored.
  returned: when O(action=add)
  type: dict
results:
  description: For O(action=verify) and O(action=record_verification), one C({id, result, detail}) per entry looked at;
    C(result) is V(ok), V(failed) or V(skipped).
  returned: always
  type: list
  elements: dict
  sample: [{id: redis-20261127T030000Z, result: failed, detail: 'sha256 of /var/backups/... is 00..., the catalogue has 9f...'}]
corrupt:
  description: Ids of the entries marked corrupt by this action.
  returned: always
  type: list
  elements: str
removed:
  description: Ids removed by O(action=remove).
  returned: always
  type: list
  elements: str
"""

import copy
import re
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils._backup_catalogue import (
    KINDS,
    STATUSES,
    CatalogueError,
    add,
    find,
    latest_good,
    load,
    locked,
    normalise_entry,
    record_verification,
    select,
    utc_now,
    verify_files,
    write_atomic,
)

WRITES = ('add', 'verify', 'record_verification', 'remove')
ISO_Z = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')


def argument_spec():
    return dict(
        path=dict(type='path', default='/var/lib/aiquiz/backup/catalogue.json'),
        action=dict(type='str', choices=['list', 'latest', 'add', 'verify', 'record_verification', 'remove'],
                    default='list'),
        entry=dict(type='dict'),
        kind=dict(type='str', choices=list(KINDS)),
        target=dict(type='str'),
        status=dict(type='list', elements='str', choices=list(STATUSES)),
        ids=dict(type='list', elements='str'),
        before=dict(type='str'),
        require_latest=dict(type='bool', default=False),
        result=dict(type='str', choices=['ok', 'failed']),
        detail=dict(type='str', default=''),
        lock_timeout=dict(type='float', default=30),
    )


def apply(catalogue, params):
    """Run the action on catalogue (changed in place); return the action's facts."""
    action = params['action']
    out = dict(results=[], corrupt=[], removed=[])
    if action == 'add':
        out['entry'] = add(catalogue, params['entry'])
    elif action == 'verify':
        entries = select(catalogue, kind=params['kind'], target=params['target'], status=params['status'],
                         ids=params['ids'])
        before = dict((entry['id'], entry['status']) for entry in entries)
        out['results'] = verify_files(catalogue, entries)
        out['corrupt'] = [entry['id'] for entry in entries
                          if entry['status'] == 'corrupt' and before[entry['id']] != 'corrupt']
    elif action == 'record_verification':
        missing = [ident for ident in params['ids'] if find(catalogue, ident) is None]
        if missing:
            raise CatalogueError('no backup with id %s in the catalogue' % ', '.join(missing))
        at = utc_now()
        for ident in params['ids']:
            entry = find(catalogue, ident)
            was = entry['status']
            record_verification(entry, params['result'], params['detail'], at=at)
            if entry['status'] == 'corrupt' and was != 'corrupt':
                out['corrupt'].append(ident)
            out['results'].append({'id': ident, 'result': params['result'], 'detail': params['detail']})
    elif action == 'remove':
        wanted = set(params['ids'])
        out['removed'] = [entry['id'] for entry in catalogue['backups'] if entry['id'] in wanted]
        catalogue['backups'] = [entry for entry in catalogue['backups'] if entry['id'] not in wanted]
    return out


def run(module):
    params = module.params
    path = params['path']
    if params['action'] == 'add':
        normalise_entry(params['entry'])
    writes = params['action'] in WRITES and not module.check_mode
    if writes:
        with locked(path, params['lock_timeout']):
            before, existed = load(path)
            after = copy.deepcopy(before)
            out = apply(after, params)
            changed = after != before
            if changed:
                write_atomic(path, after)
    else:
        before, existed = load(path)
        after = copy.deepcopy(before)
        out = apply(after, params)
        changed = after != before
    latest = None
    if params['action'] == 'latest':
        latest = latest_good(after, kind=params['kind'], target=params['target'], before=params['before'])
        if latest is None and params['require_latest']:
            raise CatalogueError('no good backup of kind %s on target %s%s in %s' % (
                params['kind'] or 'any', params['target'] or 'any',
                ' ended at or before %s' % params['before'] if params['before'] else '', path))
    result = dict(
        changed=changed,
        catalogue=after,
        backups=select(after, kind=params['kind'], target=params['target'], status=params['status'],
                       ids=params['ids']),
        latest=latest,
        **out
    )
    if module._diff:
        result['diff'] = dict(before=before if existed else '', after=after if (changed or existed) else '',
                              before_header=path, after_header=path)
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[
            ('action', 'add', ('entry',)),
            ('action', 'record_verification', ('ids', 'result')),
            ('action', 'remove', ('ids',)),
        ],
        supports_check_mode=True,
    )
    params = module.params
    errors = []
    if params['before'] is not None and not ISO_Z.match(params['before']):
        errors.append('before must be a UTC time like 2026-11-27T03:00:00Z, got %r' % params['before'])
    if params['lock_timeout'] < 0:
        errors.append('lock_timeout must be >= 0, got %s' % params['lock_timeout'])
    if not params['path'].startswith('/'):
        errors.append('path must be absolute, got %r' % params['path'])
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    try:
        result = run(module)
    except CatalogueError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot update backup catalogue %s: %s' % (params['path'], exc),
                         exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
