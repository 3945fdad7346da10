#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golive_synthetic
short_description: A synthetic transaction through the public URL (create a quiz, read it back) for the go-live report
version_added: 0.1.0
description:
  - Sends C(POST) O(path) with a JSON object whose C(title) is O(title) to the origin of O(url) and expects C(201)
    with a C(Location) header, then C(GET)s that location and expects C(200) with the same title. Each step is timed
    (the TLS handshake included, a new connection each).
  - Connects as M(aiquiz.ops.golive_probe) does, to O(address) when it is given, with the URL's host name as SNI and
    C(Host) (as C(curl --resolve) does), and verifies the chain for that name against O(ca_file).
    M(ansible.builtin.uri) cannot send a name's SNI to another address; to the bare address the edge's catch-all
    server answers with its own self-signed certificate, which cannot be verified (or, with the edge role's
    C(edge_tls_reject_unknown_sni), refuses the handshake).
  - Every problem is a line of RV(findings); RV(passed) is true when there is none. The module does not fail on
    findings; the caller decides.
  - 'Meant to run on the controller (C(delegate_to: localhost)), so that it sees the service as a user does.'
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: The POST creates a quiz, so in check mode nothing is sent and RV(findings) says it was skipped.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  url:
    description: The public https URL, for example C(https://quiz.example.com/); its origin receives the requests.
    type: str
    required: true
  address:
    description: Address to connect to instead of resolving the URL's host. The URL's port is kept.
    type: str
  ca_file:
    description: PEM file of the CA certificates the chain must verify against; the system's roots without it.
    type: path
  path:
    description: Path of the collection the quiz is created in (it must begin with C(/)).
    type: str
    default: /api/quizzes
  title:
    description: Title of the quiz created; the run's time in it tells synthetic quizzes apart.
    type: str
    required: true
  timeout:
    description: Seconds each request may take.
    type: float
    default: 10
notes:
  - Each run creates one quiz whose title says it is synthetic; the workload keeps it.
seealso:
  - module: aiquiz.ops.golive_probe
  - module: aiquiz.ops.golive_report
"""

EXAMPLES = r"""
- name: Create a quiz through the edge and read it back
  aiquiz.ops.golive_synthetic:
    url: https://quiz.aiquiz.lab:8443/
    address: 127.0.0.1
    ca_file: ~/.aiquiz/tls-ca-lab/root.pem
    title: go-live synthetic 2026-12-05T01:00:00Z
  delegate_to: localhost
  register: golive_synthetic
"""

RETURN = r"""
url:
  description: The URL the quiz is created at.
  returned: always
  type: str
  sample: https://quiz.aiquiz.lab:8443/api/quizzes
address:
  description: The address connected to.
  returned: always
  type: str
  sample: 127.0.0.1
title:
  description: O(title).
  returned: always
  type: str
check_mode:
  description: Whether the run was in check mode (nothing sent).
  returned: always
  type: bool
sent:
  description: Whether a request was sent.
  returned: always
  type: bool
steps:
  description:
    - The steps sent, C(create) then C(read), each with C(name), C(method), C(url), C(status) (null without an
      answer), C(expected_status), C(elapsed_ms), C(ok) and C(detail); C(create) also has C(location).
  returned: always
  type: list
  elements: dict
  sample: [{name: create, method: POST, url: https://quiz.aiquiz.lab:8443/api/quizzes, status: 201,
            expected_status: 201, elapsed_ms: 24.5, ok: true, detail: created /api/quizzes/7,
            location: /api/quizzes/7}]
findings:
  description: Every problem found, one sentence each (in check mode, that the transaction was skipped).
  returned: always
  type: list
  elements: str
passed:
  description: Whether both steps answered as expected (false in check mode).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_probe
from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_synthetic


def argument_spec():
    return dict(
        url=dict(type='str', required=True),
        address=dict(type='str'),
        ca_file=dict(type='path'),
        path=dict(type='str', default='/api/quizzes'),
        title=dict(type='str', required=True),
        timeout=dict(type='float', default=10),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if module.params['timeout'] <= 0:
        module.fail_json(msg='timeout must be positive, got %s' % module.params['timeout'])
    try:
        result = _golive_synthetic.transaction(module.params, module.check_mode)
    except _golive_probe.ProbeError as exc:
        module.fail_json(msg=str(exc))
    # A quiz was created: a change on the service, reported as one.
    created = any(step['name'] == 'create' and step['status'] == 201 for step in result['steps'])
    module.exit_json(changed=created, **result)


if __name__ == '__main__':
    main()
