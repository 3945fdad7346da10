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
        aside (the safety copy), restores, starts and waits for the promotion. Any failure (and
        SIGTERM) puts the safety copy back and starts PostgreSQL again on it.
  aiquiz-restore recover                          an apply cut off without cleanup (SIGKILL, a
        reboot, the controller gone) left its marker: roll it back (the safety copy back, PostgreSQL
        started) or finish it (restored and only not yet started, or no safety copy to go back to).

The role runs apply in a transient systemd unit (aiquiz-restore-apply.service), so it goes on
when the controller goes away; the unit's ExecStopPost runs recover.

Configuration: /etc/aiquiz-restore/restore.json (written by the role).
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _backup_paths as paths  # noqa: E402  pylint: disable=wrong-import-position

CONFIG = os.environ.get('AIQUIZ_RESTORE_CONFIG', '/etc/aiquiz-restore/restore.json')
UNIT = 'aiquiz-restore-apply.service'


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


def kill_group(child, patience=60):
    """SIGKILL every process of child's group (child leads it) and wait until none is left."""
    deadline = time.time() + patience
    while True:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        child.poll()  # reap the leader: a zombie would keep the group alive
        if time.time() > deadline:
            raise RestoreError('processes of group %d survive SIGKILL' % child.pid)
        time.sleep(0.1)


def run(cmd, user='postgres', check=True, timeout=None):
    """cmd (as user) in a process group of its own. On a timeout, an error or a signal the whole
    group is killed and gone before this returns: a pgbackrest worker left running (runuser does
    not pass SIGKILL on) would go on writing into a data directory the rollback has put back."""
    if user:
        cmd = ['runuser', '-u', user, '--'] + cmd
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding='utf-8', errors='replace',
                             start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except BaseException:
        kill_group(child)
        raise
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
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


def set_databases(cfg, label):
    """Names of the databases in backup set label (pgBackRest's database-ref); None when it does not say."""
    proc = run(pgbackrest(cfg, '--set=%s' % label, 'info', '--output=json'), check=False)
    try:
        refs = json.loads(proc.stdout, strict=False)[0]['backup'][0]['database-ref']
    except (ValueError, LookupError, TypeError):
        return None
    return sorted(ref['name'] for ref in refs if ref.get('name') not in ('template0', 'template1'))


def check_tables(tables, databases, label):
    """Refuse, before anything is touched, a check table whose database the set does not hold
    (a schema.table given for database.table, say)."""
    if databases is None:
        return
    bad = []
    example = ([name for name in databases if name != 'postgres'] or databases or ['quiz'])[0]
    for spec in tables:
        parts = spec.split('.')
        if parts[0] in databases:
            continue
        hint = ''
        if len(parts) == 2:
            hint = ' (a table of schema %s is written database.schema.table, e.g. %s.%s)' % (parts[0], example, spec)
        bad.append('restore_check_tables: "%s": set %s holds no database "%s", it holds %s%s'
                   % (spec, label, parts[0], ', '.join(databases) or 'none', hint))
    if bad:
        raise RestoreError('; '.join(bad) + '; nothing was touched')


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
    databases = set_databases(cfg, chosen['label'])
    check_tables(getattr(args, 'check_table', None) or [], databases, chosen['label'])
    return {'set': chosen['label'], 'type': chosen['type'], 'databases': databases,
            'backup_ended': utc(chosen['timestamp']['stop'])
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
    # The postgres user can replace its log with a link to /etc/shadow: read only its own regular file.
    return paths.read_tail(path, owners=['postgres']) or path


def marker_path(cfg):
    return os.path.join(cfg.get('state_dir') or '/var/lib/aiquiz/restore', 'in-progress.json')


def mark(cfg, state, phase):
    state['phase'] = phase
    paths.write_marker(marker_path(cfg), state)


def restore_options(cfg, state):
    options = ['--set=%s' % state['set'], '--pg1-path=%s' % state['data_dir'],
               '--recovery-option=restore_command=pgbackrest --config=%s --stanza=%s archive-get %%f "%%p"'
               % (cfg['pgbackrest_config'], cfg['stanza'])]
    if state.get('time'):
        options += ['--type=time', '--target=%s' % parse_time(state['time']).strftime('%Y-%m-%d %H:%M:%S+00'),
                    '--target-action=promote']
    if cfg.get('archive_mode') == 'off':
        options.append('--archive-mode=off')
    return options


def restore_into_fresh_dir(cfg, state, parent, name):
    """A fresh data directory (whatever is at its name goes: the live one was moved or deleted before),
    restored by pgBackRest as postgres."""
    mark(cfg, state, 'restoring')
    parent.leaf(name, 'postgres', 0o700).close()
    run(pgbackrest(cfg, *restore_options(cfg, state) + ['restore']), timeout=cfg['timeout'])


def start_and_wait(cfg, state, started):
    mark(cfg, state, 'starting')
    systemctl('start', cfg['service'])
    wait_serving(cfg, started + cfg['timeout'])


def roll_back(cfg, state):
    """Put the safety copy back and start PostgreSQL on it. False when there is none to put back."""
    subprocess.run(['systemctl', 'stop', cfg['service']], check=False)
    parent, name = paths.parent_and_name(state['data_dir'])
    with parent:
        safety = os.path.basename(state['safety']) if state.get('safety') else None
        if safety and parent.exists(safety):
            parent.remove(name)
            parent.rename(safety, name)
        elif state['phase'] not in ('stopping', 'moving'):
            return False
    subprocess.run(['systemctl', 'start', cfg['service']], check=False)
    paths.clear_marker(marker_path(cfg))
    return True


def cmd_apply(cfg, args):
    if paths.read_marker(marker_path(cfg)) is not None:
        raise RestoreError('an interrupted restore left %s; run aiquiz-restore recover (the role does) first'
                           % marker_path(cfg))
    started = time.time()
    datadir = cfg['data_dir']
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    keep = cfg.get('safety_backup', True)
    state = {'set': args.set, 'time': args.time, 'data_dir': datadir, 'started': stamp, 'pid': os.getpid(),
             'safety': '%s.before-restore-%s' % (datadir, stamp) if keep else None}
    # The parent (/var/lib/postgresql/<version>) is postgres': every step below works in it by
    # descriptor and never follows a link postgres may put there.
    parent, name = paths.parent_and_name(datadir)
    with parent:
        mark(cfg, state, 'stopping')
        try:
            systemctl('stop', cfg['service'])
            if parent.exists(name):
                if keep:
                    mark(cfg, state, 'moving')
                    parent.rename(name, os.path.basename(state['safety']))
                else:
                    mark(cfg, state, 'deleting')
                    parent.remove(name)
            restore_started = time.time()
            restore_into_fresh_dir(cfg, state, parent, name)
            restored = time.time()
            start_and_wait(cfg, state, started)
        except BaseException as exc:
            if keep and roll_back(cfg, state):
                raise RestoreError('restore failed and was rolled back: the previous data directory is back in '
                                   'place and PostgreSQL started on it: %s' % exc)
            if not keep:
                raise RestoreError('restore failed after the live data directory was deleted (restore_safety_backup '
                                   'false); the marker %s is left, and the next run of the role finishes the '
                                   'restore: %s' % (marker_path(cfg), exc))
            raise
    paths.clear_marker(marker_path(cfg))
    serving = time.time()
    return {'set': args.set, 'target_time': args.time or None, 'safety_copy': state['safety'],
            'seconds_restore': round(restored - restore_started, 2),
            'seconds_recovery': round(serving - restored, 2), 'seconds_total': round(serving - started, 2)}


def unit_active():
    state = subprocess.run(['systemctl', 'show', '-p', 'ActiveState', '--value', UNIT], stdout=subprocess.PIPE,
                           encoding='utf-8', errors='replace', check=False).stdout.strip()
    return state in ('active', 'activating', 'reloading')


def cmd_recover(cfg, args):
    """Finish or roll back what an apply cut off without cleanup left, saying which."""
    state = paths.read_marker(marker_path(cfg))
    if state is None:
        return {'recovered': None, 'msg': 'no interrupted restore'}
    if not args.from_unit and unit_active():
        raise RestoreError('a restore is running on this host (%s, since %s); wait for it to end'
                           % (UNIT, state.get('started')))
    phase = state['phase']
    started = time.time()
    # Nothing restored yet and the live data kept aside: go back. Restored, or nothing to go back to: finish.
    if phase in ('stopping', 'moving') or (phase == 'restoring' and state.get('safety')):
        roll_back(cfg, state)
        action = 'rolled back'
        detail = ('an interrupted restore (phase %s, set %s, started %s) was rolled back: the previous data '
                  'directory is back in place and PostgreSQL started on it' % (phase, state['set'], state['started']))
    else:
        parent, name = paths.parent_and_name(state['data_dir'])
        with parent:
            try:
                subprocess.run(['systemctl', 'stop', cfg['service']], check=False)
                if phase in ('deleting', 'restoring'):
                    restore_into_fresh_dir(cfg, state, parent, name)
                start_and_wait(cfg, state, started)
            except BaseException as exc:
                if state.get('safety') and roll_back(cfg, state):
                    raise RestoreError('an interrupted restore (phase %s) could not be finished and was rolled back '
                                       'to the previous data directory: %s' % (phase, exc))
                raise RestoreError('an interrupted restore (phase %s) could not be finished; the marker %s is kept: '
                                   '%s' % (phase, marker_path(cfg), exc))
        paths.clear_marker(marker_path(cfg))
        action = 'finished'
        detail = ('an interrupted restore (phase %s, set %s, started %s) was finished: PostgreSQL serves the '
                  'restored data' % (phase, state['set'], state['started']))
    return {'recovered': action, 'phase': phase, 'set': state['set'], 'msg': detail,
            'seconds': round(time.time() - started, 2)}


def terminate(signum, frame):
    # SIGTERM (systemctl stop, a shutdown) unwinds like a failure: the safety copy goes back.
    raise SystemExit('stopped by signal %d' % signum)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='aiquiz-restore', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    plan = sub.add_parser('plan')
    plan.add_argument('--time')
    plan.add_argument('--set')
    plan.add_argument('--check-table', action='append')
    apply_ = sub.add_parser('apply')
    apply_.add_argument('--set', required=True)
    apply_.add_argument('--time')
    recover = sub.add_parser('recover')
    recover.add_argument('--from-unit', action='store_true', help='run by the apply unit itself (ExecStopPost)')
    for one in (apply_, recover):
        one.add_argument('--result-file', help='also write the JSON result here (root-only)')
    args = parser.parse_args(argv)
    with open(CONFIG) as handle:
        cfg = json.load(handle)
    os.umask(0o077)
    if args.command == 'apply':
        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGHUP, terminate)
    result_file = getattr(args, 'result_file', None)
    try:
        result = {'plan': cmd_plan, 'apply': cmd_apply, 'recover': cmd_recover}[args.command](cfg, args)
    except (RestoreError, OSError, SystemExit) as exc:
        out = {'failed': True, 'msg': str(exc)}
        sys.stderr.write('aiquiz-restore: %s\n' % exc)
        print(json.dumps(out))
        if result_file:
            paths.write_marker(result_file, out)
        return 1
    print(json.dumps(result))
    if result_file and not (args.command == 'recover' and not result.get('recovered')):
        # After an apply cut off, the unit's recover says how it ended: as a failure, with what it did.
        out = result if args.command == 'apply' else {'failed': True, 'msg': result['msg'],
                                                      'recovered': result['recovered']}
        paths.write_marker(result_file, out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
