"""How the run_lock action plugin names a run and recognises a dead one of this controller."""

import os
import socket
import subprocess
import sys

from ansible_collections.aiquiz.ops.plugins.action import run_lock


def test_identity_names_the_run_by_its_controller_process():
    token, holder = run_lock.identity({}, environ={})
    assert holder['controller'] == socket.gethostname()
    assert holder['pid'] == run_lock.playbook_pid()
    assert token == '%s:%d:%s' % (holder['controller'], holder['pid'], holder['pid_start'])
    assert 'run' not in holder
    # The same process gives the same token, task after task.
    assert run_lock.identity({}, environ={})[0] == token


def test_identity_under_awx_names_the_job_and_the_launching_user():
    _token, holder = run_lock.identity({'awx_user_name': 'alice', 'awx_job_id': 17}, environ={'JOB_ID': '42'})
    assert (holder['who'], holder['run']) == ('alice', 'AWX job 42')
    _token, holder = run_lock.identity({'tower_job_id': 9}, environ={'SUDO_USER': 'bob'})
    assert (holder['who'], holder['run']) == ('bob', 'AWX job 9')


def test_a_run_of_this_controller_whose_process_ended_is_gone():
    _token, here = run_lock.identity({}, environ={})
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    start = run_lock._proc_start(proc.pid)  # pylint: disable=protected-access
    record = dict(here, pid=proc.pid, pid_start=start)
    proc.wait()
    assert run_lock.gone(record, here) is True


def test_a_live_run_another_controller_or_a_reused_pid():
    _token, here = run_lock.identity({}, environ={})
    me = dict(here, pid=os.getpid(), pid_start=run_lock._proc_start(os.getpid()))  # pylint: disable=protected-access
    assert run_lock.gone(me, here) is False
    # Another controller's run cannot be checked from here: never gone.
    assert run_lock.gone(dict(me, controller='awx-node-7', pid=999999), here) is False
    # Our pid, but another start time: the holder's process ended and the pid was reused.
    assert run_lock.gone(dict(me, pid_start=me['pid_start'] - 1), here) is True
    # The controller restarted since.
    assert run_lock.gone(dict(me, controller_boot='another-boot'), here) is True
    assert run_lock.gone(None, here) is False
    assert run_lock.gone({'unreadable': 'x'}, here) is False
