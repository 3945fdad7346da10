#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight_facts
short_description: Probe a host for go-live blockers in one round trip
version_added: 0.1.0
description:
  - Reads, without changing anything, what must be true on a host before a release or go-live touches it
    (free disk space, available memory, clock skew against the controller, DNS resolution, free ports and
    the Python version) and returns one check per item with a readable RV(checks[].detail) and RV(checks[].fix).
  - A failed check is data, not a module failure. The module fails only for invalid arguments or unexpected
    errors. Use the RV(failures) list to stop a play, as the C(aiquiz.ops.preflight) role does.
  - Linux only, it reads C(/proc). Run it with C(become) so it can name the process behind a busy port;
    without root the owner of another user's socket is reported as an unknown process.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: The module never changes the host, so check mode behaves exactly like a normal run.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: linux
options:
  paths:
    description:
      - Paths that need free space on their filesystem. Each path may not exist yet; the filesystem of its nearest
        existing parent is measured then, and the result says which directory was measured.
      - Each item produces a check named C(disk_free:<path>).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - Absolute path whose filesystem is measured.
        type: str
        required: true
      min_free_mb:
        description:
          - Free space needed, in MiB, counting only blocks available to unprivileged users.
          - Must be 0 or more.
        type: int
        required: true
  min_memory_available_mb:
    description:
      - Minimum C(MemAvailable) from C(/proc/meminfo), in MiB, checked as C(memory_available).
      - V(0) skips the check.
    type: int
    default: 0
  controller_time:
    description:
      - The controller clock as epoch seconds, rendered with the C(now) template function as in the examples.
      - When given, the host clock (read when the module starts) is compared with it in a check named C(clock_skew).
        The value is taken when the task is templated, so connection latency counts as skew.
      - When omitted, the module's action plugin reads the controller clock just before sending the module and
        just after its answer, and reports as skew only the offset outside that round trip. Prefer this.
    type: float
  max_clock_skew:
    description:
      - Largest allowed difference between host and controller clocks, in seconds, in either direction.
    type: float
    default: 2.0
  dns_names:
    description:
      - Names that must resolve on the host with its own resolver (C(getaddrinfo)), each checked as C(dns:<name>).
    type: list
    elements: str
    default: []
  ports:
    description:
      - Ports that must be free on every address, IPv4 and IPv6, each checked as C(port:<proto>/<port>).
      - TCP counts sockets in the LISTEN state, UDP counts bound unconnected sockets.
    type: list
    elements: dict
    default: []
    suboptions:
      port:
        description:
          - Port number, 1 to 65535.
        type: int
        required: true
      proto:
        description:
          - Protocol of the port.
        type: str
        choices: [tcp, udp]
        default: tcp
      allowed_processes:
        description:
          - Process names (as in C(/proc/<pid>/comm)) that may already listen on the port, for example V(nginx)
            serving 443 when the release is re-run.
        type: list
        elements: str
        default: []
  min_python:
    description:
      - Lowest Python version accepted for the interpreter running the module, as C(major.minor) or
        C(major.minor.micro). Checked as C(python).
    type: str
    default: '3.9'
  access:
    description:
      - What the run is about to apply to the controller's own access, checked against the SSH session the module
        runs in, so that a run that would cut that access stops before any change.
      - The session is found by walking up the process tree to the login shell sshd started (C(sudo) drops
        C(SSH_CONNECTION)); its owner is the login user. Over a connection that is not SSH (C(docker), C(local))
        one passing check named C(access) says there is nothing to lock out.
      - Checks C(access:admin_networks), C(access:ssh_port), C(access:allow_groups) and C(access:root_login), each
        only when its option is given.
    type: dict
    suboptions:
      admin_networks:
        description: Networks (CIDRs or addresses) the firewall will admit to SSH; the controller's address must be in one.
        type: list
        elements: str
      ssh_port:
        description: The SSH port the firewall will open; it must be the port the controller uses now.
        type: int
      allow_groups:
        description: sshd's C(AllowGroups) after the run ([] = no restriction); the login user must be in one.
        type: list
        elements: str
      declared_groups:
        description: Groups each user will be added to by the same run (user name to list of groups), counted as held.
        type: dict
      permit_root_login:
        description: sshd's C(PermitRootLogin) after the run; V(no) refuses a run that logs in as root.
        type: str
notes:
  - The returned RV(observed) data is useful on its own, for example to log the listeners of every host before a release.
seealso:
  - module: ansible.builtin.setup
"""

EXAMPLES = r"""
- name: Probe the host before go-live
  aiquiz.ops.preflight_facts:
    paths:
      - path: /var/lib/docker
        min_free_mb: 5120
      - path: /srv/aiquiz/backups
        min_free_mb: 2048
    min_memory_available_mb: 1024
    controller_time: "{{ now().timestamp() }}"
    max_clock_skew: 2
    dns_names:
      - db.internal.example
      - registry.example.com
    ports:
      - port: 443
        allowed_processes: [nginx, docker-proxy]
      - port: 80
        allowed_processes: [nginx, docker-proxy]
      - port: 51820
        proto: udp
    min_python: '3.9'
  become: true
  register: preflight

- name: Stop here if anything failed
  ansible.builtin.assert:
    that: preflight.failures | length == 0
    fail_msg: "{{ preflight.failures | map(attribute='check') | join(', ') }} failed on {{ inventory_hostname }}"
"""

RETURN = r"""
checks:
  description:
    - Every check that ran, passing ones included, in the order C(python), C(memory_available), C(disk_free:*),
      C(clock_skew), C(dns:*), C(port:*), C(access:*).
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: Check name, for example C(disk_free:/var/lib/docker), C(dns:db.internal.example) or C(port:tcp/443).
      type: str
      returned: always
      sample: disk_free:/var/lib/docker
    ok:
      description: Whether the check passed.
      type: bool
      returned: always
      sample: false
    detail:
      description: What was observed, naming the measured directory, address, process and so on.
      type: str
      returned: always
      sample: /var/lib/docker (measured on /var) has 812 MiB free, needs 5120 MiB
    fix:
      description: What to do about a failed check. Empty for a passing check.
      type: str
      returned: always
      sample: free space on the filesystem holding /var/lib/docker or lower its min_free_mb in preflight_disk_checks
failures:
  description: The checks from RV(checks) that did not pass, same format. Empty when the host is ready.
  returned: always
  type: list
  elements: dict
  sample:
    - check: port:tcp/443
      ok: false
      detail: tcp/443 is in use on 0.0.0.0 by pid 812 (apache2)
      fix: stop apache2 or move it off the port
observed:
  description: The raw observations the checks were made from.
  returned: always
  type: dict
  contains:
    memory_available_mb:
      description: C(MemAvailable) in MiB, or null when it could not be read.
      type: int
      returned: always
      sample: 3021
    paths:
      description: One entry per O(paths) item.
      type: list
      elements: dict
      returned: always
      contains:
        path:
          description: The path asked for.
          type: str
          returned: always
          sample: /var/lib/docker
        measured_path:
          description: The path, or its nearest existing parent when it does not exist yet.
          type: str
          returned: always
          sample: /var
        free_mb:
          description: Free MiB available to unprivileged users, null when the filesystem could not be measured.
          type: int
          returned: always
          sample: 812
        total_mb:
          description: Size of the filesystem in MiB, null when it could not be measured.
          type: int
          returned: always
          sample: 20030
    clock_skew:
      description:
        - Host time minus O(controller_time) in seconds, positive when the host is ahead.
        - When O(controller_time) is omitted, the offset of the host clock outside the round trip, 0 inside it.
      type: float
      returned: always
      sample: 0.412
    host_time:
      description: The host clock as epoch seconds, read when the module started.
      type: float
      returned: always
      sample: 1785312000.125
    python_version:
      description: Version of the Python interpreter running the module.
      type: str
      returned: always
      sample: 3.11.2
    dns:
      description: Addresses each O(dns_names) item resolved to, an empty list when it did not resolve.
      type: dict
      returned: always
      sample: {"db.internal.example": ["10.0.0.12"]}
    listeners:
      description: Every listening TCP socket and bound unconnected UDP socket on the host.
      type: list
      elements: dict
      returned: always
      contains:
        proto:
          description: V(tcp) or V(udp).
          type: str
          returned: always
          sample: tcp
        port:
          description: Local port.
          type: int
          returned: always
          sample: 22
        address:
          description: Local address, V(0.0.0.0) or V(::) for all addresses.
          type: str
          returned: always
          sample: 0.0.0.0
        pid:
          description: Process owning the socket, null when it cannot be seen (not root).
          type: int
          returned: always
          sample: 512
        process:
          description: Name of that process from C(/proc/<pid>/comm), null when unknown.
          type: str
          returned: always
          sample: sshd
    ssh_session:
      description:
        - The SSH session the module ran in (client and server address and port, login user), null when O(access)
          is not given or the connection is not SSH.
      type: dict
      returned: always
      sample: {"client": "203.0.113.7", "client_port": 50122, "server": "10.0.0.5", "server_port": 22, "user": "deploy"}
"""

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils._preflight import (
    evaluate,
    failures,
    gather,
    public_observations,
    validate_params,
)


def argument_spec():
    return dict(
        paths=dict(
            type='list', elements='dict', default=[],
            options=dict(
                path=dict(type='str', required=True),
                min_free_mb=dict(type='int', required=True),
            ),
        ),
        min_memory_available_mb=dict(type='int', default=0),
        controller_time=dict(type='float'),
        max_clock_skew=dict(type='float', default=2.0),
        dns_names=dict(type='list', elements='str', default=[]),
        ports=dict(
            type='list', elements='dict', default=[],
            options=dict(
                port=dict(type='int', required=True),
                proto=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
                allowed_processes=dict(type='list', elements='str', default=[]),
            ),
        ),
        min_python=dict(type='str', default='3.9'),
        access=dict(
            type='dict',
            options=dict(
                admin_networks=dict(type='list', elements='str'),
                ssh_port=dict(type='int'),
                allow_groups=dict(type='list', elements='str'),
                declared_groups=dict(type='dict'),
                permit_root_login=dict(type='str'),
            ),
        ),
    )


def main():
    # Read the clock first: the skew check compares the host clock with the
    # controller's as close to the moment the task started as possible.
    host_time = time.time()
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)

    errors = validate_params(module.params)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))

    try:
        observations = gather(module.params, host_time)
        checks = evaluate(module.params, observations)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(
            msg='preflight_facts could not probe the host (%s: %s); this is a bug in aiquiz.ops.preflight_facts, '
                'please report it with the traceback (run with -vvv)' % (exc.__class__.__name__, exc),
            exception=traceback.format_exc(),
        )

    module.exit_json(
        changed=False,
        checks=checks,
        failures=failures(checks),
        observed=public_observations(observations),
    )


if __name__ == '__main__':
    main()
