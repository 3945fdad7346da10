# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz-backup: take, verify, fetch and expire the backups of this host.

Installed by the aiquiz.ops.backup role with its configuration in
/etc/aiquiz-backup/config.json; run by its systemd timers and by
playbooks/backup.yml. Every backup is recorded in the catalogue (the same
code as the aiquiz.ops.backup_catalogue module). Prints one JSON document;
exits 1 when anything failed, naming it on stderr.

  aiquiz-backup pgbackrest --type full|diff|incr
  aiquiz-backup dump | redis | rabbitmq | files
  aiquiz-backup logical                    (every enabled one of those, then retention)
  aiquiz-backup verify [--no-restore]
  aiquiz-backup retention                  (gfs policy of the configuration, then pgBackRest's expire)
  aiquiz-backup delete ID...
  aiquiz-backup fetch ID OUTPUT            (decrypted and decompressed; - for stdout)
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
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _backup_catalogue as cat  # noqa: E402  pylint: disable=wrong-import-position
import _backup_gfs as gfs  # noqa: E402  pylint: disable=wrong-import-position
import _backup_paths as paths  # noqa: E402  pylint: disable=wrong-import-position

CONFIG = os.environ.get('AIQUIZ_BACKUP_CONFIG', '/etc/aiquiz-backup/config.json')
CHUNK = 1 << 20
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
# Targets
# --------------------------------------------------------------------------

def s3_verify(target):
    """boto3's verify for target: its ca_file, else the system's trust store; False only when
    verify_tls is false, said on stderr each time."""
    if target.get('verify_tls', True) is False:
        log('WARNING: TLS certificate verification is OFF for target %s (verify_tls: false): '
            'anyone on the path can read and change the backups' % target.get('name'))
        return False
    return target.get('ca_file') or None


def s3_client(target):
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.config import Config  # pylint: disable=import-outside-toplevel
    scheme = 'https'
    endpoint = target.get('endpoint')
    url = None
    if endpoint:
        url = '%s://%s:%s' % (scheme, endpoint, target.get('port', 443))
    return boto3.client(
        's3', endpoint_url=url, region_name=target.get('region') or 'us-east-1',
        aws_access_key_id=target.get('access_key') or None, aws_secret_access_key=target.get('secret_key') or None,
        verify=s3_verify(target),
        config=Config(s3={'addressing_style': 'path' if target.get('uri_style', 'path') == 'path' else 'virtual'},
                      retries={'max_attempts': 3}))


def s3_key(target, relative):
    prefix = (target.get('prefix') or '').strip('/')
    return '%s/%s' % (prefix, relative) if prefix else relative


def store(target, produced, relative):
    """Put the produced file on target; return its location."""
    if target['type'] == 'local':
        dest = os.path.join(target['path'], relative)
        if os.path.abspath(produced) == os.path.abspath(dest):
            return dest
        os.makedirs(os.path.dirname(dest), 0o700, exist_ok=True)
        partial = dest + '.partial'
        try:
            with open(produced, 'rb') as src, open(partial, 'wb') as out:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.rename(partial, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise
        return dest
    client = s3_client(target)
    key = s3_key(target, relative)
    try:
        client.upload_file(produced, target['bucket'], key)
    except Exception as exc:  # pylint: disable=broad-except
        raise BackupError('upload to s3://%s/%s on %s failed: %s' % (target['bucket'], key, target['name'], exc))
    return 's3://%s/%s' % (target['bucket'], key)


def open_location(target, location):
    """A readable binary stream of a stored backup."""
    if location.startswith('/'):
        return open(location, 'rb')
    bucket, key = location[len('s3://'):].split('/', 1)
    body = s3_client(target).get_object(Bucket=bucket, Key=key)['Body']
    return body


def delete_location(target, location):
    if location.startswith('/'):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(location)
        return
    bucket, key = location[len('s3://'):].split('/', 1)
    s3_client(target).delete_object(Bucket=bucket, Key=key)


def target_by_name(cfg, name):
    for target in cfg['targets']:
        if target['name'] == name:
            return target
    raise BackupError('unknown backup target %s; configured: %s' % (name, ', '.join(t['name'] for t in cfg['targets'])))


# --------------------------------------------------------------------------
# Encrypted, compressed files
# --------------------------------------------------------------------------

def encrypt_cmd(cfg):
    return ['openssl', 'enc', '-aes-256-cbc', '-pbkdf2', '-iter', '100000', '-salt', '-pass',
            'file:%s' % cfg['passphrase_file']]


def produce(cfg, producer, dest, producer_user=None, env=None, compress=True, source=None):
    """producer (or the open file source) [| zstd] | openssl enc > dest, hashing on the way.
    Returns (sha256, size)."""
    name = producer[0] if producer else None
    if producer and producer_user:
        producer = ['runuser', '-u', producer_user, '--'] + producer
    stages = [(name, producer)] if producer else []
    if compress:
        stages.append(('zstd', ['zstd', '-q', '-T0', '-%d' % cfg.get('zstd_level', 3), '-c']))
    stages.append(('openssl', encrypt_cmd(cfg)))
    os.makedirs(os.path.dirname(dest), 0o700, exist_ok=True)
    partial = dest + '.partial'
    errs = [tempfile.TemporaryFile() for stage in stages]
    procs = []
    try:
        upstream = source
        for (stage_name, cmd), err in zip(stages, errs):
            proc = subprocess.Popen(cmd, stdin=upstream, stdout=subprocess.PIPE, stderr=err,
                                    env=env if stage_name == name else None)
            if upstream is not None and upstream is not source:
                upstream.close()
            upstream = proc.stdout
            procs.append(proc)
        with open(partial, 'wb') as out:
            sha, size = cat.sha256_stream(upstream, CHUNK, out.write)
            out.flush()
            os.fsync(out.fileno())
        codes = [proc.wait() for proc in procs]
        if any(codes):
            messages = []
            for (stage_name, cmd), proc_err, code in zip(stages, errs, codes):
                proc_err.seek(0)
                text = proc_err.read().decode('utf-8', 'replace').strip()
                if code:
                    messages.append('%s exit %d: %s' % (stage_name, code, text[-600:]))
            raise BackupError('; '.join(messages))
        os.rename(partial, dest)
    except BaseException:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    finally:
        for handle in errs:
            handle.close()
    return sha, size


def decode_to(cfg, stream, output, compressed=True):
    """Decrypt (and decompress) stream into output (path or '-'). Raises BackupError on a wrong key."""
    dec = subprocess.Popen(['openssl', 'enc', '-d', '-aes-256-cbc', '-pbkdf2', '-iter', '100000', '-pass',
                            'file:%s' % cfg['passphrase_file']], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    out = sys.stdout.buffer if output == '-' else open(output + '.partial', 'wb')
    unz = subprocess.Popen(['zstd', '-q', '-d', '-c'] if compressed else ['cat'], stdin=dec.stdout, stdout=out,
                           stderr=subprocess.PIPE)
    dec.stdout.close()
    try:
        while True:
            block = stream.read(CHUNK)
            if not block:
                break
            try:
                dec.stdin.write(block)
            except BrokenPipeError:
                break
        dec.stdin.close()
        dec_err = dec.stderr.read().decode('utf-8', 'replace')
        dec_code = dec.wait()
        unz_err = unz.stderr.read().decode('utf-8', 'replace')
        unz_code = unz.wait()
    finally:
        if output != '-':
            out.close()
    if dec_code or unz_code:
        if output != '-':
            with contextlib.suppress(OSError):
                os.unlink(output + '.partial')
        if 'bad decrypt' in dec_err or dec_code:
            raise BackupError('cannot decrypt the backup: wrong passphrase or damaged file (openssl: %s)'
                              % dec_err.strip()[-300:])
        raise BackupError('cannot decompress the backup: wrong passphrase or damaged file (zstd: %s)'
                          % unz_err.strip()[-300:])
    if output != '-':
        os.rename(output + '.partial', output)


# --------------------------------------------------------------------------
# Taking backups
# --------------------------------------------------------------------------

def record(cfg, entry):
    cat.update(cfg['catalogue'], lambda data: cat.add(data, entry))


def produce_dir(cfg):
    """Where a backup file is produced: the first local target, else the staging directory."""
    for target in cfg['targets']:
        if target['type'] == 'local':
            return target
    return None


def file_backup(cfg, kind, subject, ext, producer, producer_user=None, env=None, position=None, compress=True,
                opener=None):
    """Produce one encrypted file and put it on every target, cataloguing each copy.
    opener: instead of a producer, a function giving the open file to back up (a refusal to open it
    fails this backup, naming the path)."""
    started = now()
    base_id = '%s-%s-%s' % (kind, subject, stamp(started))
    relative = '%s/%s/%s.%s%s.enc' % (kind, subject, base_id, ext, '.zst' if compress else '')
    first = produce_dir(cfg)
    produced = os.path.join(first['path'] if first else cfg['staging'], relative)
    results = []
    try:
        with (opener() if opener else contextlib.nullcontext()) as source:
            sha, size = produce(cfg, producer, produced, producer_user=producer_user, env=env, compress=compress,
                                source=source)
    except (BackupError, OSError) as exc:
        detail = 'producing %s failed: %s' % (relative, exc)
        for target in cfg['targets']:
            record(cfg, dict(id='%s-%s' % (base_id, target['name']), kind=kind, subject=subject, target=target['name'],
                             started=iso(started), ended=iso(now()), status='failed', detail=detail,
                             source_position=position))
            results.append({'id': '%s-%s' % (base_id, target['name']), 'status': 'failed', 'detail': detail})
        return results
    try:
        for target in cfg['targets']:
            ident = '%s-%s' % (base_id, target['name'])
            entry = dict(id=ident, kind=kind, subject=subject, target=target['name'], started=iso(started),
                         size=size, sha256=sha, source_position=position)
            try:
                location = store(target, produced, relative)
                entry.update(location=location, ended=iso(now()), status='good')
            except (BackupError, OSError) as exc:
                entry.update(ended=iso(now()), status='failed', detail='storing on %s failed: %s' % (target['name'], exc))
            record(cfg, entry)
            results.append({'id': ident, 'status': entry['status'], 'detail': entry.get('detail'),
                            'size': size, 'sha256': sha})
    finally:
        if not first:
            with contextlib.suppress(OSError):
                os.unlink(produced)
    return results


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
    # compressed by pg_dump) lives in a fresh leaf of postgres' own and is removed after;
    # root reads it only as postgres' own regular file, never through a link.
    with work_root(cfg) as work:
        try:
            with work.leaf('dump', 'postgres') as leaf:
                for index, database in enumerate(databases(cfg)):
                    position = psql(cfg, 'SELECT pg_current_wal_lsn()')
                    name = '%d.dump' % index
                    opener = None
                    producer = None
                    try:
                        run(['pg_dump', '-Fc', '-p', str(cfg['pg_port']), '-d', database, '-f', leaf.join(name)],
                            user='postgres')
                        opener = functools.partial(leaf.open_read, name, owners=['postgres'])
                    except BackupError as exc:
                        producer = ['sh', '-c', 'echo %s >&2; exit 1' % shlex.quote(str(exc)[-500:])]
                    try:
                        results += file_backup(cfg, 'postgresql-dump', database, 'dump', producer, position=position,
                                               compress=False, opener=opener)
                    finally:
                        leaf.remove(name)
        finally:
            work.remove('dump')
    return results


def cmd_redis(cfg, args):
    rcfg = cfg['redis']
    before = redis_cli(cfg, 'LASTSAVE').stdout.strip()
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
        return file_backup(cfg, 'redis', 'redis', 'rdb', None, opener=functools.partial(
            base.open_read, rcfg.get('dbfilename', 'dump.rdb'), owners=[rcfg.get('user', 'redis')]))


def cmd_rabbitmq(cfg, args):
    with work_root(cfg) as work:
        try:
            with work.leaf('rabbitmq', 'rabbitmq') as leaf:
                run(['rabbitmqctl', '-q', 'export_definitions', leaf.join('definitions.json')])
                return file_backup(cfg, 'rabbitmq', 'definitions', 'json', None, opener=functools.partial(
                    leaf.open_read, 'definitions.json', owners=['rabbitmq']))
        finally:
            work.remove('rabbitmq')


def cmd_files(cfg, args):
    results = []
    sets = list(cfg.get('paths') or [])
    for volume in cfg.get('docker_volumes') or []:
        sets.append({'name': 'volume-%s' % volume, 'paths': ['/var/lib/docker/volumes/%s/_data' % volume]})
    for item in sets:
        rel = [path.lstrip('/') for path in item['paths']]
        results += file_backup(cfg, 'files', item['name'], 'tar', ['tar', '-C', '/', '--numeric-owner', '-cf', '-']
                               + rel)
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


def pgbackrest_cmd(cfg, repo, *rest):
    return ['pgbackrest', '--stanza=%s' % cfg['stanza'], '--repo=%d' % repo] + list(rest)


def pgbackrest_info(cfg, repo):
    out = run(pgbackrest_cmd(cfg, repo, 'info', '--output=json'), user='postgres').stdout
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
        repo = target['repo']
        started = now()
        kind, why = backup_type(list(cat.select(cat.load(cfg['catalogue'])[0], kind='postgresql-pgbackrest',
                                                target=target['name'])), args.type)
        if why:
            log('%s: %s' % (target['name'], why))
        try:
            # Tables present both before and after the backup are in the set: verification then knows a
            # table missing from an older set is history, not damage.
            before = present_tables(cfg)
            run(pgbackrest_cmd(cfg, repo, '--type=%s' % kind, 'backup'), user='postgres')
            tables = [spec for spec in present_tables(cfg) if spec in before]
            info = pgbackrest_info(cfg, repo)
            last = info['backup'][-1]
            entry = dict(id='pgbackrest-%s-%s' % (target['name'], last['label']), kind='postgresql-pgbackrest',
                         subject=cfg['stanza'], target=target['name'], location=last['label'],
                         size=int(last['info']['repository'].get('delta') or last['info']['repository']['size']),
                         started=epoch_iso(last['timestamp']['start']), ended=epoch_iso(last['timestamp']['stop']),
                         source_position=last['lsn']['stop'], status='good', tables=tables)
        except (BackupError, KeyError, IndexError, ValueError) as exc:
            entry = dict(id='pgbackrest-%s-%s-%s' % (target['name'], stamp(started), kind),
                         kind='postgresql-pgbackrest', subject=cfg['stanza'], target=target['name'],
                         started=iso(started), ended=iso(now()), status='failed', detail=str(exc))
        record(cfg, entry)
        results.append({'id': entry['id'], 'status': entry['status'], 'detail': entry.get('detail') or why})
    sync_pgbackrest(cfg)
    return results


def sync_pgbackrest(cfg):
    """Drop catalogue entries of pgBackRest backups that pgBackRest's own retention expired."""
    for target in cfg['targets']:
        try:
            labels = set(item['label'] for item in pgbackrest_info(cfg, target['repo']).get('backup', []))
        except (BackupError, ValueError):
            continue

        def change(data, target=target, labels=frozenset(labels)):
            data['backups'] = [e for e in data['backups'] if not (
                e['kind'] == 'postgresql-pgbackrest' and e['target'] == target['name'] and e['status'] == 'good'
                and e.get('location') and e['location'] not in labels)]
        cat.update(cfg['catalogue'], change)


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------

def verify_remote(cfg, entries):
    results = []
    for entry in entries:
        if entry['status'] != 'good' or not (entry.get('location') or '').startswith('s3://'):
            continue
        try:
            stream = open_location(target_by_name(cfg, entry['target']), entry['location'])
            digest, size = cat.sha256_stream(stream)
            if digest != entry['sha256'] or size != entry.get('size', size):
                result = 'failed'
                detail = 'sha256 of %s is %s, the catalogue has %s' % (entry['location'], digest, entry['sha256'])
            else:
                result, detail = 'ok', 'sha256 matches'
        except Exception as exc:  # pylint: disable=broad-except
            result, detail = 'failed', 'cannot read %s: %s' % (entry['location'], exc)
        results.append((entry['id'], result, detail))
    return results


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
                run(pgbackrest_cmd(cfg, target['repo'], '--pg1-path=%s' % scratch.path, '--set=%s' % label,
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


def pgbackrest_verify(cfg, repo):
    """({label: {status, text}}, completed) from pgbackrest verify.

    pgbackrest verify exits 0 even when it finds damage, and lists only the
    backups it found damaged: a backup it does not name passed.
    """
    proc = run(pgbackrest_cmd(cfg, repo, '--log-level-console=info', 'verify'), user='postgres', check=False)
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

    def local(data):
        return cat.verify_files(data, cat.select(data, status=['good']))
    for item in cat.update(path, local):
        if item['result'] != 'skipped':
            results.append(item)
    data = cat.load(path)[0]
    remote = verify_remote(cfg, cat.select(data, status=['good']))

    def remote_change(data):
        for ident, result, detail in remote:
            cat.record_verification(cat.find(data, ident), result, detail)
    cat.update(path, remote_change)
    results += [{'id': i, 'result': r, 'detail': d} for i, r, d in remote]
    # pgBackRest: the repository check of every good set, then a test restore of the newest one.
    for target in cfg['targets']:
        entries = list(cat.select(cat.load(path)[0], kind='postgresql-pgbackrest', target=target['name'],
                                  status=['good']))
        if entries:
            statuses = pgbackrest_verify(cfg, target['repo'])
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
        if args.no_restore:
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

def cmd_retention(cfg, args):
    policy = cfg['retention']
    data = cat.load(cfg['catalogue'])[0]
    series = {}
    for entry in data['backups']:
        if entry['kind'] == 'postgresql-pgbackrest':
            continue
        series.setdefault((entry['kind'], entry.get('subject'), entry['target']), []).append(entry)
    doomed = []
    for key in sorted(series, key=str):
        entries = series[key]
        good = [e for e in entries if e['status'] == 'good']
        plan = gfs.plan(good, policy['daily'], policy['weekly'], policy['monthly'], policy['yearly'])
        doomed += [e for e in good if e['id'] in plan['delete']]
        # Failed and corrupt copies older than the oldest kept good one go too.
        oldest_kept = min((e['ended'] for e in good if e['id'] in plan['keep']), default=None)
        doomed += [e for e in entries if e['status'] != 'good' and oldest_kept and (e.get('ended') or '') < oldest_kept]
    removed = []
    for entry in doomed:
        try:
            if entry.get('location'):
                delete_location(target_by_name(cfg, entry['target']), entry['location'])
        except Exception as exc:  # pylint: disable=broad-except
            log('cannot delete %s: %s' % (entry['location'], exc))
            continue
        removed.append(entry['id'])
    return forget(cfg, removed)


def forget(cfg, removed):
    """Drop the entries of deleted copies from the catalogue."""
    ids = set(removed)

    def change(data):
        data['backups'] = [e for e in data['backups'] if e['id'] not in ids]
    cat.update(cfg['catalogue'], change)
    sync_pgbackrest(cfg)
    return [{'id': ident, 'status': 'deleted'} for ident in removed]


def cmd_delete(cfg, args):
    """Delete stored copies and their catalogue entries (what the role's retention, from gfs_retention, names)."""
    data = cat.load(cfg['catalogue'])[0]
    removed = []
    for ident in args.ids:
        entry = cat.find(data, ident)
        if entry is None:
            continue
        if entry['kind'] == 'postgresql-pgbackrest':
            raise BackupError('%s is a pgBackRest backup: pgBackRest expires its own (repo retention)' % ident)
        if entry.get('location'):
            delete_location(target_by_name(cfg, entry['target']), entry['location'])
        removed.append(ident)
    return forget(cfg, removed)


def good_entry(data, ident):
    entry = cat.find(data, ident)
    if entry is None:
        raise BackupError('no backup %s in the catalogue' % ident)
    if entry['status'] != 'good':
        raise BackupError('backup %s is %s (%s); choose a good one' % (ident, entry['status'], entry.get('detail')))
    return entry


def cmd_fetch(cfg, args):
    entry = good_entry(cat.load(cfg['catalogue'])[0], args.id)
    target = target_by_name(cfg, entry['target'])
    os.makedirs(cfg['staging'], 0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='aiquiz-fetch-', dir=cfg['staging']) as tmp:
        copy = os.path.join(tmp, 'backup')
        with open_location(target, entry['location']) as stream, open(copy, 'wb') as out:
            sha = cat.sha256_stream(stream, CHUNK, out.write)[0]
        if sha != entry['sha256']:
            cat.update(cfg['catalogue'], lambda d: cat.record_verification(
                cat.find(d, args.id), 'failed', 'sha256 mismatch at fetch'))
            raise BackupError('backup %s does not match its sha256; marked corrupt, nothing written' % args.id)
        with open(copy, 'rb') as stream:
            decode_to(cfg, stream, args.output, compressed=entry['location'].endswith('.zst.enc'))
    return [{'id': args.id, 'status': 'fetched', 'output': args.output}]


# --------------------------------------------------------------------------
# Restoring service data (Redis, RabbitMQ definitions, files and volumes)
# --------------------------------------------------------------------------

def choose(cfg, args):
    """The catalogue entry to restore: --id, else the newest good one of --kind (and --subject, --target)."""
    data = cat.load(cfg['catalogue'])[0]
    if args.id:
        return good_entry(data, args.id)
    if not args.kind:
        raise BackupError('name the backup (--id) or its kind (--kind)')
    if args.kind not in RESTORABLE:
        raise BackupError('restore takes one of %s, got %s' % (', '.join(RESTORABLE), args.kind))
    names = [args.target] if args.target else [t['name'] for t in cfg['targets']]
    before = parse_time(args.before) if args.before else None
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


def tar_roots(plain):
    """Top-level paths of a files backup (the paths of its set, archived relative to /)."""
    roots = []
    for name in run(['tar', '-tf', plain]).stdout.splitlines():
        parts = [part for part in name.split('/') if part not in ('', '.')]
        if '..' in parts:
            raise BackupError('the archive names a path outside its set: %s' % name)
        path = '/' + '/'.join(parts)
        if parts and not any(path == root or path.startswith(root + '/') for root in roots):
            roots.append(path)
    return roots


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
    roots = tar_roots(plain)
    items = []
    try:
        for root in roots:
            items.append(paths.parent_and_name(root))
        copies = put_aside(cfg, items, '.before-restore-%s' % stamp(moment),
                           lambda: run(['tar', '-C', '/', '--numeric-owner', '-xpf', plain]))
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
              'ended': entry['ended']}
    if args.plan:
        return [dict(result, status='planned')]
    if paths.read_marker(marker_path(cfg)) is not None:
        raise BackupError('an interrupted restore left %s: run aiquiz-backup recover (the restore role does) first'
                          % marker_path(cfg))
    moment = now()
    os.makedirs(cfg['staging'], 0o700, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='aiquiz-restore-', dir=cfg['staging']) as tmp:
        plain = os.path.join(tmp, 'plain')
        # The fetch checks the sha256 and decrypts before anything live is touched.
        cmd_fetch(cfg, argparse.Namespace(id=entry['id'], output=plain))
        started = time.time()
        result.update(RESTORABLE[entry['kind']](cfg, entry, plain, moment))
    result.update(status='restored', seconds=round(time.time() - started, 1))
    return [result]


def terminate(signum, frame):
    # SIGTERM (systemctl stop, a shutdown) unwinds like a failure: what was moved aside is put back.
    raise SystemExit('stopped by signal %d' % signum)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='aiquiz-backup', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    pgb = sub.add_parser('pgbackrest')
    pgb.add_argument('--type', choices=['full', 'diff', 'incr'], default='incr')
    for name in ('dump', 'redis', 'rabbitmq', 'files', 'logical', 'retention'):
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
    rec = sub.add_parser('recover', help='roll back a restore that was cut off (its marker is left)')
    for one in (res, rec):
        one.add_argument('--result-file', help='also write the JSON result here (root-only)')
    args = parser.parse_args(argv)
    cfg = load_config()
    os.umask(0o077)
    if args.command == 'restore' and not args.plan:
        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGHUP, terminate)
    handler = globals()['cmd_%s' % args.command]
    try:
        results = handler(cfg, args)
    except (BackupError, cat.CatalogueError, gfs.RetentionError, OSError, SystemExit) as exc:
        log('%s failed: %s' % (args.command, exc))
        out = {'command': args.command, 'failed': True, 'msg': str(exc), 'results': []}
        print(json.dumps(out))
        if getattr(args, 'result_file', None):
            write_result(args.result_file, out)
        return 1
    failed = [r for r in results if r.get('status') == 'failed' or r.get('result') == 'failed']
    for item in failed:
        log('%s: %s' % (item['id'], item.get('detail')))
    out = {'command': args.command, 'failed': bool(failed), 'results': results}
    if args.command != 'fetch':
        print(json.dumps(out))
    if getattr(args, 'result_file', None) and not (args.command == 'recover' and results[0]['status'] != 'rolled back'):
        write_result(args.result_file, out)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
