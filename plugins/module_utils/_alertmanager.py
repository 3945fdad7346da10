# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Silences of Alertmanager's API v2: matchers written as in routes and
amtool (label="value", =~, !=, !~), durations, and which existing silences
are "the same" (same author, comment and matchers)."""

from __future__ import annotations

import datetime
import re

MATCHER_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
DURATION_RE = re.compile(r'(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?')
# Silences Alertmanager still applies or will apply.
LIVE_STATES = ('active', 'pending')


class MatcherError(ValueError):
    pass


def parse_matcher(text):
    """One matcher of the API from label="value", label=~"regex", label!="value" or label!~"regex"."""
    match = MATCHER_RE.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise MatcherError('"%s" is not a matcher such as instance="app1", alertname!="HostDown" or job=~"node|nginx"'
                           % (text,))
    name, operator, value = match.groups()
    value = re.sub(r'\\(.)', r'\1', value)
    regex = operator in ('=~', '!~')
    if regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise MatcherError('"%s": the regex does not compile (%s)' % (text, exc))
    return {'name': name, 'value': value, 'isRegex': regex, 'isEqual': operator in ('=', '=~')}


def parse_matchers(texts):
    """The API's matchers of a list of matcher strings; at least one must be an equality
    that cannot match an empty label, as Alertmanager demands."""
    if not texts:
        raise MatcherError('at least one matcher is needed')
    matchers = [parse_matcher(text) for text in texts]
    if not any(m['isEqual'] and not (m['isRegex'] and re.fullmatch(m['value'], '')) and m['value'] != ''
               for m in matchers):
        raise MatcherError('at least one matcher must select alerts by a non-empty value (= or =~), such as'
                           ' instance="app1": a silence of only negative matchers would mute every other alert')
    return matchers


def matcher_key(matchers):
    """A comparable form of a list of API matchers (order and absent isEqual do not matter)."""
    return sorted((m['name'], m['value'], bool(m.get('isRegex')), bool(m.get('isEqual', True))) for m in matchers)


def duration_seconds(text):
    """Seconds of a duration such as 30m, 1h30m or 90s; ValueError when it is not one or is 0."""
    match = DURATION_RE.fullmatch(str(text).strip()) if text not in (None, '') else None
    if not match or not any(match.groups()):
        raise ValueError('"%s" is not a duration such as 30m, 2h or 1h30m' % (text,))
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError('"%s" is not a duration longer than 0' % (text,))
    return total


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def same_silences(silences, created_by, comment, matchers=None):
    """The live silences (active or pending) of this author and comment, and of these matchers when given."""
    key = matcher_key(matchers) if matchers is not None else None
    return [s for s in silences
            if s.get('status', {}).get('state') in LIVE_STATES and s.get('createdBy') == created_by
            and s.get('comment') == comment and (key is None or matcher_key(s.get('matchers', [])) == key)]
