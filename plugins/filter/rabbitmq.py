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
             'tls_certificates', 'rabbitmq_ha', 'rabbitmq_ha_group', 'rabbitmq_cluster_name', 'rabbitmq_erlang_cookie',
             'rabbitmq_queues', 'rabbitmq_ha_host', 'rabbitmq_ha_members', 'rabbitmq_ha_running')
MIN_COOKIE_LENGTH = 20
COOKIE_RE = re.compile(r'[A-Za-z0-9]+')
QUEUE_TYPES = ('quorum', 'classic')


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


def _queue_errors(queues, vhosts):
    errors = []
    for index, queue in enumerate(queues or []):
        if not isinstance(queue, Mapping) or not rv.text(queue.get('name')):
            errors.append('rabbitmq_queues[%d]: "%s" is not a dictionary with a name' % (index, queue))
            continue
        kind = queue.get('type', 'quorum')
        if kind not in QUEUE_TYPES:
            errors.append('rabbitmq_queues[%d] (%s): type "%s" is not quorum or classic' % (index, queue['name'], kind))
        vhost = queue.get('vhost', '/')
        if vhosts is not None and vhost not in vhosts:
            errors.append('rabbitmq_queues[%d] (%s): vhost "%s" is not in rabbitmq_vhosts' % (index, queue['name'], vhost))
    return errors


def _running_errors(v, group, nodes):
    """A node that already runs in a cluster of other nodes, or of another name."""
    running = v['rabbitmq_ha_running']
    if not isinstance(running, Mapping) or not running:
        return []
    clustered = [rv.text(node) for node in running.get('nodes') or []]
    if len(clustered) < 2:
        return []
    strangers = [node for node in clustered if node not in nodes]
    if strangers:
        return ['rabbitmq_ha_group: this node (%s) is clustered with %s, no node of "%s": it belongs to another'
                ' cluster; take it out of that one first (rabbitmqctl forget_cluster_node there, reset here)'
                % (v['rabbitmq_nodename'], ', '.join(strangers), group)]
    name = rv.text(running.get('cluster_name'))
    if name and name != rv.text(v['rabbitmq_cluster_name']):
        return ['rabbitmq_cluster_name: "%s", but this node runs in cluster "%s"; a cluster\'s name is not changed'
                ' by the role (rabbitmqctl set_cluster_name, then the inventory)' % (v['rabbitmq_cluster_name'], name)]
    return []


def _cluster_errors(v):
    """rabbitmq_ha: cluster - the group, the node names, the cookie, the distribution address."""
    group = rv.text(v['rabbitmq_ha_group'])
    members = v['rabbitmq_ha_members']
    errors, usable = rv.ha_group_errors('rabbitmq_ha_group', group, members, v['rabbitmq_ha_host'], 'a cluster',
                                        lambda node: isinstance(node, Mapping))
    if not usable:
        return errors
    hosts = list(members)
    cookie = rv.text(v['rabbitmq_erlang_cookie'])
    if len(cookie) < MIN_COOKIE_LENGTH or not COOKIE_RE.fullmatch(cookie):
        errors.append('rabbitmq_erlang_cookie: required with rabbitmq_ha: cluster, %d characters or more, letters and'
                      ' digits only' % MIN_COOKIE_LENGTH)
    node = rv.text(v['rabbitmq_nodename'])
    if node.endswith('@localhost'):
        errors.append('rabbitmq_nodename: %s cannot be a cluster member; name a host that resolves to'
                      ' rabbitmq_erlang_dist_address on every node (rabbit@data1)' % node)
    address = _netnames.ip_address(v['rabbitmq_erlang_dist_address'])
    if address is not None and (address.is_loopback or address.is_unspecified):
        errors.append('rabbitmq_erlang_dist_address: %s; a cluster needs this host\'s private address'
                      % v['rabbitmq_erlang_dist_address'])
    nodes = {}
    for host in hosts:
        if isinstance(members[host], Mapping):
            nodes.setdefault(rv.text(members[host].get('node')), []).append(host)
    for name, owners in sorted(nodes.items()):
        if len(owners) > 1:
            errors.append('rabbitmq_nodename: %s is the name of %s' % (name, ', '.join(owners)))
    errors.extend(_running_errors(v, group, nodes))
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
    queues = rv.items(errors, v, 'rabbitmq_queues')
    errors.extend(_queue_errors(queues, vhosts))
    if v['rabbitmq_ha'] == 'cluster':
        errors.extend(_cluster_errors(v))
    elif v['rabbitmq_ha'] not in ('none', None, ''):
        errors.append('rabbitmq_ha: "%s" is not none or cluster' % (v['rabbitmq_ha'],))
    return errors


def rabbitmq_join_target(views, host, members):
    """The node this host joins, or "" (it is clustered already, or it is the first node of a new cluster).

    views: host -> the nodes of the cluster its node runs in now (None: not running).
    members: host -> node name, in the group's order.
    """
    if not isinstance(views, Mapping) or not isinstance(members, Mapping) or host not in members:
        raise AnsibleFilterError('rabbitmq_join_target: expects views and members by host, and a member host')
    if len(views.get(host) or []) > 1:
        return ''
    # An existing cluster first (a node replaced, or added), else the group's first node.
    for other in members:
        if other != host and len(views.get(other) or []) > 1:
            return rv.text(members[other])
    first = next(iter(members))
    return '' if first == host else rv.text(members[first])


class FilterModule:

    def filters(self):
        return {'rabbitmq_variable_errors': rabbitmq_variable_errors, 'rabbitmq_join_target': rabbitmq_join_target}
