# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests dns_name, ip_address and ip_network: the collection's one check of
host names, addresses and CIDRs (module_utils/_netnames.py), for roles to
check their variables before any change. Their documentation is in
dns_name.yml, ip_address.yml and ip_network.yml beside this file."""

from __future__ import annotations

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames


def dns_name(value, wildcard=False):
    """True for a host name (with wildcard, also *.name)."""
    return _netnames.is_dns_name(value, wildcard=wildcard)


def ip_address(value):
    """True for one IPv4 or IPv6 address, without a prefix."""
    return _netnames.is_ip_address(value)


def ip_network(value):
    """True for an IPv4 or IPv6 address or CIDR."""
    return _netnames.is_ip_network(value)


class TestModule:

    def tests(self):
        return {'dns_name': dns_name, 'ip_address': ip_address, 'ip_network': ip_network}
