# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz-restore: point-in-time restore of PostgreSQL from a pgBackRest repository.

Installed by the aiquiz.ops.restore role. Two steps, each printing one JSON
document:

  aiquiz-restore plan  [--time T] [--set LABEL]   reads the repository only: checks the
        passphrase, the time (not before the oldest backup) and chooses the backup set
        (never one the catalogue marks corrupt or failed). Touches nothing.
  aiquiz-restore apply --set LABEL [--time T]      stops PostgreSQL, moves the data directory
        aside (the safety copy), restores, starts and waits for the promotion. Any failure puts
        the safety copy back and starts PostgreSQL again on it.

Configuration: /etc/aiquiz-restore/restore.json (written by the role).
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

CONFIG = os.environ.get('AIQUIZ_RESTORE_CONFIG', '/etc/aiquiz-restore/restore.json')


class RestoreError(Exception):
    pass


def utc(epoch):
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)


def parse_time(text):
    value = text.strip().replace(' ', 'T', 1)
    if value.endswith(('Z', 'z')):
        value = value[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise RestoreError('restore_target_time %r is not a time; use ISO 8601 UTC such as 2026-11-27T10:15:00Z'
                           % text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def run(cmd, user='postgres', check=True, timeout=None):
    if user:
        cmd = ['runuser', '-u', user, '--'] + cmd
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8', errors='replace',
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        text = (proc.stderr or proc.stdout).strip()[-800:]
        raise RestoreError('%s failed (exit %d): %s' % (' '.join(cmd[3:7]), proc.returncode, text))
    return proc


def pgbackrest(cfg, *args):
    return ['pgbackrest', '--config=%s' % cfg['pgbackrest_config'], '--stanza=%s' % cfg['stanza'],
            '--repo=%d' % cfg['repo']] + list(args)


def info(cfg):
    proc = run(pgbackrest(cfg, 'info', '--output=json'), check=False)
    text = (proc.stderr + proc.stdout).strip()
    if proc.returncode != 0:
        lowered = text.lower()
        if any(word in lowered for word in ('decrypt', 'cipher', 'crypto', 'checksum', 'format')):
            raise RestoreError('cannot read the backup repository of target %s with the given passphrase (wrong '
                               'restore_passphrase?); nothing was touched. pgBackRest said: %s'
                               % (cfg['target'], text[-500:]))
        raise RestoreError('cannot read the backup repository of target %s; nothing was touched. pgBackRest said: %s'
                           % (cfg['target'], text[-500:]))
    try:
        # A wrong key puts raw bytes of the decrypted garbage into the messages.
        data = json.loads(proc.stdout, strict=False)
    except ValueError:
        raise RestoreError('cannot read the backup repository of target %s (unreadable answer from pgBackRest: wrong '
                           'restore_passphrase?); nothing was touched' % cfg['target'])
    stanza = data[0] if data else {}
    status = stanza.get('status', {})
    for repo in stanza.get('repo', []):
        message = (repo.get('status') or {}).get('message') or ''
        if 'FormatError' in message or 'CryptoError' in message or 'decrypt' in message.lower():
            # An encrypted info file read with the wrong key parses as garbage.
            raise RestoreError('cannot read the backup repository of target %s with the given passphrase (wrong '
                               'restore_passphrase?); nothing was touched. pgBackRest said: %s'
                               % (cfg['target'], message.splitlines()[0][:300]))
    if status.get('code') not in (0, None) or not stanza.get('backup'):
        raise RestoreError('no usable backup in the repository of target %s (stanza %s: %s); nothing was touched'
                           % (cfg['target'], cfg['stanza'], status.get('message')))
    return stanza


def bad_labels(cfg):
    """Labels the catalogue marks corrupt or failed for this target (none when there is no catalogue)."""
    try:
        with open(cfg['catalogue']) as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return {}
    return dict((e.get('location'), e.get('detail') or e['status']) for e in data.get('backups', [])
                if e.get('kind') == 'postgresql-pgbackrest' and e.get('target') == cfg['target']
                and e.get('status') in ('corrupt', 'failed') and e.get('location'))


def cmd_plan(cfg, args):
    stanza = info(cfg)
    backups = stanza['backup']
    oldest = min(backups, key=lambda b: b['timestamp']['stop'])
    target = parse_time(args.time) if args.time else None
    if target is not None and target < utc(oldest['timestamp']['stop']):
        raise RestoreError('restore_target_time %s is before the end of the oldest backup (%s, ended %s); the '
                           'earliest point that can be restored is %s; nothing was touched'
                           % (target.strftime('%Y-%m-%dT%H:%M:%SZ'), oldest['label'],
                              utc(oldest['timestamp']['stop']).strftime('%Y-%m-%dT%H:%M:%SZ'),
                              utc(oldest['timestamp']['stop']).strftime('%Y-%m-%dT%H:%M:%SZ')))
    if target is not None and target > datetime.datetime.now(datetime.timezone.utc):
        raise RestoreError('restore_target_time %s is in the future; nothing was touched'
                           % target.strftime('%Y-%m-%dT%H:%M:%SZ'))
    bad = bad_labels(cfg)
    skipped = []
    chosen = None
    for backup in sorted(backups, key=lambda b: b['timestamp']['stop'], reverse=True):
        if args.set and backup['label'] != args.set:
            continue
        if target is not None and utc(backup['timestamp']['stop']) > target:
            continue
        if backup['label'] in bad:
            skipped.append({'label': backup['label'], 'reason': bad[backup['label']]})
            continue
        if backup.get('error'):
            skipped.append({'label': backup['label'], 'reason': 'pgBackRest recorded page checksum errors'})
            continue
        chosen = backup
        break
    if chosen is None:
        raise RestoreError('no good backup set to restore from on target %s%s%s (skipped: %s); nothing was touched'
                           % (cfg['target'], ' ending before %s' % args.time if args.time else '',
                              ' named %s' % args.set if args.set else '', json.dumps(skipped)))
    return {'set': chosen['label'], 'type': chosen['type'], 'backup_ended': utc(chosen['timestamp']['stop'])
            .strftime('%Y-%m-%dT%H:%M:%SZ'), 'lsn_stop': chosen['lsn']['stop'], 'skipped': skipped,
            'target_time': target.strftime('%Y-%m-%d %H:%M:%S+00') if target else None,
            'archive_max': (stanza.get('archive') or [{}])[-1].get('max')}


def systemctl(action, unit):
    proc = subprocess.run(['systemctl', action, unit], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          encoding='utf-8', errors='replace', check=False)
    if proc.returncode != 0:
        raise RestoreError('systemctl %s %s failed: %s' % (action, unit, proc.stderr.strip()))


def psql(cfg, sql):
    return run(['psql', '-X', '-A', '-t', '-p', str(cfg['port']), '-d', 'postgres', '-c', sql], check=False)


def wait_serving(cfg, deadline):
    while time.time() < deadline:
        proc = psql(cfg, 'SELECT pg_is_in_recovery()')
        if proc.returncode == 0 and proc.stdout.strip() == 'f':
            return
        active = subprocess.run(['systemctl', 'is-active', cfg['service']], stdout=subprocess.PIPE,
                                encoding='utf-8', errors='replace', check=False).stdout.strip()
        if active in ('failed', 'inactive') and proc.returncode != 0:
            raise RestoreError('PostgreSQL stopped during recovery (see its log: %s)' % tail_log(cfg))
        time.sleep(0.5)
    raise RestoreError('PostgreSQL did not finish recovery within %d s' % cfg['timeout'])


def tail_log(cfg):
    path = '/var/log/postgresql/postgresql-%s-main.log' % cfg['version']
    try:
        with open(path) as handle:
            return ' | '.join(line.strip() for line in handle.readlines()[-6:])
    except (IOError, OSError):
        return path


def cmd_apply(cfg, args):
    started = time.time()
    datadir = cfg['data_dir']
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    safety = '%s.before-restore-%s' % (datadir, stamp)
    options = ['--set=%s' % args.set, '--pg1-path=%s' % datadir,
               '--recovery-option=restore_command=pgbackrest --config=%s --stanza=%s archive-get %%f "%%p"'
               % (cfg['pgbackrest_config'], cfg['stanza'])]
    if args.time:
        options += ['--type=time', '--target=%s' % parse_time(args.time).strftime('%Y-%m-%d %H:%M:%S+00'),
                    '--target-action=promote']
    if cfg.get('archive_mode') == 'off':
        options.append('--archive-mode=off')
    systemctl('stop', cfg['service'])
    moved = False
    try:
        if os.path.isdir(datadir):
            if cfg.get('safety_backup', True):
                os.rename(datadir, safety)
                moved = True
            else:
                shutil.rmtree(datadir)
        os.makedirs(datadir, 0o700)
        shutil.chown(datadir, 'postgres', 'postgres')
        restore_started = time.time()
        run(pgbackrest(cfg, *options + ['restore']), timeout=cfg['timeout'])
        restored = time.time()
        systemctl('start', cfg['service'])
        wait_serving(cfg, started + cfg['timeout'])
    except BaseException as exc:
        subprocess.run(['systemctl', 'stop', cfg['service']], check=False)
        if moved:
            shutil.rmtree(datadir, ignore_errors=True)
            os.rename(safety, datadir)
        subprocess.run(['systemctl', 'start', cfg['service']], check=False)
        raise RestoreError('restore failed, the previous data directory is back in place and PostgreSQL started '
                           'on it: %s' % exc)
    serving = time.time()
    return {'set': args.set, 'target_time': args.time or None, 'safety_copy': safety if moved else None,
            'seconds_restore': round(restored - restore_started, 2),
            'seconds_recovery': round(serving - restored, 2), 'seconds_total': round(serving - started, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='aiquiz-restore', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    plan = sub.add_parser('plan')
    plan.add_argument('--time')
    plan.add_argument('--set')
    apply_ = sub.add_parser('apply')
    apply_.add_argument('--set', required=True)
    apply_.add_argument('--time')
    args = parser.parse_args(argv)
    with open(CONFIG) as handle:
        cfg = json.load(handle)
    try:
        result = (cmd_plan if args.command == 'plan' else cmd_apply)(cfg, args)
    except RestoreError as exc:
        sys.stderr.write('aiquiz-restore: %s\n' % exc)
        print(json.dumps({'failed': True, 'msg': str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
