# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: backs the aiquiz.ops.gfs_retention
# filter and the backup role's host script (which carries a copy of this
# file). Standard library only, Python 3.8+.
#
# Grandfather-father-son retention: for each of the last N days, weeks
# (ISO weeks), months and years that hold a backup, keep the newest backup of
# that period; everything else may be deleted. Times are compared in UTC.

from __future__ import annotations

import datetime
import numbers

PERIODS = ('daily', 'weekly', 'monthly', 'yearly')


class RetentionError(ValueError):
    """Bad input to the retention policy."""


def parse_time(value, what):
    """A timezone-aware UTC datetime from ISO 8601 text (Z or offset; naive means UTC) or epoch seconds."""
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, bool):
        raise RetentionError('%s: expected an ISO 8601 time or epoch seconds, got %r' % (what, value))
    elif isinstance(value, numbers.Real):
        moment = datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(('Z', 'z')):
            text = text[:-1] + '+00:00'
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise RetentionError('%s: expected an ISO 8601 time such as 2026-11-27T03:00:00Z, got %r'
                                 % (what, value))
    else:
        raise RetentionError('%s: expected an ISO 8601 time or epoch seconds, got %r' % (what, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def check_count(name, value):
    if isinstance(value, bool):
        raise RetentionError('%s must be a whole number >= 1, got %r' % (name, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RetentionError('%s must be a whole number >= 1, got %r' % (name, value))
    if isinstance(value, float) and value != number:
        raise RetentionError('%s must be a whole number >= 1, got %r' % (name, value))
    if isinstance(value, str) and value.strip() != str(number):
        raise RetentionError('%s must be a whole number >= 1, got %r' % (name, value))
    if number < 1:
        raise RetentionError('%s must be a whole number >= 1, got %r' % (name, value))
    return number


def period_key(period, moment):
    if period == 'daily':
        return moment.strftime('%Y-%m-%d')
    if period == 'weekly':
        year, week = moment.isocalendar()[:2]
        return '%04d-W%02d' % (year, week)
    if period == 'monthly':
        return moment.strftime('%Y-%m')
    return moment.strftime('%Y')


def plan(backups, daily, weekly, monthly, yearly, time_key='ended', id_key='id'):
    """Split backups into those the policy keeps and those it deletes.

    Returns {'keep': [ids newest first], 'delete': [ids newest first],
    'reasons': {id: [periods that keep it]}}. Ties in time are broken by id
    (the greater id counts as newer), so the result never depends on the
    order of the input.
    """
    counts = {
        'daily': check_count('daily', daily),
        'weekly': check_count('weekly', weekly),
        'monthly': check_count('monthly', monthly),
        'yearly': check_count('yearly', yearly),
    }
    if not isinstance(backups, (list, tuple)):
        raise RetentionError('the input must be a list of backups, got %s' % type(backups).__name__)
    items = []
    seen = set()
    for index, backup in enumerate(backups):
        if not isinstance(backup, dict):
            raise RetentionError('backup #%d must be a dictionary with %s and %s, got %r'
                                 % (index, id_key, time_key, backup))
        if id_key not in backup or backup[id_key] in (None, ''):
            raise RetentionError('backup #%d has no %s' % (index, id_key))
        ident = str(backup[id_key])
        if ident in seen:
            raise RetentionError('backup id %s appears twice' % ident)
        seen.add(ident)
        if backup.get(time_key) in (None, ''):
            raise RetentionError('backup %s has no %s time' % (ident, time_key))
        items.append((parse_time(backup[time_key], 'backup %s %s' % (ident, time_key)), ident))
    items.sort(reverse=True)
    reasons = {}
    for period in PERIODS:
        taken = set()
        for moment, ident in items:
            key = period_key(period, moment)
            if key in taken:
                continue
            if len(taken) >= counts[period]:
                break
            taken.add(key)
            reasons.setdefault(ident, []).append(period)
    keep = [ident for unused, ident in items if ident in reasons]
    delete = [ident for unused, ident in items if ident not in reasons]
    return {'keep': keep, 'delete': delete, 'reasons': reasons}
