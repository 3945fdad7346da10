# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for aiquiz.ops.run_lock: name the run on the controller.

Every task of a run is executed by a worker process forked from the one
ansible-playbook process, so that process (host name, pid, start time) names
the run for all of its tasks: taking the lock again in the same run renews it.
When another run of THIS controller holds the lock and its process is gone
(a crashed or killed terminal run), the lock is taken over at once instead
of waiting for its lease to end; a holder on another controller cannot be
checked from here and keeps its lock until its lease ends.
"""

from __future__ import annotations

import getpass
import os
import socket

from ansible.plugins.action import ActionBase

MODULE = 'aiquiz.ops.run_lock'


def _proc_start(pid):
    """Start time of a process in clock ticks since boot (Linux), None when unknown or gone."""
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as handle:
            stat = handle.read()
    except (IOError, OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    fields = stat[stat.rfind(')') + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().split(b'\0')
    except (IOError, OSError):
        return []


def _boot_id():
    try:
        with open('/proc/sys/kernel/random/boot_id', encoding='ascii') as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def playbook_pid():
    """The pid of the ansible-playbook (or ansible) process this worker belongs to."""
    pid = os.getppid()
    # Workers are forked by the main process; look one level further should
    # a runner put a process between them.
    for candidate in (pid, _parent(pid)):
        args = _cmdline(candidate) if candidate else []
        if any(os.path.basename(arg).startswith(b'ansible') for arg in args[:2]):
            return candidate
    return pid


def _parent(pid):
    try:
        with open('/proc/%d/stat' % pid, encoding='ascii', errors='replace') as handle:
            stat = handle.read()
        return int(stat[stat.rfind(')') + 2:].split()[1])
    except (IOError, OSError, IndexError, ValueError):
        return None


def identity(task_vars, environ=None):
    """(token, holder record) of this run."""
    environ = os.environ if environ is None else environ
    task_vars = task_vars or {}
    pid = playbook_pid()
    host = socket.gethostname()
    start = _proc_start(pid)
    who = task_vars.get('awx_user_name') or task_vars.get('tower_user_name') or environ.get('SUDO_USER')
    if not who:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = 'uid %d' % os.getuid()
    job = (environ.get('AWX_JOB_ID') or environ.get('JOB_ID') or task_vars.get('awx_job_id')
           or task_vars.get('tower_job_id'))
    holder = {'who': str(who), 'controller': host, 'pid': pid, 'pid_start': start, 'controller_boot': _boot_id()}
    if job:
        holder['run'] = 'AWX job %s' % job
    token = '%s:%d:%s' % (host, pid, start if start is not None else '-')
    return token, holder


def gone(record, here):
    """True when record names a run of this controller whose process no longer runs."""
    if not isinstance(record, dict) or record.get('controller') != here['controller']:
        return False
    if record.get('controller_boot') and here.get('controller_boot') and \
            record['controller_boot'] != here['controller_boot']:
        return True
    try:
        pid = int(record.get('pid'))
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    start = _proc_start(pid)
    if start is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    # The pid now belongs to another process: the holder's is gone.
    return record.get('pid_start') is not None and record['pid_start'] != start


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        for own in ('run_id', 'holder', 'take_over'):
            if own in args:
                result.update(failed=True, msg='%s is set by the action plugin of %s; leave it out' % (own, MODULE))
                return result
        token, holder = identity(task_vars)
        args.update(run_id=token, holder=holder)
        state = args.get('state', 'held')
        if state == 'held' and not self._task.check_mode and not self._play_context.check_mode:
            wait = args.get('wait', 0)
            # One quick look first: a dead run of this controller is taken over now.
            first = self._execute_module(module_name=MODULE, module_args=dict(args, wait=0), task_vars=task_vars)
            if first.get('acquired') or not gone(first.get('holder'), holder):
                if first.get('acquired') or not float(wait or 0):
                    result.update(first)
                    return result
            else:
                args['take_over'] = first['holder'].get('token')
        module = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        result.update(module)
        return result
