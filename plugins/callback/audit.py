# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: audit
type: notification
short_description: Audit trail of every change as JSON lines, and a phase timing summary
version_added: 0.1.0
description:
  - Writes one JSON Lines file per playbook run into O(log_dir), to serve as change evidence, named
    C(<UTC time YYYYmmddTHHMMSSZ>-<playbook name>-<controller PID>.jsonl). The directory is created with
    mode C(0700) and the file with mode C(0600), whatever the umask.
  - 'Each line is one JSON object with sorted keys, an C(event) and its time C(when) (UTC, ISO 8601, milliseconds).
    The events, in order: C(playbook_start) (playbook, who ran it, controller, check and diff mode, inventory sources,
    limit, tags, the B(names) of the extra variables but never their values, ansible-core and collection versions,
    AWX job id), then for each play C(play_start) (name, hosts pattern), one C(task_result) per host and task
    (host, task, action, role, status, changed, duration, redacted diff, redacted message) and C(play_end)
    (wall time, counts per host and status), and finally C(playbook_end) (the recap of every host, total time).'
  - 'The C(status) of a C(task_result) is one of V(ok), V(changed), V(failed), V(skipped), V(unreachable);
    a failure with C(ignore_errors) also has C(ignored=true). A task with a loop gives one C(task_result) per item,
    with the item label in C(item), then one for the whole task, with the number of items in C(loop_items);
    the counts in C(play_end) come from the whole-task results only.'
  - Who ran the playbook is the controller user, C(SUDO_USER) when set, and under AWX the job id (C(AWX_JOB_ID) or
    C(JOB_ID)) and the launching user (the C(awx_user_name) or C(tower_user_name) extra variable).
  - 'Redaction: the result of a task with C(no_log) is never written, only C(censored=true) and its status.
    In diffs, messages and item labels, the value of every key whose name matches
    C(pass, password, secret, token, key, credential, private) (any case) becomes C(********), in dictionaries and
    in text written as C(key: value) or C(key=value), and so does any value that came from Ansible Vault.
    Diff texts are cut at 4000 characters, messages at 2000, with C(truncated=true).'
  - At the end of the run, shows a C(PHASE TIMINGS) table, one row per play (a phase of a go-live) with its wall seconds,
    hosts, changed and failed results and unreachable hosts, then the total and the path of the audit file.
  - 'The callback never breaks a run. The first problem (a directory that cannot be created, a file that cannot be
    written, an unexpected error) gives one warning starting with C(aiquiz.ops.audit:); writing stops, the run goes on.'
requirements:
  - Enable it in C(callbacks_enabled) (the C(ANSIBLE_CALLBACKS_ENABLED) environment variable) as C(aiquiz.ops.audit).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
options:
  log_dir:
    description:
      - Directory of the audit files. Created, with its parents, when missing.
    type: path
    default: ~/.ansible/aiquiz-audit
    env:
      - name: AIQUIZ_AUDIT_DIR
    ini:
      - section: callback_aiquiz_audit
        key: log_dir
  summary:
    description:
      - Whether to show the C(PHASE TIMINGS) table at the end of the run. The audit file is written either way.
    type: bool
    default: true
    env:
      - name: AIQUIZ_AUDIT_SUMMARY
    ini:
      - section: callback_aiquiz_audit
        key: summary
"""

EXAMPLES = r"""
# ansible.cfg: keep an audit trail of every run in a shared directory
# [defaults]
# callbacks_enabled = aiquiz.ops.audit
#
# [callback_aiquiz_audit]
# log_dir = /var/log/aiquiz-audit
# summary = true

# One run, audit trail in a directory of its own, no summary table:
# AIQUIZ_AUDIT_DIR=/srv/evidence/change-1234 AIQUIZ_AUDIT_SUMMARY=false \
#   ANSIBLE_CALLBACKS_ENABLED=aiquiz.ops.audit ansible-playbook playbooks/go-live.yml
"""

import datetime
import functools
import getpass
import json
import math
import os
import re
import socket
import threading
import time

from ansible import constants as C
from ansible import context
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as ansible_core_version

try:
    from ansible.parsing.vault import VaultHelper
except ImportError:  # ansible-core before 2.19: no vault tags to look for
    VaultHelper = None

try:
    from ansible.parsing.vault import EncryptedString
except ImportError:
    EncryptedString = None

WARNING_PREFIX = 'aiquiz.ops.audit: '
REDACTED = '********'
DIFF_TEXT_MAX = 4000
MSG_MAX = 2000
ITEM_MAX = 500
SECRET_KEY_RE = re.compile(r'(pass(word)?|secret|token|key|credential|private)', re.IGNORECASE)
# `db_password: x`, `api_token=x`, `"secret_key": "x y"`, `{'private': 'x'}` in free text: keep the key, hide the value
# (an unterminated quoted value, as a cut text may have, is hidden to the end of its line).
SECRET_TEXT_RE = re.compile(
    r'''(?P<key>[\w.-]*(?:pass(?:word)?|secret|token|key|credential|private)[\w.-]*)'''
    r'''(?P<sep>["']?[ \t]*[:=][ \t]*)'''
    r'''(?:(?P<quote>["'])(?:\\.|(?!(?P=quote)).)*(?:(?P=quote)|(?=\n)|$)|[^\s"',;&}\]]+)''',
    re.IGNORECASE)
STATUSES = ('ok', 'changed', 'failed', 'ignored', 'skipped', 'unreachable')
# AggregateStats names -> the recap's names
RECAP_KEYS = (('ok', 'ok'), ('changed', 'changed'), ('unreachable', 'unreachable'), ('failures', 'failed'),
              ('skipped', 'skipped'), ('rescued', 'rescued'), ('ignored', 'ignored'))


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment):
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def _is_vaulted(value):
    if EncryptedString is not None and isinstance(value, EncryptedString):
        return True
    if VaultHelper is not None:
        try:
            return VaultHelper.get_ciphertext(value, with_tags=False) is not None
        except Exception:  # pylint: disable=broad-exception-caught
            return False
    return False


def redact_text(text):
    """Hide the values written as `secret_key: value` or `token=value` in free text."""
    return SECRET_TEXT_RE.sub(lambda m: m.group('key') + m.group('sep') + (m.group('quote') or '') + REDACTED + (m.group('quote') or ''), text)


def redact(value, limit=None):
    """A JSON-safe copy of value: secret keys and vaulted values hidden, text redacted and cut at limit.

    Returns (copy, truncated).
    """
    truncated = [False]

    def walk(item, depth):
        if _is_vaulted(item):
            return REDACTED
        if depth > 32:
            return '<too deep>'
        if isinstance(item, dict):
            out = {}
            for key, sub in item.items():
                name = to_text(key, errors='surrogate_or_replace')
                out[name] = REDACTED if SECRET_KEY_RE.search(name) else walk(sub, depth + 1)
            return out
        if isinstance(item, (list, tuple, set, frozenset)):
            return [walk(sub, depth + 1) for sub in item]
        if isinstance(item, bool) or item is None:
            return item
        if isinstance(item, (int, float)):
            return item if not isinstance(item, float) or math.isfinite(item) else str(item)  # NaN is not JSON
        text = redact_text(to_text(item, errors='surrogate_or_replace', nonstring='simplerepr'))
        if limit is not None and len(text) > limit:
            truncated[0] = True
            text = text[:limit]
        return text

    return walk(value, 0), truncated[0]


def redact_diff(diff):
    """Diff entries (dict, list of dicts or prepared text) redacted, texts cut at DIFF_TEXT_MAX."""
    entries = diff if isinstance(diff, list) else [diff]
    out = []
    for entry in entries:
        clean, truncated = redact(entry, DIFF_TEXT_MAX)
        if truncated:
            clean = clean if isinstance(clean, dict) else {'prepared': clean}
            clean['truncated'] = True
        out.append(clean)
    return out


def collection_version():
    """The version of aiquiz.ops this plugin belongs to (MANIFEST.json when installed, galaxy.yml in a checkout)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, 'MANIFEST.json'), encoding='utf-8') as fh:
            return json.load(fh)['collection_info']['version']
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(root, 'galaxy.yml'), encoding='utf-8') as fh:
            for line in fh:
                match = re.match(r'''^version:\s*["']?([^"'\s#]+)''', line)
                if match:
                    return match.group(1)
    except OSError:
        pass
    return None


def _guarded(method):
    """Run a callback method under the lock; turn any error into one warning and stop the callback."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self._broken:
            return None
        try:
            with self._lock:
                return method(self, *args, **kwargs)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self._broken = True
            self._problem('%s failed, audit stopped: %s: %s' % (method.__name__, type(exc).__name__, exc))
        return None

    return wrapper


class CallbackModule(CallbackBase):
    """Audit trail in JSON lines and phase timing summary."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'notification'
    CALLBACK_NAME = 'aiquiz.ops.audit'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None, options=None):
        self._lock = threading.RLock()
        self._broken = False
        self._warned = False
        self._fd = None
        self._writable = True
        self.path = None
        self._log_dir = os.path.expanduser('~/.ansible/aiquiz-audit')
        self._summary = True
        self._run_start = None
        self._plays = []
        self._play = None
        self._starts = {}
        self._item_marks = {}
        super().__init__(display=display, options=options)

    # ------------------------------------------------------------------
    # Plumbing

    def set_options(self, task_keys=None, var_options=None, direct=None):
        try:
            super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
            self._log_dir = self.get_option('log_dir')
            self._summary = bool(self.get_option('summary'))
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self._problem('bad options, using the defaults: %s' % exc)

    def _problem(self, message):
        """One warning per run; later problems only at -vvv."""
        try:
            if self._warned:
                self._display.vvv(WARNING_PREFIX + message)
            else:
                self._warned = True
                self._display.warning(WARNING_PREFIX + message)
        except Exception:  # pylint: disable=broad-exception-caught
            pass

    def _open(self, playbook_name, started):
        stem = re.sub(r'[^\w.-]+', '_', playbook_name) or 'playbook'
        name = '%s-%s-%d.jsonl' % (started.strftime('%Y%m%dT%H%M%SZ'), stem, os.getpid())
        try:
            directory = os.path.abspath(os.path.expanduser(self._log_dir))
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
                os.chmod(directory, 0o700)
            path = os.path.join(directory, name)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
            self._fd = os.open(path, flags, 0o600)
            os.fchmod(self._fd, 0o600)
            self.path = path
        except OSError as exc:
            self._writable = False
            self._problem('cannot write the audit trail in %s, the run goes on without it: %s' % (self._log_dir, exc))

    def _write(self, event, **fields):
        if not self._writable or self._fd is None:
            return
        fields['event'] = event
        fields.setdefault('when', _iso(_utc_now()))
        data = (json.dumps(fields, sort_keys=True, separators=(',', ':'), default=str) + '\n').encode('utf-8')
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            self._writable = False
            self._problem('cannot write %s, audit stopped, the run goes on: %s' % (self.path, exc))

    def _close(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError:
                pass
            os.close(fd)

    # ------------------------------------------------------------------
    # Playbook and plays

    @staticmethod
    def _who(extra_vars):
        try:
            user = getpass.getuser()
        except Exception:  # pylint: disable=broad-exception-caught
            user = str(os.getuid())
        who = {'user': user}
        if os.environ.get('SUDO_USER'):
            who['sudo_user'] = os.environ['SUDO_USER']
        job = os.environ.get('AWX_JOB_ID') or os.environ.get('JOB_ID')
        if job:
            who['awx_job_id'] = job
        # Who launched the AWX job: a name, never a secret, and the only extra variable whose value is kept.
        for key in ('awx_user_name', 'tower_user_name'):
            if isinstance(extra_vars.get(key), str) and extra_vars[key]:
                who['awx_user'] = redact(extra_vars[key])[0]
                break
        return who

    @staticmethod
    def _extra_vars(playbook):
        try:
            from ansible.utils.vars import load_extra_vars  # cached by ansible-playbook: no file is read twice
            extra = load_extra_vars(playbook._loader)  # pylint: disable=protected-access
            return extra if isinstance(extra, dict) else {}
        except Exception:  # pylint: disable=broad-exception-caught
            return {}

    @_guarded
    def v2_playbook_on_start(self, playbook):
        now = _utc_now()
        file_name = to_text(getattr(playbook, '_file_name', '') or 'playbook')
        if self._run_start is None:
            self._run_start = time.monotonic()
            base = os.path.basename(file_name)
            for ext in ('.yml', '.yaml'):
                if base.endswith(ext):
                    base = base[:-len(ext)]
            self._open(base, now)
        args = context.CLIARGS
        extra = self._extra_vars(playbook)
        inventory = args.get('inventory') or C.DEFAULT_HOST_LIST
        self._write(
            'playbook_start',
            when=_iso(now),
            playbook=os.path.abspath(file_name),
            who=self._who(extra),
            controller=socket.gethostname(),
            check_mode=bool(args.get('check', False)),
            diff_mode=bool(args.get('diff', C.DIFF_ALWAYS)),
            inventory=[to_text(i) for i in ([inventory] if isinstance(inventory, str) else inventory or [])],
            limit=args.get('subset') or None,
            tags=sorted(args.get('tags') or []),
            skip_tags=sorted(args.get('skip_tags') or []),
            extra_var_names=sorted(to_text(k) for k in extra),
            ansible_core_version=ansible_core_version,
            collection_version=collection_version(),
            pid=os.getpid(),
        )

    def _end_play(self):
        play, self._play = self._play, None
        if play is None:
            return
        play['seconds'] = time.monotonic() - play['started']
        self._write('play_end', play=play['name'], seconds=round(play['seconds'], 3), hosts=play['hosts'])

    @_guarded
    def v2_playbook_on_play_start(self, play):
        self._end_play()
        name = to_text(play.get_name()).strip() or to_text(play.hosts)
        self._play = {'name': name, 'started': time.monotonic(), 'hosts': {}, 'seconds': 0.0}
        self._plays.append(self._play)
        hosts = play.hosts if isinstance(play.hosts, list) else [play.hosts]
        self._write('play_start', play=name, hosts_pattern=[to_text(h) for h in hosts],
                    serial=redact(play.serial)[0] if play.serial else None, strategy=to_text(play.strategy))

    @_guarded
    def v2_playbook_on_stats(self, stats):
        self._end_play()
        total = time.monotonic() - self._run_start if self._run_start is not None else 0.0
        recap = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            recap[to_text(host)] = dict((name, summary.get(key, 0)) for key, name in RECAP_KEYS)
        self._write('playbook_end', seconds=round(total, 3), stats=recap,
                    result='failed' if any(s['failed'] or s['unreachable'] for s in recap.values()) else 'ok')
        self._close()
        if self._summary:
            self._show_summary(total)

    def _show_summary(self, total):
        rows = []
        for play in self._plays:
            counts = play['hosts'].values()
            rows.append((play['name'], '%.1f' % play['seconds'], str(len(play['hosts'])),
                         str(sum(c['changed'] for c in counts)), str(sum(c['failed'] for c in counts)),
                         str(sum(1 for c in counts if c['unreachable']))))
        width = min(60, max([len('play')] + [len(r[0]) for r in rows]))
        heads = ('play', 'seconds', 'hosts', 'changed', 'failed', 'unreachable')
        fmt = '%-' + str(width) + 's  %7s  %5s  %7s  %6s  %11s'
        header = fmt % heads
        lines = ['', 'PHASE TIMINGS ' + '*' * max(3, len(header) - len('PHASE TIMINGS ')), header]
        for row in rows:
            name = row[0] if len(row[0]) <= width else row[0][:width - 3] + '...'
            lines.append(fmt % ((name,) + row[1:]))
        lines.append(fmt % ('total', '%.1f' % total, '', '', '', ''))
        lines.append('audit trail: %s' % (self.path if self.path and self._writable else 'not written'))
        self._display.display('\n'.join(line.rstrip() for line in lines))

    # ------------------------------------------------------------------
    # Tasks

    def _mark(self, host, task):
        self._starts[(host, task._uuid)] = time.monotonic()

    @_guarded
    def v2_runner_on_start(self, host, task):
        self._mark(host.get_name(), task)

    def _record(self, result, status, item=False, ignored=False):
        host = to_text(result.host.get_name())
        task = result.task
        data = result.result if isinstance(result.result, dict) else {}
        now = time.monotonic()
        key = (result.host.get_name(), task._uuid)
        if item:
            # An item's time runs from the end of the previous item; the whole task's from its start.
            started = self._item_marks.get(key) or self._starts.get(key, now)
            self._item_marks[key] = now
        else:
            started = self._starts.pop(key, now)
            self._item_marks.pop(key, None)
        changed = bool(data.get('changed', False))
        if status == 'ok' and changed:
            status = 'changed'
        event = {
            'host': host,
            'task': to_text(task.get_name()),
            'action': to_text(getattr(task, 'resolved_action', None) or task.action),
            'status': status,
            'changed': changed,
            'seconds': round(max(0.0, now - started), 3),
            'play': self._play['name'] if self._play else None,
        }
        role = getattr(task, '_role', None)
        if role is not None:
            event['role'] = to_text(role.get_name())
        if type(task).__name__ == 'Handler':
            event['handler'] = True
        if ignored:
            event['ignored'] = True
        delegated = (data.get('_ansible_delegated_vars') or {}).get('ansible_host') if task.delegate_to else None
        if task.delegate_to:
            event['delegated_to'] = redact(delegated or task.delegate_to)[0]
        no_log = (isinstance(task.no_log, bool) and task.no_log) or bool(data.get('_ansible_no_log'))
        if no_log:
            event['censored'] = True
        else:
            self._details(event, data, item)
        if not item:
            self._count(host, 'ignored' if ignored else status)
        self._write('task_result', **event)

    def _details(self, event, data, item):
        if item:
            label = data.get('_ansible_item_label', data.get('item'))
            if label is not None:
                clean = redact(label, ITEM_MAX)[0]
                if not isinstance(clean, str) and len(json.dumps(clean, sort_keys=True)) > ITEM_MAX:
                    clean = json.dumps(clean, sort_keys=True)[:ITEM_MAX]
                event['item'] = clean
        elif isinstance(data.get('results'), list):
            event['loop_items'] = len(data['results'])
        if data.get('diff'):
            event['diff'] = redact_diff(data['diff'])
        if data.get('msg') not in (None, ''):
            event['msg'], truncated = redact(data['msg'], MSG_MAX)
            if truncated:
                event['msg_truncated'] = True
        for key in ('rc', 'attempts'):
            if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
                event[key] = data[key]

    def _count(self, host, status):
        if self._play is None:
            return
        counts = self._play['hosts'].setdefault(host, dict.fromkeys(STATUSES, 0))
        counts[status] += 1

    @_guarded
    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    @_guarded
    def v2_runner_on_failed(self, result, ignore_errors=False):
        # An ignored failure is counted as `ignored`, not `failed`, as in the recap.
        self._record(result, 'failed', ignored=bool(ignore_errors))

    @_guarded
    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    @_guarded
    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    @_guarded
    def v2_runner_item_on_ok(self, result):
        self._record(result, 'ok', item=True)

    @_guarded
    def v2_runner_item_on_failed(self, result):
        self._record(result, 'failed', item=True, ignored=bool(result.task.ignore_errors))

    @_guarded
    def v2_runner_item_on_skipped(self, result):
        self._record(result, 'skipped', item=True)
