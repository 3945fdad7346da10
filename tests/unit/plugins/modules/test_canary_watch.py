# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import functools
import json
import socket

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _canary_watch
from ansible_collections.aiquiz.ops.plugins.modules import canary_watch

CANARY = '172.18.0.3:8021'


def line(addr, status, **extra):
    return json.dumps(dict(extra, upstream_addr=addr, upstream_status=status))


class Traffic:
    """A fake clock for watch(): each sleep (the watcher found nothing new) writes the next batch of
    lines to the log and moves the clock on by the poll interval."""

    def __init__(self, path, batches):
        self.path = path
        self.batches = list(batches)
        self.now = 100.0
        self.sleeps = 0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps += 1
        self.now += seconds
        if self.batches:
            with open(self.path, 'ab') as fh:
                fh.write(self.batches.pop(0))


def lines(*entries):
    return ''.join(entry + '\n' for entry in entries).encode()


# --------------------------------------------------------------------------
# attempts(): one log entry


@pytest.mark.parametrize('addr, status, expected', [
    (CANARY, '200', (1, 0)),
    (CANARY, '503', (1, 1)),
    (CANARY, '-', (1, 1)),          # no answer (timeout, refused)
    (CANARY, '', (1, 1)),
    ('172.18.0.4:8021', '502', (0, 0)),  # another host: not the canary's
    ('%s, 172.18.0.4:8021' % CANARY, '502, 200', (1, 1)),   # a retry moved on from the canary
    ('172.18.0.4:8021, %s' % CANARY, '502, 200', (1, 0)),   # the canary answered the retry
    ('%s : %s' % (CANARY, CANARY), '504 : 200', (2, 1)),    # two upstream groups
    ('%s, %s' % (CANARY, CANARY), '200', (2, 1)),           # fewer statuses than addresses: no answer
])
def test_attempts_count_the_canary_and_its_failures(addr, status, expected):
    assert _canary_watch.attempts({'upstream_addr': addr, 'upstream_status': status}, {CANARY}) == expected


def test_an_entry_without_upstream_is_no_attempt():
    assert _canary_watch.attempts({'status': 404}, {CANARY}) == (0, 0)


# --------------------------------------------------------------------------
# resolve(): the names in targets


def fake_getaddrinfo(answers):
    def getaddrinfo(host, port, proto=0):
        if host not in answers:
            raise socket.gaierror('unknown host %s' % host)
        return [(socket.AF_INET6 if ':' in addr else socket.AF_INET, socket.SOCK_STREAM, proto, '', (addr, port))
                for addr in answers[host]]
    return getaddrinfo


def test_resolve_adds_the_addresses_a_name_has():
    resolved = _canary_watch.resolve(['app1:8021', 'app1:8020'],
                                     getaddrinfo=fake_getaddrinfo({'app1': ['172.18.0.3', 'fd00::3']}))
    assert resolved == {'app1:8021', 'app1:8020', '172.18.0.3:8021', '172.18.0.3:8020', '[fd00::3]:8021',
                        '[fd00::3]:8020'}


def test_resolve_keeps_a_name_it_cannot_resolve_and_drops_what_is_no_address():
    resolved = _canary_watch.resolve(['gone:8021', 'no-port', ':8021'], getaddrinfo=fake_getaddrinfo({}))
    assert resolved == {'gone:8021'}


def test_resolve_takes_a_bracketed_ipv6_address():
    resolved = _canary_watch.resolve(['[fd00::3]:8021'], getaddrinfo=fake_getaddrinfo({'fd00::3': ['fd00::3']}))
    assert resolved == {'[fd00::3]:8021'}


# --------------------------------------------------------------------------
# validate_params()


def params(**overrides):
    base = {'path': '/var/log/nginx/edge-access.log', 'targets': [CANARY], 'seconds': 30.0, 'error_budget': 0.01,
            'min_requests': 20, 'skip_in_check_mode': False}
    base.update(overrides)
    return base


def test_valid_params_have_no_errors():
    assert not _canary_watch.validate_params(params())


@pytest.mark.parametrize('overrides, error', [
    ({'targets': []}, 'targets must name at least one'),
    ({'targets': ['app1']}, "'app1' is not address:port"),
    ({'targets': ['app1:99999']}, "'app1:99999' is not address:port"),
    ({'seconds': 0.0}, 'seconds must be > 0'),
    ({'error_budget': 1.5}, 'error_budget must be within 0..1'),
    ({'error_budget': -0.1}, 'error_budget must be within 0..1'),
    ({'min_requests': -1}, 'min_requests must be >= 0'),
])
def test_invalid_params_are_named(overrides, error):
    errors = _canary_watch.validate_params(params(**overrides))
    assert any(error in e for e in errors), errors


# --------------------------------------------------------------------------
# verdict()


def tally(requests, failed):
    counts = _canary_watch.Tally({CANARY})
    counts.requests, counts.failed = requests, failed
    return counts


def test_a_rate_at_the_budget_passes():
    result = _canary_watch.verdict(tally(100, 1), 0.01, 20, 30.04)
    assert result['passed'] and 'reason' not in result
    assert (result['error_rate'], result['seconds'], result['failed_requests']) == (0.01, 30.0, 1)


def test_a_rate_over_the_budget_fails_naming_both():
    result = _canary_watch.verdict(tally(100, 2), 0.01, 20, 30)
    assert not result['passed']
    assert result['reason'] == 'error rate 0.0200 is over the budget 0.0100'


def test_too_few_requests_is_not_enough_evidence():
    result = _canary_watch.verdict(tally(3, 0), 0.01, 20, 30)
    assert not result['passed']
    assert result['reason'] == 'only 3 requests reached the canary (minimum 20)'


def test_no_request_and_no_minimum_passes():
    result = _canary_watch.verdict(tally(0, 0), 0.0, 0, 1)
    assert result['passed'] and result['error_rate'] == 0.0


# --------------------------------------------------------------------------
# watch(): following the log


def test_watch_counts_only_lines_written_after_it_starts(tmp_path):
    log = tmp_path / 'edge-access.log'
    # Before the watch: a burst of failures that must not count.
    log.write_bytes(lines(*[line(CANARY, '502')] * 50))
    traffic = Traffic(log, [
        lines(line(CANARY, '200'), line('172.18.0.4:8021', '200'), 'not json', line(CANARY, '200')),
        lines(line(CANARY, '503'), '[1, 2]'),
        # The last line is still being written when the window ends: left out.
        lines(line(CANARY, '200')) + line(CANARY, '502').encode(),
    ])
    result = _canary_watch.watch(str(log), {CANARY}, 2.0, 0.5, 3, clock=traffic.clock, sleep=traffic.sleep)
    assert result == {'requests': 4, 'failed_requests': 1, 'error_rate': 0.25, 'budget': 0.5, 'log_lines': 7,
                      'unparsed_lines': 2, 'seconds': 2.0, 'targets': [CANARY], 'passed': True}


def test_watch_joins_a_line_written_in_two_pieces(tmp_path):
    log = tmp_path / 'edge-access.log'
    log.write_bytes(b'')
    whole = line(CANARY, '504').encode() + b'\n'
    traffic = Traffic(log, [whole[:10], whole[10:]])
    result = _canary_watch.watch(str(log), {CANARY}, 1.0, 0.0, 1, clock=traffic.clock, sleep=traffic.sleep)
    assert (result['requests'], result['failed_requests'], result['unparsed_lines']) == (1, 1, 0)
    assert result['reason'] == 'error rate 1.0000 is over the budget 0.0000'


# --------------------------------------------------------------------------
# The module


def run_module(capsys, args):
    """Run main() with args; return (exit code, parsed JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            canary_watch.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def traffic_on(monkeypatch):
    """The module's watch() driven by a Traffic clock that writes these batches."""
    def install(log, batches):
        traffic = Traffic(log, batches)
        monkeypatch.setattr(canary_watch, 'watch', functools.partial(_canary_watch.watch, clock=traffic.clock,
                                                                     sleep=traffic.sleep))
        return traffic
    return install


def test_module_passes_a_healthy_canary(tmp_path, capsys, traffic_on):
    log = tmp_path / 'edge-access.log'
    log.write_bytes(b'')
    traffic_on(log, [lines(*[line(CANARY, '200')] * 25)])
    code, result = run_module(capsys, {'path': str(log), 'targets': [CANARY], 'seconds': 1, 'error_budget': 0.01,
                                       'min_requests': 20})
    assert code == 0, result
    assert result['changed'] is False and result['passed'] is True
    assert (result['requests'], result['failed_requests']) == (25, 0)
    assert 'failed' not in result


def test_module_fails_a_canary_over_budget_with_its_counts(tmp_path, capsys, traffic_on):
    log = tmp_path / 'edge-access.log'
    log.write_bytes(b'')
    traffic_on(log, [lines(*([line(CANARY, '200')] * 18 + [line(CANARY, '500')] * 2))])
    code, result = run_module(capsys, {'path': str(log), 'targets': [CANARY], 'seconds': 1, 'error_budget': 0.05,
                                       'min_requests': 20})
    assert code == 1
    assert result['failed'] is True and result['passed'] is False
    assert (result['requests'], result['failed_requests'], result['error_rate']) == (20, 2, 0.1)
    assert result['msg'] == ('canary failed: error rate 0.1000 is over the budget 0.0500 '
                             '(2 failed of 20 requests in 1.0 s)')


def test_module_fails_a_canary_that_got_no_traffic(tmp_path, capsys, traffic_on):
    log = tmp_path / 'edge-access.log'
    log.write_bytes(b'')
    traffic_on(log, [lines(line('172.18.0.4:8021', '200'))])
    code, result = run_module(capsys, {'path': str(log), 'targets': [CANARY], 'seconds': 1, 'error_budget': 0.01})
    assert code == 1
    assert result['reason'] == 'only 0 requests reached the canary (minimum 1)'
    assert result['log_lines'] == 1


def test_module_names_a_missing_log(tmp_path, capsys):
    code, result = run_module(capsys, {'path': str(tmp_path / 'nope.log'), 'targets': [CANARY], 'seconds': 1,
                                       'error_budget': 0.01})
    assert code == 1
    assert 'nope.log does not exist' in result['msg'] and 'compose_app_edge_access_log' in result['msg']


def test_module_refuses_invalid_arguments_before_reading(tmp_path, capsys):
    code, result = run_module(capsys, {'path': str(tmp_path / 'nope.log'), 'targets': ['app1'], 'seconds': 0,
                                       'error_budget': 2})
    assert code == 1
    assert result['msg'].startswith('Invalid arguments: ')
    for error in ("'app1' is not address:port", 'seconds must be > 0', 'error_budget must be within 0..1'):
        assert error in result['msg']


def test_module_skips_in_check_mode_when_asked(tmp_path, capsys):
    code, result = run_module(capsys, {'path': str(tmp_path / 'nope.log'), 'targets': [CANARY], 'seconds': 30,
                                       'error_budget': 0.01, 'skip_in_check_mode': True, '_ansible_check_mode': True})
    assert code == 0
    assert result['skipped'] is True and result['changed'] is False
