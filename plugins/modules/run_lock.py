#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: run_lock
short_description: Keep a job to one Ansible run at a time on a host, across the run's tasks
version_added: 0.1.0
description:
  - Takes, renews or releases a run lock on the managed host, a small JSON file that names its holder. A run takes it
    before its first step, renews it between steps and releases it at the end, so that a second run of the same job
    on the host (an AWX job and a terminal, say) waits for the first to finish instead of acting halfway through it.
  - A run is identified by the controller's C(ansible-playbook) process (host name, pid and start time); every task
    of one run presents the same token, so taking the lock again in the same run renews it. The action plugin works
    this out on the controller and records who runs it (C(SUDO_USER) or the login name, under AWX the launching user
    and the job id), the controller and its pid.
  - 'Another holder is never displaced while it may still be at work. Its lock is taken over only when: its lease
    ended without a renewal (a run that died on another controller), the host restarted after it was taken, it is
    a run of this same controller whose C(ansible-playbook) process is gone (checked on the controller, so a crash
    of a terminal run is recovered at once), or the file cannot be read (holders write it by an atomic rename, so
    a live one never leaves it half written). A take-over is reported as a warning naming the previous holder and
    why.'
  - Every read and change of the lock file happens under an exclusive C(fcntl) lock on its path plus C(.lock), so
    two runs waiting for the same stale lock never both take it.
  - Taking and releasing the lock leaves the host as it was, so the module reports no change.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: partial
    details: Takes nothing and waits for nothing; returns the current holder, if any, with a warning.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - Absolute path of the lock file, one per job and host, for example C(/var/lib/aiquiz/releases/quiz.run.lock).
        Missing parent directories are created with mode C(0755); the file has mode C(0600).
    type: path
    required: true
  state:
    description:
      - V(held) takes the lock (or renews it when this run holds it already), waiting up to O(wait) seconds for
        another holder. The task fails when the lock stays held, naming the holder.
      - V(absent) releases the lock if this run holds it; a lock another run took over is left to it.
      - V(query) returns the holder and changes nothing.
    type: str
    choices: [held, absent, query]
    default: held
  purpose:
    description:
      - What the run does, recorded for whoever finds the lock held, for example C(deploying release 1.1.0 of quiz).
    type: str
  lease:
    description:
      - Seconds the lock stays valid without a renewal. Make it longer than the longest stretch of the run between
        two renewals; a holder that stops renewing (its controller died) loses the lock after this.
    type: float
    default: 900
  wait:
    description:
      - Seconds to wait for another holder to release the lock, or to go stale, before failing. V(0) fails at once.
    type: float
    default: 0
  poll:
    description:
      - Seconds between two looks at a held lock while waiting.
    type: float
    default: 1
  run_id:
    description:
      - Identity of the run, set by the action plugin (controller host, C(ansible-playbook) pid and start time),
        recorded as the holder's C(token). Leave it unset.
    type: str
  holder:
    description:
      - What to record about the run (who, run, controller, pid), set by the action plugin. Leave it unset.
    type: dict
    default: {}
  take_over:
    description:
      - Token of a holder the action plugin found dead on this controller; its lock is taken over. Leave it unset.
    type: str
seealso:
  - module: aiquiz.ops.release
"""

EXAMPLES = r"""
- name: One deploy of quiz at a time on this host; wait up to 10 minutes for another
  aiquiz.ops.run_lock:
    path: /var/lib/aiquiz/releases/quiz.run.lock
    purpose: deploying release 1.1.0 of quiz
    wait: 600
    lease: 900

- name: Renew it before a long step (the same run, so nothing waits)
  aiquiz.ops.run_lock:
    path: /var/lib/aiquiz/releases/quiz.run.lock
    purpose: deploying release 1.1.0 of quiz

- name: Release it, however the run ends (in an always section)
  aiquiz.ops.run_lock:
    path: /var/lib/aiquiz/releases/quiz.run.lock
    state: absent
"""

RETURN = r"""
acquired:
  description: V(true) when this run holds the lock after the task (O(state=held)).
  returned: always
  type: bool
  sample: true
holder:
  description:
    - The lock's record after the task, null when nobody holds it. With O(state=held) and RV(acquired), this run's.
    - 'Keys: C(who), C(run) (the AWX job, when under AWX), C(controller), C(pid), C(purpose), C(since), C(renewed),
      C(expires) (UTC ISO-8601), C(token), C(boot_id), C(version).'
  returned: always
  type: dict
  sample:
    who: alice
    run: AWX job 4242
    controller: awx-node-1
    pid: 31337
    purpose: deploying release 1.1.0 of quiz
    since: '2026-11-27T10:20:00Z'
    renewed: '2026-11-27T10:21:10Z'
    expires: '2026-11-27T10:36:10Z'
holder_text:
  description: The holder in one line, as the failure message names it.
  returned: always
  type: str
  sample: alice, AWX job 4242 (ansible-playbook pid 31337 on awx-node-1), deploying release 1.1.0 of quiz, since
    2026-11-27T10:20:00Z (lease until 2026-11-27T10:36:10Z)
renewed:
  description: V(true) when this run held the lock already and renewed it.
  returned: always
  type: bool
  sample: false
waited:
  description: Seconds this task waited for another holder.
  returned: always
  type: float
  sample: 42.5
took_over:
  description: The stale record this run took over, and why (C(reason)), null when none.
  returned: always
  type: dict
  sample:
    reason: its lease ended at 2026-11-27T10:36:10Z without a renewal
    holder: bob (ansible-playbook pid 4242 on laptop-7), deploying release 1.0.9 of quiz, since 2026-11-27T10:20:00Z
released:
  description: V(true) when O(state=absent) removed this run's lock.
  returned: always
  type: bool
  sample: true
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils import _files


def argument_spec():
    return dict(
        path=dict(type='path', required=True),
        state=dict(type='str', choices=['held', 'absent', 'query'], default='held'),
        purpose=dict(type='str'),
        lease=dict(type='float', default=900),
        wait=dict(type='float', default=0),
        poll=dict(type='float', default=1),
        # Set by the action plugin.
        run_id=dict(type='str'),
        holder=dict(type='dict', default={}),
        take_over=dict(type='str'),
    )


def validate(params):
    errors = []
    if not params['path'].startswith('/'):
        errors.append('path must be absolute, got %r' % params['path'])
    if params['lease'] <= 0:
        errors.append('lease must be > 0 seconds, got %s' % params['lease'])
    if params['wait'] < 0:
        errors.append('wait must be >= 0 seconds, got %s' % params['wait'])
    if params['poll'] <= 0:
        errors.append('poll must be > 0 seconds, got %s' % params['poll'])
    if params['state'] != 'query' and not params['run_id']:
        errors.append('run_id is missing: run the module through its action plugin (aiquiz.ops.run_lock), which '
                      'names the run')
    return errors


def run(module):
    params = module.params
    path = params['path']
    result = dict(changed=False, acquired=False, renewed=False, waited=0.0, took_over=None, released=False)
    if params['state'] == 'query' or module.check_mode:
        record = _files.read_run_lock(path)
        result.update(holder=record, holder_text=_files.describe_holder(record),
                      acquired=bool(record) and record.get('token') == params['run_id'])
        if module.check_mode and params['state'] == 'held' and record and not result['acquired']:
            module.warn('%s is held by %s; a real run would wait for it' % (path, _files.describe_holder(record)))
        return result
    if params['state'] == 'absent':
        released, record = _files.release_run_lock(path, params['run_id'])
        result.update(released=released, holder=None if released else record,
                      holder_text=_files.describe_holder(None if released else record))
        if record is not None and not released:
            module.warn('%s was not released: %s holds it now' % (path, _files.describe_holder(record)))
        return result
    holder = dict(params['holder'])
    if params['purpose']:
        holder['purpose'] = params['purpose']
    outcome = _files.run_lock(path, params['run_id'], holder, params['lease'], params['wait'], params['take_over'],
                              params['poll'])
    text = _files.describe_holder(outcome['record'])
    result.update(acquired=outcome['acquired'], renewed=outcome['renewed'], holder=outcome['record'],
                  holder_text=text, waited=round(outcome['waited'], 1))
    if outcome['previous'] is not None:
        result['took_over'] = dict(reason=outcome['reason'], holder=_files.describe_holder(outcome['previous']))
        module.warn('took over the run lock %s of %s: %s' % (path, result['took_over']['holder'], outcome['reason']))
    if not outcome['acquired']:
        module.fail_json(msg='%s is held by %s; waited %.0f s' % (path, text, outcome['waited']), **result)
    if outcome['waited'] >= 1 and not outcome['renewed']:
        module.warn('waited %.0f s for the run lock %s' % (outcome['waited'], path))
    return result


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    errors = validate(module.params)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    try:
        result = run(module)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot use the run lock %s: %s' % (module.params['path'], exc),
                         exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
