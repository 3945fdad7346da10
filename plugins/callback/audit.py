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
    C(<UTC time YYYYmmddTHHMMSSZ>-<playbook name>-<controller PID>.jsonl). The file is created with mode C(0600)
    and every directory the callback creates (O(log_dir) and its missing parents) with mode C(0700), whatever the
    umask, so they are never looser, not even for a moment. An existing O(log_dir) of the user running the
    playbook that is looser is narrowed to C(0700), with a warning; one that belongs to another user is refused.
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
  - 'Redaction, by source first: nothing of a task with C(no_log) is written (neither its result nor its
    arguments), only C(censored=true) and its status. Values from Ansible Vault (inline C(!vault) values and every
    value of an encrypted file: C(group_vars), C(vars_files), C(-e @file), C(include_vars)) are learnt as the run
    reads them and hidden wherever they appear, also inside other text and base64- or URL-encoded.'
  - 'Redaction, by shape, in task names, messages, diffs and item labels: the password (or lone user name) in
    C(scheme://user:password@host); PEM bodies; JSON web tokens; C(Bearer) and C(Basic) credentials; the value
    of a key, variable or C(--option) whose name says secret (C(password), C(passwd), C(pwd), C(pass),
    C(passphrase), C(secret), C(token), C(credentials), C(auth), C(authorization), C(key), C(apikey), C(dsn),
    C(cookie), C(jwt) and others, as a word of the name in any case or C(camelCase)), in data and in text written as
    C(name: value), C(name=value), C("name": "value"), YAML block scalars and indented blocks; the value of a
    C({name|key: NAME, value: ...}) item whose NAME says secret.'
  - 'A hidden value becomes a marker that says what was hidden: C(<redacted:vault>), C(<redacted:url-password>),
    C(<redacted:url-user>), C(<redacted:private-key>), C(<redacted:pem>), C(<redacted:jwt>),
    C(<redacted:auth-token>), C(<redacted:named-secret>). Texts are redacted whole, then diff texts are cut at
    4000 characters, messages at 2000, with C(truncated=true). Standard output and error of tasks are not written.'
  - 'If the callback cannot tell which values came from Ansible Vault (an internal API of ansible-core changed),
    it warns once and leaves messages, diffs and item labels out of the rest of the trail (C(details_withheld=true)).'
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

import collections.abc
import datetime
import errno
import functools
import getpass
import json
import os
import re
import socket
import stat
import threading
import time

from ansible import constants as C
from ansible import context
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as ansible_core_version
from ansible_collections.aiquiz.ops.plugins.module_utils._redact import SecretValues, redact_data, redact_text

# ansible-core 2.19 data tagging. VaultHelper (ansible.parsing.vault) says whether a value is an
# EncryptedString or carries the VaultedValue tag (a string decrypted from an inline !vault value).
# Origin and SourceWasEncrypted are internal: where a string was read from, and that a file was
# encrypted. Without them (another ansible-core), fewer vault values are known; the rest still holds.
try:
    from ansible.parsing.vault import EncryptedString, VaultHelper
except ImportError:  # ansible-core before 2.19
    EncryptedString = VaultHelper = None
try:
    from ansible._internal._datatag._tags import Origin, SourceWasEncrypted
except ImportError:
    Origin = SourceWasEncrypted = None

WARNING_PREFIX = 'aiquiz.ops.audit: '
KIND_VAULT = 'vault'
VAULT_HEADER = b'$ANSIBLE_VAULT'
DIFF_TEXT_MAX = 4000
MSG_MAX = 2000
ITEM_MAX = 500
WALK_DEPTH_MAX = 64
# Fields of our own vocabulary (times, statuses, counts, versions): never a secret, and a short vault value
# that equals one of them ("ok", "true") must not blur them.
STRUCTURAL_FIELDS = frozenset(('event', 'when', 'status', 'action', 'host', 'changed', 'ignored', 'censored', 'handler', 'seconds',
                               'pid', 'rc', 'attempts', 'loop_items', 'truncated', 'msg_truncated', 'details_withheld', 'stats',
                               'hosts', 'result', 'strategy', 'check_mode', 'diff_mode', 'ansible_core_version',
                               'collection_version'))
STATUSES = ('ok', 'changed', 'failed', 'ignored', 'skipped', 'unreachable')
# AggregateStats names -> the recap's names
RECAP_KEYS = (('ok', 'ok'), ('changed', 'changed'), ('unreachable', 'unreachable'), ('failures', 'failed'),
              ('skipped', 'skipped'), ('rescued', 'rescued'), ('ignored', 'ignored'))


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(moment):
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def _cut(value, limit, truncated):
    """Strings in value cut at limit (after redaction, so no secret is cut in two and half shown)."""
    if isinstance(value, str):
        if limit is not None and len(value) > limit:
            truncated[0] = True
            return value[:limit]
        return value
    if isinstance(value, dict):
        return dict((key, _cut(sub, limit, truncated)) for key, sub in value.items())
    if isinstance(value, list):
        return [_cut(sub, limit, truncated) for sub in value]
    return value


def redact(value, limit=None, secrets=None):
    """A JSON-safe copy of value with every secret hidden (see module_utils/_redact.py), texts cut at limit.

    Returns (copy, truncated).
    """
    truncated = [False]
    return _cut(redact_data(value, secrets), limit, truncated), truncated[0]


def redact_diff(diff, secrets=None):
    """Diff entries (dict, list of dicts or prepared text) redacted, texts cut at DIFF_TEXT_MAX."""
    entries = diff if isinstance(diff, list) else [diff]
    out = []
    for entry in entries:
        clean, truncated = redact(entry, DIFF_TEXT_MAX, secrets)
        if truncated:
            clean = clean if isinstance(clean, dict) else {'prepared': clean}
            clean['truncated'] = True
        out.append(clean)
    return out


def _mask_all(value, secrets):
    """Known secret values hidden in every string of value, keys included: the last guard before writing."""
    if isinstance(value, str):
        return secrets.mask(value)
    if isinstance(value, dict):
        return dict((_mask_all(key, secrets), _mask_all(sub, secrets)) for key, sub in value.items())
    if isinstance(value, (list, tuple)):
        return [_mask_all(sub, secrets) for sub in value]
    return value


class VaultValues:
    """Learns the plaintext of the Ansible Vault values a run can show, so that the trail hides them
    wherever they appear, whole or inside other text (a DSN, a rendered template, a program's stderr).

    Sources, in ansible-core 2.19: EncryptedString values (inline !vault) anywhere in the variables;
    strings tagged VaultedValue (an inline vault value after templating, in task arguments and results);
    every string of a file that was encrypted as a whole (group_vars/all/vault.yml, -e @vault.yml,
    vars_files), found in the DataLoader's file cache or by the Origin tag of the string.
    """

    def __init__(self, secrets):
        self.secrets = secrets
        self._encrypted = {}
        self._cache_seen = set()
        self._seen = set()

    def encrypted_file(self, path):
        if not isinstance(path, str):
            return False
        if path not in self._encrypted:
            try:
                with open(path, 'rb') as handle:
                    self._encrypted[path] = handle.read(len(VAULT_HEADER)) == VAULT_HEADER
            except (OSError, ValueError):
                self._encrypted[path] = False
        return self._encrypted[path]

    def _vaulted(self, text):
        if VaultHelper is not None and VaultHelper.get_ciphertext(text, with_tags=False) is not None:
            return True
        origin = Origin.get_tag(text) if Origin is not None else None
        return origin is not None and self.encrypted_file(origin.path)

    def learn(self, value, whole=False):
        """Remember the vault values in value; every string when whole (it came from an encrypted file)."""
        stack = [(value, whole, 0)]
        while stack:
            item, secret, depth = stack.pop()
            if depth > WALK_DEPTH_MAX:
                continue
            if EncryptedString is not None and isinstance(item, EncryptedString):
                try:
                    plain = str(item)  # decrypted with the run's vault secrets
                except Exception:  # pylint: disable=broad-exception-caught
                    continue  # no secret of this run opens it: Ansible cannot show it either
                self.secrets.add(plain, KIND_VAULT)
                continue
            if SourceWasEncrypted is not None and not secret and SourceWasEncrypted.is_tagged_on(item):
                secret = True
            if isinstance(item, str):
                if secret or self._vaulted(item):
                    self.secrets.add(item, KIND_VAULT)
            elif isinstance(item, collections.abc.Mapping):
                stack.extend((sub, secret, depth + 1) for sub in item.values())
            elif isinstance(item, (list, tuple, set, frozenset)):
                stack.extend((sub, secret, depth + 1) for sub in item)

    def learn_once(self, key, value):
        if key not in self._seen:
            self._seen.add(key)
            self.learn(value)

    def learn_file_cache(self, loader):
        """Files Ansible's loader has read since the last call (internal: DataLoader._FILE_CACHE)."""
        cache = getattr(loader, '_FILE_CACHE', None)
        if not isinstance(cache, dict) or len(cache) == len(self._cache_seen):
            return
        for path, data in list(cache.items()):
            if path not in self._cache_seen:
                self._cache_seen.add(path)
                self.learn(data, whole=self.encrypted_file(path))

    def learn_play(self, play, loader):
        variable_manager = play.get_variable_manager()
        self.learn_once(('extra_vars',), getattr(variable_manager, 'extra_vars', None))
        self.learn(play.get_vars())
        # vars_files named without a template: their inline !vault values (an encrypted file is in the cache).
        for entry in play.get_vars_files() or []:
            for name in entry if isinstance(entry, list) else [entry]:
                if not isinstance(name, str) or '{{' in name or '{%' in name:
                    continue
                try:
                    path = loader.path_dwim_relative_stack(play.get_search_path(), 'vars', name)
                    if os.path.isfile(path) and not self.encrypted_file(path):
                        self.learn_once(('vars_file', path), loader.load_from_file(path, cache='none', unsafe=True))
                except Exception:  # pylint: disable=broad-exception-caught
                    continue  # a file Ansible cannot read either: the play stops on it

    def learn_host(self, host):
        self.learn_once(('host', host.get_name()), host.get_vars())
        for group in host.get_groups():
            self.learn_once(('group', group.get_name()), group.get_vars())


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
        self._secrets = SecretValues()
        self._vault = VaultValues(self._secrets)
        self._loader = None
        self._play_object = None
        self._withheld = False
        self._recheck_hosts = set()
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

    def _private_directory(self, directory):
        """An open descriptor of directory, created (with its missing parents) mode 0700 and owned by us.

        Every directory is created with mode 0700, which the umask can only narrow: no window with a looser
        mode. An existing directory of ours that is looser is narrowed to 0700; one of another user is refused
        (they could read or replace what we write).
        """
        missing = []
        path = directory
        while not os.path.isdir(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
        fd = os.open(directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_CLOEXEC', 0))
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid():
                raise OSError(errno.EPERM, 'it belongs to uid %d, not to uid %d who runs the playbook: use a directory of '
                                           'your own (log_dir, AIQUIZ_AUDIT_DIR) or chown it' % (info.st_uid, os.geteuid()))
            mode = stat.S_IMODE(info.st_mode)
            if mode != 0o700:
                os.fchmod(fd, 0o700)
                if directory not in missing:
                    self._display.warning('%smode of %s changed from %04o to 0700: the audit trail is for its owner only'
                                          % (WARNING_PREFIX, directory, mode))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open(self, playbook_name, started):
        stem = re.sub(r'[^\w.-]+', '_', playbook_name) or 'playbook'
        name = '%s-%s-%d.jsonl' % (started.strftime('%Y%m%dT%H%M%SZ'), stem, os.getpid())
        try:
            directory = os.path.abspath(os.path.expanduser(self._log_dir))
            dir_fd = self._private_directory(directory)
            try:
                # Created 0600 in the directory just checked (dir_fd), never through a link, never an existing file.
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
                self._fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
            os.fchmod(self._fd, 0o600)
            self.path = os.path.join(directory, name)
        except OSError as exc:
            self._writable = False
            self._problem('cannot write the audit trail in %s, the run goes on without it: %s' % (self._log_dir, exc))

    def _write(self, event, **fields):
        if not self._writable or self._fd is None:
            return
        fields['event'] = event
        fields.setdefault('when', _iso(_utc_now()))
        fields = dict((key, value if key in STRUCTURAL_FIELDS else _mask_all(value, self._secrets)) for key, value in fields.items())
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

    def _learn(self, what, *args):
        """Learn vault values from one source. A failure withholds the free text (messages, diffs, items)
        of every later result, with one warning: what was not learnt could be shown."""
        try:
            what(*args)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            if not self._withheld:
                self._withheld = True
                self._problem('cannot tell which values came from Ansible Vault (%s: %s); messages, diffs and item '
                              'labels are left out of the audit trail from now on' % (type(exc).__name__, exc))

    def _text(self, value):
        return redact_text(to_text(value, errors='surrogate_or_replace'), self._secrets)

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
                who['awx_user'] = redact_text(extra_vars[key])
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
        self._loader = getattr(playbook, '_loader', None)
        self._learn(self._vault.learn_file_cache, self._loader)
        args = context.CLIARGS
        extra = self._extra_vars(playbook)
        self._learn(self._vault.learn, extra)
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
        self._play_object = play
        loader = self._loader or getattr(play.get_variable_manager(), '_loader', None)
        self._learn(self._vault.learn_file_cache, loader)
        self._learn(self._vault.learn_play, play, loader)
        name = self._text(to_text(play.get_name()).strip() or to_text(play.hosts))
        self._play = {'name': name, 'started': time.monotonic(), 'hosts': {}, 'seconds': 0.0}
        self._plays.append(self._play)
        hosts = play.hosts if isinstance(play.hosts, list) else [play.hosts]
        self._write('play_start', play=name, hosts_pattern=[self._text(h) for h in hosts],
                    serial=redact(play.serial, secrets=self._secrets)[0] if play.serial else None, strategy=to_text(play.strategy))

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

    def _learn_result(self, result):
        """The vault values this result and its task can show (their tags are on the result's internal data)."""
        self._vault.learn_file_cache(self._loader)
        self._vault.learn_host(result.host)
        self._vault.learn(getattr(result, '_return_data', None))  # internal: result.result drops the tags
        self._vault.learn(result.task_fields)
        name = result.host.get_name()
        action = to_text(getattr(result.task, 'resolved_action', None) or result.task.action)
        included = action.endswith('include_vars')
        if included or name in self._recheck_hosts:
            # include_vars of an encrypted file: its result is censored; the values are in the host's variables,
            # tagged with their origin (internal: VariableManager._vars_cache), now or by the host's next result.
            if included:
                self._recheck_hosts.add(name)
            else:
                self._recheck_hosts.discard(name)
            play = self._play_object
            cache = getattr(play.get_variable_manager(), '_vars_cache', None) if play is not None else None
            if isinstance(cache, dict):
                self._vault.learn(cache.get(name))

    def _record(self, result, status, item=False, ignored=False):
        self._learn(self._learn_result, result)
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
            'task': self._text(task.get_name()),
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
            event['delegated_to'] = self._text(delegated or task.delegate_to)
        no_log = (isinstance(task.no_log, bool) and task.no_log) or bool(data.get('_ansible_no_log'))
        if no_log:
            event['censored'] = True  # nothing of the result, nor of the task's arguments (they hold the secret)
        elif self._withheld:
            event['details_withheld'] = True
        else:
            self._details(event, data, item)
        if not item:
            self._count(host, 'ignored' if ignored else status)
        self._write('task_result', **event)

    def _details(self, event, data, item):
        if item:
            label = data.get('_ansible_item_label', data.get('item'))
            if label is not None:
                clean = redact(label, ITEM_MAX, self._secrets)[0]
                if not isinstance(clean, str) and len(json.dumps(clean, sort_keys=True)) > ITEM_MAX:
                    clean = json.dumps(clean, sort_keys=True)[:ITEM_MAX]
                event['item'] = clean
        elif isinstance(data.get('results'), list):
            event['loop_items'] = len(data['results'])
        if data.get('diff'):
            event['diff'] = redact_diff(data['diff'], self._secrets)
        if data.get('msg') not in (None, ''):
            event['msg'], truncated = redact(data['msg'], MSG_MAX, self._secrets)
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
