# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for blue-green and canary releases: canary_weights, colour_ports,
colour_upstreams and colour_health_urls.

Their documentation is in the .yml file of the same name beside this file.
"""

from __future__ import annotations

import math
import numbers

from ansible.errors import AnsibleFilterError

DEFAULT_BASES = {'blue': 8010, 'green': 8020}
DEFAULT_OFFSETS = {'web': 0, 'api': 1}


def _number(name, value, filter_name):
    if isinstance(value, bool):
        raise AnsibleFilterError('%s: %s must be a number, got %r' % (filter_name, name, value))
    if isinstance(value, numbers.Real):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError('%s: %s must be a number, got %r' % (filter_name, name, value))


def _integer(name, value, filter_name, minimum):
    number = _number(name, value, filter_name)
    if number != int(number) or number < minimum:
        raise AnsibleFilterError('%s: %s must be a whole number >= %d, got %r' % (filter_name, name, minimum, value))
    return int(number)


def canary_weights(percent, hosts, scale=100):
    """nginx weights {new, old} on the canary host so that percent of ALL traffic reaches the new colour.

    Every one of the hosts carries scale weight in total, so one host carries
    100/hosts percent of the traffic; the canary host gives new/scale of its
    share to the new colour.
    """
    name = 'canary_weights'
    percent = _number('percent', percent, name)
    hosts = _integer('hosts', hosts, name, 1)
    scale = _integer('scale', scale, name, 1)
    if not 0 <= percent <= 100 or math.isnan(percent):
        raise AnsibleFilterError('%s: percent must be between 0 and 100, got %r' % (name, percent))
    share = 100.0 / hosts
    exact = percent * hosts * scale / 100.0
    if exact > scale * (1 + 1e-9):
        raise AnsibleFilterError(
            '%s: %s%% of all traffic cannot go to the new colour on one host of %d: one host carries at most '
            '%s%% (100 / %d); lower the percent or put the new release on more hosts'
            % (name, _fmt(percent), hosts, _fmt(share), hosts))
    if exact == 0:
        new = 0
    elif exact >= scale * (1 - 1e-9):
        new = scale
    else:
        # Half up, then keep both colours present: neither a small share rounds
        # to 0 nor a large one to the whole host.
        if scale < 2:
            raise AnsibleFilterError(
                '%s: with scale %d one host cannot split %s%% of all traffic between two colours; use a larger scale'
                % (name, scale, _fmt(percent)))
        new = min(max(int(math.floor(exact + 0.5)), 1), scale - 1)
    return {'new': new, 'old': scale - new}


def colour_ports(colour, bases=None, offsets=None):
    """Host port of each service of a colour: base of the colour + offset of the service."""
    name = 'colour_ports'
    bases = DEFAULT_BASES if bases is None else bases
    offsets = DEFAULT_OFFSETS if offsets is None else offsets
    if not isinstance(bases, dict) or not isinstance(offsets, dict):
        raise AnsibleFilterError('%s: bases and offsets must be dictionaries' % name)
    if colour not in bases:
        raise AnsibleFilterError('%s: unknown colour %r, expected one of %s'
                                 % (name, colour, ', '.join(sorted(str(key) for key in bases))))
    base = _integer('bases.%s' % colour, bases[colour], name, 1)
    ports = {}
    for service in sorted(offsets):
        port = base + _integer('offsets.%s' % service, offsets[service], name, 0)
        if port > 65535:
            raise AnsibleFilterError('%s: port of %s on %s would be %d, above 65535' % (name, service, colour, port))
        ports[service] = port
    return ports


def _services(exposed, filter_name):
    if not isinstance(exposed, list):
        raise AnsibleFilterError('%s: the exposed services must be a list, got %r' % (filter_name, exposed))
    for service in exposed:
        if not isinstance(service, dict) or 'name' not in service:
            raise AnsibleFilterError('%s: every exposed service must be a dictionary with a name, got %r'
                                     % (filter_name, service))
    return exposed


def _port(ports, service, filter_name):
    if service['name'] not in ports:
        raise AnsibleFilterError('%s: ports has no port for service %r' % (filter_name, service['name']))
    return ports[service['name']]


def colour_upstreams(exposed, address, weights, ports, old_ports, old_colour):
    """Servers of every edge upstream fed by one app host, for a pair of weights.

    Each exposed service with an upstream gets the new colour's server and the
    old colour's, at address; a weight of 0 leaves that server out (nginx
    refuses weight=0), and so does the lack of an old colour.
    """
    name = 'colour_upstreams'
    exposed = _services(exposed, name)
    if not isinstance(weights, dict) or set(weights) != {'new', 'old'}:
        raise AnsibleFilterError('%s: weights must be a dictionary {new, old}, got %r' % (name, weights))
    if not isinstance(ports, dict) or not isinstance(old_ports, dict):
        raise AnsibleFilterError('%s: ports and old_ports must be dictionaries' % name)
    if not isinstance(old_colour, bool):
        raise AnsibleFilterError('%s: old_colour must be true or false, got %r' % (name, old_colour))
    new_weight = _integer('weights.new', weights['new'], name, 0)
    old_weight = _integer('weights.old', weights['old'], name, 0)
    upstreams = {}
    for service in exposed:
        if 'upstream' not in service:
            continue
        if service['upstream'] in upstreams:
            raise AnsibleFilterError('%s: two services feed the upstream %r; each upstream has one service'
                                     % (name, service['upstream']))
        servers = []
        if new_weight > 0:
            servers.append({'address': address, 'weight': new_weight,
                            'port': _port(ports, service, name)})
        if old_weight > 0 and old_colour:
            # No port on the old colour: 0, which nginx_backends refuses.
            servers.append({'address': address, 'weight': old_weight,
                            'port': old_ports.get(service['name'], 0)})
        upstreams[service['upstream']] = servers
    return upstreams


def colour_health_urls(exposed, ports):
    """URL the health gate probes on the app host for each exposed service of a colour."""
    name = 'colour_health_urls'
    exposed = _services(exposed, name)
    if not isinstance(ports, dict):
        raise AnsibleFilterError('%s: ports must be a dictionary' % name)
    urls = []
    for service in exposed:
        port = _port(ports, service, name)
        path = service.get('health_path')
        urls.append('http://127.0.0.1:%s%s' % (port, '/readyz' if path is None else path))
    return urls


def _fmt(value):
    return ('%.4f' % value).rstrip('0').rstrip('.')


class FilterModule:

    def filters(self):
        return {
            'canary_weights': canary_weights,
            'colour_ports': colour_ports,
            'colour_upstreams': colour_upstreams,
            'colour_health_urls': colour_health_urls,
        }
