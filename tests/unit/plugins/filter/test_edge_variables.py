# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""edge_variable_errors: every message of the edge role's variable check,
and the inputs it accepts. Cases marked "was:" were judged otherwise by the
Jinja program of roles/edge/tasks/validate.yml that the filter replaces."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.edge import FilterModule, edge_variable_errors

ROLE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'edge'


def defaults():
    """The role's defaults, with the server name the inventory gives."""
    variables = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    variables['edge_server_names'] = ['edge.example.com']
    return variables


# Overrides of the defaults that are valid.
ACCEPTED = [
    {},
    {'edge_server_names': ['edge.example.com', '*.example.com', 'localhost', '192.0.2.10', '2001:db8::1']},
    {'edge_tls_certificate': '/etc/aiquiz/tls/edge/fullchain.pem',
     'edge_tls_certificate_key': '/etc/aiquiz/tls/edge/privkey.pem'},
    {'edge_upstreams': [{'name': 'quiz_web', 'keepalive': 0, 'zone_size': '128k'}, {'name': 'Api2'}],
     'edge_routes': [{'path': '/', 'upstream': 'quiz_web'}, {'path': '/api/v2/', 'upstream': 'Api2'}]},
    {'edge_rate_limit': '600r/m', 'edge_rate_limit_burst': 0},
    {'edge_rate_limit_exempt': ['127.0.0.2/32', '2001:db8::/32', '10.0.0.1'],
     'edge_trusted_proxies': ['127.0.0.3/32', '2001:db8:1::/48']},
    {'edge_tls_curves': ['X25519MLKEM768', 'X25519', 'prime256v1', 'secp384r1', 'ffdhe-2048']},
    {'edge_proxy_next_upstream_tries': 1, 'edge_hsts_max_age': 0, 'edge_tls_bootstrap_valid_days': 1},
    {'edge_hsts_preload': True, 'edge_hsts_include_subdomains': True, 'edge_hsts_max_age': 31536000},
    {'edge_hsts_include_subdomains': False},
    {'edge_content_security_policy': "default-src 'none'", 'edge_referrer_policy': 'no-referrer'},
    {'edge_proxy_read_timeout': '5m', 'edge_client_max_body_size': '0', 'edge_access_log': '/var/log/nginx/x.log'},
    # Extra vars arrive as text; the argument spec has checked that they are numbers.
    # was: a template error (text compared with 0).
    {'edge_rate_limit_burst': '5', 'edge_proxy_next_upstream_tries': '2', 'edge_hsts_max_age': '63072000'},
    {'edge_status_listen': ''}, {'edge_status_listen': '127.0.0.2:9000'}, {'edge_status_listen': '[::1]:8079'},
]

# Overrides of the defaults, and the errors they give, in order.
REFUSED = [
    ({'edge_server_names': []}, ['edge_server_names: must name at least one host']),
    ({'edge_server_names': ['edge.example.com', 'bad name', 5, 'edge_1.example', '*.*.example', '-a.example']}, [
        'edge_server_names[1]: "bad name" is not a host name or an IP address',
        'edge_server_names[2]: "5" is not a host name or an IP address',
        'edge_server_names[3]: "edge_1.example" is not a host name or an IP address',
        'edge_server_names[4]: "*.*.example" is not a host name or an IP address',
        'edge_server_names[5]: "-a.example" is not a host name or an IP address']),
    # was: accepted (the address regexes took a prefix; "10.0.0.300" passed as a name).
    ({'edge_server_names': ['192.0.2.0/24', '10.0.0.300', 'a' * 64 + '.example']}, [
        'edge_server_names[0]: "192.0.2.0/24" is not a host name or an IP address',
        'edge_server_names[1]: "10.0.0.300" is not a host name or an IP address',
        'edge_server_names[2]: "%s.example" is not a host name or an IP address' % ('a' * 64)]),
    ({'edge_tls_certificate': '/etc/aiquiz/tls/edge/fullchain.pem'}, [
        'edge_tls_certificate and edge_tls_certificate_key: set both (the tls role does) or neither (bootstrap certificate)']),
    ({'edge_tls_certificate_key': '/etc/aiquiz/tls/edge/privkey.pem'}, [
        'edge_tls_certificate and edge_tls_certificate_key: set both (the tls role does) or neither (bootstrap certificate)']),
    ({'edge_upstreams': [{'name': 'quiz_web'}, {'name': '1web'}, {'name': 'quiz_web'}, {'name': 'a-b'}],
      'edge_routes': [{'path': '/', 'upstream': 'quiz_web'}]}, [
        'edge_upstreams[1].name: "1web" must be a letter then letters, digits or "_"',
        'edge_upstreams[2].name: "quiz_web" is declared twice',
        'edge_upstreams[3].name: "a-b" must be a letter then letters, digits or "_"']),
    ({'edge_upstreams': [{'name': 'quiz_web', 'keepalive': -1, 'zone_size': '64 k'}, {'name': 'quiz_api'}]}, [
        'edge_upstreams[0].keepalive: -1 must be 0 (off) or more',
        'edge_upstreams[0].zone_size: "64 k" is not a size']),
    ({'edge_routes': []}, ['edge_routes: must hold at least one route']),
    ({'edge_routes': [{'path': 'api/', 'upstream': 'quiz_api'}, {'path': '/a b', 'upstream': 'quiz_api'},
                      {'path': '/$x', 'upstream': 'quiz_api'}, {'path': '/', 'upstream': 'quiz_web'},
                      {'path': '/', 'upstream': 'nowhere'}]}, [
        'edge_routes[0].path: "api/" must start with "/" and hold no spaces, quotes, ";", "{", "}" or "$"',
        'edge_routes[1].path: "/a b" must start with "/" and hold no spaces, quotes, ";", "{", "}" or "$"',
        'edge_routes[2].path: "/$x" must start with "/" and hold no spaces, quotes, ";", "{", "}" or "$"',
        'edge_routes[4].path: "/" is routed twice',
        'edge_routes[4].upstream: "nowhere" is not in edge_upstreams (quiz_web, quiz_api)']),
    ({'edge_rate_limit': '20r/h'}, ['edge_rate_limit: "20r/h" is not an nginx rate such as 20r/s or 600r/m']),
    ({'edge_rate_limit': '0r/s'}, ['edge_rate_limit: "0r/s" is not an nginx rate such as 20r/s or 600r/m']),
    ({'edge_rate_limit_burst': -1}, ['edge_rate_limit_burst: -1 must be 0 or more']),
    ({'edge_rate_limit_exempt': ['127.0.0.2/32', '10.0.0.300/8', 'lb.example'],
      'edge_trusted_proxies': ['2001:db8::/129']}, [
        'edge_rate_limit_exempt[1]: "10.0.0.300/8" is not an IPv4 or IPv6 address or CIDR',
        'edge_rate_limit_exempt[2]: "lb.example" is not an IPv4 or IPv6 address or CIDR',
        'edge_trusted_proxies[0]: "2001:db8::/129" is not an IPv4 or IPv6 address or CIDR']),
    ({'edge_tls_curves': []}, ['edge_tls_curves: must name at least one group']),
    ({'edge_tls_curves': ['X25519', 'P 256', 'x:y']}, [
        'edge_tls_curves[1]: "P 256" is not an OpenSSL group name (letters, digits, "_", "-")',
        'edge_tls_curves[2]: "x:y" is not an OpenSSL group name (letters, digits, "_", "-")']),
    ({'edge_proxy_next_upstream_tries': 0}, ['edge_proxy_next_upstream_tries: 0 must be 1 or more']),
    ({'edge_hsts_max_age': -1}, ['edge_hsts_max_age: -1 must be 0 or more']),
    ({'edge_hsts_preload': True, 'edge_hsts_include_subdomains': False}, [
        'edge_hsts_preload: the preload list needs edge_hsts_include_subdomains: true and edge_hsts_max_age of'
        ' 31536000 (a year) or more, not False and 63072000']),
    ({'edge_hsts_preload': True, 'edge_hsts_max_age': 31535999}, [
        'edge_hsts_preload: the preload list needs edge_hsts_include_subdomains: true and edge_hsts_max_age of'
        ' 31536000 (a year) or more, not True and 31535999']),
    ({'edge_tls_bootstrap_valid_days': 0}, ['edge_tls_bootstrap_valid_days: 0 must be 1 or more']),
    ({'edge_content_security_policy': 'default-src "self"', 'edge_referrer_policy': 'no-referrer\nX-Evil: 1'}, [
        'edge_content_security_policy: must not hold double quotes, backslashes, "$" or newlines',
        'edge_referrer_policy: must not hold double quotes, backslashes, "$" or newlines']),
    ({'edge_content_security_policy': 'a\\b', 'edge_referrer_policy': '$x'}, [
        'edge_content_security_policy: must not hold double quotes, backslashes, "$" or newlines',
        'edge_referrer_policy: must not hold double quotes, backslashes, "$" or newlines']),
    ({'edge_proxy_connect_timeout': '5 s', 'edge_client_max_body_size': '10m;', 'edge_tls_ciphers': 'A{B}',
      'edge_tls_session_timeout': '1d#'}, [
        'edge_proxy_connect_timeout: "5 s" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")',
        'edge_client_max_body_size: "10m;" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")',
        'edge_tls_session_timeout: "1d#" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")',
        'edge_tls_ciphers: "A{B}" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")']),
    # was: a template error (the message named the upstream's own zone_size, undefined).
    ({'edge_upstream_zone_size': '64 k'}, [
        'edge_upstreams[0].zone_size: "64 k" is not a size',
        'edge_upstreams[1].zone_size: "64 k" is not a size',
        'edge_upstream_zone_size: "64 k" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")']),
    ({'edge_tls_certificate': '/etc/tls/a b.pem', 'edge_tls_certificate_key': '/etc/tls/k"ey.pem'}, [
        'edge_tls_certificate: "/etc/tls/a b.pem" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")',
        'edge_tls_certificate_key: "/etc/tls/k"ey.pem" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")']),
    ({'edge_access_log': 'edge.log', 'edge_acme_webroot': 'www', 'edge_upstream_dir': 'up',
      'edge_tls_bootstrap_dir': 'boot'}, [
        'edge_access_log: "edge.log" is not an absolute path',
        'edge_acme_webroot: "www" is not an absolute path',
        'edge_upstream_dir: "up" is not an absolute path',
        'edge_tls_bootstrap_dir: "boot" is not an absolute path']),
    ({'edge_access_log': 'a log'}, [
        'edge_access_log: "a log" must be one nginx value (no spaces, quotes, ";", "{", "}", "$" or "#")',
        'edge_access_log: "a log" is not an absolute path']),
    # nginx's counters stay on the host.
    ({'edge_status_listen': '0.0.0.0:8079'}, [
        'edge_status_listen: "0.0.0.0:8079" is not a loopback address; nginx\'s counters stay on the host (the nginx'
        ' exporter beside it serves them to the monitoring hosts)']),
    ({'edge_status_listen': '[2001:db8::1]:8079'}, [
        'edge_status_listen: "[2001:db8::1]:8079" is not a loopback address; nginx\'s counters stay on the host (the'
        ' nginx exporter beside it serves them to the monitoring hosts)']),
    ({'edge_status_listen': '8079'}, [
        'edge_status_listen: "8079" must be a loopback address and port (127.0.0.1:8079, [::1]:8079) or ""']),
    ({'edge_status_listen': '127.0.0.1:70000'}, [
        'edge_status_listen: "127.0.0.1:70000" must be a loopback address and port (127.0.0.1:8079, [::1]:8079) or ""']),
    ({'edge_status_listen': 'localhost:8079; include /etc/shadow'}, [
        'edge_status_listen: "localhost:8079; include /etc/shadow" must be a loopback address and port'
        ' (127.0.0.1:8079, [::1]:8079) or ""']),
    # was: accepted ("$" of the regexes matched before a final newline).
    ({'edge_routes': [{'path': '/api/\n', 'upstream': 'quiz_api'}]}, [
        'edge_routes[0].path: "/api/\n" must start with "/" and hold no spaces, quotes, ";", "{", "}" or "$"']),
]


def merged(overrides):
    variables = defaults()
    variables.update(copy.deepcopy(overrides))
    return variables


@pytest.mark.parametrize('overrides', ACCEPTED)
def test_accepted(overrides):
    assert edge_variable_errors(merged(overrides)) == []


@pytest.mark.parametrize('overrides, errors', REFUSED)
def test_refused(overrides, errors):
    assert edge_variable_errors(merged(overrides)) == errors


def test_every_error_at_once():
    overrides = {'edge_server_names': ['bad name'], 'edge_rate_limit': '20r/h', 'edge_hsts_max_age': -1,
                 'edge_access_log': 'edge.log'}
    assert edge_variable_errors(merged(overrides)) == [
        'edge_server_names[0]: "bad name" is not a host name or an IP address',
        'edge_rate_limit: "20r/h" is not an nginx rate such as 20r/s or 600r/m',
        'edge_hsts_max_age: -1 must be 0 or more',
        'edge_access_log: "edge.log" is not an absolute path']


def test_input_must_hold_every_variable():
    variables = defaults()
    del variables['edge_routes']
    with pytest.raises(AnsibleFilterError, match='variables missing from the input: edge_routes'):
        edge_variable_errors(variables)
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        edge_variable_errors(['edge_routes'])


def test_filter_is_registered():
    assert FilterModule().filters()['edge_variable_errors'] is edge_variable_errors
