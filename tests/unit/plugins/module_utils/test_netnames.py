# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one check of host names, addresses and CIDRs, and its Jinja tests.

The cases marked "regex:" were judged otherwise by the regexes that edge and
firewall carried before (_edge_ipv4_re, _edge_ipv6_re, _edge_hostname_re and
the firewall's copies); each such change is deliberate.
"""

from __future__ import annotations

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames
from ansible_collections.aiquiz.ops.plugins.test import netnames

# value, is an address or CIDR, IP version
NETWORKS = [
    ('0.0.0.0/0', True, 4),
    ('10.0.0.0/8', True, 4),
    ('10.0.0.1/8', True, 4),                    # host bits set: nft and nginx take it
    ('192.0.2.7', True, 4),
    ('255.255.255.255/32', True, 4),
    ('127.0.0.2/32', True, 4),
    ('::/0', True, 6),
    ('::1', True, 6),
    ('2001:db8::/32', True, 6),
    ('2001:db8:1::/48', True, 6),
    ('fe80::1/64', True, 6),
    ('1:2:3:4:5:6:7:8', True, 6),
    ('1:2:3:4:5:6:7:8/128', True, 6),
    ('::ffff:192.0.2.1', True, 6),              # regex: refused (embedded IPv4 form)
    ('10.0.0.300/8', False, None),
    ('256.0.0.1', False, None),
    ('01.2.3.4', False, None),
    ('1.2.3', False, None),
    ('1.2.3.4/33', False, None),
    ('1.2.3.4/', False, None),
    ('1.2.3.4/08', False, None),
    ('10.0.0.0/255.0.0.0', False, None),
    ('::/129', False, None),
    ('1::2::3', False, None),
    (':::1', False, None),
    ('1:2:3:4::5:6:7:8', False, None),          # regex: accepted (nine groups)
    ('1:2:3:4:5:6:7::8', False, None),          # regex: accepted
    ('fe80::1%eth0', False, None),
    (' 10.0.0.1', False, None),
    ('10.0.0.1\n', False, None),                # regex: accepted ("$" matches before a final newline)
    ('app', False, None),
    ('', False, None),
    (None, False, None),
    (10, False, None),
    (['10.0.0.1'], False, None),
]

# value, is a host name, is a host name with wildcard
NAMES = [
    ('localhost', True, True),
    ('edge.molecule.test', True, True),
    ('www.edge.molecule.test', True, True),
    ('quiz-1.example.com', True, True),
    ('xn--bcher-kva.example', True, True),
    ('a' * 63 + '.example', True, True),
    ('1host.example', True, True),
    ('*.example.com', False, True),
    ('*.com', False, True),
    ('*', False, False),
    ('*example.com', False, False),
    ('www.*.example.com', False, False),
    ('a' * 64 + '.example', False, False),      # regex (edge): accepted, no label limit
    ('.'.join(['a' * 63] * 4), False, False),   # 255 characters; regex (edge): accepted
    ('-edge.example', False, False),
    ('edge-.example', False, False),
    ('edge..example', False, False),
    ('edge.example.', False, False),
    ('edge_1.example', False, False),
    ('10.0.0.300', False, False),               # regex (edge): accepted as a name
    ('1.2.3', False, False),                    # regex (edge): accepted as a name
    ('edge.example\n', False, False),           # regex: accepted
    ('', False, False),
    (None, False, False),
    (8080, False, False),
]


@pytest.mark.parametrize('value, valid, version', NETWORKS)
def test_networks(value, valid, version):
    assert _netnames.is_ip_network(value) is valid
    assert netnames.ip_network(value) is valid
    assert _netnames.ip_version(value) == version


@pytest.mark.parametrize('value, valid, version', NETWORKS)
def test_addresses_have_no_prefix(value, valid, version):
    expected = valid and '/' not in value
    assert _netnames.is_ip_address(value) is expected
    assert netnames.ip_address(value) is expected


def test_network_of_an_address_is_the_address():
    assert str(_netnames.ip_network('192.0.2.7')) == '192.0.2.7/32'
    assert str(_netnames.ip_network('10.0.0.1/8')) == '10.0.0.0/8'
    assert str(_netnames.ip_network('::1')) == '::1/128'


@pytest.mark.parametrize('value, plain, wildcard', NAMES)
def test_names(value, plain, wildcard):
    assert _netnames.is_dns_name(value) is plain
    assert _netnames.is_dns_name(value, wildcard=True) is wildcard
    assert netnames.dns_name(value) is plain
    assert netnames.dns_name(value, wildcard=True) is wildcard


def test_longest_name():
    name = '.'.join(['a' * 63] * 3 + ['b' * 61])
    assert len(name) == 253 and _netnames.is_dns_name(name)


def test_jinja_tests_are_registered():
    assert netnames.TestModule().tests() == {
        'dns_name': netnames.dns_name, 'ip_address': netnames.ip_address, 'ip_network': netnames.ip_network}
