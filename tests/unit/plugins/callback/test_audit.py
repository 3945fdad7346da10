# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the aiquiz.ops.audit callback.

Most tests run real `ansible-playbook` processes against localhost (connection
local) with the callback enabled, and read the audit trail they leave.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest

from ansible_collections.aiquiz.ops.plugins.callback import audit

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
NO_LOG_SECRET = 'S3cr3t-zebra-4711'
# Secrets the fixture shows in clear on purpose (no no_log): the audit trail must still hide them.
SHOWN_SECRETS = ('S3cr3t-diff-0001', 'S3cr3t-debug-0002', 'S3cr3t-fail-0003', 'S3cr3t-item-0004')
PLAY_ONE = 'Audit fixture: change files'
PLAY_TWO = 'Audit fixture: second phase'
WHEN_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
RECAP_RE = re.compile(r'^(?P<host>\S+)\s+: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+'
                      r'failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)',
                      re.MULTILINE)


def run_playbook(tmp, playbook, *args, log_dir=None, env=None, umask=None):
    """Run a fixture playbook with the callback; return (CompletedProcess, work directory)."""
    work = tmp / 'work'
    work.mkdir(exist_ok=True)
    full_env = dict(os.environ)
    full_env.update({
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'ANSIBLE_CALLBACKS_ENABLED': 'aiquiz.ops.audit',
        'AIQUIZ_AUDIT_DIR': str(log_dir if log_dir is not None else tmp / 'audit'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_LOCAL_TEMP': str(tmp / 'ansible-tmp'),
    })
    full_env.update(env or {})
    cmd = [PLAYBOOK_BIN, '-i', 'localhost,', '-c', 'local', '-e', 'workdir=%s' % work,
           '-e', 'ansible_python_interpreter=%s' % sys.executable, os.path.join(FIXTURES, playbook)] + list(args)

    def set_umask():
        if umask is not None:
            os.umask(umask)

    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL, preexec_fn=set_umask)
    return proc, work


def audit_files(log_dir):
    return sorted(p for p in log_dir.iterdir() if p.suffix == '.jsonl') if log_dir.is_dir() else []


def read_events(path):
    lines = path.read_text(encoding='utf-8').splitlines()
    assert lines, 'empty audit file'
    return [json.loads(line) for line in lines]


def task_results(events, task, item=False):
    return [e for e in events if e['event'] == 'task_result' and e['task'] == task and ('item' in e) == item]


@pytest.fixture(scope='module')
def diff_run(tmp_path_factory):
    """The two-play fixture, run once with --diff and umask 0."""
    tmp = tmp_path_factory.mktemp('audit-diff')
    proc, work = run_playbook(tmp, 'two_plays.yml', '--diff', umask=0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = audit_files(tmp / 'audit')
    assert len(files) == 1, files
    return {'proc': proc, 'work': work, 'dir': tmp / 'audit', 'file': files[0], 'events': read_events(files[0])}


# --------------------------------------------------------------------------
# Real runs


def test_file_is_named_for_the_run_and_private(diff_run):
    path = diff_run['file']
    assert re.match(r'^\d{8}T\d{6}Z-two_plays-\d+\.jsonl$', path.name), path.name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(diff_run['dir'].stat().st_mode) == 0o700


def test_every_line_is_one_json_object_with_sorted_keys(diff_run):
    for line in diff_run['file'].read_text(encoding='utf-8').splitlines():
        event = json.loads(line)
        assert isinstance(event, dict)
        assert list(event) == sorted(event)
        assert WHEN_RE.match(event['when']), event['when']


def test_event_order(diff_run):
    kinds = [e['event'] for e in diff_run['events']]
    assert kinds[0] == 'playbook_start'
    assert kinds[-1] == 'playbook_end'
    assert kinds.count('playbook_start') == 1 and kinds.count('playbook_end') == 1
    plays = [k for k in kinds if k in ('play_start', 'play_end')]
    assert plays == ['play_start', 'play_end', 'play_start', 'play_end']
    first_end = kinds.index('play_end')
    assert all(k == 'task_result' for k in kinds[2:first_end])
    assert [e['play'] for e in diff_run['events'] if e['event'] == 'play_start'] == [PLAY_ONE, PLAY_TWO]
    stamps = [e['when'] for e in diff_run['events']]
    assert stamps == sorted(stamps)


def test_playbook_start_records_the_run_but_no_extra_var_values(diff_run):
    start = diff_run['events'][0]
    assert start['playbook'] == os.path.join(FIXTURES, 'two_plays.yml')
    assert start['check_mode'] is False
    assert start['diff_mode'] is True
    assert start['inventory'] == ['localhost,']
    assert start['extra_var_names'] == ['ansible_python_interpreter', 'workdir']
    assert str(diff_run['work']) not in json.dumps(start)
    assert start['who']['user']
    assert start['ansible_core_version']
    assert start['collection_version'] == re.search(r'^version:\s*(\S+)', open(os.path.join(ROOT, 'galaxy.yml')).read(), re.M).group(1)


def test_changed_file_is_recorded_with_its_redacted_diff(diff_run):
    (event,) = task_results(diff_run['events'], 'Write the app config')
    assert event['status'] == 'changed' and event['changed'] is True
    assert event['host'] == 'localhost'
    assert event['action'] == 'ansible.builtin.copy'
    assert event['play'] == PLAY_ONE
    (diff,) = event['diff']
    assert diff['after_header'] == str(diff_run['work'] / 'app.conf')
    assert 'port: 8080' in diff['after']
    assert 'db_password: <redacted:named-secret>' in diff['after']


def test_no_log_task_is_censored_everywhere(diff_run):
    (event,) = task_results(diff_run['events'], 'Write the secret, no_log')
    assert event['censored'] is True
    assert event['status'] == 'changed'
    assert not {'diff', 'msg', 'item'} & set(event)
    assert (diff_run['work'] / 'secret.txt').read_text() == 'token=%s\n' % NO_LOG_SECRET
    assert NO_LOG_SECRET not in diff_run['file'].read_text(encoding='utf-8')
    assert NO_LOG_SECRET not in diff_run['proc'].stdout
    assert NO_LOG_SECRET not in diff_run['proc'].stderr


def test_secrets_in_messages_diffs_and_items_are_redacted(diff_run):
    text = diff_run['file'].read_text(encoding='utf-8')
    for secret in SHOWN_SECRETS:
        assert secret not in text
    (debug,) = task_results(diff_run['events'], 'Show a dict with a password')
    assert debug['msg'] == {'db_password': '<redacted:named-secret>', 'user': 'app'}


def test_ignored_failure_keeps_its_message(diff_run):
    (event,) = task_results(diff_run['events'], 'Fail, ignored')
    assert event['status'] == 'failed'
    assert event['ignored'] is True
    assert event['msg'] == 'deliberate failure, api_token=<redacted:named-secret> user=app'


def test_skipped_task(diff_run):
    (event,) = task_results(diff_run['events'], 'Never runs')
    assert event['status'] == 'skipped' and event['changed'] is False


def test_loop_gives_one_event_per_item_and_one_per_task(diff_run):
    items = task_results(diff_run['events'], 'Loop over two files', item=True)
    assert [i['item']['name'] for i in items] == ['one.txt', 'two.txt']
    assert all(i['item']['password'] == '<redacted:named-secret>' and i['status'] == 'changed' and i['diff'] for i in items)
    (whole,) = task_results(diff_run['events'], 'Loop over two files')
    assert whole['loop_items'] == 2 and whole['status'] == 'changed'
    assert whole['seconds'] >= sum(i['seconds'] for i in items) - 0.01


def test_handler_is_marked(diff_run):
    (event,) = task_results(diff_run['events'], 'Marker changed')
    assert event['handler'] is True and event['play'] == PLAY_TWO


def test_durations_are_not_negative(diff_run):
    for event in diff_run['events']:
        if 'seconds' in event:
            assert event['seconds'] >= 0, event
    end = diff_run['events'][-1]
    plays = [e['seconds'] for e in diff_run['events'] if e['event'] == 'play_end']
    assert sum(plays) <= end['seconds'] + 0.01


def test_stats_match_the_recap(diff_run):
    recap = {m.group('host'): {k: int(v) for k, v in m.groupdict().items() if k != 'host'}
             for m in RECAP_RE.finditer(diff_run['proc'].stdout)}
    assert recap == {'localhost': {'ok': 8, 'changed': 4, 'unreachable': 0, 'failed': 0, 'skipped': 1, 'rescued': 0, 'ignored': 1}}
    end = diff_run['events'][-1]
    assert end['stats'] == recap
    assert end['result'] == 'ok'
    # The per-play counts add up to the same changes, failures and skips.
    per_play = [e['hosts']['localhost'] for e in diff_run['events'] if e['event'] == 'play_end']
    for key in ('changed', 'skipped', 'ignored', 'unreachable', 'failed'):
        assert sum(p[key] for p in per_play) == recap['localhost'][key], key
    assert per_play[0] == {'ok': 1, 'changed': 3, 'failed': 0, 'ignored': 1, 'skipped': 1, 'unreachable': 0}


def test_phase_timings_table(diff_run):
    out = diff_run['proc'].stdout
    assert 'PHASE TIMINGS' in out
    table = out[out.index('PHASE TIMINGS'):]
    assert table.index('PHASE TIMINGS') > out.index('PLAY RECAP') - out.index('PHASE TIMINGS')
    rows = {line.split('  ')[0]: line.split() for line in table.splitlines()[2:] if line.startswith('Audit fixture')}
    assert list(rows) == [PLAY_ONE, PLAY_TWO]
    # play, seconds, hosts, changed, failed, unreachable
    assert rows[PLAY_ONE][-4:] == ['1', '3', '0', '0']
    assert rows[PLAY_TWO][-4:] == ['1', '1', '0', '0']
    assert re.search(r'^total\s+\d+\.\d$', table, re.M)
    assert 'audit trail: %s' % diff_run['file'] in table
    assert 'aiquiz.ops.audit:' not in out + diff_run['proc'].stderr


def test_check_mode_is_recorded(tmp_path):
    proc, work = run_playbook(tmp_path, 'one_play.yml', '--check')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (work / 'small.txt').exists()
    (path,) = audit_files(tmp_path / 'audit')
    events = read_events(path)
    assert events[0]['check_mode'] is True and events[0]['diff_mode'] is False
    (event,) = task_results(events, 'Write a file')
    assert event['status'] == 'changed' and 'diff' not in event


def test_unwritable_log_dir_warns_once_and_the_run_goes_on(tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a directory\n')
    proc, work = run_playbook(tmp_path, 'one_play.yml', log_dir=blocker / 'audit')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (work / 'small.txt').read_text() == 'small\n'
    output = proc.stdout + proc.stderr
    assert output.count('aiquiz.ops.audit:') == 1, output
    assert '[WARNING]: aiquiz.ops.audit: cannot write the audit trail in %s' % (blocker / 'audit') in output
    assert 'PHASE TIMINGS' in proc.stdout
    assert 'audit trail: not written' in proc.stdout


def test_summary_can_be_turned_off(tmp_path):
    proc, _work = run_playbook(tmp_path, 'one_play.yml', env={'AIQUIZ_AUDIT_SUMMARY': 'false'})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'PHASE TIMINGS' not in proc.stdout
    assert len(audit_files(tmp_path / 'audit')) == 1


# --------------------------------------------------------------------------
# Functions and robustness, without a run


def test_redact_diff_truncates_long_texts_after_redaction():
    diff = {'before': 'a' * 5000, 'after': 'short', 'after_header': '/etc/x'}
    (clean,) = audit.redact_diff(diff)
    assert len(clean['before']) == 4000 and clean['after'] == 'short' and clean['truncated'] is True
    (prepared,) = audit.redact_diff('token=abc\n' + 'b' * 5000)
    assert prepared['prepared'].startswith('token=<redacted:named-secret>') and len(prepared['prepared']) == 4000
    # The whole text is redacted before it is cut: a secret across the cut is not half shown.
    (cut,) = audit.redact_diff({'after': 'x' * 3990 + '\npassword: s3cr3t-across-the-cut'})
    assert 's3cr3t' not in cut['after']


class RecordingDisplay:
    """Stands in for ansible's Display and keeps what the callback says."""

    verbosity = 0

    def __init__(self):
        self.warnings = []
        self.lines = []

    def warning(self, msg, *args, **kwargs):
        self.warnings.append(msg)

    def display(self, msg, *args, **kwargs):
        self.lines.append(msg)

    def vvv(self, msg, *args, **kwargs):
        self.lines.append(msg)


def test_an_error_in_the_callback_is_one_warning_and_never_raised():
    display = RecordingDisplay()
    callback = audit.CallbackModule(display=display)
    callback.v2_playbook_on_play_start(None)  # no play object: the method fails inside
    callback.v2_playbook_on_play_start(None)
    callback.v2_playbook_on_stats(None)
    assert len(display.warnings) == 1
    assert display.warnings[0].startswith('aiquiz.ops.audit: v2_playbook_on_play_start failed')
