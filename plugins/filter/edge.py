# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters edge_variable_errors (what the edge role's argument specs cannot
express, every error at once, each naming the variable) and edge_route_service
(the service label a route's requests carry in the JSON access log).

Their documentation is in the .yml file of the same name beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames

UPSTREAM_NAME_RE = re.compile(r'[A-Za-z][A-Za-z0-9_]*')
RATE_RE = re.compile(r'[1-9][0-9]*r/[sm]')
# One nginx value (a time, a size, a path): no spaces, quotes, ; { } $ # or \.
WORD_RE = re.compile(r'[^\s;{}"\'$#\\]+')
PATH_RE = re.compile(r'/[^\s;{}"\'$#\\]*')
CURVE_RE = re.compile(r'[A-Za-z0-9_-]+')
# A service label: what mtail's program and Prometheus' rules match on.
SERVICE_RE = re.compile(r'[a-z0-9][a-z0-9_-]*')
HEADER_FORBIDDEN_RE = re.compile(r'["\\\n$]')
# A year: the least max-age the HSTS preload list takes.
PRELOAD_MAX_AGE = 31536000

WORDS = ('edge_proxy_connect_timeout', 'edge_proxy_send_timeout', 'edge_proxy_read_timeout',
         'edge_proxy_next_upstream_timeout', 'edge_client_max_body_size', 'edge_rate_limit_zone_size',
         'edge_tls_session_cache_size', 'edge_tls_session_timeout', 'edge_tls_ciphers', 'edge_upstream_zone_size',
         'edge_tls_certificate', 'edge_tls_certificate_key', 'edge_access_log', 'edge_acme_webroot',
         'edge_upstream_dir', 'edge_tls_bootstrap_dir')
PATHS = ('edge_access_log', 'edge_acme_webroot', 'edge_upstream_dir', 'edge_tls_bootstrap_dir')
HEADERS = ('edge_content_security_policy', 'edge_referrer_policy')
STATUS_LISTEN_RE = re.compile(r'(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>[0-9]{1,5})')
ADDRESS_LISTS = ('edge_rate_limit_exempt', 'edge_trusted_proxies')
REQUIRED = (('edge_server_names', 'edge_tls_certificate', 'edge_tls_certificate_key', 'edge_upstreams',
             'edge_upstream_zone_size', 'edge_routes', 'edge_rate_limit', 'edge_rate_limit_burst', 'edge_tls_curves',
             'edge_status_listen',
             'edge_proxy_next_upstream_tries', 'edge_hsts_max_age', 'edge_hsts_include_subdomains',
             'edge_hsts_preload', 'edge_tls_bootstrap_valid_days') + ADDRESS_LISTS + HEADERS + WORDS)


def _matches(pattern, value):
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _int(value):
    """An int of what the argument spec took as an int (extra vars arrive as text)."""
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def edge_route_service(route):
    """The service a route's requests are logged (and counted) under: its own service, else
    the name of its upstream without the workload's prefix (quiz_api -> api); an upstream
    name without "_" is the service itself."""
    if not isinstance(route, Mapping):
        raise AnsibleFilterError('edge_route_service: expects a route of edge_routes, got %r' % (route,))
    service = route.get('service')
    if service not in (None, ''):
        return str(service)
    upstream = route.get('upstream')
    if not isinstance(upstream, str) or not upstream:
        raise AnsibleFilterError('edge_route_service: the route has no upstream: %r' % (route,))
    prefix, _sep, rest = upstream.partition('_')
    return (rest or prefix).lower()


def _status_listen_error(value):
    """Why edge_status_listen cannot be used, or None: it must be empty or a loopback
    address and port, so that nginx's counters never leave the host."""
    if value in (None, ''):
        return None
    match = STATUS_LISTEN_RE.fullmatch(value) if isinstance(value, str) else None
    address = _netnames.ip_address(match.group('v6') or match.group('v4')) if match else None
    if address is None or not 0 < int(match.group('port')) < 65536:
        return 'edge_status_listen: "%s" must be a loopback address and port (127.0.0.1:8079, [::1]:8079) or ""' % (value,)
    if not address.is_loopback:
        return ('edge_status_listen: "%s" is not a loopback address; nginx\'s counters stay on the host (the nginx'
                ' exporter beside it serves them to the monitoring hosts)' % (value,))
    return None


def _at_least(errors, variables, name, minimum, what):
    number = _int(variables[name])
    if number is None or number < minimum:
        errors.append('%s: %s must be %s' % (name, variables[name], what))


def edge_variable_errors(variables):
    """The list of errors of the edge variables (empty when they are valid)."""
    if not isinstance(variables, Mapping):
        raise AnsibleFilterError('edge_variable_errors: expects a dict of the edge variables, got %r' % (variables,))
    missing = [name for name in REQUIRED if name not in variables]
    if missing:
        raise AnsibleFilterError('edge_variable_errors: variables missing from the input: %s' % ', '.join(missing))
    v = variables
    errors = []
    if len(v['edge_server_names']) == 0:
        errors.append('edge_server_names: must name at least one host')
    for index, name in enumerate(v['edge_server_names']):
        if not (_netnames.is_dns_name(name, wildcard=True) or _netnames.is_ip_address(name)):
            errors.append('edge_server_names[%d]: "%s" is not a host name or an IP address' % (index, name))
    if (len(v['edge_tls_certificate']) == 0) != (len(v['edge_tls_certificate_key']) == 0):
        errors.append('edge_tls_certificate and edge_tls_certificate_key: set both (the tls role does)'
                      ' or neither (bootstrap certificate)')

    names = []
    for index, upstream in enumerate(v['edge_upstreams']):
        name = upstream.get('name')
        if not _matches(UPSTREAM_NAME_RE, name):
            errors.append('edge_upstreams[%d].name: "%s" must be a letter then letters, digits or "_"' % (index, name))
        elif name in names:
            errors.append('edge_upstreams[%d].name: "%s" is declared twice' % (index, name))
        names.append(name)
        keepalive = upstream.get('keepalive', 32)
        if _int(keepalive) is None or _int(keepalive) < 0:
            errors.append('edge_upstreams[%d].keepalive: %s must be 0 (off) or more' % (index, keepalive))
        zone_size = upstream.get('zone_size', v['edge_upstream_zone_size'])
        if not _matches(WORD_RE, zone_size):
            errors.append('edge_upstreams[%d].zone_size: "%s" is not a size' % (index, zone_size))

    if len(v['edge_routes']) == 0:
        errors.append('edge_routes: must hold at least one route')
    paths = []
    for index, route in enumerate(v['edge_routes']):
        path = route.get('path')
        if not _matches(PATH_RE, path):
            errors.append('edge_routes[%d].path: "%s" must start with "/" and hold no spaces, quotes, ";", "{", "}"'
                          ' or "$"' % (index, path))
        elif path in paths:
            errors.append('edge_routes[%d].path: "%s" is routed twice' % (index, path))
        paths.append(path)
        if route.get('upstream') not in names:
            errors.append('edge_routes[%d].upstream: "%s" is not in edge_upstreams (%s)'
                          % (index, route.get('upstream'), ', '.join(str(name) for name in names)))
        elif not _matches(SERVICE_RE, edge_route_service(route)):
            errors.append('edge_routes[%d].service: "%s" must be lower-case letters, digits, "_" or "-" (set service'
                          ' when the upstream name does not give one)' % (index, edge_route_service(route)))

    if not _matches(RATE_RE, v['edge_rate_limit']):
        errors.append('edge_rate_limit: "%s" is not an nginx rate such as 20r/s or 600r/m' % (v['edge_rate_limit'],))
    _at_least(errors, v, 'edge_rate_limit_burst', 0, '0 or more')
    for var in ADDRESS_LISTS:
        for index, cidr in enumerate(v[var]):
            if not _netnames.is_ip_network(cidr):
                errors.append('%s[%d]: "%s" is not an IPv4 or IPv6 address or CIDR' % (var, index, cidr))
    if len(v['edge_tls_curves']) == 0:
        errors.append('edge_tls_curves: must name at least one group')
    for index, curve in enumerate(v['edge_tls_curves']):
        if not _matches(CURVE_RE, curve):
            errors.append('edge_tls_curves[%d]: "%s" is not an OpenSSL group name (letters, digits, "_", "-")'
                          % (index, curve))
    _at_least(errors, v, 'edge_proxy_next_upstream_tries', 1, '1 or more')
    _at_least(errors, v, 'edge_hsts_max_age', 0, '0 or more')
    max_age = _int(v['edge_hsts_max_age'])
    if v['edge_hsts_preload'] and not (v['edge_hsts_include_subdomains'] and max_age is not None
                                       and max_age >= PRELOAD_MAX_AGE):
        errors.append('edge_hsts_preload: the preload list needs edge_hsts_include_subdomains: true and'
                      ' edge_hsts_max_age of %d (a year) or more, not %s and %s'
                      % (PRELOAD_MAX_AGE, v['edge_hsts_include_subdomains'], v['edge_hsts_max_age']))
    _at_least(errors, v, 'edge_tls_bootstrap_valid_days', 1, '1 or more')
    for var in HEADERS:
        if HEADER_FORBIDDEN_RE.search(str(v[var])):
            errors.append('%s: must not hold double quotes, backslashes, "$" or newlines' % var)
    for var in WORDS:
        value = str(v[var])
        if value and not WORD_RE.fullmatch(value):
            errors.append('%s: "%s" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")' % (var, value))
    for var in PATHS:
        if not str(v[var]).startswith('/'):
            errors.append('%s: "%s" is not an absolute path' % (var, v[var]))
    status_error = _status_listen_error(v['edge_status_listen'])
    if status_error:
        errors.append(status_error)
    return errors


class FilterModule:

    def filters(self):
        return {'edge_variable_errors': edge_variable_errors, 'edge_route_service': edge_route_service}
