#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rabbitmq_user_password
short_description: Create a RabbitMQ user or set its password without the password on a command line
version_added: 0.1.0
description:
  - Creates the user O(name) with O(password), or sets its password when it differs from the stored one, on the node
    the local C(rabbitmqctl) reaches.
  - The password never appears in a process's arguments. The module compares it with the salted hash of
    C(rabbitmqctl export_definitions -) (SHA-256, SHA-512 or MD5, as the user's C(hashing_algorithm) says), so an
    unchanged password needs no call at all; C(add_user) and C(change_password) get it on standard input.
  - Why not C(community.rabbitmq.rabbitmq_user) alone - with C(update_password=always) it runs
    C(rabbitmqctl authenticate_user NAME PASSWORD) on every run and C(add_user) or C(change_password) with the
    password as an argument, which C(ps), sudo and auditd record (Debian's C(rabbitmqctl) even passes it on to
    C(su -c)); its management API mode fails after a successful password change. Use that module for tags and
    permissions, without a password, after this one.
  - Returns no hash and no password.
requirements:
  - rabbitmqctl of RabbitMQ 3.8 or later on the target host (3.10 and 4.0 tested), run as root.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Reads the definitions and reports whether the user would be created or its password changed.
  diff_mode:
    support: none
    details: The password is secret; RV(action) says what changed.
  platform:
    support: full
    platforms: posix
options:
  name:
    description: User name.
    type: str
    required: true
  password:
    description: The password (from vault). One line, not empty. Never logged or returned.
    type: str
    required: true
  node:
    description:
      - Erlang node name to talk to, for example C(rabbit@localhost); empty for rabbitmqctl's default.
      - Given to rabbitmqctl as C(RABBITMQ_NODENAME) in its environment, not C(-n) (RabbitMQ 4.0's rabbitmqctl does
        not read a password from standard input with C(-n) or C(-q)).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Create the user or set its password (never on a command line)
  aiquiz.ops.rabbitmq_user_password:
    name: quiz
    password: "{{ vault_aiquiz_amqp_password }}"
    node: rabbit@localhost
  no_log: true

- name: Then its tags and permissions, without a password
  community.rabbitmq.rabbitmq_user:
    user: quiz
    node: rabbit@localhost
    permissions:
      - vhost: /
        configure_priv: .*
        write_priv: .*
        read_priv: .*
"""

RETURN = r"""
action:
  description: What was done (or would be in check mode) - C(created), C(changed) or C(unchanged).
  returned: always
  type: str
  sample: unchanged
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils._rabbitmq_password import (
    PasswordError,
    check_password,
    commands,
    decide,
    environment,
    users_of,
)

DONE = {'create': 'created', 'change': 'changed', None: 'unchanged'}


def run(module, argv, node, stdin=None):
    """Run rabbitmqctl on node; fail naming the step (never with stdin in the message)."""
    rc, out, err = module.run_command(argv, data=stdin, binary_data=False, environ_update=environment(node))
    if rc != 0:
        module.fail_json(msg='%s failed (rc %d): %s' % (' '.join(argv[1:4]), rc, (err or out).strip()[-500:]))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            password=dict(type='str', required=True, no_log=True),
            node=dict(type='str', default=''),
        ),
        supports_check_mode=True,
    )
    name, password, node = module.params['name'], module.params['password'], module.params['node']
    try:
        check_password(password)
    except PasswordError as exc:
        module.fail_json(msg='user %s: %s' % (name, exc))
    rabbitmqctl = module.get_bin_path('rabbitmqctl', required=True)
    try:
        action = decide(users_of(run(module, commands(rabbitmqctl, 'export', name), node)), name, password)
    except PasswordError as exc:
        module.fail_json(msg='user %s: %s' % (name, exc))
    if action and not module.check_mode:
        # rabbitmqctl reads the password from stdin when the argument is left out.
        run(module, commands(rabbitmqctl, action, name), node, stdin=password)
    module.exit_json(changed=action is not None, action=DONE[action])


if __name__ == '__main__':
    main()
