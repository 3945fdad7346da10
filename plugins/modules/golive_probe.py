#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golive_probe
short_description: Probe the public URL through the edge, as a user reaches it, for the go-live report
version_added: 0.1.0
description:
  - Connects to O(url) (or to O(address) with the URL's host name as SNI and C(Host), as C(curl --resolve) does) and
    reports the TLS handshake (protocol, cipher, the chain the server sends and its earliest expiry, whether it
    verifies against O(ca_file) for the host name), the HTTP status of O(samples) GET requests each on a new
    connection, their latency, and the security headers C(Strict-Transport-Security), C(X-Content-Type-Options) and
    the frame options (C(X-Frame-Options) or a C(Content-Security-Policy) with C(frame-ancestors)).
  - Scores the server's TLS configuration with sslyze's Python API against one of Mozilla's server-side TLS profiles
    (O(tls_profile)), that is the protocols and cipher suites it accepts, its curves, certificate and known vulnerabilities.
  - Every problem found is a line of RV(findings); RV(passed) is true when there is none. The module fails only with
    O(fail_on_findings), or for options it cannot use.
  - 'Meant to run on the controller (C(delegate_to: localhost)), so that it sees the service as a client outside the
    hosts does.'
requirements:
  - sslyze (6.x) and cryptography on the host that runs it, for O(tls_profile) other than V(none).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: It only reads (GET requests and TLS handshakes), so it probes in check mode as in a real run.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  url:
    description:
      - The public https URL, for example C(https://quiz.example.com/). Its host name is the SNI name, the C(Host)
        header and the name the certificate must be valid for.
    type: str
    required: true
  address:
    description:
      - Address (or name) to connect to instead of resolving the URL's host, for example the edge's address before DNS
        points at it. The URL's port is kept.
    type: str
  ca_file:
    description:
      - PEM file of the CA certificates the chain must verify against (the own CA's root). The system's roots without
        it. Also given to sslyze, for its certificate checks.
    type: path
  status:
    description: HTTP statuses that count as a good answer.
    type: list
    elements: int
    default: [200]
  samples:
    description: GET requests to send, one after the other, each on a new connection (the latency includes the handshake).
    type: int
    default: 5
  latency_budget_ms:
    description: A 95th percentile latency above this many milliseconds is a finding; V(0) checks no budget.
    type: int
    default: 0
  timeout:
    description: Seconds to wait for each connection, handshake and answer.
    type: float
    default: 10
  min_days:
    description: A certificate of the chain with fewer days left than this is a finding.
    type: int
    default: 14
  hsts_min_age:
    description: The smallest C(max-age) of C(Strict-Transport-Security) that passes, in seconds (default 180 days).
    type: int
    default: 15552000
  tls_profile:
    description:
      - Mozilla's server-side TLS profile to score the configuration against (sslyze's copy of it), or V(none) to
        skip the sslyze scan.
    type: str
    choices: [modern, intermediate, old, none]
    default: intermediate
  tls_profile_ignore:
    description:
      - sslyze check names (keys of C(issues) in RV(tls_profile), for example V(maximum_certificate_lifespan)) that are
        reported but are not findings. Say why in the inventory.
    type: list
    elements: str
    default: []
  fail_on_findings:
    description: Fail, listing RV(findings), when there is any. The result still carries every check.
    type: bool
    default: false
notes:
  - The HTTP requests do not verify the certificate (the TLS part does, once), so that headers and latency are still
    reported for a chain that does not verify.
  - The sslyze scan opens a few dozen connections to the server and takes several seconds.
seealso:
  - module: aiquiz.ops.golive_report
  - module: aiquiz.ops.certificate_inventory
"""

EXAMPLES = r"""
- name: Probe the public URL through the edge before DNS points at it
  aiquiz.ops.golive_probe:
    url: https://quiz.example.com/
    address: 192.0.2.10
    ca_file: /etc/ssl/certs/aiquiz-ca.pem
    latency_budget_ms: 500
  delegate_to: localhost
  run_once: true
  register: golive_public_url

- name: Stop the phase on any finding
  aiquiz.ops.golive_probe:
    url: https://quiz.example.com/
    fail_on_findings: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
url:
  description: The URL probed.
  returned: always
  type: str
  sample: https://quiz.example.com/
address:
  description: The address connected to.
  returned: always
  type: str
  sample: 192.0.2.10
port:
  description: The port connected to.
  returned: always
  type: int
  sample: 443
server_name:
  description: The SNI name and C(Host) header sent.
  returned: always
  type: str
  sample: quiz.example.com
checked_at:
  description: When the probe started, ISO 8601 UTC.
  returned: always
  type: str
  sample: "2026-12-04T17:00:00Z"
tls:
  description: The TLS handshake.
  returned: always
  type: dict
  contains:
    reachable:
      description: Whether a TLS handshake succeeded.
      type: bool
    error:
      description: Why the handshake failed, null otherwise.
      type: str
    protocol:
      description: Protocol negotiated.
      type: str
      sample: TLSv1.3
    cipher:
      description: Cipher suite negotiated (OpenSSL name).
      type: str
      sample: TLS_AES_256_GCM_SHA384
    cipher_bits:
      description: Secret bits of the cipher.
      type: int
      sample: 256
    handshake_ms:
      description: Milliseconds for the connection and handshake.
      type: float
    chain:
      description: The certificates the server sends, leaf first, with C(subject), C(issuer), C(not_after) and C(days_left).
      type: list
      elements: dict
    chain_not_after:
      description: The earliest end of validity in the chain, ISO 8601 UTC.
      type: str
    chain_days_left:
      description: Days left until RV(tls.chain_not_after).
      type: float
    verified:
      description: Whether the chain verifies against O(ca_file) (or the system's roots) for RV(server_name).
      type: bool
    verify_error:
      description: Why it does not verify, null otherwise.
      type: str
http:
  description: The HTTP answers.
  returned: always
  type: dict
  contains:
    status:
      description: Status of the last answer, null without one.
      type: int
      sample: 200
    statuses:
      description: Status of each answer.
      type: list
      elements: int
    expected_status:
      description: O(status).
      type: list
      elements: int
    error:
      description: Why a request failed, null otherwise.
      type: str
    headers:
      description: The last answer's headers, names lowercased; the values of C(set-cookie) and the authentication headers are C(<redacted>).
      type: dict
latency_ms:
  description: Milliseconds of each GET (samples) and their min, median, 95th percentile (nearest rank) and max.
  returned: always
  type: dict
  sample: {samples: [12.1, 9.8, 10.2], min: 9.8, median: 10.2, p95: 12.1, max: 12.1}
headers:
  description: One item per security header check, with C(name), C(value), C(ok) and C(reason).
  returned: always
  type: list
  elements: dict
  sample: [{name: Strict-Transport-Security, value: max-age=63072000, ok: true, reason: null}]
tls_profile:
  description:
    - The sslyze scan. C(ran), C(profile), C(compliant) (null when it could not tell), C(issues) (check name to
      text), C(protocols) and C(cipher_suites) accepted (IANA names), C(error).
  returned: always
  type: dict
  sample: {ran: true, profile: intermediate, compliant: true, issues: {}, protocols: [TLSv1.2, TLSv1.3],
           cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256], error: null}
findings:
  description: Every problem found, one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["header Strict-Transport-Security: missing"]
passed:
  description: Whether RV(findings) is empty.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aiquiz.ops.plugins.module_utils import _certs
from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_probe


def argument_spec():
    return dict(
        url=dict(type='str', required=True),
        address=dict(type='str'),
        ca_file=dict(type='path'),
        status=dict(type='list', elements='int', default=[200]),
        samples=dict(type='int', default=5),
        latency_budget_ms=dict(type='int', default=0),
        timeout=dict(type='float', default=10),
        min_days=dict(type='int', default=14),
        hsts_min_age=dict(type='int', default=15552000),
        tls_profile=dict(type='str', default='intermediate', choices=['modern', 'intermediate', 'old', 'none']),
        tls_profile_ignore=dict(type='list', elements='str', default=[]),
        fail_on_findings=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if not _certs.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'))
    if params['tls_profile'] != 'none' and not _golive_probe.HAS_SSLYZE:
        module.fail_json(msg=missing_required_lib('sslyze (or tls_profile: none)'))
    if params['samples'] < 1:
        module.fail_json(msg='samples must be at least 1, got %d' % params['samples'])
    if params['timeout'] <= 0:
        module.fail_json(msg='timeout must be positive, got %s' % params['timeout'])
    try:
        result = _golive_probe.probe(params)
    except _golive_probe.ProbeError as exc:
        module.fail_json(msg=str(exc))
    if params['fail_on_findings'] and result['findings']:
        module.fail_json(msg='%s: %s' % (params['url'], '; '.join(result['findings'])), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
