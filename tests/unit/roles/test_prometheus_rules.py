# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The alert rules of roles/prometheus/files/rules/: valid for promtool, each alert
unit tested (`promtool test rules`) once where it fires and once where it does not,
each with its labels and a runbook page under docs/admin/runbooks/.

promtool comes from Debian's prometheus package (tests/lab/setup.sh installs it);
without it these tests fail rather than skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
RULES_DIR = os.path.join(ROOT, 'roles', 'prometheus', 'files', 'rules')
TESTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'prometheus_rules')
RULE_FILES = sorted(glob.glob(os.path.join(RULES_DIR, '*.yml')))
TEST_FILES = sorted(glob.glob(os.path.join(TESTS_DIR, '*.test.yml')))
SEVERITIES = ('critical', 'warning', 'info')


def promtool():
    path = shutil.which('promtool')
    assert path, 'promtool is missing: apt-get install prometheus (tests/lab/setup.sh installs it)'
    return path


def load(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def alerts():
    """(file, rule) of every alerting rule."""
    return [(os.path.basename(path), rule) for path in RULE_FILES
            for group in load(path)['groups'] for rule in group['rules'] if 'alert' in rule]


def alert_cases():
    """{alertname: {'fires': [test names], 'quiet': [test names]}} from every test file."""
    cases = {}
    for path in TEST_FILES:
        for test in load(path)['tests']:
            for case in test.get('alert_rule_test') or []:
                kind = 'fires' if case.get('exp_alerts') else 'quiet'
                cases.setdefault(case['alertname'], {'fires': [], 'quiet': []})[kind].append(test['name'])
    return cases


def test_there_are_rules_and_tests():
    assert RULE_FILES and TEST_FILES


@pytest.mark.parametrize('path', RULE_FILES, ids=os.path.basename)
def test_promtool_check_rules(path):
    proc = subprocess.run([promtool(), 'check', 'rules', path], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('path', TEST_FILES, ids=os.path.basename)
def test_promtool_test_rules(path):
    proc = subprocess.run([promtool(), 'test', 'rules', os.path.basename(path)], cwd=TESTS_DIR,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_file_has_a_test_file():
    tested = set()
    for path in TEST_FILES:
        tested.update(os.path.normpath(os.path.join(TESTS_DIR, name)) for name in load(path)['rule_files'])
    assert set(RULE_FILES) <= tested


@pytest.mark.parametrize('name', sorted(rule['alert'] for _file, rule in alerts()))
def test_every_alert_is_tested_firing_and_quiet(name):
    cases = alert_cases().get(name, {'fires': [], 'quiet': []})
    assert cases['fires'], '%s has no test case where it fires' % name
    assert cases['quiet'], '%s has no test case where it stays quiet' % name


@pytest.mark.parametrize('where, rule', alerts(), ids=lambda value: value['alert'] if isinstance(value, dict) else value)
def test_every_alert_has_labels_and_a_runbook(where, rule):
    assert rule['labels']['severity'] in SEVERITIES, where
    assert rule['labels'].get('service'), where
    assert rule['annotations'].get('summary') and rule['annotations'].get('description'), where
    runbook = rule['annotations'].get('runbook', '')
    assert runbook.startswith('docs/admin/runbooks/') and runbook.endswith('.md'), where
    page = os.path.join(ROOT, runbook)
    assert os.path.isfile(page), '%s: runbook page %s is missing' % (rule['alert'], runbook)
    with open(page, encoding='utf-8') as handle:
        assert rule['alert'] in handle.read(), '%s is not named in %s' % (rule['alert'], runbook)


def test_alert_names_are_unique():
    names = [rule['alert'] for _file, rule in alerts()]
    assert len(names) == len(set(names))
