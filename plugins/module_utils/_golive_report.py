# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The go-live report (aiquiz.ops.golive_report): what the run did (from the
audit trail), the post-launch checks, who ran it and from which commits, as
JSON and as one self-contained HTML page; and the evidence manifest, chained
run to run, with its verification.

Private to this collection: it may change or go away in any release; do not
import it from outside this collection."""

from __future__ import annotations

import datetime
import getpass
import glob
import hashlib
import html
import json
import os
import re

REPORT_VERSION = 1
MANIFEST = 'MANIFEST.json'
FILE_MODE = 0o600
DIR_MODE = 0o700
RUN_ID = re.compile(r'^[0-9]{8}T[0-9]{6}Z[\w.-]*$')
STATUSES = ('pass', 'warn', 'missing', 'fail')
CHECK_TITLES = (('public_url', 'Public URL through the edge'), ('readiness', 'App hosts ready'),
                ('backups', 'Last verified backup'), ('certificates', 'Certificate expiry'),
                ('synthetic', 'Synthetic transaction through the public URL'),
                ('monitoring', 'Monitoring targets and alerts'), ('drill', 'Disaster-recovery drill'),
                ('hardening', 'Host hardening'))
# What the hardening check reads on each host (the host_state module's answer) and expects.
HARDENING_SSHD = (('permitrootlogin', 'no'), ('passwordauthentication', 'no'), ('kbdinteractiveauthentication', 'no'))
HARDENING_SYSCTL = (('kernel.randomize_va_space', '2'), ('fs.suid_dumpable', '0'),
                    ('net.ipv4.conf.all.accept_redirects', '0'))


class ReportError(Exception):
    """Evidence that cannot be written or read."""


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def parse_iso(text):
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.strptime(text.replace('.000', '')[:20], '%Y-%m-%dT%H:%M:%SZ').replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(65536), b''):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text):
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


# --- the audit trail -------------------------------------------------------


def _ancestor_pids():
    """This process's parent, its parent and so on (Linux /proc): the controller's ansible-playbook is one."""
    pids = []
    pid = os.getpid()
    for _step in range(32):
        try:
            with open('/proc/%d/stat' % pid, encoding='utf-8') as handle:
                pid = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
        pids.append(pid)
    return pids


def find_audit_trail(path, pids=None):
    """(file, how it was chosen) of the audit trail: path itself when it is a file; in a directory, the file of
    the running playbook (its name ends with the PID of an ancestor of this process), else the newest one.
    (None, why) when there is none."""
    if not path:
        return None, 'no audit trail location given'
    path = os.path.expanduser(path)
    if os.path.isfile(path):
        return path, 'given'
    if not os.path.isdir(path):
        return None, 'no audit trail at %s' % path
    files = sorted(glob.glob(os.path.join(path, '*.jsonl')))
    if not files:
        return None, 'no audit trail file in %s' % path
    for pid in (pids if pids is not None else _ancestor_pids()):
        mine = [f for f in files if f.endswith('-%d.jsonl' % pid)]
        if mine:
            return mine[-1], 'this run'
    return files[-1], 'newest in %s' % path


def read_events(path):
    """The events of a JSON lines file; a line that is not JSON (a run still writing it) is left out."""
    events = []
    with open(path, encoding='utf-8') as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


def summarise_audit(events):
    """The run, its phases (plays) with their timings and counts, the changed tasks per host and the failures."""
    run = {}
    phases = []
    changes = {}
    failures = []
    preflight = []
    current = None
    for event in events:
        kind = event.get('event')
        if kind == 'playbook_start' and not run:
            keys = ('playbook', 'who', 'controller', 'check_mode', 'diff_mode', 'inventory', 'limit',
                    'ansible_core_version', 'collection_version')
            run = dict((key, event.get(key)) for key in keys)
            run['started'] = event.get('when')
        elif kind == 'play_start':
            current = dict(name=event.get('play'), started=event.get('when'), seconds=None, status='running',
                           hosts=0, changed=0, failed=0, unreachable=0)
            phases.append(current)
        elif kind == 'play_end' and current is not None:
            current['seconds'] = event.get('seconds')
            counts = event.get('hosts') or {}
            current['hosts'] = len(counts)
            for key in ('changed', 'failed', 'unreachable'):
                current[key] = sum(int((c or {}).get(key, 0)) for c in counts.values())
            current['status'] = 'failed' if current['failed'] or current['unreachable'] else 'ok'
            current = None
        elif kind == 'task_result' and 'item' not in event:
            play = current['name'] if current else None
            if is_preflight_summary(event):
                preflight.append(dict(host=event.get('host'), msg=event.get('msg'), status=event.get('status')))
            if event.get('status') == 'changed':
                changes.setdefault(event.get('host'), []).append(dict(
                    play=play, task=event.get('task'), action=event.get('action'), role=event.get('role')))
            elif event.get('status') in ('failed', 'unreachable') and not event.get('ignored'):
                failures.append(dict(play=play, host=event.get('host'), task=event.get('task'),
                                     status=event.get('status'), msg=event.get('msg')))
        elif kind == 'playbook_end':
            run['seconds'] = event.get('seconds')
    if current is not None:
        # The play still running (this phase): its time so far.
        started = parse_iso(current['started'])
        if started:
            current['seconds'] = round((utc_now() - started).total_seconds(), 3)
    return run, phases, changes, failures, preflight


def is_preflight_summary(event):
    """The preflight role's one summary line per host (roles/preflight/tasks/report.yml)."""
    role = str(event.get('role') or '')
    task = str(event.get('task') or '')
    return (role == 'preflight' or role.endswith('.preflight')) and task.rsplit(' : ', maxsplit=1)[-1] == 'Summarise the checks'


# --- who and which commits -------------------------------------------------


def who_ran(run, environ=None):
    environ = os.environ if environ is None else environ
    who = dict(run.get('who') or {})
    if not who:
        try:
            who['user'] = getpass.getuser()
        except (KeyError, OSError):
            who['user'] = str(os.getuid())
        job = environ.get('AWX_JOB_ID') or environ.get('JOB_ID')
        if job:
            who['awx_job_id'] = job
    return who


def git_commit(path, run_command):
    """commit, dirty (tracked files changed) and error of the git checkout holding path."""
    found = dict(path=path, commit=None, dirty=None, error=None)
    if not path:
        found['error'] = 'no path given'
        return found
    if not os.path.exists(path):
        found['error'] = '%s does not exist' % path
        return found
    directory = path if os.path.isdir(path) else os.path.dirname(path)
    rc, out, err = run_command(['git', '-C', directory, 'rev-parse', 'HEAD'])
    if rc != 0:
        found['error'] = 'not a git checkout (%s)' % ((err or out).strip().splitlines() or ['git failed'])[0]
        return found
    found['commit'] = out.strip()
    rc, out, err = run_command(['git', '-C', directory, 'status', '--porcelain', '--untracked-files=no'])
    found['dirty'] = bool(out.strip()) if rc == 0 else None
    return found


# --- the checks ------------------------------------------------------------


def _check(check_id, items, summary_ok, missing_reason=None):
    """A check from its items: its status is the worst of theirs; no item at all is missing."""
    title = dict(CHECK_TITLES)[check_id]
    if not items:
        return dict(id=check_id, title=title, status='missing', summary=missing_reason or 'no source', items=[])
    status = max((item['status'] for item in items), key=STATUSES.index)
    bad = [item for item in items if item['status'] != 'pass']
    summary = summary_ok if not bad else '; '.join('%s: %s' % (item['subject'], item['detail']) for item in bad)
    return dict(id=check_id, title=title, status=status, summary=summary, items=items)


def _absent(result):
    """Why a registered result holds no data (skipped, failed, unreachable), or None."""
    if not isinstance(result, dict):
        return 'no result'
    if result.get('skipped'):
        return result.get('skip_reason') or result.get('msg') or 'skipped'
    if result.get('unreachable'):
        return 'unreachable: %s' % result.get('msg', '')
    return None


def _no_data(result):
    """Why a host's registered result holds no data: skipped, unreachable or failed (its message), or None."""
    return _absent(result) or (result.get('msg') if result.get('failed') else None)


def check_public_url(probe):
    if not isinstance(probe, dict) or _absent(probe) or 'passed' not in probe:
        reason = _absent(probe) if isinstance(probe, dict) else 'the public URL was not probed'
        if isinstance(probe, dict) and probe.get('msg') and not probe.get('findings'):
            reason = probe['msg']
        return dict(id='public_url', title=dict(CHECK_TITLES)['public_url'], status='fail',
                    summary=reason or 'the public URL was not probed', items=[])
    items = [dict(subject=probe.get('url'), status='pass' if probe['passed'] else 'fail',
                  detail='; '.join(probe.get('findings') or []) or 'all checks passed')]
    check = _check('public_url', items, 'TLS, headers and status as expected')
    check['probe'] = probe
    return check


def check_readiness(results):
    items = []
    for host in sorted(results or {}):
        result = results[host]
        absent = _absent(result)
        if absent:
            items.append(dict(subject=host, status='missing', detail=absent))
            continue
        gates = result.get('gates') or []
        urls = ', '.join('%s %s' % (g.get('url'), g.get('last_status')) for g in gates)
        if result.get('passed') and not result.get('failed'):
            items.append(dict(subject=host, status='pass', detail='ready (%s)' % urls if urls else 'ready'))
        else:
            items.append(dict(subject=host, status='fail', detail=result.get('msg') or 'not ready (%s)' % urls))
    return _check('readiness', items, 'every app host answers its readiness URLs', 'no app host to check')


def check_backups(results, max_age_hours, now):
    items = []
    for host in sorted(results or {}):
        result = results[host]
        absent = _no_data(result)
        if absent:
            items.append(dict(subject=host, status='missing', detail=absent))
            continue
        groups = {}
        for entry in result.get('backups') or []:
            groups.setdefault((entry.get('kind'), entry.get('subject'), entry.get('target')), []).append(entry)
        if not groups:
            items.append(dict(subject=host, status='missing', detail='no backup in the catalogue'))
            continue
        for (kind, subject, target), entries in sorted(groups.items(), key=lambda kv: [str(k) for k in kv[0]]):
            name = '%s %s/%s%s' % (host, kind, subject or '-', ' to %s' % target if target else '')
            verified = [e for e in entries if e.get('status') == 'good'
                        and (e.get('verified') or {}).get('result') == 'ok']
            corrupt = [e for e in entries if e.get('status') == 'corrupt']
            if not verified:
                items.append(dict(subject=name, status='missing',
                                  detail='%d backups, none verified' % len(entries)))
                continue
            last = max(verified, key=lambda e: e.get('ended') or '')
            ended = parse_iso(last.get('ended'))
            age = round((now - ended).total_seconds() / 3600.0, 1) if ended else None
            verified_at = (last.get('verified') or {}).get('at')
            detail = '%s ended %s (%s h ago), verified %s' % (last.get('id'), last.get('ended'), age, verified_at)
            if age is None or age > max_age_hours:
                items.append(dict(subject=name, status='fail',
                                  detail='last verified backup is older than %s h: %s' % (max_age_hours, detail)))
            elif corrupt and max(e.get('ended') or '' for e in corrupt) > (last.get('ended') or ''):
                items.append(dict(subject=name, status='warn', detail='a newer backup is corrupt; ' + detail))
            else:
                items.append(dict(subject=name, status='pass', detail=detail, age_hours=age))
    return _check('backups', items, 'every data host has a recent verified backup', 'no data host to check')


def check_certificates(results, min_days):
    items = []
    for host in sorted(results or {}):
        result = results[host]
        absent = _absent(result) or (result.get('msg') if result.get('failed') and 'certificates' not in result
                                     else None)
        if absent:
            items.append(dict(subject=host, status='missing', detail=absent))
            continue
        certificates = result.get('certificates') or []
        if not certificates:
            items.append(dict(subject=host, status='missing', detail='no certificate found'))
        for cert in certificates:
            name = '%s %s' % (host, cert.get('source'))
            if cert.get('error'):
                items.append(dict(subject=name, status='warn', detail=cert['error']))
            elif cert.get('days_left') is not None and cert['days_left'] < min_days:
                items.append(dict(subject=name, status='fail', detail='expires %s, %.1f days left (minimum %d)' % (
                    cert.get('not_after'), cert['days_left'], min_days), days_left=cert['days_left']))
            else:
                items.append(dict(subject=name, status='pass', detail='%s, expires %s (%.0f days)' % (
                    cert.get('subject'), cert.get('not_after'), cert.get('days_left') or 0),
                    days_left=cert.get('days_left')))
    return _check('certificates', items, 'no certificate expires within %d days' % min_days,
                  'no host to check')


def _hardening_items(host, result):
    """The hardening controls of one host from the host_state module's answer: SSH logins, the firewall's
    input policy, unattended upgrades, time synchronisation and kernel settings."""
    commands, units, sysctl = result.get('commands') or {}, result.get('units') or {}, result.get('sysctl') or {}
    items = []
    sshd = commands.get('sshd') or {}
    settings = dict(line.split(None, 1) for line in (sshd.get('stdout') or '').splitlines() if ' ' in line)
    if sshd.get('rc') != 0 or not settings:
        items.append(dict(subject='%s sshd' % host, status='fail', detail='sshd -T failed (rc %s)' % sshd.get('rc')))
    else:
        wrong = ['%s %s' % (key, settings.get(key, '(unset)')) for key, want in HARDENING_SSHD
                 if settings.get(key, want) != want]
        items.append(dict(subject='%s sshd' % host, status='fail' if wrong else 'pass',
                          detail=('allows ' + ', '.join(wrong)) if wrong else
                          'root and password logins refused, keys only'))
    nft = commands.get('nft_input') or {}
    enabled = (units.get('nftables.service') or {}).get('enabled')
    if nft.get('rc') != 0:
        items.append(dict(subject='%s firewall' % host, status='fail', detail='no aiquiz_filter input chain loaded'))
    elif 'policy drop;' not in (nft.get('stdout') or ''):
        items.append(dict(subject='%s firewall' % host, status='fail', detail='input policy is not drop'))
    else:
        at_boot = '' if enabled == 'enabled' else '; nftables.service is %s at boot' % enabled
        items.append(dict(subject='%s firewall' % host, status='pass' if enabled == 'enabled' else 'warn',
                          detail='input policy drop' + at_boot))
    upgrades = (units.get('unattended-upgrades.service') or {}).get('enabled')
    items.append(dict(subject='%s security updates' % host, status='pass' if upgrades == 'enabled' else 'warn',
                      detail='unattended-upgrades %s' % upgrades))
    chrony = (units.get('chrony.service') or {}).get('active')
    items.append(dict(subject='%s time' % host, status='pass' if chrony == 'active' else 'warn',
                      detail='chrony %s' % chrony))
    off = ['%s = %s (want %s)' % (key, (sysctl.get(key) or {}).get('value'), want) for key, want in HARDENING_SYSCTL
           if (sysctl.get(key) or {}).get('value') != want]
    items.append(dict(subject='%s kernel' % host, status='warn' if off else 'pass',
                      detail='; '.join(off) if off else ', '.join('%s = %s' % kv for kv in HARDENING_SYSCTL)))
    return items


def check_hardening(results):
    """Each host's hardening as it is now (not as the roles meant it): a login or firewall control off fails,
    updates, time or kernel settings off warn."""
    items = []
    for host in sorted(results or {}):
        result = results[host]
        absent = _no_data(result)
        if absent:
            items.append(dict(subject=host, status='missing', detail=absent))
            continue
        items.extend(_hardening_items(host, result))
    return _check('hardening', items, 'SSH keys only, firewall on, updates, time and kernel settings as hardened',
                  'no host to check')


def _not_checked(check_id, reason):
    return dict(id=check_id, title=dict(CHECK_TITLES)[check_id], status='missing', summary=reason, items=[])


def _ms(value):
    return '-' if value is None else '%s ms' % value


def check_synthetic(result):
    """From aiquiz.ops.golive_synthetic's result: each step passes or fails; skipped (disabled, check mode) is
    missing."""
    if result is None:
        return _not_checked('synthetic', 'not checked (no synthetic result given)')
    absent = _absent(result)
    if absent:
        return _not_checked('synthetic', absent)
    if result.get('check_mode'):
        return _not_checked('synthetic', 'skipped in check mode: the POST would create a quiz')
    if 'steps' not in result:
        return dict(_not_checked('synthetic', result.get('msg') or 'the transaction did not run'), status='fail')
    items = []
    for step in result.get('steps') or []:
        items.append(dict(subject='%s %s' % (step.get('method'), step.get('url')),
                          status='pass' if step.get('ok') else 'fail',
                          detail='%s (expected %s) in %s: %s' % (step.get('status'), step.get('expected_status'),
                                                                 _ms(step.get('elapsed_ms')), step.get('detail')),
                          step=step.get('name'), http_status=step.get('status'), elapsed_ms=step.get('elapsed_ms')))
    if not items:
        items.append(dict(subject=result.get('url'), status='fail',
                          detail='; '.join(result.get('findings') or []) or 'no step ran'))
    check = _check('synthetic', items, 'created a quiz and read it back through %s' % result.get('url'))
    check['transaction'] = dict((key, result.get(key)) for key in ('url', 'address', 'title', 'steps', 'findings'))
    return check


def _api_data(result, what):
    """The data of a Prometheus API answer registered from ansible.builtin.uri, or (None, why not)."""
    absent = _absent(result)
    if absent:
        return None, '%s: %s' % (what, absent)
    body = result.get('json')
    if result.get('status') != 200 or not isinstance(body, dict) or body.get('status') != 'success':
        return None, '%s: %s' % (what, result.get('msg') or 'HTTP %s, %s' % (
            result.get('status'), (body or {}).get('error') if isinstance(body, dict) else 'no JSON answer'))
    return body.get('data') or {}, None


def check_monitoring(monitoring):
    """From the Prometheus API answers (/api/v1/targets and /api/v1/alerts, ansible.builtin.uri results):
    targets up and down per job and the firing alerts. A target down or a critical alert firing warns; no
    monitoring host or no answer is missing."""
    if monitoring is None:
        return _not_checked('monitoring', 'not checked (no monitoring result given)')
    absent = _absent(monitoring)
    if absent:
        return _not_checked('monitoring', absent)
    where = '%s (%s)' % (monitoring.get('host'), monitoring.get('url'))
    targets, why = _api_data(monitoring.get('targets'), 'Prometheus targets of %s' % where)
    if why:
        return _not_checked('monitoring', why)
    alerts, why = _api_data(monitoring.get('alerts'), 'Prometheus alerts of %s' % where)
    if why:
        return _not_checked('monitoring', why)
    jobs = {}
    for target in targets.get('activeTargets') or []:
        labels = target.get('labels') or {}
        job = labels.get('job') or (target.get('discoveredLabels') or {}).get('job') or '-'
        entry = jobs.setdefault(job, dict(job=job, up=0, down=[]))
        if target.get('health') == 'up':
            entry['up'] += 1
        else:
            entry['down'].append(dict(instance=labels.get('instance') or target.get('scrapeUrl'),
                                      health=target.get('health'), error=target.get('lastError') or ''))
    firing = []
    for alert in alerts.get('alerts') or []:
        if alert.get('state') != 'firing':
            continue
        labels = alert.get('labels') or {}
        firing.append(dict(name=labels.get('alertname'), severity=labels.get('severity') or '',
                           instance=labels.get('instance') or '', since=alert.get('activeAt')))
    items = []
    for job in sorted(jobs):
        entry = jobs[job]
        if entry['down']:
            items.append(dict(subject='job %s' % job, status='warn', detail='%d up, %d down: %s' % (
                entry['up'], len(entry['down']), ', '.join('%s (%s%s)' % (
                    d['instance'], d['health'], ': ' + d['error'] if d['error'] else '') for d in entry['down']))))
        else:
            items.append(dict(subject='job %s' % job, status='pass', detail='%d up' % entry['up']))
    if not jobs:
        items.append(dict(subject='targets', status='warn', detail='Prometheus has no active target'))
    for alert in sorted(firing, key=lambda a: (a['severity'] != 'critical', str(a['name']), str(a['instance']))):
        critical = alert['severity'] == 'critical'
        items.append(dict(subject='alert %s' % alert['name'], status='warn' if critical else 'pass',
                          detail='firing on %s, severity %s%s' % (
                              alert['instance'] or '-', alert['severity'] or 'none',
                              '' if critical else ' (only critical alerts hold the go-live)')))
    check = _check('monitoring', items, 'every target up, no critical alert firing (%s)' % where)
    check['monitoring'] = dict(host=monitoring.get('host'), url=monitoring.get('url'),
                               jobs=[dict(job=j, up=jobs[j]['up'], down=jobs[j]['down']) for j in sorted(jobs)],
                               firing=firing)
    return check


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def newest_drill_report(pattern):
    """The newest file matching pattern (a path or a glob), or None."""
    paths = [p for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p)]
    return max(paths, key=os.path.getmtime) if paths else None


def check_drill(drill, now):
    """From the newest dr-drill report (playbooks/dr-drill.yml): its age, RTO and RPO against their aims; any of
    them over warns, no report is missing."""
    if drill is None:
        return _not_checked('drill', 'not checked (no drill option given)')
    pattern = drill.get('path') or ''
    if not pattern:
        return _not_checked('drill', 'no drill report (golive_report_drill_report is empty)')
    path = newest_drill_report(pattern)
    if not path:
        return _not_checked('drill', 'no drill report at %s' % pattern)
    try:
        with open(path, encoding='utf-8') as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError('not a JSON object')
    except (OSError, ValueError) as exc:
        return _not_checked('drill', 'the drill report %s cannot be read: %s' % (path, exc))
    max_age = float(drill.get('max_age_days', 35))
    rto_aim = float(drill.get('rto_seconds', 300))
    rpo_aim = float(drill.get('rpo_seconds', 60))
    ran = parse_iso(data.get('drill_at'))
    items = []
    if ran is None:
        items.append(dict(subject='drill date', status='missing', detail='%s has no drill_at' % path))
    else:
        age = round((now - ran).total_seconds() / 86400.0, 1)
        items.append(dict(subject='drill date', status='warn' if age > max_age else 'pass',
                          detail='ran %s, %s days ago (at most %s)' % (data['drill_at'], age, _g(max_age)),
                          age_days=age))
    rto = _number(data.get('rto_seconds'))
    rto_all = _number(data.get('rto_all_seconds'))
    rpo = _number(data.get('rpo_seconds'))
    for name, value, aim, extra in (
            ('RTO', rto, rto_aim, ' (every service: %s s)' % _g(rto_all) if rto_all is not None else ''),
            ('RPO', rpo, rpo_aim, '')):
        if value is None:
            items.append(dict(subject=name, status='missing', detail='%s has no %s_seconds' % (path, name.lower())))
        else:
            items.append(dict(subject=name, status='warn' if value > aim else 'pass',
                              detail='%s s, aim %s s%s' % (_g(value), _g(aim), extra), seconds=value))
    check = _check('drill', items, 'drilled within %s days, RTO and RPO within their aims' % _g(max_age))
    check['drill'] = dict(path=path, drill_at=data.get('drill_at'), source=data.get('source'),
                          restored_on=data.get('restored_on'), rto_seconds=rto, rto_all_seconds=rto_all,
                          rpo_seconds=rpo, rto_aim_seconds=rto_aim, rpo_aim_seconds=rpo_aim, max_age_days=max_age)
    return check


def _g(value):
    return '%g' % value if isinstance(value, float) else str(value)


def verdict(checks, failures):
    statuses = [c['status'] for c in checks]
    if failures or 'fail' in statuses:
        return 'fail'
    if 'missing' in statuses or 'warn' in statuses:
        return 'incomplete'
    return 'pass'


def build_report(params, run_command, now=None, pids=None, environ=None):
    """(report dict, the audit trail file or None)."""
    now = now or utc_now()
    trail, how = find_audit_trail(params.get('audit_trail'), pids)
    events = read_events(trail) if trail else []
    run, phases, changes, failures, preflight = summarise_audit(events)
    checks = [check_public_url(params.get('public_url')),
              check_readiness(params.get('readiness')),
              check_backups(params.get('backups'), params['backup_max_age_hours'], now),
              check_certificates(params.get('certificates'), params['certificate_min_days']),
              check_synthetic(params.get('synthetic')),
              check_monitoring(params.get('monitoring')),
              check_drill(params.get('drill'), now),
              check_hardening(params.get('hardening'))]
    run_id = params.get('run_id')
    if not run_id and trail:
        run_id = os.path.basename(trail)[:-len('.jsonl')]
    run_id = run_id or now.strftime('%Y%m%dT%H%M%SZ')
    report = dict(
        version=REPORT_VERSION,
        title=params['title'],
        run=dict(run, id=run_id, generated_at=iso(now), who=who_ran(run, environ),
                 audit_trail=dict(path=trail, chosen=how, events=len(events))),
        commits=dict(collection=git_commit(params.get('collection_path'), run_command),
                     inventory=git_commit(params.get('inventory_path'), run_command)),
        phases=phases,
        changes=dict((host, changes[host]) for host in sorted(changes, key=str)),
        failures=failures,
        preflight=preflight,
        checks=checks,
        signoff=[dict(role=role, name='', decision='', date='') for role in params['signoff']],
    )
    report['verdict'] = verdict(checks, failures)
    return report, trail


# --- HTML --------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1b1f24;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:.3em .5em;
text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-size:.95em}
.badge{display:inline-block;padding:.05em .55em;border-radius:.8em;font-weight:600;color:#fff}
.pass,.ok{background:#1a7f37}.fail,.failed{background:#cf222e}.warn,.incomplete{background:#9a6700}
.missing,.running{background:#6e7781}.muted{color:#57606a}.sign td{height:2.4em}
@media print{body{margin:0}h2{break-after:avoid}}
"""


def _e(value):
    return html.escape('' if value is None else str(value), quote=True)


def _badge(status):
    return '<span class="badge %s">%s</span>' % (_e(status), _e(status))


def svg_bars(rows, unit, width=640, bar_height=18, gap=6, label_width=260):
    """A horizontal bar chart (inline SVG) of (label, value) rows."""
    values = [v for _label, v in rows if isinstance(v, (int, float))]
    top = max(values) if values else 0
    scale = (width - label_width - 90) / top if top else 0
    height = len(rows) * (bar_height + gap) + gap
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" viewBox="0 0 %d %d">'
             % (width, height, width, height)]
    for index, (label, value) in enumerate(rows):
        y = gap + index * (bar_height + gap)
        length = (value or 0) * scale
        text = label if len(label) <= 40 else label[:39] + '\u2026'
        parts.append('<text x="0" y="%d" font-size="12">%s</text>' % (y + bar_height - 5, _e(text)))
        parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="#0969da"><title>%s: %s %s</title></rect>'
                     % (label_width, y, max(length, 1), bar_height, _e(label), _e(value), _e(unit)))
        parts.append('<text x="%.1f" y="%d" font-size="12">%s %s</text>'
                     % (label_width + max(length, 1) + 4, y + bar_height - 5, _e('-' if value is None else value), _e(unit)))
    parts.append('</svg>')
    return ''.join(parts)


def _table(heads, rows):
    out = ['<table>%s<tbody>' % ('<thead><tr>%s</tr></thead>' % ''.join('<th>%s</th>' % _e(h) for h in heads)
                                 if heads else '')]
    for row in rows:
        out.append('<tr>%s</tr>' % ''.join('<td>%s</td>' % cell for cell in row))
    out.append('</tbody></table>')
    return ''.join(out)


def _commit(found):
    if found['commit']:
        return '<code>%s</code>%s' % (_e(found['commit']), ' (uncommitted changes)' if found['dirty'] else '')
    return '<span class="muted">unknown: %s</span>' % _e(found['error'])


def _check_details(check):
    """The tables of the synthetic transaction, the monitoring and the drill, below their items."""
    out = []
    transaction = check.get('transaction')
    if transaction:
        out.append('<p>Quiz <q>%s</q> created through <code>%s</code> (connected to %s).</p>' % (
            _e(transaction.get('title')), _e(transaction.get('url')), _e(transaction.get('address'))))
        out.append(_table(['step', 'request', 'status', 'expected', 'elapsed'], [
            [_e(s.get('name')), '<code>%s %s</code>' % (_e(s.get('method')), _e(s.get('url'))),
             _e(s.get('status')), _e(s.get('expected_status')), _e(_ms(s.get('elapsed_ms')))]
            for s in transaction.get('steps') or []]))
    monitoring = check.get('monitoring')
    if monitoring:
        out.append('<p>Prometheus <code>%s</code>, asked from %s.</p>' % (
            _e(monitoring.get('url')), _e(monitoring.get('host'))))
        out.append(_table(['job', 'up', 'down'], [
            [_e(j['job']), _e(j['up']), _e(', '.join(d['instance'] or '-' for d in j['down']) or '0')]
            for j in monitoring.get('jobs') or []]))
        if monitoring.get('firing'):
            out.append('<h4>Firing alerts</h4>' + _table(['alert', 'severity', 'instance', 'since'], [
                [_e(a['name']), _e(a['severity']), _e(a['instance']), _e(a['since'])]
                for a in monitoring['firing']]))
        else:
            out.append('<p class="muted">No alert firing.</p>')
    drill = check.get('drill')
    if drill:
        out.append(_table(['drill', ''], [
            ['report', '<code>%s</code>' % _e(drill.get('path'))],
            ['ran', _e(drill.get('drill_at'))],
            ['source / restored on', '%s / %s' % (_e(drill.get('source')), _e(drill.get('restored_on')))],
            ['RTO (database serving)', '%s s (aim %s s)' % (_e(drill.get('rto_seconds')), _e(drill.get('rto_aim_seconds')))],
            ['RTO (every service)', '%s s' % _e(drill.get('rto_all_seconds'))],
            ['RPO', '%s s (aim %s s)' % (_e(drill.get('rpo_seconds')), _e(drill.get('rpo_aim_seconds')))],
        ]))
    return out


def render_html(report, manifest):
    run = report['run']
    who = run.get('who') or {}
    who_text = ', '.join('%s %s' % (k.replace('_', ' '), v) for k, v in sorted(who.items()))
    body = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<title>%s</title><style>%s</style></head><body>' % (_e(report['title']), CSS)]
    body.append('<header id="summary"><h1>%s</h1><p>Verdict %s &middot; run <code>%s</code> &middot; generated %s</p>'
                % (_e(report['title']), _badge(report['verdict']), _e(run['id']), _e(run['generated_at'])))
    body.append(_table(['check', 'status', 'summary'],
                       [[_e(c['title']), _badge(c['status']), _e(c['summary'])] for c in report['checks']]))
    body.append('</header>')

    body.append('<section id="run"><h2>Run</h2>')
    trail = run.get('audit_trail') or {}
    body.append(_table(None, [
        ['who ran it', _e(who_text or 'unknown')],
        ['playbook', '<code>%s</code>' % _e(run.get('playbook'))],
        ['controller', _e(run.get('controller'))],
        ['check mode', _e(run.get('check_mode'))],
        ['started', _e(run.get('started'))],
        ['inventory', _e(', '.join(run.get('inventory') or []))],
        ['ansible-core / aiquiz.ops', '%s / %s' % (_e(run.get('ansible_core_version')),
                                                   _e(run.get('collection_version')))],
        ['collection commit', _commit(report['commits']['collection'])],
        ['inventory commit', _commit(report['commits']['inventory'])],
        ['audit trail', '<code>%s</code> (%s, %s events)' % (
            _e(trail.get('path') or 'none'), _e(trail.get('chosen')), _e(trail.get('events')))],
    ]))
    body.append('</section>')

    body.append('<section id="phases"><h2>Phases and timings</h2>')
    if report['phases']:
        body.append('<figure>%s<figcaption class="muted">Wall seconds per phase (play).</figcaption></figure>'
                    % svg_bars([(p['name'] or '-', p['seconds']) for p in report['phases']], 's'))
        body.append(_table(['phase', 'status', 'seconds', 'hosts', 'changed', 'failed', 'unreachable'], [
            [_e(p['name']), _badge(p['status']), _e(p['seconds']), _e(p['hosts']), _e(p['changed']),
             _e(p['failed']), _e(p['unreachable'])] for p in report['phases']]))
    else:
        body.append('<p class="muted">No audit trail: phases and timings unknown (%s).</p>' % _e(trail.get('chosen')))
    if report['failures']:
        body.append('<h3>Failures</h3>' + _table(['phase', 'host', 'task', 'status', 'message'], [
            [_e(f['play']), _e(f['host']), _e(f['task']), _badge('fail'), _e(f['msg'])] for f in report['failures']]))
    body.append('</section>')

    body.append('<section id="preflight"><h2>Preflight</h2>')
    if report['preflight']:
        body.append(_table(['host', 'summary'], [[_e(p['host']), _e(p['msg'])] for p in report['preflight']]))
    else:
        body.append('<p class="muted">No preflight summary in the audit trail (phase 1 did not run in this run).</p>')
    body.append('</section>')

    body.append('<section id="changes"><h2>Changed tasks per host</h2>')
    if report['changes']:
        for host, tasks in report['changes'].items():
            body.append('<h3>%s <span class="muted">(%d)</span></h3>' % (_e(host), len(tasks)))
            body.append(_table(['phase', 'role', 'task', 'module'], [
                [_e(t['play']), _e(t['role']), _e(t['task']), '<code>%s</code>' % _e(t['action'])] for t in tasks]))
    else:
        body.append('<p class="muted">No changed task in the audit trail.</p>')
    body.append('</section>')

    body.append('<section id="checks"><h2>Post-launch checks</h2>')
    for check in report['checks']:
        body.append('<section id="check-%s"><h3>%s %s</h3>' % (
            _e(check['id'].replace('_', '-')), _e(check['title']), _badge(check['status'])))
        if check['items']:
            body.append(_table(['subject', 'status', 'detail'], [
                [_e(i['subject']), _badge(i['status']), _e(i['detail'])] for i in check['items']]))
        else:
            body.append('<p>%s</p>' % _e(check['summary']))
        probe = check.get('probe')
        if probe:
            tls = probe.get('tls') or {}
            profile = probe.get('tls_profile') or {}
            body.append(_table(['TLS', ''], [
                ['protocol / cipher', '%s / %s' % (_e(tls.get('protocol')), _e(tls.get('cipher')))],
                ['chain verifies', '%s %s' % (_e(tls.get('verified')), _e(tls.get('verify_error') or ''))],
                ['chain expires', '%s (%s days)' % (_e(tls.get('chain_not_after')), _e(tls.get('chain_days_left')))],
                ['Mozilla %s profile' % _e(profile.get('profile')) if profile.get('ran') else 'Mozilla TLS profile',
                 '%s %s' % (_e({True: 'compliant', False: 'not compliant'}.get(profile.get('compliant'), 'not scored')),
                            _e('; '.join('%s: %s' % kv for kv in sorted((profile.get('issues') or {}).items()))))],
                ['protocols accepted', _e(', '.join(profile.get('protocols') or []))],
            ]))
            body.append(_table(['header', 'ok', 'value'], [
                [_e(h['name']), _badge('pass' if h['ok'] else 'fail'), _e(h['value'] or h['reason'])]
                for h in probe.get('headers') or []]))
            latency = probe.get('latency_ms') or {}
            samples = latency.get('samples') or []
            if samples:
                body.append('<figure>%s<figcaption class="muted">Latency of each GET, new connection each '
                            '(median %s ms, p95 %s ms).</figcaption></figure>'
                            % (svg_bars([('request %d' % (n + 1), s) for n, s in enumerate(samples)], 'ms'),
                               _e(latency.get('median')), _e(latency.get('p95'))))
        body.extend(_check_details(check))
        body.append('</section>')
    body.append('</section>')

    body.append('<section id="signoff"><h2>Sign-off</h2><p>Each person signs that the checks above meet the '
                'go-live criteria (or records why not).</p>')
    body.append('<table class="sign"><thead><tr><th>role</th><th>name</th><th>decision</th><th>date</th>'
                '<th>signature</th></tr></thead><tbody>%s</tbody></table>'
                % ''.join('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td></td></tr>'
                          % (_e(s['role']), _e(s['name']), _e(s['decision']), _e(s['date']))
                          for s in report['signoff']))
    body.append('</section>')

    body.append('<section id="evidence"><h2>Evidence manifest</h2>')
    body.append('<p>SHA-256 of the files of this run (this page excepted: it is listed in <code>%s</code>). '
                'Previous manifest: %s.</p>' % (MANIFEST, '<code>%s</code> sha256 <code>%s</code>' % (
                    _e(manifest['previous']['run']), _e(manifest['previous']['manifest_sha256']))
                    if manifest.get('previous') else 'none, this is the first run'))
    body.append(_table(['file', 'sha256'], [['<code>%s</code>' % _e(name), '<code>%s</code>' % _e(digest)]
                                            for name, digest in sorted(manifest['files'].items())
                                            if name != 'report.html']))
    body.append('</section></body></html>\n')
    return '\n'.join(body)


# --- evidence and its manifest chain -------------------------------------------


def runs(dest):
    """The run directories of dest, oldest first (their names begin with the UTC time)."""
    if not os.path.isdir(dest):
        return []
    return sorted(name for name in os.listdir(dest) if RUN_ID.match(name) and os.path.isdir(os.path.join(dest, name)))


def previous_link(dest, run_id):
    """{run, manifest_sha256} of the newest run before run_id that has a manifest, or None."""
    earlier = [name for name in runs(dest) if name < run_id]
    for name in reversed(earlier):
        path = os.path.join(dest, name, MANIFEST)
        if os.path.isfile(path):
            return dict(run=name, manifest_sha256=sha256_file(path))
    return None


def manifest_for(run_id, files, previous, now):
    return dict(version=REPORT_VERSION, run=run_id, created=iso(now), algorithm='sha256',
                files=dict((name, sha256_text(text)) for name, text in sorted(files.items())),
                previous=previous)


def dump(data):
    return json.dumps(data, indent=2, sort_keys=True) + '\n'


def verify(dest):
    """Check every run's files against its manifest, and each manifest's link to the one before.
    (problems, the runs checked, sha256 of the newest manifest)."""
    problems = []
    checked = []
    before = None
    latest = None
    names = runs(dest)
    if not names:
        problems.append('no evidence run in %s' % dest)
    for name in names:
        directory = os.path.join(dest, name)
        path = os.path.join(directory, MANIFEST)
        if not os.path.isfile(path):
            problems.append('%s: %s is missing' % (name, MANIFEST))
            before = None
            continue
        try:
            with open(path, encoding='utf-8') as handle:
                manifest = json.load(handle)
            listed = manifest['files']
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append('%s: %s cannot be read: %s' % (name, MANIFEST, exc))
            before = None
            continue
        checked.append(name)
        latest = sha256_file(path)
        if manifest.get('run') != name:
            problems.append('%s: the manifest names run %s' % (name, manifest.get('run')))
        for file_name, digest in sorted(listed.items()):
            file_path = os.path.join(directory, file_name)
            if not os.path.isfile(file_path):
                problems.append('%s: %s is listed but removed' % (name, file_name))
            elif sha256_file(file_path) != digest:
                problems.append('%s: %s was changed (sha256 differs from the manifest)' % (name, file_name))
        for file_name in sorted(os.listdir(directory)):
            if file_name != MANIFEST and file_name not in listed and not file_name.startswith('.'):
                problems.append('%s: %s is not in the manifest' % (name, file_name))
        link = manifest.get('previous')
        if before is None and link is None:
            pass
        elif link is None:
            problems.append('%s: the manifest has no link to the previous run %s' % (name, before['run']))
        elif before is None or link.get('run') != before['run']:
            problems.append('%s: the manifest links to run %s, which is %s' % (
                name, link.get('run'), 'missing' if not os.path.isdir(os.path.join(dest, str(link.get('run'))))
                else 'not the run before it'))
        elif link.get('manifest_sha256') != before['sha256']:
            problems.append('%s: the manifest of the previous run %s was changed since' % (name, before['run']))
        before = dict(run=name, sha256=latest)
    return problems, checked, latest
