# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters firewall_check and firewall_ruleset: the firewall role's variables
checked, and its rules' sources resolved to addresses, before any change.

Their documentation is in firewall_check.yml and firewall_ruleset.yml beside
this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames

RATE_RE = re.compile(r'[1-9][0-9]*/(second|minute|hour|day)')
NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')
# nft's interface names: up to 15 characters, "*" at the end for a prefix.
INTERFACE_RE = re.compile(r'(?=.{1,15}$)[A-Za-z0-9_.-]+[*]?')
INCLUDE_DIR_RE = re.compile(r'/[^"*?]*')
PORT_RE = re.compile(r'[0-9]+')
PORT_RANGE_RE = re.compile(r'([0-9]+)-([0-9]+)')
# Facts' addresses that never identify a host to another.
LOOPBACK_IPV4_RE = re.compile(r'127\.')
LOCAL_IPV6_RE = re.compile(r'fe80:|::1$')
PROTOS = ('tcp', 'udp')

VARIABLES = ('firewall_ssh_port', 'firewall_admin_networks', 'firewall_ssh_rate_limit', 'firewall_icmp_rate_limit',
             'firewall_ssh_rate_burst', 'firewall_include_dir', 'firewall_confirm_seconds',
             'firewall_container_interfaces', 'firewall_group_rules', 'firewall_rules')


def _integer(value):
    # Jinja's "is integer": an int, not a bool.
    return isinstance(value, int) and not isinstance(value, bool)


def _matches(pattern, value):
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _list_like(value):
    return not isinstance(value, (str, bytes, Mapping)) and isinstance(value, Iterable)


def _unique(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _flatten(value):
    if isinstance(value, (list, tuple)):
        return [item for element in value for item in _flatten(element)]
    return [value]


def _port_ok(port):
    if _integer(port):
        return 1 <= port <= 65535
    if _matches(PORT_RE, port):
        return 1 <= int(port) <= 65535
    if _matches(PORT_RANGE_RE, port):
        low, high = (int(bound) for bound in PORT_RANGE_RE.fullmatch(port).groups())
        return 1 <= low < high <= 65535
    return False


def _needs_facts(host_vars):
    """A source host whose address can come only from its network facts, not gathered yet."""
    return ('firewall_host_address' not in host_vars
            and not _netnames.is_ip_address(host_vars.get('ansible_host', ''))
            and 'ansible_all_ipv4_addresses' not in host_vars)


def _check_settings(v, errors):
    port = v['firewall_ssh_port']
    if not (_integer(port) and 1 <= port <= 65535):
        errors.append('firewall_ssh_port: "%s" is not a port number (1-65535)' % (port,))
    admin = v['firewall_admin_networks']
    if not _list_like(admin) or len(list(admin)) == 0:
        errors.append('firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)')
    else:
        for index, net in enumerate(admin):
            if not _netnames.is_ip_network(net):
                errors.append('firewall_admin_networks[%d]: "%s" is not an IPv4 or IPv6 address or CIDR' % (index, net))
    for var in ('firewall_ssh_rate_limit', 'firewall_icmp_rate_limit'):
        if not _matches(RATE_RE, v[var]):
            errors.append('%s: "%s" is not a rate such as 10/minute (per second, minute, hour or day)' % (var, v[var]))
    burst = v['firewall_ssh_rate_burst']
    if not (_integer(burst) and burst >= 1):
        errors.append('firewall_ssh_rate_burst: "%s" is not a positive integer' % (burst,))
    if not _matches(INCLUDE_DIR_RE, v['firewall_include_dir']):
        errors.append('firewall_include_dir: "%s" is not an absolute path' % (v['firewall_include_dir'],))
    confirm = v['firewall_confirm_seconds']
    if not (_integer(confirm) and (confirm == 0 or confirm >= 10)):
        errors.append('firewall_confirm_seconds: "%s" must be 0 (no rollback timer) or at least 10 seconds,'
                      ' longer than the connection timeout' % (confirm,))
    interfaces = v['firewall_container_interfaces']
    if not _list_like(interfaces):
        errors.append('firewall_container_interfaces: must be a list of interface names')
    else:
        for index, name in enumerate(interfaces):
            if not _matches(INTERFACE_RE, name):
                errors.append('firewall_container_interfaces[%d]: "%s" is not an interface name'
                              ' (up to 15 letters, digits, "_", ".", "-", optionally ending in "*")' % (index, name))


def _rules_of_host(v, group_names, errors):
    """(origin, rule) of every rule that applies to the host: its groups' (all first), then its own."""
    items = []
    group_rules = v['firewall_group_rules']
    for group in ['all'] + list(group_names):
        if group not in group_rules:
            continue
        if not _list_like(group_rules[group]):
            errors.append('firewall_group_rules.%s: must be a list of rules' % group)
            continue
        items.extend(('firewall_group_rules.%s[%d]' % (group, index), rule)
                     for index, rule in enumerate(group_rules[group]))
    if not _list_like(v['firewall_rules']):
        errors.append('firewall_rules: must be a list of rules')
    else:
        items.extend(('firewall_rules[%d]' % index, rule) for index, rule in enumerate(v['firewall_rules']))
    return items


def firewall_check(variables, group_names, groups, hostvars):
    """{errors, rules, fact_hosts}: every error of the firewall variables of a
    host; its valid rules (origin, name, port as text, proto, sources); the
    source hosts whose network facts are needed to resolve their address."""
    if not isinstance(variables, Mapping):
        raise AnsibleFilterError('firewall_check: expects a dict of the firewall variables, got %r' % (variables,))
    missing = [name for name in VARIABLES if name not in variables]
    if missing:
        raise AnsibleFilterError('firewall_check: variables missing from the input: %s' % ', '.join(missing))
    errors, rules, fact_hosts = [], [], []
    _check_settings(variables, errors)
    for origin, rule in _rules_of_host(variables, group_names, errors):
        if not isinstance(rule, Mapping):
            errors.append('%s: "%s" is not a rule (name, port, proto, sources)' % (origin, rule))
            continue
        where = '%s (%s)' % (origin, rule.get('name', 'no name'))
        rule_ok = True
        if not _matches(NAME_RE, rule.get('name')):
            errors.append('%s: name "%s" must be letters, digits, "_", "." or "-"' % (where, rule.get('name')))
            rule_ok = False
        port = rule.get('port')
        if not _port_ok(port):
            errors.append('%s: port "%s" is not a port (1-65535) or a range "low-high"' % (where, port))
            rule_ok = False
        proto = rule.get('proto', 'tcp')
        if proto not in PROTOS:
            errors.append('%s: proto "%s" is not tcp or udp' % (where, proto))
            rule_ok = False
        sources = rule.get('sources')
        if not _list_like(sources) or len(list(sources)) == 0:
            errors.append('%s: sources must be a non-empty list of CIDRs or inventory group names' % where)
            rule_ok = False
        else:
            for source in sources:
                if _netnames.is_ip_network(source):
                    continue
                if isinstance(source, str) and source in groups:
                    fact_hosts.extend(host for host in groups[source] if _needs_facts(hostvars[host]))
                    continue
                errors.append('%s: source "%s" is neither an IPv4/IPv6 CIDR nor an inventory group' % (where, source))
                rule_ok = False
        if rule_ok:
            rules.append({'origin': where, 'name': rule['name'], 'port': str(port), 'proto': proto,
                          'sources': list(sources)})
    return {'errors': errors, 'rules': rules, 'fact_hosts': _unique(fact_hosts)}


def _host_addresses(host, host_vars, errors):
    """The addresses that stand for one host of a source group, first match wins."""
    if 'firewall_host_address' in host_vars:
        found = _flatten([host_vars['firewall_host_address']])
        for address in found:
            if not _netnames.is_ip_network(address):
                errors.append('firewall_host_address of %s: "%s" is not an IPv4 or IPv6 address' % (host, address))
        return found
    ansible_host = host_vars.get('ansible_host', '')
    if _netnames.is_ip_address(ansible_host):
        return [ansible_host]
    defaults = [(host_vars.get(fact) or {}).get('address') or ''
                for fact in ('ansible_default_ipv4', 'ansible_default_ipv6')]
    if any(defaults):
        return [address for address in defaults if address]
    return ([address for address in host_vars.get('ansible_all_ipv4_addresses') or []
             if not LOOPBACK_IPV4_RE.match(address)]
            + [address for address in host_vars.get('ansible_all_ipv6_addresses') or []
               if not LOCAL_IPV6_RE.match(address)])


def _by_version(addresses, version):
    return [address for address in addresses if _netnames.ip_version(address) == version]


def firewall_ruleset(check, admin_networks, groups, hostvars):
    """{errors, rules, admin_ipv4, admin_ipv6}: the rules of firewall_check
    with the addresses of their sources split by IP version, and the admin
    networks split the same way."""
    if not isinstance(check, Mapping) or 'rules' not in check:
        raise AnsibleFilterError('firewall_ruleset: expects the answer of aiquiz.ops.firewall_check, got %r' % (check,))
    errors, rules = [], []
    for rule in check['rules']:
        addresses = []
        for source in rule['sources']:
            if _netnames.is_ip_network(source):
                addresses.append(source)
                continue
            for host in groups[source]:
                found = _host_addresses(host, hostvars[host], errors)
                if not found:
                    errors.append('%s: no address found for host %s of group %s (set firewall_host_address for it)'
                                  % (rule['origin'], host, source))
                addresses.extend(found)
        addresses = _unique(addresses)
        rules.append(dict(rule, ipv4=_by_version(addresses, 4), ipv6=_by_version(addresses, 6)))
    # SSH stays open to every admin network: none may be left out of both lists.
    admin = list(admin_networks) if _list_like(admin_networks) else []
    if not admin:
        errors.append('firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)')
    for index, net in enumerate(admin):
        if _netnames.ip_version(net) is None:
            errors.append('firewall_admin_networks[%d]: "%s" is not an IPv4 or IPv6 address or CIDR' % (index, net))
    return {'errors': errors, 'rules': rules,
            'admin_ipv4': _unique(_by_version(admin, 4)), 'admin_ipv6': _unique(_by_version(admin, 6))}


class FilterModule:

    def filters(self):
        return {'firewall_check': firewall_check, 'firewall_ruleset': firewall_ruleset}
