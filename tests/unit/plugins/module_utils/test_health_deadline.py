# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_health.run_gate's deadline arithmetic on a fake clock: each attempt and
pause costs what the test says, so the bounds are exact and a loaded machine
cannot move them (the module tests with a real server check the rest)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.aiquiz.ops.plugins.module_utils import _health


class FakeTime:
    """A clock that moves only when an attempt or a pause spends time."""

    def __init__(self, answers):
        self.now = 100.0
        self.answers = list(answers)  # (seconds the attempt takes, status or None for a timeout)
        self.limits = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def probe(self, parts, method, headers, limit, context):
        assert isinstance(parts, type(urlsplit('http://x/'))) and method == 'GET' and context is None
        self.limits.append(limit)
        seconds, status = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if status is None or seconds > limit:
            self.now += min(seconds, limit)
            return None, b'', min(seconds, limit), _health.TIMED_OUT
        self.now += seconds
        return status, b'ready', seconds, None


def params(**overrides):
    values = {'url': 'http://app.test/readyz', 'method': 'GET', 'headers': {}, 'validate_certs': True,
              'ca_path': None, 'successes': 3, 'interval': 1.0, 'deadline': 10.0, 'timeout': 2.0,
              'status_codes': [200], 'latency_budget_ms': None, 'body_contains': None}
    values.update(overrides)
    return values


def gate(fake, **overrides):
    return _health.run_gate(params(**overrides), clock=fake.clock, sleep=fake.sleep, probe=fake.probe)


def test_a_gate_that_never_passes_ends_exactly_at_the_deadline():
    fake = FakeTime([(0.5, 503)])
    result = gate(fake)
    # 0.5 s answer + 1 s pause per attempt: the 7th pause is cut to what is left.
    assert result['passed'] is False
    assert result['elapsed_s'] == 10.0
    assert result['attempts'] == 7
    assert result['last_error'] == 'status 503 not in [200]'


def test_an_attempt_never_runs_past_the_deadline():
    fake = FakeTime([(5.0, None)])
    result = gate(fake, timeout=4.0, deadline=6.0, interval=0.5)
    assert fake.limits == [4.0, 1.5]
    assert result['elapsed_s'] == 6.0
    assert result['last_error'] == 'timed out in the 1.50 s left before the deadline'


def test_a_timeout_is_a_failed_attempt_that_costs_the_timeout():
    fake = FakeTime([(3.0, None), (0.1, 200)])
    result = gate(fake, successes=1, timeout=2.0, interval=0)
    assert result['passed'] is True
    assert result['attempts'] == 2
    assert result['elapsed_s'] == 2.1
    assert result['latencies_ms'] == [100.0]


def test_the_gate_stops_at_the_streak_without_a_last_pause():
    fake = FakeTime([(0.2, 200)])
    result = gate(fake, successes=3, interval=1.0)
    assert (result['passed'], result['attempts']) == (True, 3)
    # Three answers and the two pauses between them.
    assert result['elapsed_s'] == 2.6
