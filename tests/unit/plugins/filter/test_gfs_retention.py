# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime
import itertools

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.gfs_retention import FilterModule, gfs_retention

UTC = datetime.timezone.utc


def daily_backups(days, start=datetime.datetime(2026, 11, 27, 3, 0, tzinfo=UTC)):
    """One backup a day at 03:00 going back `days` days, newest first."""
    out = []
    for n in range(days):
        moment = start - datetime.timedelta(days=n)
        out.append({'id': moment.strftime('b%Y%m%d'), 'ended': moment.strftime('%Y-%m-%dT%H:%M:%SZ')})
    return out


def test_registered():
    assert FilterModule().filters()['gfs_retention'] is gfs_retention


def test_empty_input_keeps_and_deletes_nothing():
    assert gfs_retention([], 1, 1, 1, 1) == {'keep': [], 'delete': [], 'reasons': {}}


def test_single_backup_is_kept_for_every_period():
    result = gfs_retention([{'id': 'a', 'ended': '2026-11-27T03:00:00Z'}], 1, 1, 1, 1)
    assert result == {'keep': ['a'], 'delete': [], 'reasons': {'a': ['daily', 'weekly', 'monthly', 'yearly']}}


def test_one_of_each_keeps_only_the_newest():
    result = gfs_retention(daily_backups(400), 1, 1, 1, 1)
    assert result['keep'] == ['b20261127']
    assert len(result['delete']) == 399


def test_exact_policy_over_a_year_of_dailies():
    # 2026-11-27 is a Friday (ISO week 48).
    result = gfs_retention(daily_backups(400), daily=7, weekly=4, monthly=3, yearly=2)
    daily = ['b202611%02d' % d for d in range(27, 20, -1)]
    # Newest of ISO weeks 48, 47, 46, 45: Sundays end weeks, week 48 is still running.
    weekly = ['b20261127', 'b20261122', 'b20261115', 'b20261108']
    monthly = ['b20261127', 'b20261031', 'b20260930']
    yearly = ['b20261127', 'b20251231']
    expected = sorted(set(daily + weekly + monthly + yearly), reverse=True)
    assert result['keep'] == expected
    assert result['reasons']['b20261127'] == ['daily', 'weekly', 'monthly', 'yearly']
    assert result['reasons']['b20261122'] == ['daily', 'weekly']
    assert result['reasons']['b20261108'] == ['weekly']
    assert result['reasons']['b20260930'] == ['monthly']
    assert result['reasons']['b20251231'] == ['yearly']
    assert set(result['keep']).isdisjoint(result['delete'])
    assert len(result['keep']) + len(result['delete']) == 400


def test_several_backups_a_day_keep_the_newest_of_the_day():
    backups = [
        {'id': 'morning', 'ended': '2026-11-27T03:00:00Z'},
        {'id': 'evening', 'ended': '2026-11-27T21:00:00Z'},
        {'id': 'yesterday', 'ended': '2026-11-26T21:00:00Z'},
    ]
    result = gfs_retention(backups, daily=2, weekly=1, monthly=1, yearly=1)
    assert result['keep'] == ['evening', 'yesterday']
    assert result['delete'] == ['morning']


def test_gaps_do_not_use_up_slots():
    backups = [{'id': 'new', 'ended': '2026-11-27T03:00:00Z'}, {'id': 'old', 'ended': '2026-06-01T03:00:00Z'}]
    result = gfs_retention(backups, daily=2, weekly=1, monthly=1, yearly=1)
    assert result['keep'] == ['new', 'old']
    assert result['reasons']['old'] == ['daily']


def test_order_of_input_does_not_matter():
    backups = daily_backups(40)
    expected = gfs_retention(backups, 3, 2, 2, 1)
    for perm in itertools.islice(itertools.permutations(backups[:6]), 50):
        assert gfs_retention(list(perm) + backups[6:], 3, 2, 2, 1) == expected
    assert gfs_retention(list(reversed(backups)), 3, 2, 2, 1) == expected


def test_ties_in_time_are_broken_by_id():
    backups = [{'id': 'a', 'ended': '2026-11-27T03:00:00Z'}, {'id': 'b', 'ended': '2026-11-27T03:00:00Z'}]
    assert gfs_retention(backups, 1, 1, 1, 1)['keep'] == ['b']
    assert gfs_retention(list(reversed(backups)), 1, 1, 1, 1)['keep'] == ['b']


def test_offsets_and_epoch_are_compared_in_utc():
    backups = [
        # 2026-11-27T00:30 in UTC+02:00 is 2026-11-26T22:30Z: the day before.
        {'id': 'tz', 'ended': '2026-11-27T00:30:00+02:00'},
        {'id': 'epoch', 'ended': 1795737600},  # 2026-11-26T00:00:00Z
        {'id': 'naive', 'ended': '2026-11-27T01:00:00'},
    ]
    result = gfs_retention(backups, daily=2, weekly=1, monthly=1, yearly=1)
    assert result['keep'] == ['naive', 'tz']
    assert result['delete'] == ['epoch']


def test_iso_week_crosses_the_year():
    backups = [{'id': 'thu', 'ended': '2026-01-01T03:00:00Z'},   # ISO 2026-W01
               {'id': 'mon', 'ended': '2025-12-29T03:00:00Z'},   # ISO 2026-W01 too
               {'id': 'sun', 'ended': '2025-12-28T03:00:00Z'}]   # ISO 2025-W52
    result = gfs_retention(backups, daily=1, weekly=2, monthly=1, yearly=1)
    assert result['keep'] == ['thu', 'sun']
    assert result['delete'] == ['mon']


def test_custom_keys():
    backups = [{'label': 'x', 'stop': '2026-11-27T03:00:00Z'}, {'label': 'y', 'stop': '2026-11-26T03:00:00Z'}]
    assert gfs_retention(backups, 1, 1, 1, 1, time_key='stop', id_key='label')['delete'] == ['y']


def test_counts_from_strings_are_accepted():
    assert gfs_retention(daily_backups(3), '2', '1', '1', '1')['keep'] == ['b20261127', 'b20261126']


@pytest.mark.parametrize('name, value', [
    ('daily', 0), ('weekly', -1), ('monthly', 1.5), ('yearly', True), ('daily', None), ('weekly', 'two'),
    ('monthly', ' 1x'),
])
def test_bad_counts_are_refused(name, value):
    args = {'daily': 1, 'weekly': 1, 'monthly': 1, 'yearly': 1}
    args[name] = value
    with pytest.raises(AnsibleFilterError, match='gfs_retention: %s must be a whole number >= 1' % name):
        gfs_retention(daily_backups(2), **args)


def test_bad_count_is_refused_even_for_empty_input():
    with pytest.raises(AnsibleFilterError, match='daily must be a whole number >= 1'):
        gfs_retention([], 0, 1, 1, 1)


@pytest.mark.parametrize('backups, message', [
    ('nope', 'must be a list'),
    ([['a']], 'backup #0 must be a dictionary'),
    ([{'ended': '2026-11-27T03:00:00Z'}], 'backup #0 has no id'),
    ([{'id': 'a'}], 'backup a has no ended time'),
    ([{'id': 'a', 'ended': 'yesterday'}], 'backup a ended: expected an ISO 8601 time'),
    ([{'id': 'a', 'ended': True}], 'expected an ISO 8601 time or epoch seconds'),
    ([{'id': 'a', 'ended': 1}, {'id': 'a', 'ended': 2}], 'backup id a appears twice'),
])
def test_bad_backups_are_refused(backups, message):
    with pytest.raises(AnsibleFilterError, match=message):
        gfs_retention(backups, 1, 1, 1, 1)
