# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter redis_variable_errors: what the redis role's argument specs cannot
express, every error at once, each naming the variable.

Its documentation is in redis_variable_errors.yml beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames
from ansible_collections.aiquiz.ops.plugins.module_utils import _role_variables as rv

MIN_PASSWORD_LENGTH = 16
# Redis's memory units: bytes, k, kb, m, mb, g, gb, in any case.
MAXMEMORY_RE = re.compile(r'[0-9]+([kmg]b?)?', re.IGNORECASE)
SAVE_RE = re.compile(r'[0-9]+ [0-9]+')
# A loopback bind address ("-" in front: skipped when absent). Looser than an
# address parser on purpose: Redis reads 127.1 as 127.0.0.1, and what is not
# loopback is only ever refused.
LOOPBACK_RE = re.compile(r'-?(127\.[0-9.]+|::1|localhost)')

VARIABLES = ('redis_password', 'redis_bind', 'redis_port', 'redis_maxmemory', 'redis_save', 'redis_tls_enabled',
             'redis_tls_certificate', 'redis_tls_cert_file', 'redis_tls_key_file', 'redis_tls_ca_file',
             'redis_plaintext_port', 'tls_certificates', 'redis_ha', 'redis_ha_group', 'redis_ha_primary',
             'redis_ha_address', 'redis_sentinel_quorum', 'redis_min_replicas_to_write', 'redis_ha_host',
             'redis_ha_members', 'redis_ha_running_master')


def _plaintext_port_errors(v, bind):
    port = rv.integer(v['redis_plaintext_port'])
    if port is None:
        return ['redis_plaintext_port: "%s" is not a port number' % (v['redis_plaintext_port'],)]
    if port == 0:
        return []
    remote = [str(address) for address in bind or [] if not LOOPBACK_RE.fullmatch(rv.text(address))]
    if remote:
        return ['redis_plaintext_port: %d would take plaintext clients on %s too (redis_bind); set it to 0 or bind'
                ' loopback only' % (port, ', '.join(remote))]
    if port == rv.integer(v['redis_port']):
        return ['redis_plaintext_port: the TLS port (redis_port) already is %d' % port]
    return []


def _address_errors(v, bind, members):
    address = rv.text(v['redis_ha_address'])
    if not address:
        return ['redis_ha_address: required with redis_ha: sentinel (this host\'s private address)']
    parsed = _netnames.ip_address(address)
    if parsed is None:
        return ['redis_ha_address: "%s" is not an IP address' % address]
    if parsed.is_loopback or parsed.is_unspecified:
        return ['redis_ha_address: %s is not an address the other hosts can reach' % address]
    errors = []
    if bind is not None and address not in [rv.text(item).lstrip('-') for item in bind]:
        errors.append('redis_ha_address: %s is not in redis_bind (Redis would not listen on it)' % address)
    others = sorted(host for host, other in members.items()
                    if host != v['redis_ha_host'] and rv.text(other) == address)
    if others:
        errors.append('redis_ha_address: %s is the address of %s too' % (address, ', '.join(others)))
    return errors


def _ha_errors(v, bind):
    """redis_ha: sentinel - the group, the primary, this host's address, the quorum."""
    group = rv.text(v['redis_ha_group'])
    members = v['redis_ha_members']
    errors, usable = rv.ha_group_errors('redis_ha_group', group, members, v['redis_ha_host'], 'Sentinel',
                                        lambda address: address is not None)
    if not usable:
        return errors
    count = len(members)
    primary = rv.text(v['redis_ha_primary'])
    if primary and primary not in members:
        errors.append('redis_ha_primary: "%s" is not a host of redis_ha_group (%s)' % (primary, group))
    errors.extend(_address_errors(v, bind, members))
    quorum = rv.integer(v['redis_sentinel_quorum'])
    if quorum is None or not count // 2 < quorum <= count:
        errors.append('redis_sentinel_quorum: %s for %d Sentinels; it must be more than half of them (%d to %d)'
                      % (v['redis_sentinel_quorum'], count, count // 2 + 1, count))
    replicas = rv.integer(v['redis_min_replicas_to_write'])
    if replicas is None or replicas < 0 or replicas > count - 1:
        errors.append('redis_min_replicas_to_write: %s, but the group has %d replicas (0 to %d)'
                      % (v['redis_min_replicas_to_write'], count - 1, count - 1))
    master = rv.text(v['redis_ha_running_master'])
    if master and master not in [rv.text(address) for address in members.values()]:
        errors.append('redis_ha_group: this host\'s Redis replicates %s, no host of "%s": it belongs to another'
                      ' Redis group; make it a primary (REPLICAOF NO ONE) or remove it first' % (master, group))
    return errors


def redis_variable_errors(variables):
    """The list of errors of the redis variables (empty when they are valid)."""
    v = rv.variables_of(variables, VARIABLES, 'redis_variable_errors', AnsibleFilterError)
    errors = []
    password = rv.text(v['redis_password'])
    if len(password) < MIN_PASSWORD_LENGTH:
        errors.append('redis_password: shorter than %d characters' % MIN_PASSWORD_LENGTH)
    if rv.has_line_break(password):
        errors.append('redis_password: holds a line break')
    bind = rv.items(errors, v, 'redis_bind')
    if bind == []:
        errors.append('redis_bind: empty (Redis would listen on every address)')
    if not MAXMEMORY_RE.fullmatch(rv.text(v['redis_maxmemory'])):
        errors.append('redis_maxmemory: "%s" is not a size such as 256mb or 0' % (v['redis_maxmemory'],))
    for index, item in enumerate(rv.items(errors, v, 'redis_save') or []):
        if not SAVE_RE.fullmatch(rv.text(item)):
            errors.append('redis_save[%d]: "%s" is not "seconds changes"' % (index, item))
    # Truthiness, as the role's templates read it.
    if v['redis_tls_enabled']:
        errors.extend(rv.tls_source_errors(v, 'redis'))
        errors.extend(_plaintext_port_errors(v, bind))
    if v['redis_ha'] == 'sentinel':
        errors.extend(_ha_errors(v, bind))
    elif v['redis_ha'] not in ('none', None, ''):
        errors.append('redis_ha: "%s" is not none or sentinel' % (v['redis_ha'],))
    return errors


def redis_sentinel_primary(answers, members, initial=''):
    """The address of the primary: what most Sentinels that answered say, else
    the address of the initial primary (a host of members, or the first one).

    answers: one per host, an address or "" (no Sentinel answered there).
    members: host -> address, in the group's order.
    """
    if not isinstance(members, Mapping) or not members:
        raise AnsibleFilterError('redis_sentinel_primary: expects the members as host -> address')
    said = [rv.text(answer) for answer in answers or [] if answer]
    if not said:
        host = rv.text(initial) or next(iter(members))
        if host not in members:
            raise AnsibleFilterError('redis_sentinel_primary: "%s" is not a member' % host)
        return rv.text(members[host])
    counts = {}
    for address in said:
        counts[address] = counts.get(address, 0) + 1
    best = max(counts, key=lambda address: (counts[address], address))
    if counts[best] * 2 <= len(said):
        raise AnsibleFilterError('the Sentinels disagree on the primary (%s): wait for the failover to end, then run'
                                 ' again' % ', '.join('%s x%d' % item for item in sorted(counts.items())))
    return best


class FilterModule:

    def filters(self):
        return {'redis_variable_errors': redis_variable_errors, 'redis_sentinel_primary': redis_sentinel_primary}
