# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""edge_route_service: the service label of a route's requests (access log and
aiquiz_edge_requests_total), and edge_variable_errors' check of it."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.edge import FilterModule, edge_route_service, edge_variable_errors

ROLE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'edge'


@pytest.mark.parametrize('route, service', [
    ({'path': '/api/', 'upstream': 'quiz_api'}, 'api'),
    ({'path': '/', 'upstream': 'quiz_web'}, 'web'),
    ({'path': '/api/v2/', 'upstream': 'quiz_api_v2'}, 'api_v2'),
    ({'path': '/', 'upstream': 'Frontend'}, 'frontend'),
    ({'path': '/', 'upstream': 'quiz_'}, 'quiz'),
    ({'path': '/admin/', 'upstream': 'quiz_web', 'service': 'admin'}, 'admin'),
    # An empty service is no service: the default applies.
    ({'path': '/', 'upstream': 'quiz_web', 'service': ''}, 'web'),
    ({'path': '/', 'upstream': 'quiz_web', 'service': None}, 'web'),
])
def test_service_of_a_route(route, service):
    assert edge_route_service(route) == service


def test_default_routes_give_the_services_the_slo_rules_read():
    """The API SLO alerts (roles/prometheus/files/rules/edge.yml) read service="api"."""
    routes = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())['edge_routes']
    assert [edge_route_service(route) for route in routes] == ['api', 'web']


@pytest.mark.parametrize('route', [None, 'quiz_api', {'path': '/'}, {'path': '/', 'upstream': ''}])
def test_route_without_upstream_or_service_fails(route):
    with pytest.raises(AnsibleFilterError, match='edge_route_service'):
        edge_route_service(route)


def _variables(routes):
    variables = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    variables['edge_server_names'] = ['edge.example.com']
    variables['edge_routes'] = routes
    return variables


def test_valid_services_accepted():
    assert edge_variable_errors(_variables([
        {'path': '/api/', 'upstream': 'quiz_api', 'service': 'api-v1'},
        {'path': '/', 'upstream': 'quiz_web'}])) == []


def test_invalid_services_refused_naming_the_route():
    assert edge_variable_errors(_variables([
        {'path': '/api/', 'upstream': 'quiz_api', 'service': 'API'},
        {'path': '/x/', 'upstream': 'quiz_api', 'service': 'a"b'},
        {'path': '/y/', 'upstream': 'quiz_api', 'service': '$host'},
        {'path': '/', 'upstream': 'quiz_web', 'service': 'a b'}])) == [
        'edge_routes[0].service: "API" must be lower-case letters, digits, "_" or "-" (set service when the'
        ' upstream name does not give one)',
        'edge_routes[1].service: "a"b" must be lower-case letters, digits, "_" or "-" (set service when the'
        ' upstream name does not give one)',
        'edge_routes[2].service: "$host" must be lower-case letters, digits, "_" or "-" (set service when the'
        ' upstream name does not give one)',
        'edge_routes[3].service: "a b" must be lower-case letters, digits, "_" or "-" (set service when the'
        ' upstream name does not give one)']


def test_filter_is_registered():
    assert FilterModule().filters()['edge_route_service'] is edge_route_service
