#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_state
short_description: Read the state of files, settings, packages and services of a host in one round trip
version_added: 0.1.0
description:
  - Reads, in one task, what a host role is about to manage (file types, modes, owners and checksums, file contents,
    kernel settings, Debian package states, systemd unit states, group IDs, command outputs and the age of apt's
    cache) and returns it as one document. It changes nothing and runs in check mode too.
  - The host roles (base, hardening, firewall) read it once at the start instead of a stat, package or service query
    per task, and skip a change whose target the answer shows already as declared. A task whose target differs runs
    as it would without this module, so a file changed by hand is put back on the next run.
  - What this does that M(ansible.builtin.stat), M(ansible.builtin.package_facts) and M(ansible.builtin.service_facts)
    do not, together, is one module call instead of one per path, only the packages and units asked for instead of
    all of them (C(service_facts) lists every unit, hundreds on a systemd host), and the sha1 of a file in the same
    answer as its mode and owner, so a role can compare them with what it would write.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Read-only; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  files:
    description:
      - Absolute paths to describe as C(TYPE MODE OWNER:GROUP), followed by the sha1 of a regular file.
      - A link is C(link OWNER:GROUP -> TARGET (TARGET'S TYPE MODE OWNER:GROUP)), a missing path C(absent).
      - Paths are followed as root; name root-owned paths only, never a path in a user's home.
    type: list
    elements: str
    default: []
  modes:
    description:
      - Absolute paths to describe like O(files), without the checksum.
    type: list
    elements: str
    default: []
  read:
    description:
      - Absolute paths of text files whose content to return (null when a file cannot be read).
    type: list
    elements: str
    default: []
  sysctl:
    description:
      - Kernel settings to read, in dotted form (C(net.ipv4.ip_forward)).
    type: list
    elements: str
    default: []
  packages:
    description:
      - Debian package names whose dpkg status to return.
    type: list
    elements: str
    default: []
  units:
    description:
      - systemd unit names whose enabled and active states to return.
    type: list
    elements: str
    default: []
  commands:
    description:
      - Read-only commands to run, as a name and its argv; their exit code and standard output are returned.
      - They run without a shell and with C(LC_ALL=C). Name only commands that change nothing.
    type: dict
    default: {}
  groups:
    description:
      - Group names whose numeric IDs to return (null when the group does not exist).
    type: list
    elements: str
    default: []
  apt_cache:
    description:
      - Return the seconds since apt's package lists were refreshed, reckoned as M(ansible.builtin.apt) reckons them
        (its success stamp, else the lists directory).
    type: bool
    default: false
notes:
  - Relative paths (and C(~)) are refused, as the module reads as root and a relative path would depend on the
    directory it runs in.
seealso:
  - module: ansible.builtin.stat
  - module: ansible.builtin.package_facts
  - module: ansible.builtin.service_facts
"""

EXAMPLES = r"""
- name: Read what the role manages, once
  aiquiz.ops.host_state:
    files: [/etc/nftables.conf]
    packages: [nftables]
    units: [nftables.service]
    apt_cache: true
  register: state

- name: Install nftables unless it is installed
  ansible.builtin.apt:
    name: nftables
  when: state.packages.nftables != 'installed'
"""

RETURN = r"""
files:
  description: Each path of O(files) and its description, with the checksum of a regular file.
  returned: always
  type: dict
  sample: {/etc/nftables.conf: file 0755 root:root 3b1c4d9e1f4b0c2a4f0f9d5e2c7a1b0e4d3c2b1a}
modes:
  description: Each path of O(modes) and its description.
  returned: always
  type: dict
  sample: {/etc/ssh/ssh_host_ed25519_key: file 0600 root:root}
read:
  description: Each path of O(read) and its text, null when it cannot be read.
  returned: always
  type: dict
sysctl:
  description: Each setting of O(sysctl) as C(value) (null when unreadable) and C(writable), or null when unknown.
  returned: always
  type: dict
  sample: {kernel.randomize_va_space: {value: '2', writable: true}}
packages:
  description: dpkg's status of each package of O(packages), C(unknown) when dpkg does not know the name.
  returned: always
  type: dict
  sample: {nftables: installed, telnet: not-installed}
units:
  description: C(enabled) and C(active) of each unit of O(units), as C(systemctl is-enabled) and C(is-active) say.
  returned: always
  type: dict
  sample: {ssh.service: {enabled: enabled, active: active}}
commands:
  description: C(rc) and C(stdout) of each command of O(commands); rc 127 when it cannot be started.
  returned: always
  type: dict
groups:
  description: The ID of each group of O(groups), null when there is no such group.
  returned: always
  type: dict
apt_cache_age:
  description: Seconds since apt's lists were refreshed, when O(apt_cache) is true; null otherwise.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.aiquiz.ops.plugins.module_utils import _host_state


def argument_spec():
    return dict(
        files=dict(type='list', elements='str', default=[]),
        modes=dict(type='list', elements='str', default=[]),
        read=dict(type='list', elements='str', default=[]),
        sysctl=dict(type='list', elements='str', default=[]),
        packages=dict(type='list', elements='str', default=[]),
        units=dict(type='list', elements='str', default=[]),
        commands=dict(type='dict', default={}),
        groups=dict(type='list', elements='str', default=[]),
        apt_cache=dict(type='bool', default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    relative = _host_state.relative_paths(module.params)
    if relative:
        module.fail_json(msg='paths must be absolute (no ~ or relative paths): %s' % ', '.join(relative))
    bad = sorted(name for name, argv in module.params['commands'].items()
                 if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv))
    if bad:
        module.fail_json(msg='commands must each be a non-empty list of strings (an argv): %s' % ', '.join(bad))
    module.exit_json(changed=False, **_host_state.collect(module.params))


if __name__ == '__main__':
    main()
