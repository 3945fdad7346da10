# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host names, IP addresses and CIDRs: the one syntax check of the collection.

Private to the collection (the leading underscore). Addresses are parsed by
the standard library's ipaddress (netaddr, which ansible.utils.ipaddr needs,
is not a dependency); the text is taken only in the forms nginx and nft
read: decimal prefix lengths, no netmasks, no IPv6 zone ids, no spaces.
"""

from __future__ import annotations

import ipaddress
import re

# One DNS label (RFC 1123): letters, digits and "-", not at either end, 1 to 63.
_LABEL_RE = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?')
# A prefix length as nft and nginx write it: decimal, no leading zero.
_PREFIX_RE = re.compile(r'0|[1-9][0-9]{0,2}')
_ADDRESS_CHARS_RE = re.compile(r'[0-9A-Fa-f.:]+')


def ip_address(value):
    """The ipaddress object of an IPv4 or IPv6 address without a prefix, else None."""
    if not isinstance(value, str) or not _ADDRESS_CHARS_RE.fullmatch(value):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def ip_network(value):
    """The ipaddress network of an address or a CIDR (host bits may be set), else None.

    A single address is its own /32 or /128.
    """
    if not isinstance(value, str):
        return None
    address, slash, prefix = value.partition('/')
    parsed = ip_address(address)
    if parsed is None:
        return None
    if not slash:
        return ipaddress.ip_network(parsed)
    if not _PREFIX_RE.fullmatch(prefix) or int(prefix) > parsed.max_prefixlen:
        return None
    return ipaddress.ip_network('%s/%s' % (address, prefix), strict=False)


def ip_version(value):
    """4 or 6 for an address or a CIDR, None for anything else."""
    network = ip_network(value)
    return network.version if network is not None else None


def is_ip_address(value):
    return ip_address(value) is not None


def is_ip_network(value):
    return ip_network(value) is not None


def is_dns_name(value, wildcard=False):
    """True for a host name: dot-separated labels of letters, digits and "-"
    (not at either end, 1 to 63 each), 253 characters at most, the last label
    not all digits (so that 10.0.0.300 is a bad address, not a name). With
    wildcard, the first label may be "*" (*.example.com; nginx server_name and
    certificate subject alternative names)."""
    if not isinstance(value, str) or not value or len(value) > 253:
        return False
    labels = value.split('.')
    if wildcard and labels[0] == '*' and len(labels) > 1:
        labels = labels[1:]
    if labels[-1].isdigit():
        return False
    return all(_LABEL_RE.fullmatch(label) for label in labels)
