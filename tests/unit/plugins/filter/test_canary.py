# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.aiquiz.ops.plugins.filter.canary import (
    canary_weights, colour_health_urls, colour_ports, colour_upstreams)


@pytest.mark.parametrize('percent, hosts, scale, expected', [
    (0, 2, 100, {'new': 0, 'old': 100}),
    (10, 2, 100, {'new': 20, 'old': 80}),
    (25, 2, 100, {'new': 50, 'old': 50}),
    (50, 2, 100, {'new': 100, 'old': 0}),
    (5, 4, 100, {'new': 20, 'old': 80}),
    (25, 4, 100, {'new': 100, 'old': 0}),
    (100, 1, 100, {'new': 100, 'old': 0}),
    (10, 1, 100, {'new': 10, 'old': 90}),
    (1, 3, 10, {'new': 1, 'old': 9}),           # 0.3 rounds up to 1: a share above 0 is never left out
    (33, 3, 10, {'new': 9, 'old': 1}),           # 9.9 stays below the whole host: both colours keep traffic
    (33.3333333334, 3, 100, {'new': 100, 'old': 0}),
    (12.5, 2, 10, {'new': 3, 'old': 7}),         # 2.5 rounds half up
    ('10', '2', '100', {'new': 20, 'old': 80}),  # values from extra vars arrive as strings
    (10.0, 2.0, 100.0, {'new': 20, 'old': 80}),
])
def test_canary_weights(percent, hosts, scale, expected):
    assert canary_weights(percent, hosts, scale) == expected


def test_default_scale():
    assert canary_weights(10, 2) == {'new': 20, 'old': 80}


@pytest.mark.parametrize('args, message', [
    ((60, 2), 'canary_weights: 60% of all traffic cannot go to the new colour on one host of 2: one host carries at '
              'most 50% (100 / 2); lower the percent or put the new release on more hosts'),
    ((34, 3), 'canary_weights: 34% of all traffic cannot go to the new colour on one host of 3: one host carries at '
              'most 33.3333% (100 / 3)'),
    ((-1, 2), 'canary_weights: percent must be between 0 and 100, got -1'),
    ((101, 1), 'canary_weights: percent must be between 0 and 100, got 101'),
    ((float('nan'), 1), 'canary_weights: percent must be between 0 and 100'),
    (('ten', 2), "canary_weights: percent must be a number, got 'ten'"),
    ((True, 2), 'canary_weights: percent must be a number, got True'),
    ((10, 0), 'canary_weights: hosts must be a whole number >= 1, got 0'),
    ((10, 1.5), 'canary_weights: hosts must be a whole number >= 1, got 1.5'),
    ((10, 2, 0), 'canary_weights: scale must be a whole number >= 1, got 0'),
    ((10, 2, 1), 'canary_weights: with scale 1 one host cannot split 10% of all traffic between two colours'),
])
def test_canary_weights_errors(args, message):
    with pytest.raises(AnsibleFilterError) as error:
        canary_weights(*args)
    assert str(error.value).startswith(message)


def test_weights_always_add_up_and_stay_in_range():
    for hosts in range(1, 6):
        for tenth in range(0, int(1000 / hosts) + 1):
            percent = tenth / 10.0
            weights = canary_weights(percent, hosts, 100)
            assert weights['new'] + weights['old'] == 100
            assert (weights['new'] == 0) == (percent == 0)
            assert weights['new'] <= 100


def test_colour_ports():
    assert colour_ports('blue') == {'web': 8010, 'api': 8011}
    assert colour_ports('green') == {'web': 8020, 'api': 8021}
    assert colour_ports('blue', {'blue': 9000, 'green': 9100}, {'web': 0, 'api': 1, 'admin': 2}) == {
        'admin': 9002, 'api': 9001, 'web': 9000}


@pytest.mark.parametrize('args, message', [
    (('red',), "colour_ports: unknown colour 'red', expected one of blue, green"),
    (('blue', {'blue': 65535}), 'colour_ports: port of api on blue would be 65536, above 65535'),
    (('blue', None, {'web': -1}), 'colour_ports: offsets.web must be a whole number >= 0, got -1'),
    (('blue', ['blue']), 'colour_ports: bases and offsets must be dictionaries'),
])
def test_colour_ports_errors(args, message):
    with pytest.raises(AnsibleFilterError) as error:
        colour_ports(*args)
    assert str(error.value) == message


WEB = {'name': 'web', 'port': 3000, 'upstream': 'quiz_web'}
API = {'name': 'api', 'port': 8000, 'offset': 1, 'upstream': 'quiz_api', 'health_path': '/healthz'}
WORKER = {'name': 'worker', 'port': 9000, 'offset': 2}   # exposed, feeds no upstream
GREEN = {'web': 8020, 'api': 8021, 'worker': 8022}
BLUE = {'web': 8010, 'api': 8011, 'worker': 8012}


def servers(*pairs):
    return [{'address': '10.0.0.5', 'weight': weight, 'port': port} for port, weight in pairs]


@pytest.mark.parametrize('exposed, weights, old_colour, expected', [
    ([WEB], {'new': 20, 'old': 80}, True, {'quiz_web': servers((8020, 20), (8010, 80))}),
    ([WEB, API, WORKER], {'new': 100, 'old': 0}, True,
     {'quiz_web': servers((8020, 100)), 'quiz_api': servers((8021, 100))}),
    ([WEB, API], {'new': 0, 'old': 100}, True,
     {'quiz_web': servers((8010, 100)), 'quiz_api': servers((8011, 100))}),
    ([WEB], {'new': 90, 'old': 10}, False, {'quiz_web': servers((8020, 90))}),
    # Nothing left: the upstream gets no server from this host.
    ([WEB], {'new': 0, 'old': 100}, False, {'quiz_web': []}),
    ([WEB], {'new': 0, 'old': 0}, True, {'quiz_web': []}),
    ([WORKER], {'new': 100, 'old': 0}, True, {}),
    ([], {'new': 100, 'old': 0}, True, {}),
    # Values from extra vars and "{{ }}" in task vars arrive as strings.
    ([WEB], {'new': '90', 'old': '10'}, True, {'quiz_web': servers((8020, 90), (8010, 10))}),
    ([WEB], {'new': 90.0, 'old': 10.0}, True, {'quiz_web': servers((8020, 90), (8010, 10))}),
])
def test_colour_upstreams(exposed, weights, old_colour, expected):
    assert colour_upstreams(exposed, '10.0.0.5', weights, GREEN, BLUE, old_colour) == expected


def test_colour_upstreams_keeps_the_order_of_the_services():
    upstreams = colour_upstreams([API, WORKER, WEB], '10.0.0.5', {'new': 1, 'old': 0}, GREEN, {}, False)
    assert list(upstreams) == ['quiz_api', 'quiz_web']


def test_colour_upstreams_old_port_missing_is_zero():
    # nginx_backends refuses port 0 and names the upstream: no silent default.
    assert colour_upstreams([WEB, API], '10.0.0.5', {'new': 0, 'old': 5}, GREEN, {'web': 8010}, True) == {
        'quiz_web': servers((8010, 5)), 'quiz_api': servers((0, 5))}


def test_colour_upstreams_no_new_port_needed_at_weight_zero():
    assert colour_upstreams([WEB], '10.0.0.5', {'new': 0, 'old': 5}, {}, BLUE, True) == {
        'quiz_web': servers((8010, 5))}


@pytest.mark.parametrize('args, message', [
    (([WEB, dict(API, upstream='quiz_web')], {'new': 1, 'old': 0}, GREEN, BLUE, True),
     "colour_upstreams: two services feed the upstream 'quiz_web'; each upstream has one service"),
    (([WEB], {'new': 1, 'old': 0}, {'api': 8021}, BLUE, True), "colour_upstreams: ports has no port for service 'web'"),
    (([WEB], {'new': -1, 'old': 0}, GREEN, BLUE, True), 'colour_upstreams: weights.new must be a whole number >= 0, got -1'),
    (([WEB], {'new': 1, 'old': 'x'}, GREEN, BLUE, True), "colour_upstreams: weights.old must be a number, got 'x'"),
    (([WEB], {'new': 1.5, 'old': 0}, GREEN, BLUE, True), 'colour_upstreams: weights.new must be a whole number >= 0, got 1.5'),
    (([WEB], {'new': 1}, GREEN, BLUE, True), "colour_upstreams: weights must be a dictionary {new, old}, got {'new': 1}"),
    (([WEB], {'new': 1, 'old': 0}, GREEN, BLUE, 'blue'), "colour_upstreams: old_colour must be true or false, got 'blue'"),
    (([WEB], {'new': 1, 'old': 0}, GREEN, None, True), 'colour_upstreams: ports and old_ports must be dictionaries'),
    ((WEB, {'new': 1, 'old': 0}, GREEN, BLUE, True), 'colour_upstreams: the exposed services must be a list'),
    (([{'upstream': 'quiz_web'}], {'new': 1, 'old': 0}, GREEN, BLUE, True),
     "colour_upstreams: every exposed service must be a dictionary with a name, got {'upstream': 'quiz_web'}"),
    (([WEB, 'worker'], {'new': 1, 'old': 0}, GREEN, BLUE, True),
     "colour_upstreams: every exposed service must be a dictionary with a name, got 'worker'"),
])
def test_colour_upstreams_errors(args, message):
    exposed, weights, ports, old_ports, old_colour = args
    with pytest.raises(AnsibleFilterError) as error:
        colour_upstreams(exposed, '10.0.0.5', weights, ports, old_ports, old_colour)
    assert str(error.value).startswith(message)


def test_colour_health_urls():
    assert colour_health_urls([WEB, API, WORKER], GREEN) == [
        'http://127.0.0.1:8020/readyz', 'http://127.0.0.1:8021/healthz', 'http://127.0.0.1:8022/readyz']
    assert colour_health_urls([], GREEN) == []


@pytest.mark.parametrize('args, message', [
    (([WEB, API], {'web': 8020}), "colour_health_urls: ports has no port for service 'api'"),
    (([WEB], None), 'colour_health_urls: ports must be a dictionary'),
    ((None, GREEN), 'colour_health_urls: the exposed services must be a list, got None'),
    ((['web'], GREEN), "colour_health_urls: every exposed service must be a dictionary with a name, got 'web'"),
])
def test_colour_health_urls_errors(args, message):
    with pytest.raises(AnsibleFilterError) as error:
        colour_health_urls(*args)
    assert str(error.value) == message


def test_filters_in_a_template():
    templar = Templar(loader=DataLoader(), variables={'app_hosts': ['app1', 'app2']})
    rendered = templar.template(trust_as_template(
        "{{ 10 | aiquiz.ops.canary_weights(app_hosts | length) }} {{ 'green' | aiquiz.ops.colour_ports }}"))
    assert rendered == "{'new': 20, 'old': 80} {'api': 8021, 'web': 8020}"
    with pytest.raises(AnsibleError, match='60% of all traffic cannot go to the new colour on one host of 2'):
        templar.template(trust_as_template('{{ 60 | aiquiz.ops.canary_weights(2) }}'))


def test_switch_filters_in_a_template():
    templar = Templar(loader=DataLoader(), variables={
        'exposed': [WEB, WORKER], 'backend': '10.0.0.5', 'weights': {'new': trust_as_template('{{ 90 }}'), 'old': '10'},
        'old_project': 'quiz_1-0-0_blue'})
    rendered = templar.template(trust_as_template(
        "{{ exposed | aiquiz.ops.colour_upstreams(backend, weights, 'green' | aiquiz.ops.colour_ports, "
        "'blue' | aiquiz.ops.colour_ports, old_project | length > 0) }}"))
    assert rendered == {'quiz_web': servers((8020, 90), (8010, 10))}
    assert templar.template(trust_as_template("{{ exposed | aiquiz.ops.colour_health_urls({'web': 8020, 'worker': 8022}) }}")) == [
        'http://127.0.0.1:8020/readyz', 'http://127.0.0.1:8022/readyz']
