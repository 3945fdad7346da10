# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""firewall_check and firewall_ruleset: every message of the firewall role's
checks, the rules and addresses they give, and the SSH lockout guards (a
valid admin network always lands in the ruleset; none is never accepted).
Cases marked "was:" were judged otherwise by the Jinja programs of
roles/firewall/tasks/preflight.yml that the filters replace."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.firewall import FilterModule, firewall_check, firewall_ruleset

ROLE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'firewall'

GROUPS = {
    'all': ['app1', 'app2', 'edge1', 'data1', 'mon1'], 'ungrouped': [],
    'app': ['app1', 'app2'], 'edge': ['edge1'], 'data': ['data1'], 'monitoring': ['mon1'], 'empty': [],
}
# app1: an address as ansible_host; app2: firewall_host_address; edge1: a
# name as ansible_host, default-route facts; data1: nothing yet (facts
# needed); mon1: facts of every address only.
HOSTVARS = {
    'app1': {'ansible_host': '192.0.2.11'},
    'app2': {'ansible_host': '192.0.2.99', 'firewall_host_address': ['192.0.2.12', '2001:db8::12']},
    'edge1': {'ansible_host': 'edge1.example', 'ansible_default_ipv4': {'address': '192.0.2.21'},
              'ansible_default_ipv6': {}, 'ansible_all_ipv4_addresses': ['192.0.2.21', '198.51.100.21']},
    'data1': {'ansible_host': 'data1'},
    'mon1': {'ansible_default_ipv4': {}, 'ansible_all_ipv4_addresses': ['127.0.0.1', '192.0.2.31'],
             'ansible_all_ipv6_addresses': ['fe80::31', '::1', '2001:db8::31']},
}


def defaults():
    return yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())


def merged(overrides):
    variables = defaults()
    variables.update(copy.deepcopy(overrides))
    return variables


def check(overrides=None, group_names=('data',), hostvars=None):
    return firewall_check(merged(overrides or {}), list(group_names), GROUPS, hostvars or HOSTVARS)


def rule(name, port, sources, proto='tcp'):
    return {'name': name, 'port': port, 'proto': proto, 'sources': sources}


# ---------------------------------------------------------------- firewall_check

def test_defaults_of_a_data_host():
    result = check()
    assert result['errors'] == []
    assert result['rules'] == [
        {'origin': 'firewall_group_rules.all[0] (node_exporter)', 'name': 'node_exporter', 'port': '9100',
         'proto': 'tcp', 'sources': ['monitoring']},
        {'origin': 'firewall_group_rules.data[0] (postgresql)', 'name': 'postgresql', 'port': '5432', 'proto': 'tcp',
         'sources': ['app']},
        {'origin': 'firewall_group_rules.data[1] (redis)', 'name': 'redis', 'port': '6379', 'proto': 'tcp',
         'sources': ['app']},
        {'origin': 'firewall_group_rules.data[2] (rabbitmq)', 'name': 'rabbitmq', 'port': '5672', 'proto': 'tcp',
         'sources': ['app']},
        {'origin': 'firewall_group_rules.data[3] (postgres_exporter)', 'name': 'postgres_exporter', 'port': '9187',
         'proto': 'tcp', 'sources': ['monitoring']},
        {'origin': 'firewall_group_rules.data[4] (redis_exporter)', 'name': 'redis_exporter', 'port': '9121',
         'proto': 'tcp', 'sources': ['monitoring']},
        {'origin': 'firewall_group_rules.data[5] (rabbitmq_prometheus)', 'name': 'rabbitmq_prometheus',
         'port': '15692', 'proto': 'tcp', 'sources': ['monitoring']},
    ]
    # mon1 has its facts already; app1 and app2 have addresses.
    assert result['fact_hosts'] == []


def test_hosts_needing_facts_are_named_once():
    result = check({'firewall_rules': [rule('a', 1, ['all']), rule('b', 2, ['data', 'edge'])]}, group_names=[])
    assert result['errors'] == []
    assert result['fact_hosts'] == ['data1']


def test_group_order_all_first_then_own_rules():
    result = check({'firewall_rules': [rule('own', '8000-8099', ['192.0.2.0/24'], 'udp')]}, group_names=['edge', 'app'])
    assert [r['origin'] for r in result['rules']] == [
        'firewall_group_rules.all[0] (node_exporter)', 'firewall_group_rules.edge[0] (http)',
        'firewall_group_rules.edge[1] (https)', 'firewall_group_rules.edge[2] (mtail)',
        'firewall_group_rules.edge[3] (nginx_exporter)', 'firewall_group_rules.app[0] (app_upstreams)',
        'firewall_rules[0] (own)']
    assert result['rules'][-1] == {'origin': 'firewall_rules[0] (own)', 'name': 'own', 'port': '8000-8099',
                                   'proto': 'udp', 'sources': ['192.0.2.0/24']}


# Overrides that are valid.
CHECK_ACCEPTED = [
    {'firewall_ssh_port': 65535, 'firewall_ssh_rate_burst': 1, 'firewall_confirm_seconds': 0},
    {'firewall_ssh_port': 1, 'firewall_confirm_seconds': 10},
    {'firewall_admin_networks': ['192.0.2.7']},
    {'firewall_admin_networks': ['10.0.0.1/8', '2001:db8::/32', '::1']},
    {'firewall_ssh_rate_limit': '1/second', 'firewall_icmp_rate_limit': '100/day'},
    {'firewall_ssh_rate_limit': '3/hour'},
    {'firewall_include_dir': '/etc/nftables.d/aiquiz'},
    {'firewall_container_interfaces': []},
    {'firewall_container_interfaces': ['docker0', 'br-*', 'veth.1', 'a' * 15, 'b' * 14 + '*']},
    {'firewall_group_rules': {}},
    {'firewall_group_rules': {'data': []}},
    {'firewall_rules': [rule('one.port-1', 1, ['0.0.0.0/0']), rule('top', 65535, ['::/0'], 'udp'),
                        rule('text', '443', ['empty']), rule('range', '1-65535', ['app', '192.0.2.1']),
                        {'name': 'no_proto', 'port': 22, 'sources': ['edge']}]},
]

# Overrides, group names, and the errors they give, in order.
CHECK_REFUSED = [
    ({'firewall_ssh_port': 0}, ['firewall_ssh_port: "0" is not a port number (1-65535)']),
    ({'firewall_ssh_port': 65536}, ['firewall_ssh_port: "65536" is not a port number (1-65535)']),
    ({'firewall_ssh_port': '22'}, ['firewall_ssh_port: "22" is not a port number (1-65535)']),
    ({'firewall_ssh_port': True}, ['firewall_ssh_port: "True" is not a port number (1-65535)']),
    ({'firewall_admin_networks': []},
     ['firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)']),
    ({'firewall_admin_networks': '0.0.0.0/0'},
     ['firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)']),
    ({'firewall_admin_networks': {'a': '0.0.0.0/0'}},
     ['firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)']),
    # was: a template error (no length of None).
    ({'firewall_admin_networks': None},
     ['firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)']),
    ({'firewall_admin_networks': ['192.0.2.0/24', '10.0.0.300/8', 'bastion', 22, '::/129', '']}, [
        'firewall_admin_networks[1]: "10.0.0.300/8" is not an IPv4 or IPv6 address or CIDR',
        'firewall_admin_networks[2]: "bastion" is not an IPv4 or IPv6 address or CIDR',
        'firewall_admin_networks[3]: "22" is not an IPv4 or IPv6 address or CIDR',
        'firewall_admin_networks[4]: "::/129" is not an IPv4 or IPv6 address or CIDR',
        'firewall_admin_networks[5]: "" is not an IPv4 or IPv6 address or CIDR']),
    # was: accepted (the IPv6 regex took nine groups; "$" matched before a final newline).
    ({'firewall_admin_networks': ['1:2:3:4::5:6:7:8/64', '192.0.2.0/24\n']}, [
        'firewall_admin_networks[0]: "1:2:3:4::5:6:7:8/64" is not an IPv4 or IPv6 address or CIDR',
        'firewall_admin_networks[1]: "192.0.2.0/24\n" is not an IPv4 or IPv6 address or CIDR']),
    ({'firewall_ssh_rate_limit': '10/week', 'firewall_icmp_rate_limit': '0/second'}, [
        'firewall_ssh_rate_limit: "10/week" is not a rate such as 10/minute (per second, minute, hour or day)',
        'firewall_icmp_rate_limit: "0/second" is not a rate such as 10/minute (per second, minute, hour or day)']),
    ({'firewall_ssh_rate_limit': 10}, [
        'firewall_ssh_rate_limit: "10" is not a rate such as 10/minute (per second, minute, hour or day)']),
    ({'firewall_ssh_rate_burst': 0}, ['firewall_ssh_rate_burst: "0" is not a positive integer']),
    ({'firewall_ssh_rate_burst': '5'}, ['firewall_ssh_rate_burst: "5" is not a positive integer']),
    ({'firewall_include_dir': 'etc/nftables.d'}, ['firewall_include_dir: "etc/nftables.d" is not an absolute path']),
    ({'firewall_include_dir': '/etc/nft*'}, ['firewall_include_dir: "/etc/nft*" is not an absolute path']),
    ({'firewall_include_dir': '/etc/"x"'}, ['firewall_include_dir: "/etc/"x"" is not an absolute path']),
    ({'firewall_confirm_seconds': 9}, [
        'firewall_confirm_seconds: "9" must be 0 (no rollback timer) or at least 10 seconds, longer than the'
        ' connection timeout']),
    ({'firewall_confirm_seconds': -1}, [
        'firewall_confirm_seconds: "-1" must be 0 (no rollback timer) or at least 10 seconds, longer than the'
        ' connection timeout']),
    ({'firewall_container_interfaces': 'docker0'},
     ['firewall_container_interfaces: must be a list of interface names']),
    # was: the index counted the bad names only ([0], [1]).
    ({'firewall_container_interfaces': ['docker0', 'a' * 16, 'br-*', 'a*b', 5]}, [
        'firewall_container_interfaces[1]: "%s" is not an interface name (up to 15 letters, digits, "_", ".", "-",'
        ' optionally ending in "*")' % ('a' * 16),
        'firewall_container_interfaces[3]: "a*b" is not an interface name (up to 15 letters, digits, "_", ".", "-",'
        ' optionally ending in "*")',
        'firewall_container_interfaces[4]: "5" is not an interface name (up to 15 letters, digits, "_", ".", "-",'
        ' optionally ending in "*")']),
    ({'firewall_group_rules': {'data': {'name': 'x'}, 'all': 'x'}}, [
        'firewall_group_rules.all: must be a list of rules',
        'firewall_group_rules.data: must be a list of rules']),
    ({'firewall_rules': ['ssh', 5]}, [
        'firewall_rules[0]: "ssh" is not a rule (name, port, proto, sources)',
        'firewall_rules[1]: "5" is not a rule (name, port, proto, sources)']),
    ({'firewall_rules': [rule('bad name', 80, ['app']), rule('-x', 80, ['app']), {'port': 80, 'sources': ['app']}]}, [
        'firewall_rules[0] (bad name): name "bad name" must be letters, digits, "_", "." or "-"',
        'firewall_rules[1] (-x): name "-x" must be letters, digits, "_", "." or "-"',
        'firewall_rules[2] (no name): name "None" must be letters, digits, "_", "." or "-"']),
    ({'firewall_rules': [rule('p0', 0, ['app']), rule('p1', 65536, ['app']), rule('p2', '90-80', ['app']),
                         rule('p3', '80-80', ['app']), rule('p4', '0-80', ['app']), rule('p5', 'http', ['app']),
                         rule('p6', 80.0, ['app']), rule('p7', True, ['app']), rule('p8', '70000', ['app']),
                         {'name': 'p9', 'sources': ['app']}]}, [
        'firewall_rules[0] (p0): port "0" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[1] (p1): port "65536" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[2] (p2): port "90-80" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[3] (p3): port "80-80" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[4] (p4): port "0-80" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[5] (p5): port "http" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[6] (p6): port "80.0" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[7] (p7): port "True" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[8] (p8): port "70000" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[9] (p9): port "None" is not a port (1-65535) or a range "low-high"']),
    ({'firewall_rules': [rule('icmp', 80, ['app'], 'icmp'), rule('none', 80, ['app'], None)]}, [
        'firewall_rules[0] (icmp): proto "icmp" is not tcp or udp',
        'firewall_rules[1] (none): proto "None" is not tcp or udp']),
    ({'firewall_rules': [rule('s0', 80, []), rule('s1', 80, 'app'), rule('s2', 80, {'app': 1}),
                         rule('s3', 80, 5), {'name': 's4', 'port': 80}]}, [
        'firewall_rules[0] (s0): sources must be a non-empty list of CIDRs or inventory group names',
        'firewall_rules[1] (s1): sources must be a non-empty list of CIDRs or inventory group names',
        'firewall_rules[2] (s2): sources must be a non-empty list of CIDRs or inventory group names',
        'firewall_rules[3] (s3): sources must be a non-empty list of CIDRs or inventory group names',
        'firewall_rules[4] (s4): sources must be a non-empty list of CIDRs or inventory group names']),
    ({'firewall_rules': [rule('bad_cidr', 5432, ['10.0.0.300/8']), rule('bad_group', 5433, ['no_such_group']),
                         rule('bad_port', '90-80', ['app']), rule('mixed', 80, ['app', 7, 'db.example'])]}, [
        'firewall_rules[0] (bad_cidr): source "10.0.0.300/8" is neither an IPv4/IPv6 CIDR nor an inventory group',
        'firewall_rules[1] (bad_group): source "no_such_group" is neither an IPv4/IPv6 CIDR nor an inventory group',
        'firewall_rules[2] (bad_port): port "90-80" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[3] (mixed): source "7" is neither an IPv4/IPv6 CIDR nor an inventory group',
        'firewall_rules[3] (mixed): source "db.example" is neither an IPv4/IPv6 CIDR nor an inventory group']),
    ({'firewall_rules': [{'name': 'all_wrong', 'port': '1-', 'proto': 'sctp', 'sources': []}]}, [
        'firewall_rules[0] (all_wrong): port "1-" is not a port (1-65535) or a range "low-high"',
        'firewall_rules[0] (all_wrong): proto "sctp" is not tcp or udp',
        'firewall_rules[0] (all_wrong): sources must be a non-empty list of CIDRs or inventory group names']),
    ({'firewall_group_rules': {'data': [rule('g', 80, ['nowhere'])]}}, [
        'firewall_group_rules.data[0] (g): source "nowhere" is neither an IPv4/IPv6 CIDR nor an inventory group']),
]


@pytest.mark.parametrize('overrides', CHECK_ACCEPTED)
def test_check_accepts(overrides):
    assert check(overrides)['errors'] == []


@pytest.mark.parametrize('overrides, errors', CHECK_REFUSED)
def test_check_refuses(overrides, errors):
    result = check(overrides)
    assert result['errors'] == errors


def test_a_refused_rule_is_left_out_the_others_kept():
    result = check({'firewall_group_rules': {}, 'firewall_rules': [rule('bad', 0, ['app']), rule('good', 80, ['app'])]})
    assert [r['name'] for r in result['rules']] == ['good']


def test_check_input_must_hold_every_variable():
    variables = defaults()
    del variables['firewall_admin_networks']
    with pytest.raises(AnsibleFilterError, match='variables missing from the input: firewall_admin_networks'):
        firewall_check(variables, [], GROUPS, HOSTVARS)
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        firewall_check([], [], GROUPS, HOSTVARS)


# ---------------------------------------------------------------- firewall_ruleset

def ruleset(overrides=None, group_names=('data',), hostvars=None):
    hostvars = hostvars or HOSTVARS
    variables = merged(overrides or {})
    checked = firewall_check(variables, list(group_names), GROUPS, hostvars)
    assert checked['errors'] == []
    return firewall_ruleset(checked, variables['firewall_admin_networks'], GROUPS, hostvars)


def test_sources_resolved_first_match_wins():
    result = ruleset({'firewall_group_rules': {}, 'firewall_rules': [
        rule('from_app', 5432, ['app']), rule('from_edge', 443, ['edge']), rule('from_mon', 9100, ['monitoring']),
        rule('mixed', 80, ['192.0.2.0/24', 'app', '192.0.2.11', '2001:db8::/32', 'empty'])]})
    assert result['errors'] == []
    by_name = {r['name']: (r['ipv4'], r['ipv6']) for r in result['rules']}
    # ansible_host when it is an address; firewall_host_address before ansible_host.
    assert by_name['from_app'] == (['192.0.2.11', '192.0.2.12'], ['2001:db8::12'])
    # The default-route addresses before all the host's addresses.
    assert by_name['from_edge'] == (['192.0.2.21'], [])
    # All addresses, without loopback and link-local ones.
    assert by_name['from_mon'] == (['192.0.2.31'], ['2001:db8::31'])
    # In order, each once.
    assert by_name['mixed'] == (['192.0.2.0/24', '192.0.2.11', '192.0.2.12'], ['2001:db8::12', '2001:db8::/32'])
    assert result['rules'][0] == {'origin': 'firewall_rules[0] (from_app)', 'name': 'from_app', 'port': '5432',
                                  'proto': 'tcp', 'sources': ['app'], 'ipv4': ['192.0.2.11', '192.0.2.12'],
                                  'ipv6': ['2001:db8::12']}


def test_an_empty_group_allows_nothing():
    result = ruleset({'firewall_group_rules': {}, 'firewall_rules': [rule('nobody', 80, ['empty'])]})
    assert result['errors'] == [] and result['rules'][0]['ipv4'] == [] and result['rules'][0]['ipv6'] == []


def test_firewall_host_address_as_text_and_nested():
    hostvars = dict(HOSTVARS, app1={'firewall_host_address': '192.0.2.111'},
                    app2={'firewall_host_address': [['192.0.2.112'], '2001:db8::112']})
    result = ruleset({'firewall_group_rules': {}, 'firewall_rules': [rule('r', 80, ['app'])]}, hostvars=hostvars)
    assert result['rules'][0]['ipv4'] == ['192.0.2.111', '192.0.2.112']
    assert result['rules'][0]['ipv6'] == ['2001:db8::112']


def test_unresolvable_hosts_are_named():
    hostvars = dict(HOSTVARS, app1={'firewall_host_address': ['192.0.2.300', 'app1.example']},
                    mon1={'ansible_default_ipv4': {}, 'ansible_all_ipv4_addresses': ['127.0.0.1'],
                          'ansible_all_ipv6_addresses': ['::1', 'fe80::1']},
                    data1={'ansible_host': 'data1', 'ansible_default_ipv4': {}, 'ansible_all_ipv4_addresses': []})
    result = ruleset({'firewall_group_rules': {}, 'firewall_rules': [
        rule('app', 80, ['app']), rule('mon', 81, ['monitoring']), rule('data', 82, ['data'])]}, hostvars=hostvars)
    assert result['errors'] == [
        'firewall_host_address of app1: "192.0.2.300" is not an IPv4 or IPv6 address',
        'firewall_host_address of app1: "app1.example" is not an IPv4 or IPv6 address',
        'firewall_rules[1] (mon): no address found for host mon1 of group monitoring (set firewall_host_address for it)',
        'firewall_rules[2] (data): no address found for host data1 of group data (set firewall_host_address for it)']


def test_admin_networks_split_by_version_each_once():
    result = ruleset({'firewall_admin_networks': ['192.0.2.0/24', '2001:db8::/32', '192.0.2.0/24', '::ffff:192.0.2.1',
                                                  '198.51.100.7']})
    assert result['admin_ipv4'] == ['192.0.2.0/24', '198.51.100.7']
    assert result['admin_ipv6'] == ['2001:db8::/32', '::ffff:192.0.2.1']
    assert ruleset()['admin_ipv4'] == ['0.0.0.0/0'] and ruleset()['admin_ipv6'] == ['::/0']


@pytest.mark.parametrize('networks, errors', [
    ([], ['firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)']),
    (None, ['firewall_admin_networks: must be a non-empty list of CIDRs (an empty list locks SSH out)']),
    (['192.0.2.0/24', 'bastion'], ['firewall_admin_networks[1]: "bastion" is not an IPv4 or IPv6 address or CIDR']),
])
def test_ruleset_never_drops_an_admin_network_silently(networks, errors):
    # The same guard as firewall_check, again where the SSH rules are made:
    # an admin network that fits neither list would leave SSH closed to it.
    checked = firewall_check(merged({}), ['data'], GROUPS, HOSTVARS)
    assert firewall_ruleset(checked, networks, GROUPS, HOSTVARS)['errors'] == errors


def test_ruleset_input_must_be_a_check():
    with pytest.raises(AnsibleFilterError, match='expects the answer of aiquiz.ops.firewall_check'):
        firewall_ruleset({'errors': []}, ['0.0.0.0/0'], GROUPS, HOSTVARS)


def test_filters_are_registered():
    assert FilterModule().filters() == {'firewall_check': firewall_check, 'firewall_ruleset': firewall_ruleset}
