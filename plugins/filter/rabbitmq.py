# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter rabbitmq_variable_errors: what the rabbitmq role's argument specs
cannot express, every error at once, each naming the variable.

Its documentation is in rabbitmq_variable_errors.yml beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames
from ansible_collections.aiquiz.ops.plugins.module_utils import _role_variables as rv

NODENAME_RE = re.compile(r'[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+')

VARIABLES = ('rabbitmq_nodename', 'rabbitmq_bind', 'rabbitmq_port', 'rabbitmq_vhosts', 'rabbitmq_users',
             'rabbitmq_remove_guest', 'rabbitmq_erlang_dist_address', 'rabbitmq_tls_enabled', 'rabbitmq_tls_port',
             'rabbitmq_tls_certificate', 'rabbitmq_tls_cert_file', 'rabbitmq_tls_key_file', 'rabbitmq_tls_ca_file',
             'tls_certificates')


def _user_errors(index, user, vhosts, remove_guest):
    if not isinstance(user, Mapping):
        return ['rabbitmq_users[%d]: "%s" is not a dictionary' % (index, user)]
    errors = []
    name = user.get('name')
    if name == 'guest' and remove_guest:
        errors.append('rabbitmq_users[%d]: guest is removed (rabbitmq_remove_guest); declare another user' % index)
    if user.get('state', 'present') != 'present':
        return errors
    # Any false value (None, "", 0) is no password.
    password = rv.text(user.get('password') or '')
    if not password:
        errors.append('rabbitmq_users[%d] (%s): no password' % (index, name))
    elif rv.has_line_break(password):
        errors.append('rabbitmq_users[%d] (%s): the password holds a line break' % (index, name))
    vhost = user.get('vhost', '/')
    if vhosts is not None and vhost not in vhosts:
        errors.append('rabbitmq_users[%d] (%s): vhost "%s" is not in rabbitmq_vhosts' % (index, name, vhost))
    return errors


def rabbitmq_variable_errors(variables):
    """The list of errors of the rabbitmq variables (empty when they are valid)."""
    v = rv.variables_of(variables, VARIABLES, 'rabbitmq_variable_errors', AnsibleFilterError)
    errors = []
    if not NODENAME_RE.fullmatch(rv.text(v['rabbitmq_nodename'])):
        errors.append('rabbitmq_nodename: "%s" is not name@host' % (v['rabbitmq_nodename'],))
    if rv.items(errors, v, 'rabbitmq_bind') == []:
        errors.append('rabbitmq_bind: empty')
    vhosts = rv.items(errors, v, 'rabbitmq_vhosts')
    for index, user in enumerate(rv.items(errors, v, 'rabbitmq_users') or []):
        errors.extend(_user_errors(index, user, vhosts, v['rabbitmq_remove_guest']))
    # The distribution binds one IPv4 address (epmd, the node's port, the CLI tools).
    address = _netnames.ip_address(v['rabbitmq_erlang_dist_address'])
    if address is None or address.version != 4:
        errors.append('rabbitmq_erlang_dist_address: "%s" is not an IPv4 address' % (v['rabbitmq_erlang_dist_address'],))
    # Truthiness, as the role's templates read it.
    if v['rabbitmq_tls_enabled']:
        errors.extend(rv.tls_source_errors(v, 'rabbitmq'))
        port = rv.integer(v['rabbitmq_port'])
        if port is not None and port == rv.integer(v['rabbitmq_tls_port']):
            errors.append('rabbitmq_tls_port: the same as rabbitmq_port (%d)' % port)
    return errors


class FilterModule:

    def filters(self):
        return {'rabbitmq_variable_errors': rabbitmq_variable_errors}
