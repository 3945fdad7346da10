#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: release
short_description: Keep the release ledger of one workload's colours on a host
version_added: 0.1.0
description:
  - Records, in a JSON file on the host, which release of a workload runs on which colour (O(colours), by default the
    blue-green pair V(blue) and V(green)) and in which state, and answers the questions a deploy and a rollback ask
    of it (which colour a deploy takes, which release is active, which one to roll back to, which ones may be
    pruned).
  - 'With three colours or more, a new release never goes to the colour of the active release nor to the colour
    where the previous good release''s containers are kept, so a failed deploy leaves the rollback target in place.
    With two colours a deploy takes the colour the active release does not use, as a blue-green pair does.'
  - 'A release moves through these states: V(deploying) (its containers are being started on the idle colour),
    V(active) (it takes the traffic), V(standby) (it was active and has been replaced; its containers may still
    run for an instant rollback) and V(failed) (it did not pass its health gate, with a reason).'
  - The module only keeps the books. Starting containers, switching the edge and removing images is the caller's
    work, for example the C(aiquiz.ops.compose_app) role's.
  - 'The file is written atomically: to a temporary file beside it, flushed with C(fsync) and renamed over it, with
    mode C(0600) (a failure''s reason may quote a program''s output); missing parent directories are created with mode
    C(0755). A change that finds an existing ledger with another mode also sets it to C(0600). Every change holds an
    exclusive C(fcntl) lock on O(path) plus C(.lock), so two writes of the ledger take turns. To keep a whole deploy
    to itself, hold a run lock (M(aiquiz.ops.run_lock)) around it.'
  - 'It also names the Docker Compose project of each release (RV(project), RV(projects)):
    C(<workload>_<release>_<colour>), the release id lowercased with every character but letters, digits and C(-)
    read as C(-) (C(1.1.0) gives C(quiz_1-1-0_blue)). As no two releases of a workload may then share a name
    (O(state=deploying) refuses C(1-1-0) while C(1.1.0) is in the ledger), and as neither the release part nor the
    colour holds C(_), a project name belongs to exactly one workload, release and colour.'
  - A ledger file that cannot be read (not JSON, wrong structure, another workload) is an error naming the file and
    the problem; the module never overwrites it.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Computes the same result and diff as a real run and writes nothing, not even the lock file.
  diff_mode:
    support: full
    details: Returns the whole ledger before and after the change.
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - Absolute path of the ledger file, one per workload, for example C(/var/lib/aiquiz/releases/quiz.json).
      - A missing file is an empty ledger; it is created by the first change.
    type: path
    required: true
  workload:
    description:
      - Name of the workload the ledger belongs to, recorded in the file. A ledger written for another workload is
        an error.
      - 1 to 128 letters, digits, C(.), C(_), C(+) or C(-), starting with a letter or digit.
    type: str
    required: true
  release:
    description:
      - Release id, for example the version V(1.1.0). Same characters as O(workload).
      - Required for O(state=deploying), O(state=active), O(state=failed) and O(state=standby).
      - With O(state=query) the release must be in the ledger, otherwise the module fails with a message listing
        the releases it knows; use this to check a rollback target before acting on it.
    type: str
  images:
    description:
      - 'Image of each service of the release, service name to image reference or digest, for example
        C({api: registry.example.com/aiquiz/quiz-api:1.1.0}).'
      - Required for O(state=deploying). With the other states it is optional and, when given, must equal the
        images recorded for O(release); a release id names one set of images.
    type: dict
  colours:
    description:
      - The colours a release may run on, at least two, each 1-32 lowercase letters, digits and C(-), starting with
        a letter; their order is the order deploys take them in turn.
      - Every colour recorded in the ledger must be one of them, so a ledger written with the default pair loads
        with any list that holds V(blue) and V(green).
    type: list
    elements: str
    default: [blue, green]
  state:
    description:
      - V(query) changes nothing and returns the ledger facts.
      - V(deploying) records O(release) as being deployed on RV(idle_colour) and moves it to the front of the
        newest-first list. That colour is never the active release's; with three colours or more, never the colour
        where RV(previous_good) is kept either, but the first other colour after the active one's in O(colours)
        (the first colour when none is active). With two colours it is the colour the active release does not use.
        A release whose own containers are kept on a colour other than the active one's goes back to that colour. When O(release) is
        already the active release with the same O(images) nothing changes and RV(noop) is V(true), so the caller
        skips the deploy; with other images it fails (give new images a new release id). A release id seen before
        (failed or older) is deployed again in its existing entry, on that colour, with its history kept.
        Another release still V(deploying) on that colour is marked V(failed) as superseded.
        Refused when another release in the ledger would have the same Compose project names (see the description).
      - In check mode, V(deploying) is the plan of a deploy before any change (RV(noop), RV(colour), RV(project)),
        with the same refusals.
      - V(active) makes O(release) the active release and the previously active one V(standby). Only a V(deploying)
        or V(standby) release can be activated, and only while no other release has been deployed on its colour
        since (its containers must still be there); otherwise deploy it again first.
      - V(failed) marks O(release) failed with O(reason). V(standby) marks it standby. Neither applies to the active
        release; activate another one first.
      - V(absent) removes the entry of O(release) (absent already is no change) and, when O(keep) is given, every
        release of RV(prunable). The active release cannot be removed.
      - Each state other than V(query) changes the ledger only when the entry is not already in that state with the
        same colour, images and reason, so a second run reports no change.
    type: str
    choices: [query, deploying, active, failed, standby, absent]
    default: query
  reason:
    description:
      - Why the release moves to O(state), recorded in the entry's C(reason) and shown in RV(active) and
        RV(previous_good). Required for O(state=failed), for example the health gate's message.
      - 'Stored as a summary, the same in the returned values and the file: credentials in it are masked (the
        password of a URL such as C(postgresql://user:PASSWORD@host/db), values after C(password=), C(token:) and
        the like, PEM private keys) and only its last 1000 characters are kept. Mask what you know to be secret
        before passing it (the C(aiquiz.ops.redact) filter); this is a second line.'
      - A state change without O(reason) clears the recorded reason.
    type: str
  keep:
    description:
      - How many of the newest releases to keep. When given, RV(prunable) lists the releases beyond them, never the
        active release nor RV(previous_good), and O(state=absent) removes them.
      - Must be 1 or more.
    type: int
  lock_timeout:
    description:
      - Seconds to wait for the lock held by another change of the same ledger before failing.
    type: float
    default: 30
notes:
  - 'The ledger file holds C(version) (V(1)), C(workload), C(colours) (which release was deployed last on each
    colour, so whose containers are there) and C(releases), newest first, each with C(id), C(colour), C(state),
    C(images), C(created), C(updated), C(activated) (or null), C(reason) (or null) and C(history), a list of
    C({state, at}). Timestamps are UTC ISO-8601, to the second.'
  - The module does not prune container images; read RV(prunable) and remove them, then remove the entries with
    O(state=absent).
seealso:
  - module: aiquiz.ops.health_gate
"""

EXAMPLES = r"""
- name: Record the deploy of 1.1.0 (noop when it is already active with these images)
  aiquiz.ops.release:
    path: /var/lib/aiquiz/releases/quiz.json
    workload: quiz
    release: 1.1.0
    images:
      api: registry.example.com/aiquiz/quiz-api:1.1.0
      web: registry.example.com/aiquiz/quiz-web:1.1.0
    state: deploying
  register: quiz_release

- name: Start the new colour
  ansible.builtin.debug:
    msg: "compose project quiz-{{ quiz_release.colour }}"
  when: not quiz_release.noop

- name: Mark it failed when the health gate did not pass
  aiquiz.ops.release:
    path: /var/lib/aiquiz/releases/quiz.json
    workload: quiz
    release: 1.1.0
    state: failed
    reason: "/readyz answered 503 three times"

- name: Activate it after the edge switched (the old release becomes standby)
  aiquiz.ops.release:
    path: /var/lib/aiquiz/releases/quiz.json
    workload: quiz
    release: 1.1.0
    state: active

- name: Check the release an operator asked to roll back to (fails listing the known ones when unknown)
  aiquiz.ops.release:
    path: /var/lib/aiquiz/releases/quiz.json
    workload: quiz
    release: "{{ rollback_to }}"
  register: rollback_target

- name: Forget the releases beyond the three newest (never the active nor the previous good one)
  aiquiz.ops.release:
    path: /var/lib/aiquiz/releases/quiz.json
    workload: quiz
    state: absent
    keep: 3
"""

RETURN = r"""
ledger:
  description: The whole ledger after the change (what it would be, in check mode). See the notes for its format.
  returned: always
  type: dict
  sample:
    version: 1
    workload: quiz
    colours: {blue: 1.0.0, green: 1.1.0}
    releases:
      - id: 1.1.0
        colour: green
        state: active
        images: {api: registry.example.com/aiquiz/quiz-api:1.1.0}
        created: '2026-11-27T10:20:00Z'
        updated: '2026-11-27T10:21:10Z'
        activated: '2026-11-27T10:21:10Z'
        reason: null
        history: [{state: deploying, at: '2026-11-27T10:20:00Z'}, {state: active, at: '2026-11-27T10:21:10Z'}]
active:
  description: The entry of the active release, null when none is active.
  returned: always
  type: dict
  sample:
    id: 1.1.0
    colour: green
    state: active
    images: {api: registry.example.com/aiquiz/quiz-api:1.1.0}
    created: '2026-11-27T10:20:00Z'
    updated: '2026-11-27T10:21:10Z'
    activated: '2026-11-27T10:21:10Z'
    reason: null
    history: [{state: deploying, at: '2026-11-27T10:20:00Z'}, {state: active, at: '2026-11-27T10:21:10Z'}]
previous_good:
  description:
    - The entry of the release to roll back to, the V(standby) release activated most recently (other than the active
      one), null when there is none.
    - Its containers are still in place when C(ledger.colours[previous_good.colour]) is its id. With three colours
      or more a deploy never takes that colour, so they stay in place also after a failed deploy.
  returned: always
  type: dict
  sample:
    id: 1.0.0
    colour: blue
    state: standby
    images: {api: registry.example.com/aiquiz/quiz-api:1.0.0}
    created: '2026-11-20T09:00:00Z'
    updated: '2026-11-27T10:21:10Z'
    activated: '2026-11-20T09:01:00Z'
    reason: replaced by release 1.1.0
    history: [{state: deploying, at: '2026-11-20T09:00:00Z'}, {state: active, at: '2026-11-20T09:01:00Z'},
              {state: standby, at: '2026-11-27T10:21:10Z'}]
colour:
  description:
    - The colour of O(release) after the change (for O(state=deploying), the colour to deploy it on), null when
      O(release) is not given or was removed.
  returned: always
  type: str
  sample: green
project:
  description:
    - The Docker Compose project of O(release) on RV(colour), null when O(release) is not given or was removed, or
      when O(workload) is not a name Compose accepts (lowercase letters, digits, C(_) and C(-)).
  returned: always
  type: str
  sample: quiz_1-1-0_green
projects:
  description: The Compose project of every release in the ledger, on its recorded colour (values null as for RV(project)).
  returned: always
  type: dict
  sample: {1.1.0: quiz_1-1-0_green, 1.0.0: quiz_1-0-0_blue}
idle_colour:
  description:
    - The colour the next new release would be deployed on (see O(state=deploying)), the first of O(colours) when no
      release is active.
    - With two colours, the colour the active release does not use.
  returned: always
  type: str
  sample: blue
releases:
  description: Ids of every release in the ledger, newest deploy first.
  returned: always
  type: list
  elements: str
  sample: [1.1.0, 1.0.0]
prunable:
  description:
    - Ids beyond the O(keep) newest releases, never the active release nor RV(previous_good), newest first.
    - Empty when O(keep) is not given. After O(state=absent) with O(keep), what is left to prune (nothing).
  returned: always
  type: list
  elements: str
  sample: [0.9.0]
removed:
  description: Ids of the entries O(state=absent) removed (would remove, in check mode).
  returned: always
  type: list
  elements: str
  sample: [0.9.0]
noop:
  description:
    - V(true) when O(state=deploying) found O(release) already active with the same O(images); nothing needs
      deploying. V(false) otherwise.
  returned: always
  type: bool
  sample: false
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils._release import (
    ACTIONS,
    LedgerError,
    facts,
    load,
    locked,
    loose_mode,
    tighten,
    transition,
    validate_params,
    write_atomic,
)


def argument_spec():
    return dict(
        path=dict(type='path', required=True),
        workload=dict(type='str', required=True),
        release=dict(type='str'),
        images=dict(type='dict'),
        state=dict(type='str', choices=list(ACTIONS), default='query'),
        reason=dict(type='str'),
        keep=dict(type='int'),
        colours=dict(type='list', elements='str', default=['blue', 'green']),
        lock_timeout=dict(type='float', default=30),
    )


def run(module):
    params = module.params
    path = params['path']
    # Read-only runs take no lock: every write is an atomic rename, so a reader
    # always sees a whole ledger.
    writes = params['state'] != 'query' and not module.check_mode
    if writes:
        with locked(path, params['lock_timeout']):
            before, existed = load(path, params['workload'], params['colours'])
            after, info = transition(before, params)
            changed = after != before
            if changed:
                write_atomic(path, after)
            elif existed and loose_mode(path) is not None:
                tighten(path)
                changed = True
    else:
        before, existed = load(path, params['workload'], params['colours'])
        after, info = transition(before, params)
        changed = after != before
    result = dict(changed=changed, noop=info['noop'], removed=info['removed'])
    result.update(facts(after, params['release'], params['keep'], params['colours']))
    if module._diff:
        result['diff'] = dict(
            # No file: an empty text, so the diff shows the whole ledger as added.
            before=before if existed else '',
            after=after if (changed or existed) else '',
            before_header=path,
            after_header=path,
        )
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[
            ('state', 'deploying', ('release', 'images')),
            ('state', 'active', ('release',)),
            ('state', 'failed', ('release', 'reason')),
            ('state', 'standby', ('release',)),
            ('state', 'absent', ('release', 'keep'), True),
        ],
        supports_check_mode=True,
    )
    errors = validate_params(module.params)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    try:
        result = run(module)
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot update release ledger %s: %s' % (module.params['path'], exc),
                         exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == '__main__':
    main()
