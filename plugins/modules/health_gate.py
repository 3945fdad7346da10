#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: health_gate
short_description: Wait on the target host until a URL answers well several times in a row
version_added: 0.1.0
description:
  - Probes O(url) from the target host until it gets O(successes) good answers in a row, and fails when O(deadline)
    passes first. Use it between starting a new release and sending traffic to it.
  - An answer is good when its status is in O(status_codes), it came within O(latency_budget_ms) when that is set,
    and its body contains O(body_contains) when that is set. Any other answer, a timeout or a refused connection
    resets the streak.
  - Every attempt waits at most O(timeout) seconds for the whole answer, and O(interval) seconds pass between
    attempts. The latency of each answer is measured from opening the connection to the end of the body.
  - Runs on the target with the Python standard library only. No proxy is used, whatever the environment says, and
    redirects are not followed (a C(3xx) is judged like any other status).
  - On failure the message names the URL, the last answer or error and the counts, and the result carries the same
    data as a success.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so it probes in check mode too. Set O(skip_in_check_mode) when the service it probes
        is not started in check mode, for example a release that check mode did not deploy.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  url:
    description:
      - The C(http://) or C(https://) URL to probe, as the target host reaches it, for example
        V(http://127.0.0.1:8021/readyz).
      - Give O(url) or O(urls).
    type: str
  urls:
    description:
      - Several URLs gated at the same time, each with the same settings, in one call (one round trip to the host
        for all the services of a release). The gate passes when every URL passes; RV(gates) holds each result.
      - Give O(url) or O(urls).
    type: list
    elements: str
  successes:
    description:
      - Good answers needed in a row. Must be 1 or more.
    type: int
    default: 3
  timeout:
    description:
      - Seconds an attempt may take, from connecting to the end of the answer. Must be more than 0.
    type: float
    default: 2
  interval:
    description:
      - Seconds to wait between two attempts. May be 0.
    type: float
    default: 0.5
  deadline:
    description:
      - Seconds after which the gate gives up and fails. No attempt starts after it and none runs past it.
    type: float
    default: 60
  status_codes:
    description:
      - HTTP statuses that count as good.
    type: list
    elements: int
    default: [200]
  latency_budget_ms:
    description:
      - When set, an answer slower than this many milliseconds is not good and resets the streak.
    type: float
  body_contains:
    description:
      - When set, a good answer's body (its first MiB) must contain this text. Needs O(method=GET).
    type: str
  headers:
    description:
      - Extra request headers, name to value. Their values are not logged, so a token may go here.
    type: dict
    default: {}
  method:
    description:
      - HTTP method of the probe.
    type: str
    choices: [GET, HEAD]
    default: GET
  validate_certs:
    description:
      - Whether to verify the server certificate and host name of an C(https://) URL.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file of the CA certificates to verify an C(https://) URL against, instead of the system's.
    type: path
  skip_in_check_mode:
    description:
      - In check mode, skip the probe and return C(skipped=true) instead of probing.
    type: bool
    default: false
seealso:
  - module: aiquiz.ops.release
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: Wait until the new colour's API is ready, three times in a row, each answer within 500 ms
  aiquiz.ops.health_gate:
    url: http://127.0.0.1:8021/readyz
    successes: 3
    latency_budget_ms: 500
    deadline: 90
    skip_in_check_mode: true
  register: quiz_gate

- name: Show the latencies
  ansible.builtin.debug:
    msg: "p50 {{ quiz_gate.p50_ms }} ms, p99 {{ quiz_gate.p99_ms }} ms over {{ quiz_gate.attempts }} attempts"

- name: Probe through the edge with TLS, checking the page content
  aiquiz.ops.health_gate:
    url: https://quiz.example.com/
    ca_path: /etc/ssl/certs/aiquiz-ca.pem
    body_contains: AI Quiz
    headers:
      Authorization: "Bearer {{ quiz_probe_token }}"

- name: Gate the web and API services of the new colour together
  aiquiz.ops.health_gate:
    urls:
      - http://127.0.0.1:8020/readyz
      - http://127.0.0.1:8021/readyz
    successes: 2
    interval: 0.2
  register: colour_gate

- name: Keep going on failure, then decide (a failed gate still returns its data)
  aiquiz.ops.health_gate:
    url: http://127.0.0.1:8020/healthz
    deadline: 30
  register: web_gate
  ignore_errors: true
"""

RETURN = r"""
gates:
  description:
    - With O(urls), the result of each URL, in the order given - C(url) and the keys below (C(passed) to
      C(last_error)). The top-level C(passed) is true when all passed and C(elapsed_s) is the longest; the other
      top-level keys are absent.
  returned: with O(urls), unless skipped in check mode
  type: list
  elements: dict
  sample: [{url: "http://127.0.0.1:8020/readyz", passed: true, attempts: 2, elapsed_s: 0.21}]
passed:
  description: Whether O(successes) good answers came in a row before O(deadline). V(false) only in a failed result.
  returned: unless skipped in check mode
  type: bool
  sample: true
attempts:
  description: Requests made.
  returned: unless skipped in check mode
  type: int
  sample: 5
consecutive:
  description: Good answers in a row at the end.
  returned: unless skipped in check mode
  type: int
  sample: 3
latencies_ms:
  description:
    - Latency of every answer received (timeouts and connection errors have none), in milliseconds rounded to 0.1,
      in order; the last 1000 at most.
  returned: unless skipped in check mode
  type: list
  elements: float
  sample: [1.9, 2.3, 1.7, 1.8, 1.6]
p50_ms:
  description: Median of RV(latencies_ms) (nearest rank), null when no answer came.
  returned: unless skipped in check mode
  type: float
  sample: 1.8
p99_ms:
  description: 99th percentile of RV(latencies_ms) (nearest rank), null when no answer came.
  returned: unless skipped in check mode
  type: float
  sample: 2.3
max_ms:
  description: Largest of RV(latencies_ms), null when no answer came.
  returned: unless skipped in check mode
  type: float
  sample: 2.3
elapsed_s:
  description: Seconds the gate took, to the millisecond.
  returned: unless skipped in check mode
  type: float
  sample: 2.012
last_status:
  description: HTTP status of the last attempt, null when it got no answer.
  returned: unless skipped in check mode
  type: int
  sample: 200
last_error:
  description: Why the last attempt was not good (status, latency, body, timeout or connection error), null when it was.
  returned: unless skipped in check mode
  type: str
  sample: status 503 not in [200]
"""

import concurrent.futures

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils._health import (
    failure_message,
    run_gate,
    validate_params,
)


def argument_spec():
    return dict(
        url=dict(type='str'),
        urls=dict(type='list', elements='str'),
        successes=dict(type='int', default=3),
        timeout=dict(type='float', default=2),
        interval=dict(type='float', default=0.5),
        deadline=dict(type='float', default=60),
        status_codes=dict(type='list', elements='int', default=[200]),
        latency_budget_ms=dict(type='float'),
        body_contains=dict(type='str'),
        headers=dict(type='dict', default={}, no_log=True),
        method=dict(type='str', choices=['GET', 'HEAD'], default='GET'),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        skip_in_check_mode=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('url', 'urls')], required_one_of=[('url', 'urls')])
    params = module.params
    urls = params['urls'] if params['urls'] is not None else [params['url']]
    errors = []
    for url in urls or [None]:
        for error in validate_params(dict(params, url=url or '')):
            if error not in errors:
                errors.append(error)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    if module.check_mode and params['skip_in_check_mode']:
        module.exit_json(changed=False, skipped=True, msg='health gate for %s skipped in check mode' % ', '.join(urls))
    if params['urls'] is None:
        result = run_gate(params)
        if not result['passed']:
            module.fail_json(msg=failure_message(params, result), changed=False, **result)
        module.exit_json(changed=False, **result)
    # One thread per URL: the gates wait side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(urls)) as pool:
        gates = list(pool.map(lambda url: dict(run_gate(dict(params, url=url)), url=url), urls))
    result = dict(changed=False, passed=all(g['passed'] for g in gates),
                  elapsed_s=max(g['elapsed_s'] for g in gates), gates=gates)
    if not result['passed']:
        module.fail_json(msg='; '.join(failure_message(dict(params, url=g['url']), g) for g in gates if not g['passed']),
                         **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
