# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz-backup: take, verify, fetch and expire the backups of this host.

Installed by the aiquiz.ops.backup role with its configuration in
/etc/aiquiz-backup/config.json; run by its systemd timers and by
playbooks/backup.yml. pgBackRest keeps PostgreSQL's physical backups; every
other backup (logical dumps, Redis, RabbitMQ definitions, files and Docker
volumes) is a restic snapshot in each target's repository, tagged kind:,
host:, service: and subject:. The catalogue is a cache of what the
repositories list (restic snapshots, pgbackrest info), rebuilt by refresh and
before every restore: a host that never saw it restores all the same.
Prints one JSON document; exits 1 when anything failed, naming it on stderr.

  aiquiz-backup init                       (the restic repository of every target that has none)
  aiquiz-backup pgbackrest --type full|diff|incr
  aiquiz-backup dump | redis | rabbitmq | files
  aiquiz-backup logical                    (every enabled one of those, then retention)
  aiquiz-backup verify [--no-restore]      (restic check, pgbackrest verify, a test restore)
  aiquiz-backup retention                  (restic forget --keep-* per series, prune)
  aiquiz-backup refresh                    (rebuild the catalogue from the repositories)
  aiquiz-backup rotate-key --new FILE      (restic key add, the passphrase file, then key remove of the old key)
  aiquiz-backup delete ID...
  aiquiz-backup fetch ID OUTPUT            (as taken; a files set as a tar archive; - for stdout)
  aiquiz-backup restore [--id ID | --kind redis|rabbitmq|files [--subject S]] [--target T] [--plan]
                                           (what it replaces is kept aside; a failure or SIGTERM puts it back)
  aiquiz-backup recover                    (rolls back a restore cut off by SIGKILL or a reboot)
"""

import argparse
import contextlib
import datetime
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _backup_catalogue as cat  # noqa: E402  pylint: disable=wrong-import-position
import _backup_gfs as gfs  # noqa: E402  pylint: disable=wrong-import-position
import _backup_paths as paths  # noqa: E402  pylint: disable=wrong-import-position
import _files  # noqa: E402  pylint: disable=wrong-import-position
import _backup_restic as rs  # noqa: E402  pylint: disable=wrong-import-position

CONFIG = os.environ.get('AIQUIZ_BACKUP_CONFIG', '/etc/aiquiz-backup/config.json')
CHUNK = 1 << 20
# restic's cache of repository metadata (indexes, trees), rebuilt from the repository when lost.
RESTIC_CACHE = '/var/cache/aiquiz-backup/restic'
# Root-owned, 0711: the postgres and rabbitmq users get one fresh leaf each below it and cannot
# rename or replace anything root walks through (a link planted in their own homes is never used).
WORK_DIR = '/var/lib/aiquiz-backup-work'
# database.table or database.schema.table; each part a plain name (the role refuses others first).
TABLE_PART = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$')


class BackupError(Exception):
    pass


class ScratchSetupError(BackupError):
    """The test restore could not be set up: says nothing about the backup itself."""


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def stamp(moment):
    return moment.strftime('%Y%m%dT%H%M%SZ')


def log(msg):
    sys.stderr.write('aiquiz-backup: %s\n' % msg)
    sys.stderr.flush()


def load_config():
    with open(CONFIG) as handle:
        return json.load(handle)


def run(cmd, user=None, env=None, check=True, capture=True, timeout=None):
    if user:
        cmd = ['runuser', '-u', user, '--'] + cmd
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE, encoding='utf-8', errors='replace', timeout=timeout, check=False)
    if check and proc.returncode != 0:
        text = (proc.stderr or proc.stdout or '').strip()[-800:]
        raise BackupError('%s failed (exit %d): %s' % (' '.join(cmd[:6]), proc.returncode, text))
    return proc


def psql(cfg, sql, database='postgres', port=None, host=None):
    cmd = ['psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-p', str(port or cfg['pg_port']), '-d', database,
           '-c', sql]
    if host:
        cmd[1:1] = ['-h', host]
    return run(cmd, user='postgres').stdout.strip()


# --------------------------------------------------------------------------
# restic: one repository per target
# --------------------------------------------------------------------------

def target_by_name(cfg, name):
    for target in cfg['targets']:
        if target['name'] == name:
            return target
    raise BackupError('unknown backup target %s; configured: %s' % (name, ', '.join(t['name'] for t in cfg['targets'])))


def host_name(cfg):
    """The host every snapshot is tagged with: the inventory name, so a rebuilt host finds its backups."""
    return cfg.get('host') or socket.gethostname()


def restic(cfg, target, args, stdin=None, stdout=None, check=True):
    """Run restic on target's repository. The passphrase reaches it by RESTIC_PASSWORD_FILE only.
    stdout: an open file to write to (restic dump), else captured."""
    if rs.tls_insecure(target):
        log('WARNING: TLS certificate verification is OFF for target %s (verify_tls: false): '
            'anyone on the path can read and change the backups' % target.get('name'))
    env = rs.environment(target, cfg['passphrase_file'], cfg.get('restic_cache') or RESTIC_CACHE)
    # --time and the snapshot times restic prints are read in the process's zone.
    env['TZ'] = 'UTC'
    cmd = ['restic'] + rs.global_args(target) + list(args)
    if args[0] == 'backup' and cfg.get('compression'):
        cmd[1:1] = ['--compression', cfg['compression']]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.run(cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                              stdout=stdout if stdout is not None else subprocess.PIPE, stderr=err, env=env,
                              check=False)
        err.seek(0)
        proc.stderr = err.read().decode('utf-8', 'replace')
    if isinstance(proc.stdout, bytes):
        proc.stdout = proc.stdout.decode('utf-8', 'replace')
    if check and proc.returncode != 0:
        raise BackupError('restic %s on target %s failed (exit %d): %s' % (
            args[0], target['name'], proc.returncode, restic_error(proc.stderr)))
    return proc


def restic_error(text):
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    text = '; '.join(lines)[-600:]
    if 'wrong password or no key found' in text:
        return 'wrong passphrase (the repository has no key for backup_passphrase): %s' % text
    if 'Is there a repository at the following location?' in text:
        return 'no restic repository there yet (the backup role creates it: aiquiz-backup init): %s' % text
    return text


def restic_json(cfg, target, args):
    out = restic(cfg, target, [args[0], '--json'] + list(args[1:])).stdout
    try:
        return json.loads(out or 'null')
    except ValueError:
        raise BackupError('restic %s on target %s printed no JSON: %s' % (args[0], target['name'], out[-300:]))


def cmd_init(cfg, args):
    """Create the restic repository of every target that has none; one that exists is only opened (which
    also proves the passphrase)."""
    results = []
    for target in cfg['targets']:
        probe = restic(cfg, target, ['cat', 'config'], check=False)
        if probe.returncode == 0:
            results.append({'id': target['name'], 'status': 'exists'})
            continue
        if 'Is there a repository at the following location?' not in probe.stderr:
            results.append({'id': target['name'], 'status': 'failed', 'detail': 'cannot open the restic repository '
                            'of target %s: %s' % (target['name'], restic_error(probe.stderr))})
            continue
        made = restic(cfg, target, ['init'], check=False)
        if made.returncode != 0:
            results.append({'id': target['name'], 'status': 'failed', 'detail': 'restic init on target %s failed: %s'
                            % (target['name'], restic_error(made.stderr))})
            continue
        results.append({'id': target['name'], 'status': 'created', 'repository': rs.repository(target)})
    return results


def same_content(one, two):
    with open(one, 'rb') as first, open(two, 'rb') as second:
        return first.read() == second.read()


def current_key(cfg, target):
    """The id of the key cfg's passphrase opens in target's repository."""
    keys = restic_json(cfg, target, ['key', 'list']) or []
    return next((key['id'] for key in keys if key.get('current')), None)


def cmd_rotate_key(cfg, args):
    """Make the passphrase in args.new the key of every restic repository, then the passphrase file.

    Every repository first gets the new key (restic key add, opened with the current one); only when all
    have it is the passphrase file replaced, and the old key removed from each (restic key remove, opened
    with the new one). A target that fails in the first step leaves everything on the old passphrase, which
    still opens every repository; the next run goes on where this one stopped."""
    if same_content(cfg['passphrase_file'], args.new):
        return [{'id': 'passphrase', 'status': 'unchanged'}]
    new_cfg = dict(cfg, passphrase_file=args.new)
    results, old_keys = [], {}
    for target in cfg['targets']:
        try:
            with_new = restic(new_cfg, target, ['cat', 'config'], check=False)
            with_old = restic(cfg, target, ['cat', 'config'], check=False)
            if 'Is there a repository at the following location?' in with_old.stderr + with_new.stderr:
                results.append({'id': target['name'], 'status': 'no repository yet'})
                continue
            old_keys[target['name']] = current_key(cfg, target) if with_old.returncode == 0 else None
            if with_new.returncode == 0:
                results.append({'id': target['name'], 'status': 'has the new key'})
                continue
            if with_old.returncode != 0:
                raise BackupError('neither the current nor the new passphrase opens it: %s'
                                  % restic_error(with_old.stderr))
            restic(cfg, target, ['key', 'add', '--new-password-file', args.new, '--host', host_name(cfg)])
            results.append({'id': target['name'], 'status': 'key added'})
        except BackupError as exc:
            results.append({'id': target['name'], 'status': 'failed',
                            'detail': 'rotating the restic key of target %s: %s; the current passphrase stays' % (
                                target['name'], exc)})
    if any(item['status'] == 'failed' for item in results):
        return results
    with open(args.new, encoding='utf-8') as handle:
        secret = handle.read()
    _files.write_atomic(cfg['passphrase_file'], secret, 0o600, 0o700)
    for target in cfg['targets']:
        old = old_keys.get(target['name'])
        if not old:
            continue
        try:
            if current_key(new_cfg, target) != old:
                restic(new_cfg, target, ['key', 'remove', old])
                results.append({'id': target['name'], 'status': 'rotated', 'removed_key': old})
        except BackupError as exc:
            results.append({'id': target['name'], 'status': 'failed', 'detail': (
                'the new passphrase is in use on target %s, but its old key %s is still there (remove it: restic key '
                'remove %s): %s' % (target['name'], old, old, exc))})
    return results


def summary_of(out):
    """The snapshot id from the summary line of `restic backup --json`."""
    for line in reversed((out or '').splitlines()):
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict) and item.get('message_type') == 'summary' and item.get('snapshot_id'):
                return item['snapshot_id']
    raise BackupError('restic backup printed no summary with a snapshot id')


def restic_time(moment):
    return moment.strftime('%Y-%m-%d %H:%M:%S')


def record(cfg, entry):
    cat.update(cfg['catalogue'], lambda data: cat.add(data, entry))


def snapshot_backup(cfg, kind, subject, service, what, position=None, moment=None):
    """One restic snapshot per target, tagged kind/host/service/subject, catalogued as it is taken.

    what: ('stdin', filename, opener) backs up the stream opener() gives (a file opened without following
    links) as <filename>; ('paths', [path...]) backs up those paths (links stored as links, never followed).
    moment: the snapshot's time (when the data was taken); default now."""
    moment = (moment or now()).replace(microsecond=0)
    host = host_name(cfg)
    tags = rs.tags(kind, host, service, subject, position)
    results = []
    for target in cfg['targets']:
        started = now()
        base = ['backup', '--json', '--host', host, '--time', restic_time(moment)] + rs.tag_args(tags)
        snapshot = None
        try:
            if what[0] == 'stdin':
                with what[2]() as source:
                    proc = restic(cfg, target, base + ['--stdin', '--stdin-filename', what[1]], stdin=source,
                                  check=False)
            else:
                # restic skips a path that does not exist and still exits 0: a set is whole or failed.
                missing = [path for path in what[1] if not os.path.lexists(path)]
                if missing:
                    raise BackupError('%s does not exist' % ', '.join(missing))
                proc = restic(cfg, target, base + ['--'] + list(what[1]), check=False)
            if proc.returncode == 3:
                # A snapshot without some of its files: never left looking good.
                with contextlib.suppress(BackupError):
                    restic(cfg, target, ['forget', summary_of(proc.stdout)])
                raise BackupError('restic could not read every file, the partial snapshot was removed: %s'
                                  % restic_error(proc.stderr))
            if proc.returncode != 0:
                raise BackupError('restic backup on target %s failed (exit %d): %s' % (
                    target['name'], proc.returncode, restic_error(proc.stderr)))
            # The summary names the snapshot by its short id, which restic takes everywhere; the next refresh
            # puts the full one in the catalogue (same entry id). Looking it up now would cost a restic start
            # (key derivation included) per target and backup.
            snapshot = summary_of(proc.stdout)
        except (BackupError, OSError, IndexError, KeyError, TypeError) as exc:
            entry = dict(id=rs.entry_id(kind, subject, iso(moment), target['name'], 'failed'), kind=kind,
                         subject=subject, target=target['name'], started=iso(started), ended=iso(now()),
                         status='failed', source_position=position,
                         detail='%s backup of %s on %s failed: %s' % (kind, subject, target['name'], exc))
        else:
            entry = dict(id=rs.entry_id(kind, subject, iso(moment), target['name'], snapshot), kind=kind,
                         subject=subject, target=target['name'], location='restic:%s' % snapshot, started=iso(moment),
                         ended=iso(moment), status='good', source_position=position)
        record(cfg, entry)
        results.append({'id': entry['id'], 'status': entry['status'], 'detail': entry.get('detail'),
                        'snapshot': snapshot})
    return results


def refresh(cfg, targets=None):
    """Rebuild the catalogue's restic entries from the repositories' own listings (and pgBackRest's from its
    info): the catalogue is a cache, the repositories are the record. Returns the targets that could not be
    read, with why; their cached entries are left as they were."""
    unreadable = []
    host = host_name(cfg)
    for target in targets or cfg['targets']:
        try:
            listed = restic_json(cfg, target, ['snapshots', '--host', host]) or []
        except BackupError as exc:
            log('catalogue not refreshed from target %s: %s' % (target['name'], exc))
            unreadable.append((target['name'], str(exc)))
            continue
        entries = [entry for entry in (rs.entry_from_snapshot(item, target['name'], host) for item in listed) if entry]
        cat.update(cfg['catalogue'], lambda data, t=target['name'], e=entries: rs.merge(data, t, e))
    if cfg.get('postgresql', True):
        sync_pgbackrest(cfg)
    return unreadable


def databases(cfg):
    if cfg.get('databases'):
        return cfg['databases']
    out = psql(cfg, "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1")
    return [line for line in out.splitlines() if line]


def work_root(cfg):
    """The work directory, opened without following links; every component root's alone."""
    return paths.Dir.open(cfg.get('work_dir') or WORK_DIR, create=True, mode=0o711, root_only=True)


def cmd_dump(cfg, args):
    results = []
    # pg_dump writes its custom format to a seekable file, not a pipe: only then does
    # the archive carry the data offsets that make pg_restore -j fast. The file (already
    # compressed by pg_dump) lives in a fresh leaf of postgres' own, goes to restic as a
    # stream (--stdin) and is removed after; root reads it only as postgres' own regular
    # file, never through a link.
    with work_root(cfg) as work:
        try:
            with work.leaf('dump', 'postgres') as leaf:
                for index, database in enumerate(databases(cfg)):
                    moment = now()
                    position = psql(cfg, 'SELECT pg_current_wal_lsn()')
                    name = '%d.dump' % index
                    try:
                        run(['pg_dump', '-Fc', '-p', str(cfg['pg_port']), '-d', database, '-f', leaf.join(name)],
                            user='postgres')
                    except BackupError as exc:
                        for target in cfg['targets']:
                            entry = dict(id=rs.entry_id('postgresql-dump', database, iso(moment), target['name'],
                                                        'failed'),
                                         kind='postgresql-dump', subject=database, target=target['name'],
                                         started=iso(moment), ended=iso(now()), status='failed',
                                         detail='pg_dump of %s failed: %s' % (database, exc), source_position=position)
                            record(cfg, entry)
                            results.append({'id': entry['id'], 'status': 'failed', 'detail': entry['detail']})
                        continue
                    try:
                        results += snapshot_backup(
                            cfg, 'postgresql-dump', database, 'postgresql', (
                                'stdin', rs.stdin_filename('postgresql-dump', database),
                                functools.partial(leaf.open_read, name, owners=['postgres'])),
                            position=position, moment=moment)
                    finally:
                        leaf.remove(name)
        finally:
            work.remove('dump')
    return results


def cmd_redis(cfg, args):
    rcfg = cfg['redis']
    before = redis_cli(cfg, 'LASTSAVE').stdout.strip()
    moment = now()
    redis_cli(cfg, 'BGSAVE')
    deadline = time.time() + 600
    while True:
        info = redis_cli(cfg, 'INFO', 'persistence').stdout
        fields = dict(line.split(':', 1) for line in info.replace('\r', '').splitlines() if ':' in line)
        if fields.get('rdb_bgsave_in_progress') == '0' and redis_cli(cfg, 'LASTSAVE').stdout.strip() != before:
            break
        if time.time() > deadline:
            raise BackupError('redis BGSAVE did not finish in 600 s')
        time.sleep(0.2)
    if fields.get('rdb_last_bgsave_status') != 'ok':
        raise BackupError('redis BGSAVE failed: rdb_last_bgsave_status=%s' % fields.get('rdb_last_bgsave_status'))
    # The redis user owns the directory: its snapshot is read as redis' own regular file, never through a link.
    with paths.Dir.open(rcfg.get('dir', '/var/lib/redis')) as base:
        opener = functools.partial(base.open_read, rcfg.get('dbfilename', 'dump.rdb'),
                                   owners=[rcfg.get('user', 'redis')])
        return snapshot_backup(cfg, 'redis', 'redis', 'redis', ('stdin', rs.stdin_filename('redis', 'redis'), opener),
                               moment=moment)


def cmd_rabbitmq(cfg, args):
    with work_root(cfg) as work:
        try:
            with work.leaf('rabbitmq', 'rabbitmq') as leaf:
                moment = now()
                run(['rabbitmqctl', '-q', 'export_definitions', leaf.join('definitions.json')])
                return snapshot_backup(cfg, 'rabbitmq', 'definitions', 'rabbitmq', (
                    'stdin', rs.stdin_filename('rabbitmq', 'definitions'),
                    functools.partial(leaf.open_read, 'definitions.json', owners=['rabbitmq'])), moment=moment)
        finally:
            work.remove('rabbitmq')


def file_sets(cfg):
    sets = list(cfg.get('paths') or [])
    for volume in cfg.get('docker_volumes') or []:
        sets.append({'name': 'volume-%s' % volume, 'paths': ['/var/lib/docker/volumes/%s/_data' % volume],
                     'service': 'docker-volume'})
    return sets


def cmd_files(cfg, args):
    results = []
    for item in file_sets(cfg):
        results += snapshot_backup(cfg, 'files', item['name'], item.get('service', 'files'),
                                   ('paths', [os.path.normpath(path) for path in item['paths']]))
    return results


def cmd_logical(cfg, args):
    """Every enabled file backup, then retention: what the logical timer runs."""
    results = []
    steps = []
    if cfg.get('postgresql', True):
        steps.append(cmd_dump)
    if cfg.get('redis', {}).get('enabled'):
        steps.append(cmd_redis)
    if cfg.get('rabbitmq', {}).get('enabled'):
        steps.append(cmd_rabbitmq)
    if cfg.get('paths') or cfg.get('docker_volumes'):
        steps.append(cmd_files)
    steps.append(cmd_retention)
    for step in steps:
        try:
            results += step(cfg, args)
        except (BackupError, OSError) as exc:
            results.append({'id': step.__name__[4:], 'status': 'failed', 'detail': str(exc)})
    return results


RETIRED_CONFIG = '/etc/pgbackrest/retired-g%d.conf'


def pgbackrest_sources(cfg):
    """pgBackRest's repositories to read: each target's of the current generation, then each target's of every
    retired generation (newest first), named <target>.g<generation> in the catalogue. A retired generation is
    read with a configuration of its own and never written to."""
    sources = [dict(target, retired=False) for target in cfg['targets']]
    for item in cfg.get('pgbackrest_retired') or []:
        generation = int(item['generation'])
        sources += [dict(name='%s.g%d' % (target['name'], generation), repo=target['repo'], retired=True,
                         config=RETIRED_CONFIG % generation) for target in cfg['targets']]
    return sources


def pgbackrest_cmd(cfg, source, *rest):
    """pgBackRest's command line on source (a target or a retired generation's repository)."""
    config = ['--config=%s' % source['config']] if source.get('config') else []
    return ['pgbackrest'] + config + ['--stanza=%s' % cfg['stanza'], '--repo=%d' % source['repo']] + list(rest)


def pgbackrest_info(cfg, source):
    out = run(pgbackrest_cmd(cfg, source, 'info', '--output=json'), user='postgres').stdout
    data = json.loads(out)
    return data[0] if data else {}


def epoch_iso(value):
    return iso(datetime.datetime.fromtimestamp(int(value), datetime.timezone.utc))


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def split_table(spec):
    """'db.table' or 'db.schema.table' -> (db, quoted relation); a bare name is in database postgres.
    A part that is not a plain name is refused: it reaches SQL."""
    parts = spec.split('.') if '.' in spec else ['postgres', spec]
    if not 2 <= len(parts) <= 3 or not all(TABLE_PART.match(part) for part in parts):
        raise BackupError('backup_verify_tables: %r is not database.table or database.schema.table of plain names '
                          '(letters, digits, _, $, -)' % spec)
    return parts[0], '.'.join(quote_ident(part) for part in parts[1:])


def table_exists(cfg, spec, port=None, host=None):
    database, table = split_table(spec)
    try:
        return psql(cfg, "SELECT to_regclass('%s') IS NOT NULL" % table.replace("'", "''"), database=database,
                    port=port, host=host) == 't'
    except BackupError:
        # The database itself does not exist (yet).
        return False


def present_tables(cfg):
    """The verification tables that exist in the live cluster now."""
    return [spec for spec in cfg['verify'].get('tables') or [] if table_exists(cfg, spec)]


def check_tables(expected, recorded, exists, count):
    """Row counts of the verification tables in a restored set.

    A table missing from the restore fails it, unless the catalogue recorded
    that the table was not there when the set was taken (recorded is the list
    of tables present then; None when nothing was recorded).
    """
    notes = []
    for spec in expected:
        if exists(spec):
            notes.append('%s=%s' % (spec, count(spec)))
        elif recorded is not None and spec not in recorded:
            notes.append('%s absent (not there when the set was taken)' % spec)
        else:
            raise BackupError('table %s is missing from the restored set%s' % (
                spec, '' if recorded is None else ', though it was there when the set was taken'))
    return notes


def backup_type(entries, requested):
    """The type to take: a diff or incr on a chain holding a corrupt set would build on damaged files,
    so it becomes a full."""
    if requested == 'full':
        return requested, None
    labels = [e['location'] for e in entries if e.get('location') and e['status'] in ('good', 'corrupt')]
    fulls = sorted(label for label in labels if '_' not in label)
    if not fulls:
        return requested, None
    chain = fulls[-1]
    damaged = sorted(e['location'] for e in entries if e['status'] == 'corrupt' and e.get('location')
                     and e['location'].split('_', 1)[0] == chain)
    if damaged:
        return 'full', 'a full instead of %s: set %s of the current chain is corrupt' % (requested, damaged[0])
    return requested, None


def cmd_pgbackrest(cfg, args):
    results = []
    for target in cfg['targets']:
        started = now()
        kind, why = backup_type(list(cat.select(cat.load(cfg['catalogue'])[0], kind='postgresql-pgbackrest',
                                                target=target['name'])), args.type)
        if why:
            log('%s: %s' % (target['name'], why))
        try:
            # Tables present both before and after the backup are in the set: verification then knows a
            # table missing from an older set is history, not damage.
            before = present_tables(cfg)
            run(pgbackrest_cmd(cfg, target, '--type=%s' % kind, 'backup'), user='postgres')
            tables = [spec for spec in present_tables(cfg) if spec in before]
            info = pgbackrest_info(cfg, target)
            entry = pgbackrest_entry(cfg, target, info['backup'][-1], tables=tables)
        except (BackupError, KeyError, IndexError, ValueError) as exc:
            entry = dict(id='pgbackrest-%s-%s-%s' % (target['name'], stamp(started), kind),
                         kind='postgresql-pgbackrest', subject=cfg['stanza'], target=target['name'],
                         started=iso(started), ended=iso(now()), status='failed', detail=str(exc))
        record(cfg, entry)
        results.append({'id': entry['id'], 'status': entry['status'], 'detail': entry.get('detail') or why})
    sync_pgbackrest(cfg)
    return results


def pgbackrest_entry(cfg, target, item, tables=None):
    """The catalogue entry of one set of `pgbackrest info --output=json`."""
    repository = item.get('info', {}).get('repository', {})
    return dict(id='pgbackrest-%s-%s' % (target['name'], item['label']), kind='postgresql-pgbackrest',
                subject=cfg['stanza'], target=target['name'], location=item['label'],
                size=int(repository.get('delta') or repository.get('size') or 0),
                started=epoch_iso(item['timestamp']['start']), ended=epoch_iso(item['timestamp']['stop']),
                source_position=item.get('lsn', {}).get('stop'), status='good', tables=tables)


def sync_pgbackrest(cfg):
    """Make the catalogue's pgBackRest entries those of pgBackRest's own info: sets its retention expired are
    dropped, sets the catalogue never saw (a rebuilt host, a lost catalogue) are added (without the list of
    tables present, which only the host that took them knew)."""
    for target in pgbackrest_sources(cfg):
        try:
            sets = [item for item in pgbackrest_info(cfg, target).get('backup', []) if not item.get('error')]
            found = [pgbackrest_entry(cfg, target, item) for item in sets]
        except (BackupError, ValueError, KeyError, TypeError):
            continue

        def change(data, target=target, found=tuple(found)):
            labels = set(entry['location'] for entry in found)
            data['backups'] = [e for e in data['backups'] if not (
                e['kind'] == 'postgresql-pgbackrest' and e['target'] == target['name'] and e['status'] == 'good'
                and e.get('location') and e['location'] not in labels)]
            for entry in found:
                if cat.find(data, entry['id']) is None:
                    cat.add(data, entry)
        cat.update(cfg['catalogue'], change)


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------

def restic_check(cfg, target):
    """(result, detail) of `restic check` on target: it reads back a subset of the data (the whole of it on
    the configured day of the week), decrypting and authenticating every blob it reads."""
    vcfg = cfg.get('verify') or {}
    full = (vcfg.get('full_read_day') or '') == now().strftime('%a')
    subset = vcfg.get('read_data_subset') or None
    # Locks left by a restic that was killed (a reboot mid-backup) would stop check; unlock removes only those.
    restic(cfg, target, ['unlock'], check=False)
    proc = restic(cfg, target, rs.check_args(subset=subset, full=full), check=False)
    what = 'all data read' if full else ('%s of the data read' % subset if subset else 'structure only')
    if proc.returncode == 0:
        return 'ok', 'restic check: no errors (%s)' % what
    text = '; '.join(line.strip() for line in (proc.stdout + '\n' + proc.stderr).splitlines()
                     if line.strip() and not line.startswith('['))
    return 'failed', 'restic check (%s) failed (exit %d): %s' % (what, proc.returncode, restic_error(text))


def scratch_restore(cfg, target, entry):
    """Restore a pgBackRest backup into a scratch instance and run integrity queries. Returns detail text."""
    with work_root(cfg) as work:
        try:
            return _scratch_restore(cfg, target, entry, work)
        finally:
            work.remove('verify')


def _scratch_restore(cfg, target, entry, work):
    label = entry['location']
    vcfg = cfg['verify']
    port = vcfg['port']
    bindir = '/usr/lib/postgresql/%s/bin' % cfg['pg_version']
    # Fresh leaves of postgres' own below root-owned parents (the work directory, /run): whatever
    # postgres left in them last time is removed first, without following a link.
    parent, name = paths.parent_and_name(vcfg['socket_dir'], root_only=True)
    with parent, work.leaf('verify', 'postgres') as scratch, parent.leaf(name, 'postgres') as sockdir:
        sock = sockdir.path
        try:
            try:
                run(pgbackrest_cmd(cfg, target, '--pg1-path=%s' % scratch.path, '--set=%s' % label,
                                   '--type=immediate', '--target-action=promote', '--archive-mode=off', 'restore'),
                    user='postgres')
            except BackupError as exc:
                if 'Permission denied' in str(exc) or 'unable to get info for path' in str(exc):
                    raise ScratchSetupError(str(exc))
                raise
            # Written without following a link postgres may have put there (O_EXCL, O_NOFOLLOW).
            scratch.write('postgresql.conf',
                          "port = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\n"
                          "hba_file = '%s/pg_hba.conf'\nident_file = '%s/pg_ident.conf'\n"
                          "shared_buffers = 64MB\narchive_mode = off\nlogging_collector = off\n"
                          # No hot standby: recovery then does not require the primary's connection
                          # and sender limits, and connections open only once it has promoted.
                          "hot_standby = off\nmax_connections = 20\n"
                          # The set's own timeline: after a point-in-time restore the archive also holds a
                          # later timeline that branched before this set, which 'latest' would refuse.
                          "recovery_target_timeline = 'current'\n" % (port, sock, scratch.path, scratch.path),
                          owner='postgres')
            scratch.write('pg_hba.conf', 'local all postgres peer\n', owner='postgres')
            scratch.write('pg_ident.conf', '', owner='postgres')
            run([bindir + '/pg_ctl', '-D', scratch.path, '-l', sockdir.join('scratch.log'), '-w', '-t', '600',
                 'start'], user='postgres')
            deadline = time.time() + 600
            while True:
                # Refuses connections until recovery has ended (no hot standby).
                probe = run(['psql', '-X', '-A', '-t', '-h', sock, '-p', str(port), '-d', 'postgres', '-c',
                             'SELECT pg_is_in_recovery()'], user='postgres', check=False)
                if probe.returncode == 0 and probe.stdout.strip() == 'f':
                    break
                if time.time() > deadline:
                    raise BackupError('the scratch instance did not finish recovery in 600 s: %s'
                                      % (probe.stderr or probe.stdout).strip()[-300:])
                time.sleep(0.5)
            dbs = [d for d in psql(cfg, 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1', port=port,
                                   host=sock).splitlines() if d]
            run([bindir + '/pg_amcheck', '-h', sock, '-p', str(port), '--all', '--install-missing',
                 '--heapallindexed'], user='postgres')
            counts = check_tables(
                vcfg.get('tables') or [], entry.get('tables'),
                lambda spec: table_exists(cfg, spec, port=port, host=sock),
                lambda spec: psql(cfg, 'SELECT count(*) FROM %s' % split_table(spec)[1],
                                  database=split_table(spec)[0], port=port, host=sock))
            return 'restored into a scratch instance on port %d; pg_amcheck clean on %d databases (%s)%s' % (
                port, len(dbs), ', '.join(dbs), '; rows: ' + ', '.join(counts) if counts else '')
        finally:
            run([bindir + '/pg_ctl', '-D', scratch.path, '-m', 'immediate', 'stop'], user='postgres', check=False)
            parent.remove(name)


def pgbackrest_verify(cfg, source):
    """({label: {status, text}}, completed) from pgbackrest verify.

    pgbackrest verify exits 0 even when it finds damage, and lists only the
    backups it found damaged: a backup it does not name passed.
    """
    proc = run(pgbackrest_cmd(cfg, source, '--log-level-console=info', 'verify'), user='postgres', check=False)
    completed = proc.returncode == 0 and 'completed successfully' in proc.stdout + proc.stderr
    out = {}
    lines = (proc.stdout + proc.stderr).splitlines()
    for index, line in enumerate(lines):
        text = line.strip()
        if text.startswith('backup: ') and ', status: ' in text:
            label, rest = text[len('backup: '):].split(', status: ', 1)
            status = rest.split(',', 1)[0].strip()
            detail = [rest.strip()]
            for more in lines[index + 1:index + 6]:
                more = more.strip()
                if more.startswith(('backup: ', 'archiveId:', '20')) or not more:
                    break
                detail.append(more)
            out[label.strip()] = {'status': status, 'text': '; '.join(detail)}
    if not completed:
        text = (proc.stderr or proc.stdout).strip()[-400:]
        out['*'] = {'status': 'error', 'text': 'pgbackrest verify did not complete: %s' % text}
    return out


def cmd_verify(cfg, args):
    path = cfg['catalogue']
    results = []

    refresh(cfg)
    # restic: the repository check of each target, recorded on every snapshot of it. A failure marks nothing
    # corrupt (restic does not say which snapshots the damage touches); a restore of a damaged snapshot is
    # refused by restic itself, which authenticates every blob it reads.
    for target in cfg['targets']:
        result, detail = restic_check(cfg, target)
        results.append({'id': 'restic-%s' % target['name'], 'result': result, 'detail': detail})

        def change(data, name=target['name'], r=result, d=detail):
            for entry in data['backups']:
                if entry['target'] == name and rs.snapshot_of(entry) and entry['status'] in ('good', 'corrupt'):
                    cat.record_verification(entry, r, d, mark_corrupt=False)
        cat.update(path, change)
    # pgBackRest: the repository check of every good set, then a test restore of the newest one (of the
    # current generation: a retired one only gets older).
    for target in pgbackrest_sources(cfg):
        entries = list(cat.select(cat.load(path)[0], kind='postgresql-pgbackrest', target=target['name'],
                                  status=['good']))
        if entries:
            statuses = pgbackrest_verify(cfg, target)
        for entry in entries:
            if entry['location'] not in statuses and '*' in statuses:
                # The check itself failed (repository unreachable): say so, mark nothing corrupt.
                results.append({'id': entry['id'], 'result': 'failed', 'detail': statuses['*']['text']})
                continue
            status = statuses.get(entry['location'])
            if status is None:
                result, detail = 'ok', 'pgbackrest verify: no damage found'
            elif status['status'] == 'valid':
                result, detail = 'ok', 'pgbackrest verify: valid (%s)' % status['text']
            else:
                result, detail = 'failed', 'pgbackrest verify: %s' % status['text']
            cat.update(path, lambda data, i=entry['id'], r=result, d=detail: cat.record_verification(
                cat.find(data, i), r, d))
            results.append({'id': entry['id'], 'result': result, 'detail': detail})
        if args.no_restore or target['retired']:
            continue
        newest = cat.latest_good(cat.load(path)[0], kind='postgresql-pgbackrest', target=target['name'])
        if newest is None:
            continue
        mark = True
        try:
            result, detail = 'ok', scratch_restore(cfg, target, newest)
        except ScratchSetupError as exc:
            # The scratch instance could not be prepared: the run fails, the backup is not condemned.
            result, detail, mark = 'failed', 'test restore could not run: %s' % exc, False
        except (BackupError, OSError) as exc:
            result, detail = 'failed', 'test restore failed: %s' % exc
        cat.update(path, lambda data, i=newest['id'], r=result, d=detail, m=mark: cat.record_verification(
            cat.find(data, i), r, d, mark_corrupt=m))
        results.append({'id': newest['id'], 'result': result, 'detail': detail})
    return results


# --------------------------------------------------------------------------
# Retention and fetch
# --------------------------------------------------------------------------

def cmd_refresh(cfg, args):
    """Rebuild the catalogue from the repositories (what restore and verify also do first)."""
    unreadable = refresh(cfg)
    return [{'id': name, 'status': 'failed', 'detail': why} for name, why in unreadable] + [
        {'id': target['name'], 'status': 'refreshed'} for target in cfg['targets']
        if target['name'] not in dict(unreadable)]


def cmd_retention(cfg, args):
    """restic forget with the grandfather-father-son policy on each series (kind and subject) of this host in
    each target, one prune per target that lost a snapshot; then the catalogue is rebuilt from the
    repositories and failed attempts older than the oldest kept backup of their series are dropped."""
    policy = cfg['retention']
    host = host_name(cfg)
    removed = []
    failures = []
    for target in cfg['targets']:
        try:
            listed = restic_json(cfg, target, ['snapshots', '--host', host]) or []
        except BackupError as exc:
            failures.append({'id': 'retention-%s' % target['name'], 'status': 'failed', 'detail': str(exc)})
            continue
        series = sorted(set((e['kind'], e['subject']) for e in (rs.entry_from_snapshot(item, target['name'], host)
                                                                for item in listed) if e))
        gone = []
        try:
            restic(cfg, target, ['unlock'], check=False)  # stale locks only: prune needs the repository alone
            for kind, subject in series:
                groups = restic_json(cfg, target, rs.forget_args(policy, host, kind, subject)) or []
                gone += [item['id'] for group in groups for item in group.get('remove') or []]
            if gone:
                restic(cfg, target, ['prune'])
        except BackupError as exc:
            failures.append({'id': 'retention-%s' % target['name'], 'status': 'failed', 'detail': str(exc)})
        removed += ['%s:%s' % (target['name'], ident) for ident in gone]
    before = set(e['id'] for e in cat.load(cfg['catalogue'])[0]['backups'])
    refresh(cfg)

    def drop_old_failures(data):
        oldest = {}
        for entry in data['backups']:
            if entry['status'] != 'failed' and entry['kind'] != 'postgresql-pgbackrest':
                key = (entry['kind'], entry.get('subject'), entry['target'])
                oldest[key] = min(oldest.get(key, entry['ended']), entry['ended'])
        data['backups'] = [e for e in data['backups'] if not (
            e['status'] == 'failed' and e['kind'] != 'postgresql-pgbackrest'
            and (e.get('ended') or '') < oldest.get((e['kind'], e.get('subject'), e['target']), ''))]
    cat.update(cfg['catalogue'], drop_old_failures)
    after = set(e['id'] for e in cat.load(cfg['catalogue'])[0]['backups'])
    return [{'id': ident, 'status': 'deleted'} for ident in sorted(before - after)] + failures


def cmd_delete(cfg, args):
    """Forget the snapshots of the named backups (and prune), then drop them from the catalogue."""
    data = cat.load(cfg['catalogue'])[0]
    doomed = {}
    for ident in args.ids:
        entry = cat.find(data, ident)
        if entry is None:
            continue
        if entry['kind'] == 'postgresql-pgbackrest':
            raise BackupError('%s is a pgBackRest backup: pgBackRest expires its own (repo retention)' % ident)
        if rs.snapshot_of(entry):
            doomed.setdefault(entry['target'], []).append(rs.snapshot_of(entry))
    for name, snapshots in sorted(doomed.items()):
        restic(cfg, target_by_name(cfg, name), ['forget', '--prune'] + snapshots)
    ids = set(args.ids)

    def change(data):
        data['backups'] = [e for e in data['backups'] if e['id'] not in ids]
    cat.update(cfg['catalogue'], change)
    return [{'id': ident, 'status': 'deleted'} for ident in args.ids if cat.find(data, ident)]


def good_entry(data, ident):
    entry = cat.find(data, ident)
    if entry is None:
        raise BackupError('no backup %s in the repositories of this host' % ident)
    if entry['status'] != 'good':
        raise BackupError('backup %s is %s (%s); choose a good one' % (ident, entry['status'], entry.get('detail')))
    return entry


# restic's words for data that does not authenticate or is missing: the snapshot is damaged, not the run.
DAMAGE = ('ciphertext verification failed', 'does not match', 'pack not found', 'blob not found',
          'not found in index', 'unexpected EOF', 'invalid data returned')


def snapshot_paths(cfg, target, snapshot):
    listed = restic_json(cfg, target, ['snapshots', snapshot]) or []
    if len(listed) != 1:
        raise BackupError('snapshot %s is not in the repository of target %s' % (snapshot, target['name']))
    return listed[0]['paths']


def cmd_fetch(cfg, args):
    """Write a backup to output (- for stdout): a dump, snapshot or definitions file as it was taken; a files
    set as a tar archive of its paths. restic authenticates every blob it reads: a changed or missing object
    fails the fetch, the output is removed and the backup is marked corrupt."""
    if not cat.find(cat.load(cfg['catalogue'])[0], args.id):
        refresh(cfg)
    entry = good_entry(cat.load(cfg['catalogue'])[0], args.id)
    target = target_by_name(cfg, entry['target'])
    snapshot = rs.snapshot_of(entry)
    if not snapshot:
        raise BackupError('backup %s is %s: restore it with playbooks/restore.yml (pgBackRest)'
                          % (args.id, entry['kind']))
    if entry['kind'] == 'files':
        what = ['dump', '--archive', 'tar', snapshot, '/']
    else:
        what = ['dump', snapshot, '/' + rs.stdin_filename(entry['kind'], entry['subject'])]
    if args.output == '-':
        restic(cfg, target, what, stdout=sys.stdout.buffer)
        return [{'id': args.id, 'status': 'fetched', 'output': args.output}]
    partial = args.output + '.partial'
    try:
        with open(partial, 'wb') as out:
            proc = restic(cfg, target, what, stdout=out, check=False)
            out.flush()
            os.fsync(out.fileno())
        if proc.returncode != 0:
            error = restic_error(proc.stderr)
            if any(word in error for word in DAMAGE):
                cat.update(cfg['catalogue'], lambda d: cat.record_verification(
                    cat.find(d, args.id), 'failed', 'restic dump: %s' % error[-300:]))
                raise BackupError('backup %s is damaged in the repository of target %s; marked corrupt, nothing '
                                  'written: %s' % (args.id, target['name'], error))
            raise BackupError('restic dump of %s on target %s failed (exit %d), nothing written: %s' % (
                args.id, target['name'], proc.returncode, error))
        os.rename(partial, args.output)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)
    return [{'id': args.id, 'status': 'fetched', 'output': args.output}]


# --------------------------------------------------------------------------
# Restoring service data (Redis, RabbitMQ definitions, files and volumes)
# --------------------------------------------------------------------------

def choose(cfg, args):
    """The catalogue entry to restore: --id, else the newest good one of --kind (and --subject, --target).

    The catalogue is rebuilt from the repositories first: a host that never took a backup (a rebuilt one)
    restores from what the repositories list; a repository that cannot be read leaves its cached entries."""
    if not args.id and not args.kind:
        raise BackupError('name the backup (--id) or its kind (--kind)')
    if args.kind and args.kind not in RESTORABLE:
        raise BackupError('restore takes one of %s, got %s' % (', '.join(RESTORABLE), args.kind))
    names = [args.target] if args.target else [t['name'] for t in cfg['targets']]
    targets = [target_by_name(cfg, name) for name in names]
    before = parse_time(args.before) if args.before else None
    refresh(cfg, targets)
    data = cat.load(cfg['catalogue'])[0]
    if args.id:
        return good_entry(data, args.id)
    for name in names:
        candidates = [e for e in cat.select(data, kind=args.kind, target=name, status=['good'])
                      if args.subject in (None, e.get('subject'))
                      and (before is None or parse_time(e['ended']) <= before)]
        if candidates:
            return max(candidates, key=lambda e: parse_time(e['ended']))
    raise BackupError('no good %s backup%s%s on %s' % (
        args.kind, ' of %s' % args.subject if args.subject else '',
        ' ended before %s' % args.before if args.before else '', ', '.join(names)))


def parse_time(text):
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace(' ', 'T').replace('Z', '+00:00'))
    except ValueError:
        raise BackupError('%r is not an ISO 8601 time such as 2026-11-27T10:15:00Z' % text)
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def redis_cli(cfg, *words, check=True):
    rcfg = cfg['redis']
    env = dict(os.environ)
    if rcfg.get('password'):
        env['REDISCLI_AUTH'] = rcfg['password']
    # The local socket when Redis has one: with TLS, redis_port speaks TLS only.
    socket = rcfg.get('socket')
    where = ['-s', socket] if socket and os.path.exists(socket) else ['-p', str(rcfg.get('port', 6379))]
    return run(['redis-cli'] + where + ['--no-auth-warning'] + list(words), env=env, check=check)


def redis_layout(cfg):
    """dir, dbfilename, appendonly, appenddirname and appendfilename of the running server."""
    layout = {'dir': '/var/lib/redis', 'dbfilename': 'dump.rdb', 'appendonly': 'no',
              'appenddirname': 'appendonlydir', 'appendfilename': 'appendonly.aof'}
    for key in list(layout):
        out = redis_cli(cfg, 'CONFIG', 'GET', key).stdout.split('\n')
        if len(out) >= 2 and out[0].strip() == key:
            layout[key] = out[1].strip()
    return layout


def wait_redis(cfg, timeout):
    deadline = time.time() + timeout
    while True:
        probe = redis_cli(cfg, 'INFO', 'persistence', check=False)
        fields = dict(line.split(':', 1) for line in probe.stdout.replace('\r', '').splitlines() if ':' in line)
        if probe.returncode == 0 and fields.get('loading') == '0':
            return
        if time.time() > deadline:
            raise BackupError('redis did not come back in %d s: %s' % (timeout, (probe.stderr or probe.stdout)[-300:]))
        time.sleep(0.2)


def restore_redis(cfg, entry, plain, moment):
    layout = redis_layout(cfg)
    service = cfg['redis'].get('service') or 'redis-server'
    user = cfg['redis'].get('user', 'redis')
    aof = layout['appenddirname']

    def place(base):
        # Every file is created in the opened directory (O_EXCL, O_NOFOLLOW) and chowned by descriptor:
        # a link the redis user puts there meanwhile is refused, never followed.
        if layout['appendonly'] == 'yes':
            # Multi-part AOF: the snapshot becomes the base file of a fresh manifest, so the server
            # loads it although AOF is on (it never falls back to dump.rdb by itself).
            basefile = '%s.1.base.rdb' % layout['appendfilename']
            with base.leaf(aof, user, 0o750) as aofdir, open(plain, 'rb') as src:
                aofdir.write(basefile, src, owner=user, mode=0o640)
                aofdir.write('%s.manifest' % layout['appendfilename'], 'file %s seq 1 type b\n' % basefile,
                             owner=user, mode=0o640)
        else:
            with open(plain, 'rb') as src:
                base.write(layout['dbfilename'], src, owner=user, mode=0o640)
        run(['systemctl', 'start', service])
        wait_redis(cfg, 300)

    run(['systemctl', 'stop', service])
    # CONFIG GET dir is the server's word: root writes there only if it is the redis user's directory.
    with paths.Dir.open(layout['dir']) as base:
        if base.owner() != paths.ids(user)[0]:
            raise BackupError('redis names %s as its directory, which the %s user does not own: refusing to write '
                              'there' % (layout['dir'], user))
        try:
            copies = put_aside(cfg, [(base, layout['dbfilename']), (base, aof)],
                               '.before-restore-%s' % stamp(moment), functools.partial(place, base), service=service)
        except (BackupError, OSError) as exc:
            raise BackupError('redis restore of %s failed, the previous data is back in place: %s' % (entry['id'], exc))
    return {'keys': int(redis_cli(cfg, 'DBSIZE').stdout.strip() or 0), 'safety_copies': copies,
            'aof': layout['appendonly'] == 'yes'}


def restore_rabbitmq(cfg, entry, plain, moment):
    aside_dir = os.path.join(cfg['staging'], 'before-restore')
    os.makedirs(aside_dir, 0o700, exist_ok=True)
    aside = os.path.join(aside_dir, 'rabbitmq-definitions-%s.json' % stamp(moment))
    with work_root(cfg) as work:
        try:
            with work.leaf('rabbitmq', 'rabbitmq') as leaf:
                with open(plain, 'rb') as src:
                    leaf.write('definitions.json', src, owner='rabbitmq', mode=0o600)
                wanted, current = leaf.join('definitions.json'), leaf.join('current.json')
                run(['rabbitmqctl', '-q', 'export_definitions', current])
                with leaf.open_read('current.json', owners=['rabbitmq']) as src, open(aside, 'wb') as out:
                    shutil.copyfileobj(src, out, CHUNK)
                try:
                    run(['rabbitmqctl', '-q', 'import_definitions', wanted])
                except BackupError as exc:
                    run(['rabbitmqctl', '-q', 'import_definitions', current], check=False)
                    raise BackupError('rabbitmq definitions restore of %s failed, the previous definitions were '
                                      'imported again: %s' % (entry['id'], exc))
        finally:
            work.remove('rabbitmq')
    with open(plain) as handle:
        defs = json.load(handle)
    return {'safety_copies': [aside], 'vhosts': len(defs.get('vhosts', [])), 'users': len(defs.get('users', [])),
            'queues': len(defs.get('queues', []))}


def checked_roots(roots):
    """The paths of a files snapshot, as restic lists them: absolute and normalised, else refused."""
    out = []
    for root in roots:
        if not root.startswith('/') or os.path.normpath(root) != root or root == '/' or '/../' in root + '/':
            raise BackupError('the snapshot names a path that is not absolute and normalised: %r' % root)
        out.append(root)
    return out


def marker_path(cfg):
    """Where a service-data restore in progress is recorded (root's own directory)."""
    return os.path.join(os.path.dirname(os.path.abspath(cfg['staging'])), 'restore-in-progress.json')


def put_aside(cfg, items, suffix, replace, service=None):
    """Move what exists of items ((Dir, name) pairs) to <name><suffix>, run replace(); on failure remove what
    replace() left and move everything back. Returns the safety copies.

    A marker records the move first, so a run killed half-way (SIGKILL, reboot) is rolled back by the
    next `aiquiz-backup recover`; SIGTERM rolls back here."""
    existed = [(where, name) for where, name in items if where.exists(name)]
    marker = marker_path(cfg)
    paths.write_marker(marker, {'kind': 'service-data', 'phase': 'moving', 'service': service, 'suffix': suffix,
                                'paths': [where.join(name) for where, name in items],
                                'existed': [where.join(name) for where, name in existed]})
    moved = []
    try:
        for where, name in existed:
            where.rename(name, name + suffix)
            moved.append((where, name))
        replace()
    except BaseException:
        if service:
            run(['systemctl', 'stop', service], check=False)
        for where, name in items:
            if (where, name) in moved or (where, name) not in existed:
                where.remove(name)
        for where, name in moved:
            where.rename(name + suffix, name)
        if service:
            run(['systemctl', 'start', service], check=False)
        paths.clear_marker(marker)
        raise
    paths.clear_marker(marker)
    return [where.join(name + suffix) for where, name in moved]


def cmd_recover(cfg, args):
    """Roll back a service-data restore that was cut off (its marker is left): put the data aside back and
    start the service."""
    marker = marker_path(cfg)
    state = paths.read_marker(marker)
    if state is None:
        return [{'id': 'recover', 'status': 'nothing to recover'}]
    service = state.get('service')
    if service:
        run(['systemctl', 'stop', service], check=False)
    put_back = []
    for path in state['paths']:
        parent, name = paths.parent_and_name(path)
        with parent:
            aside = name + state['suffix']
            if path in state['existed'] and parent.exists(aside):
                parent.remove(name)
                parent.rename(aside, name)
                put_back.append(path)
            elif path not in state['existed']:
                parent.remove(name)
    if service:
        run(['systemctl', 'start', service])
    paths.clear_marker(marker)
    result = {'id': 'recover', 'status': 'rolled back', 'phase': state['phase'], 'put_back': put_back,
              'detail': 'an interrupted restore was rolled back: %s put back%s' % (
                  ', '.join(put_back) or 'nothing had been moved', ', %s started' % service if service else '')}
    if getattr(args, 'result_file', None):
        write_result(args.result_file, {'command': 'restore', 'failed': True, 'msg': result['detail'],
                                        'results': [result]})
    return [result]


def write_result(path, data):
    paths.write_marker(path, data)


def restore_files(cfg, entry, plain, moment):
    roots = checked_roots(entry['paths'])
    items = []
    try:
        for root in roots:
            items.append(paths.parent_and_name(root))
        # Only the set's own paths are taken from the archive: restic's tar also holds their parent
        # directories, whose owners and modes are left as they are on this host.
        copies = put_aside(cfg, items, '.before-restore-%s' % stamp(moment),
                           lambda: run(['tar', '-C', '/', '--numeric-owner', '-xpf', plain, '--']
                                       + [root.lstrip('/') for root in roots]))
    except (BackupError, OSError) as exc:
        raise BackupError('files restore of %s failed, the previous files are back in place: %s' % (entry['id'], exc))
    finally:
        for where, _name in items:
            where.close()
    return {'paths': roots, 'safety_copies': copies}


RESTORABLE = {'redis': restore_redis, 'rabbitmq': restore_rabbitmq, 'files': restore_files}


def cmd_restore(cfg, args):
    entry = choose(cfg, args)
    if args.kind and entry['kind'] != args.kind:
        raise BackupError('backup %s is %s, not %s' % (entry['id'], entry['kind'], args.kind))
    if entry['kind'] not in RESTORABLE:
        raise BackupError('backup %s is %s: restore it with playbooks/restore.yml (pgBackRest) or pg_restore'
                          % (entry['id'], entry['kind']))
    result = {'id': entry['id'], 'kind': entry['kind'], 'subject': entry.get('subject'), 'target': entry['target'],
              'ended': entry['ended'], 'snapshot': rs.snapshot_of(entry)}
    if entry['kind'] == 'files':
        entry = dict(entry, paths=checked_roots(snapshot_paths(cfg, target_by_name(cfg, entry['target']),
                                                               rs.snapshot_of(entry))))
        result['paths'] = entry['paths']
    if args.plan:
        return [dict(result, status='planned')]
    if paths.read_marker(marker_path(cfg)) is not None:
        raise BackupError('an interrupted restore left %s: run aiquiz-backup recover (the restore role does) first'
                          % marker_path(cfg))
    moment = now()
    os.makedirs(cfg['staging'], 0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='aiquiz-restore-', dir=cfg['staging']) as tmp:
        plain = os.path.join(tmp, 'plain')
        # The whole backup is read, authenticated and decrypted by restic before anything live is touched.
        cmd_fetch(cfg, argparse.Namespace(id=entry['id'], output=plain))
        started = time.time()
        result.update(RESTORABLE[entry['kind']](cfg, entry, plain, moment))
    result.update(status='restored', seconds=round(time.time() - started, 1))
    return [result]


def write_metrics(cfg, command, ok):
    """The catalogue's state and this command's outcome for the node exporter's textfile collector
    (cfg metrics_file; empty writes none). Never fails the command: a metrics problem is logged."""
    path = cfg.get('metrics_file')
    if not path or not os.path.isdir(os.path.dirname(path)):
        return
    runs_path = os.path.join(os.path.dirname(cfg['catalogue']), 'runs.json')
    try:
        with cat.locked(runs_path, 30):
            try:
                with open(runs_path, encoding='utf-8') as handle:
                    runs = json.load(handle)
            except (OSError, ValueError):
                runs = {}
            runs[command] = {'at': iso(now()), 'ok': bool(ok)}
            _files.write_atomic(runs_path, json.dumps(runs, sort_keys=True) + '\n', 0o640, 0o750)
        # Readable by the node exporter (its own user); holds no secret, only names, times and counts.
        _files.write_atomic(path, cat.metrics_text(cat.load(cfg['catalogue'])[0], runs), 0o644, 0o755)
    except (OSError, ValueError, KeyError, cat.CatalogueError) as exc:
        log('metrics not written to %s: %s' % (path, exc))


def terminate(signum, frame):
    # SIGTERM (systemctl stop, a shutdown) unwinds like a failure: what was moved aside is put back.
    raise SystemExit('stopped by signal %d' % signum)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='aiquiz-backup', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    pgb = sub.add_parser('pgbackrest')
    pgb.add_argument('--type', choices=['full', 'diff', 'incr'], default='incr')
    for name in ('init', 'dump', 'redis', 'rabbitmq', 'files', 'logical', 'retention', 'refresh'):
        sub.add_parser(name)
    ver = sub.add_parser('verify')
    ver.add_argument('--no-restore', action='store_true')
    dele = sub.add_parser('delete')
    dele.add_argument('ids', nargs='+')
    fet = sub.add_parser('fetch')
    fet.add_argument('id')
    fet.add_argument('output')
    res = sub.add_parser('restore')
    res.add_argument('--id')
    res.add_argument('--kind', choices=sorted(RESTORABLE))
    res.add_argument('--subject')
    res.add_argument('--target')
    res.add_argument('--before', help='the newest backup that ended at or before this time (ISO 8601)')
    res.add_argument('--plan', action='store_true', help='say what would be restored, touch nothing')
    rot = sub.add_parser('rotate-key', help='make the passphrase in --new the key of every restic repository')
    rot.add_argument('--new', required=True, help='file holding the new passphrase (root-only)')
    rec = sub.add_parser('recover', help='roll back a restore that was cut off (its marker is left)')
    for one in (res, rec):
        one.add_argument('--result-file', help='also write the JSON result here (root-only)')
    args = parser.parse_args(argv)
    cfg = load_config()
    os.umask(0o077)
    if args.command == 'restore' and not args.plan:
        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGHUP, terminate)
    handler = globals()['cmd_%s' % args.command.replace('-', '_')]
    try:
        results = handler(cfg, args)
    except (BackupError, cat.CatalogueError, gfs.RetentionError, OSError, SystemExit) as exc:
        log('%s failed: %s' % (args.command, exc))
        out = {'command': args.command, 'failed': True, 'msg': str(exc), 'results': []}
        print(json.dumps(out))
        if getattr(args, 'result_file', None):
            write_result(args.result_file, out)
        if not getattr(args, 'plan', False):
            write_metrics(cfg, args.command, False)
        return 1
    failed = [r for r in results if r.get('status') == 'failed' or r.get('result') == 'failed']
    for item in failed:
        log('%s: %s' % (item['id'], item.get('detail')))
    out = {'command': args.command, 'failed': bool(failed), 'results': results}
    if args.command != 'fetch':
        print(json.dumps(out))
    if getattr(args, 'result_file', None) and not (args.command == 'recover' and results[0]['status'] != 'rolled back'):
        write_result(args.result_file, out)
    if not getattr(args, 'plan', False):
        write_metrics(cfg, args.command, not failed)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
