# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter patroni_variable_errors: what the patroni role's argument specs
cannot express (the shape of the cluster, and what the hosts already run),
every error at once, each naming the variable.

Its documentation is in patroni_variable_errors.yml beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiquiz.ops.plugins.module_utils import _role_variables as rv

VARIABLES = ('patroni_cluster_name', 'patroni_members', 'patroni_etcd_members', 'patroni_synchronous_mode',
             'patroni_superuser_password', 'patroni_replication_password', 'patroni_restapi_password',
             'inventory_hostname', '_patroni_nodes', 'patroni_etcd_tls_certificate', 'patroni_tls_certificate',
             'tls_certificates')
PASSWORDS = ('patroni_superuser_password', 'patroni_replication_password', 'patroni_restapi_password')
# The certificates of patroni_etcd_tls_certificate and patroni_tls_certificate:
# the group that must read their keys.
TLS_GROUPS = (('patroni_etcd_tls_certificate', 'etcd'), ('patroni_tls_certificate', 'postgres'))
# Patroni's scope is a key in etcd and part of the data directory's path.
NAME = re.compile(r'^[a-z0-9][a-z0-9_-]{0,62}$')


def _names(errors, v, name):
    """The host names of a list option, as text; None (reported) when it is not a list."""
    values = rv.items(errors, v, name)
    return None if values is None else [rv.text(value) for value in values]


def _name_errors(v):
    name = rv.text(v['patroni_cluster_name'])
    if not NAME.match(name):
        return ['patroni_cluster_name: "%s" is not 1 to 63 of a-z, 0-9, _ and - (starting with a letter or digit)'
                % (name,)]
    return []


def _member_errors(members, host):
    if not members:
        return ['patroni_members: empty; list the inventory hosts of the cluster']
    errors = []
    twice = sorted({member for member in members if members.count(member) > 1})
    if twice:
        errors.append('patroni_members: %s listed more than once' % ', '.join(twice))
    if host not in members:
        errors.append('patroni_members: %s is not in it (%s), but the role runs on it' % (host, ', '.join(members)))
    return errors


def _etcd_errors(etcd, members):
    if etcd is None or members is None:
        return []
    errors = []
    if len(etcd) % 2 == 0:
        errors.append('patroni_etcd_members: %d members (%s); etcd needs an odd number (3 or 5) so that a quorum'
                      ' survives the loss of one' % (len(etcd), ', '.join(etcd) or 'none'))
    strangers = [host for host in etcd if host not in members]
    if strangers:
        errors.append('patroni_etcd_members: %s not in patroni_members; etcd runs on the cluster\'s own hosts'
                      % ', '.join(strangers))
    return errors


def _synchronous_errors(v, members):
    if members is None or not boolean(v['patroni_synchronous_mode'], strict=False) or len(members) >= 2:
        return []
    return ['patroni_synchronous_mode: on, but the cluster has %d member; a synchronous standby needs 2 or more'
            % len(members)]


def _node_errors(v, members):
    """What the hosts already run: the scope of their Patroni and the token of their etcd."""
    name = rv.text(v['patroni_cluster_name'])
    host = rv.text(v['inventory_hostname'])
    errors = []
    for node in rv.items(errors, v, '_patroni_nodes') or []:
        if not isinstance(node, Mapping) or not node:
            continue  # a member outside the play: nothing known of it
        other = rv.text(node.get('host'))
        if members is not None and other not in members:
            continue
        declared = rv.text(node.get('cluster_name'))
        scope = rv.text(node.get('running_scope'))
        token = rv.text(node.get('etcd_token'))
        if other == host:
            if scope and scope != name:
                errors.append('patroni_cluster_name: "%s", but Patroni on %s already runs cluster "%s"; a running'
                              ' cluster is never renamed (set it back, or rebuild the host: docs/user-guide/data.md)'
                              % (name, host, scope))
            if token and token != name:
                errors.append('patroni_cluster_name: "%s", but the etcd of %s is a member of cluster "%s"'
                              % (name, host, token))
            continue
        if declared and declared != name:
            errors.append('patroni_members: %s names cluster "%s" (its patroni_cluster_name), this host "%s"'
                          % (other, declared, name))
        elif scope and scope != name:
            errors.append('patroni_members: %s already belongs to cluster "%s" (its Patroni runs it)' % (other, scope))
        elif token and token != name:
            errors.append('patroni_members: %s already belongs to cluster "%s" (its etcd is a member of it)'
                          % (other, token))
    return errors


def patroni_variable_errors(variables):
    """The list of errors of the patroni variables (empty when they are valid)."""
    v = rv.variables_of(variables, VARIABLES, 'patroni_variable_errors', AnsibleFilterError)
    errors = []
    errors.extend(_name_errors(v))
    members = _names(errors, v, 'patroni_members')
    if members is not None:
        errors.extend(_member_errors(members, rv.text(v['inventory_hostname'])))
    etcd = _names(errors, v, 'patroni_etcd_members')
    errors.extend(_etcd_errors(etcd, members))
    errors.extend(_synchronous_errors(v, members))
    errors.extend('%s: empty; set it (from vault)' % name for name in PASSWORDS if not rv.text(v[name]))
    errors.extend(_node_errors(v, members))
    errors.extend(_tls_errors(v))
    return errors


def _tls_errors(v):
    """Both certificates or neither, each one of tls_certificates readable by its service;
    and no switch of a running etcd between plain HTTP and TLS (its members' peer URLs)."""
    names = {name: rv.text(v[name]) for name, _group in TLS_GROUPS}
    if bool(names['patroni_etcd_tls_certificate']) != bool(names['patroni_tls_certificate']):
        return ['patroni_etcd_tls_certificate and patroni_tls_certificate: set both (TLS between etcd and its'
                ' clients) or neither']
    errors = []
    declared = {}
    for entry in v['tls_certificates'] or []:
        if isinstance(entry, Mapping):
            declared[rv.text(entry.get('name'))] = entry
    for name, group in TLS_GROUPS:
        cert = names[name]
        if not cert:
            continue
        if cert not in declared:
            errors.append('%s: "%s" is not a certificate of tls_certificates' % (name, cert))
        elif rv.text(declared[cert].get('group')) != group:
            errors.append('%s: the certificate "%s" has group "%s"; %s reads its key: set group %s (mode 0640)'
                          % (name, cert, rv.text(declared[cert].get('group')) or 'root', group, group))
    host = rv.text(v['inventory_hostname'])
    wanted = 'https' if names['patroni_etcd_tls_certificate'] else 'http'
    for node in v['_patroni_nodes'] or []:
        if isinstance(node, Mapping) and rv.text(node.get('host')) == host:
            running = rv.text(node.get('etcd_scheme'))
            if running and running != wanted:
                errors.append('patroni_etcd_tls_certificate: %s, but etcd on %s already runs with %s peer URLs; a'
                              ' running etcd is not switched in place (docs/user-guide/postgresql-ha.md, "TLS")'
                              % ('set' if wanted == 'https' else 'empty', host, running.upper()))
    return errors


class FilterModule:

    def filters(self):
        return {'patroni_variable_errors': patroni_variable_errors}
