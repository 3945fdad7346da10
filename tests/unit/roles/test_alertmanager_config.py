# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The alertmanager role's configuration, rendered by Ansible from the role's template and
defaults, is valid for `amtool check-config` and routes every severity and service where
the README says (`amtool config routes test`).

amtool comes from Debian's prometheus-alertmanager (tests/lab/setup.sh installs it); without
it these tests fail rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import ROOT, run_local_play

PLAY = """
- name: Render the alertmanager role's configuration with its defaults
  hosts: localhost
  gather_facts: false
  vars_files:
    - %(root)s/roles/alertmanager/defaults/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: %(root)s/roles/alertmanager/templates/alertmanager.yml.j2
        dest: "{{ out }}"
        mode: "0600"
"""


def amtool():
    path = shutil.which('amtool')
    assert path, 'amtool is missing: apt-get install prometheus-alertmanager (tests/lab/setup.sh installs it)'
    return path


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    """The rendered configuration, with a webhook URL for each default receiver (loopback, never called)."""
    tmp = tmp_path_factory.mktemp('alertmanager')
    out = str(tmp / 'alertmanager.yml')
    receivers = [{'name': name, 'webhook_urls': ['http://127.0.0.1:9/%s' % name]}
                 for name in ('oncall', 'team', 'security')]
    rc, output = run_local_play(tmp, PLAY % {'root': ROOT}, {'out': out, 'alertmanager_receivers': receivers})
    assert rc == 0, output
    return out


def test_config_passes_amtool_check_config(config):
    proc = subprocess.run([amtool(), 'check-config', config], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ' - 2 inhibit rules' in proc.stdout and ' - 3 receivers' in proc.stdout


@pytest.mark.parametrize('labels, receiver', [
    (['severity=critical', 'service=api', 'alertname=ApiErrorBudgetFastBurn'], 'oncall'),
    (['severity=critical', 'service=host', 'alertname=HostDown', 'instance=app2'], 'oncall'),
    (['severity=warning', 'service=host', 'alertname=MemoryPressure'], 'team'),
    (['severity=info', 'service=backup'], 'team'),
    (['severity=critical', 'service=security'], 'security'),
    (['severity=warning', 'service=security'], 'security'),
    (['alertname=NoSeverity'], 'team'),
], ids=lambda value: ','.join(value) if isinstance(value, list) else value)
def test_routes(config, labels, receiver):
    proc = subprocess.run([amtool(), 'config', 'routes', 'test', '--config.file=' + config,
                           '--verify.receivers=' + receiver] + labels, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receiver


def test_every_route_receiver_is_defined(tmp_path):
    """The role stops before any change when a route names a receiver that does not exist."""
    play = PLAY.replace('  tasks:\n', '  tasks:\n'
                        '    - name: Preflight\n'
                        '      ansible.builtin.include_tasks: %s/roles/alertmanager/tasks/preflight.yml\n' % ROOT)
    rc, output = run_local_play(tmp_path, play % {'root': ROOT}, {
        'out': str(tmp_path / 'a.yml'), 'alertmanager_listen_address': '127.0.0.1',
        'alertmanager_routes': [{'receiver': 'pager', 'matchers': ['severity="critical"']}]})
    assert rc != 0
    assert 'alertmanager_receivers: pager' in output
