# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.aiquiz.ops.plugins.filter.canary import canary_weights, colour_ports


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


def test_filters_in_a_template():
    templar = Templar(loader=DataLoader(), variables={'app_hosts': ['app1', 'app2']})
    rendered = templar.template(trust_as_template(
        "{{ 10 | aiquiz.ops.canary_weights(app_hosts | length) }} {{ 'green' | aiquiz.ops.colour_ports }}"))
    assert rendered == "{'new': 20, 'old': 80} {'api': 8021, 'web': 8020}"
    with pytest.raises(AnsibleError, match='60% of all traffic cannot go to the new colour on one host of 2'):
        templar.template(trust_as_template('{{ 60 | aiquiz.ops.canary_weights(2) }}'))
