# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter postgresql_variable_errors: what the postgresql role's argument
specs cannot express, every error at once, each naming the variable.

Its documentation is in postgresql_variable_errors.yml beside this file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.aiquiz.ops.plugins.module_utils import _role_variables as rv

HBA_TYPES = ('local', 'host', 'hostssl', 'hostnossl')
# trust, password and md5 are left out on purpose.
HBA_METHODS = ('scram-sha-256', 'peer', 'cert', 'reject')

# The role's variables, then what the role derives from them in vars/main.yml
# (one definition each, read here as the rest of the role reads them).
VARIABLES = ('postgresql_version_effective', 'distribution_major_version', 'postgresql_hba', 'postgresql_tls_enabled',
             'postgresql_users', 'postgresql_replication_password', 'postgresql_replica_of',
             'postgresql_tls_certificate', 'postgresql_replication_sslmode', 'tls_certificates', 'inventory_hostname',
             '_postgresql_is_replica', '_postgresql_replicas', '_postgresql_primary_conninfo',
             '_postgresql_replication_ca_file')


def _hba_errors(index, entry, tls_enabled):
    if not isinstance(entry, Mapping):
        return ['postgresql_hba[%d]: "%s" is not a dictionary' % (index, entry)]
    errors = []
    kind = entry.get('type')
    if kind not in HBA_TYPES:
        errors.append('postgresql_hba[%d]: type "%s" is not one of %s' % (index, kind, ', '.join(HBA_TYPES)))
    method = entry.get('method')
    if method not in HBA_METHODS:
        errors.append('postgresql_hba[%d]: method "%s" is not one of %s' % (index, method, ', '.join(HBA_METHODS)))
    # Truthiness, as the role's templates read it.
    if kind == 'host' and tls_enabled:
        errors.append('postgresql_hba[%d]: type host also admits connections without TLS; use hostssl' % index)
    # A CIDR or a list of them; any false value is none.
    if kind != 'local' and not entry.get('address'):
        errors.append('postgresql_hba[%d]: type %s needs an address' % (index, kind))
    return errors


def _user_errors(index, user):
    if not isinstance(user, Mapping):
        return ['postgresql_users[%d]: "%s" is not a dictionary' % (index, user)]
    # Any false value (None, "", 0) is no password.
    if user.get('state', 'present') == 'present' and not user.get('password'):
        return ['postgresql_users[%d] (%s): no password' % (index, user.get('name'))]
    return []


def _is_replica(v):
    # A bool from vars/main.yml (postgresql_replica_of not empty), read as "| bool" reads it.
    return boolean(v['_postgresql_is_replica'], strict=False)


def _password_errors(v):
    """A primary with replicas and a replica log in with the replication password."""
    replicas = v['_postgresql_replicas']
    if not (replicas or _is_replica(v)) or rv.text(v['postgresql_replication_password']):
        return []
    return ['postgresql_replication_password: empty, but this host is %s'
            % ('a replica' if _is_replica(v) else 'the primary of ' + ', '.join(str(host) for host in replicas))]


def _primary_errors(v, hosts):
    if not _is_replica(v):
        return []
    if v['postgresql_replica_of'] not in hosts:
        return ['postgresql_replica_of: "%s" is not an inventory host' % (v['postgresql_replica_of'],)]
    if v['postgresql_replica_of'] == v['inventory_hostname']:
        return ['postgresql_replica_of: a host cannot be its own replica']
    return []


def _conninfo_errors(v, hosts):
    # Read only for a replica of an inventory host: it is built from the primary's hostvars.
    if not (_is_replica(v) and v['postgresql_replica_of'] in hosts):
        return []
    if any(char in rv.text(v['_postgresql_primary_conninfo']) for char in "',"):
        return ["postgresql_replica_primary_host, postgresql_replication_user or postgresql_replication_ca_file:"
                " a ' or , would break primary_conninfo"]
    return []


def _ca_file_errors(v):
    if not _is_replica(v):
        return []
    sslmode = rv.text(v['postgresql_replication_sslmode'])
    if not sslmode.startswith('verify') or rv.text(v['_postgresql_replication_ca_file']):
        return []
    return ['postgresql_replication_ca_file: empty, and no postgresql_tls_certificate to take ca.pem from;'
            ' sslmode %s needs the CA that signed the certificate of %s' % (sslmode, v['postgresql_replica_of'])]


def postgresql_variable_errors(variables, hosts):
    """The list of errors of the postgresql variables (empty when they are valid).

    hosts: the inventory's hosts (hostvars); only whether a name is in it is asked.
    """
    v = rv.variables_of(variables, VARIABLES, 'postgresql_variable_errors', AnsibleFilterError)
    errors = []
    if not rv.text(v['postgresql_version_effective']):
        errors.append('postgresql_version: Debian %s has no PostgreSQL known to the role; set it'
                      % (v['distribution_major_version'],))
    for index, entry in enumerate(rv.items(errors, v, 'postgresql_hba') or []):
        errors.extend(_hba_errors(index, entry, v['postgresql_tls_enabled']))
    for index, user in enumerate(rv.items(errors, v, 'postgresql_users') or []):
        errors.extend(_user_errors(index, user))
    errors.extend(_password_errors(v))
    errors.extend(_primary_errors(v, hosts))
    errors.extend(rv.declared_certificate_errors(v, 'postgresql'))
    errors.extend(_conninfo_errors(v, hosts))
    errors.extend(_ca_file_errors(v))
    return errors


class FilterModule:

    def filters(self):
        return {'postgresql_variable_errors': postgresql_variable_errors}
