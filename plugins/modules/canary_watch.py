#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_watch
short_description: Judge a canary by the edge's access log, for a window of time
version_added: 0.1.0
description:
  - Follows the edge's JSON access log on the target host (the edge) from its current end for O(seconds), and
    counts the upstream attempts that went to the canary's addresses (O(targets)) and those of them that failed,
    with a C(5xx) answer or no answer at all.
  - The canary passes when at least O(min_requests) attempts reached it and the share that failed is at most
    O(error_budget). Otherwise the module fails, naming the reason, and its result carries the same counts as a
    success.
  - Each log line is one JSON object with C(upstream_addr) and C(upstream_status) as nginx writes them (with
    C(escape=json)); every attempt of a request counts, retries (comma-separated) and later upstream groups
    (colon-separated) too. Lines that are not JSON are counted in RV(unparsed_lines) and otherwise ignored.
  - O(targets) are V(address:port) as the edge reaches the canary; host names are resolved on the target too,
    because nginx logs the address it used.
  - Runs on the target with the Python standard library only.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads the log, so it watches in check mode too. Set O(skip_in_check_mode) when no canary
        takes traffic in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  path:
    description:
      - The edge's JSON access log, on the target host.
    type: path
    required: true
  targets:
    description:
      - The canary's V(address:port) as the edge's upstreams name it, for example V(172.18.0.3:8021). Attempts to
        any of them count.
    type: list
    elements: str
    required: true
  seconds:
    description:
      - How long to watch, in seconds, from the moment the module starts. Must be more than 0.
    type: float
    required: true
  error_budget:
    description:
      - The largest share of failed attempts that passes, from V(0) (none may fail) to V(1).
    type: float
    required: true
  min_requests:
    description:
      - Attempts the canary must get in the window; fewer is not enough evidence, and the canary fails.
    type: int
    default: 1
  skip_in_check_mode:
    description:
      - In check mode, skip the watch and return C(skipped=true) instead.
    type: bool
    default: false
seealso:
  - module: aiquiz.ops.health_gate
  - module: aiquiz.ops.nginx_backends
"""

EXAMPLES = r"""
- name: Watch the canary's error rate for 30 s on the edge
  aiquiz.ops.canary_watch:
    path: /var/log/nginx/edge-access.log
    targets:
      - 172.18.0.3:8021
      - 172.18.0.3:8020
    seconds: 30
    error_budget: 0.01
    min_requests: 20
  delegate_to: edge1
  register: quiz_canary

- name: Keep going on failure, then decide (a failed canary still returns its counts)
  aiquiz.ops.canary_watch:
    path: /var/log/nginx/edge-access.log
    targets: [app1.internal:8021]
    seconds: 10
    error_budget: 0
  delegate_to: edge1
  register: quiz_canary
  failed_when: false

- name: Say how it went
  ansible.builtin.debug:
    msg: "{{ quiz_canary.failed_requests }} of {{ quiz_canary.requests }} requests failed ({{ quiz_canary.reason | default('passed') }})"
"""

RETURN = r"""
passed:
  description: Whether enough attempts reached the canary and few enough of them failed.
  returned: unless skipped in check mode
  type: bool
  sample: true
reason:
  description: Why the canary failed.
  returned: when RV(passed) is false
  type: str
  sample: error rate 0.0500 is over the budget 0.0100
requests:
  description: Upstream attempts that went to the canary in the window.
  returned: unless skipped in check mode
  type: int
  sample: 240
failed_requests:
  description: Those of RV(requests) that got a C(5xx) or no answer.
  returned: unless skipped in check mode
  type: int
  sample: 0
error_rate:
  description: RV(failed_requests) / RV(requests), rounded to 4 places; 0 when no request came.
  returned: unless skipped in check mode
  type: float
  sample: 0.0
budget:
  description: O(error_budget), as used.
  returned: unless skipped in check mode
  type: float
  sample: 0.01
log_lines:
  description: Whole log lines read in the window.
  returned: unless skipped in check mode
  type: int
  sample: 2400
unparsed_lines:
  description: Those of RV(log_lines) that were not a JSON object.
  returned: unless skipped in check mode
  type: int
  sample: 0
seconds:
  description: Seconds watched, rounded to 0.1.
  returned: unless skipped in check mode
  type: float
  sample: 30.0
targets:
  description: The addresses counted, O(targets) and the addresses their names resolve to, sorted.
  returned: unless skipped in check mode
  type: list
  elements: str
  sample: ["172.18.0.3:8020", "172.18.0.3:8021"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils._canary_watch import (
    resolve,
    validate_params,
    watch,
)


def argument_spec():
    return dict(
        path=dict(type='path', required=True),
        targets=dict(type='list', elements='str', required=True),
        seconds=dict(type='float', required=True),
        error_budget=dict(type='float', required=True),
        min_requests=dict(type='int', default=1),
        skip_in_check_mode=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    errors = validate_params(params)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    if module.check_mode and params['skip_in_check_mode']:
        module.exit_json(changed=False, skipped=True, msg='canary watch skipped in check mode')
    if not os.path.isfile(params['path']):
        module.fail_json(msg='the access log %s does not exist on this host: is this the edge, and is '
                             'compose_app_edge_access_log its JSON access log?' % params['path'])
    try:
        result = watch(params['path'], resolve(params['targets']), params['seconds'], params['error_budget'],
                       params['min_requests'])
    except OSError as exc:
        module.fail_json(msg='cannot read the access log %s: %s' % (params['path'], exc))
    if not result['passed']:
        module.fail_json(msg='canary failed: %s (%d failed of %d requests in %s s)'
                         % (result['reason'], result['failed_requests'], result['requests'], result['seconds']),
                         changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
