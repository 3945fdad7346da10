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

import yaml

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


# The role's preflight before the render: it must stop the play before any file is written.
PREFLIGHT_PLAY = PLAY.replace('  tasks:\n', '  tasks:\n'
                              '    - name: Preflight\n'
                              '      ansible.builtin.include_tasks: %(root)s/roles/alertmanager/tasks/preflight.yml\n')


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
    rc, output = run_local_play(tmp_path, PREFLIGHT_PLAY % {'root': ROOT}, {
        'out': str(tmp_path / 'a.yml'), 'alertmanager_listen_address': '127.0.0.1',
        'alertmanager_routes': [{'receiver': 'pager', 'matchers': ['severity="critical"']}]})
    assert rc != 0
    assert 'alertmanager_receivers: pager' in output


SMTP = {'smarthost': 'mail.example.test:587', 'from': 'alerts@example.test', 'username': 'alerts',
        'password': 'unit-smtp-password-must-stay-hidden'}


def test_mail_receiver_renders_a_config_amtool_accepts(tmp_path):
    out = str(tmp_path / 'alertmanager.yml')
    receivers = [{'name': 'oncall', 'webhook_urls': [], 'email_to': ['oncall@example.test', 'duty@example.test']},
                 {'name': 'team', 'webhook_urls': []}, {'name': 'security', 'webhook_urls': []}]
    rc, output = run_local_play(tmp_path, PLAY % {'root': ROOT},
                                {'out': out, 'alertmanager_receivers': receivers, 'alertmanager_smtp': SMTP})
    assert rc == 0, output
    proc = subprocess.run([amtool(), 'check-config', out], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load(open(out, encoding='utf-8'))
    assert config['global'] == {'smtp_smarthost': 'mail.example.test:587', 'smtp_from': 'alerts@example.test',
                                'smtp_auth_username': 'alerts', 'smtp_auth_password': SMTP['password'],
                                'smtp_require_tls': True}
    oncall = [r for r in config['receivers'] if r['name'] == 'oncall'][0]
    assert oncall['email_configs'] == [{'to': 'oncall@example.test', 'send_resolved': True},
                                       {'to': 'duty@example.test', 'send_resolved': True}]
    assert 'email_configs' not in [r for r in config['receivers'] if r['name'] == 'team'][0]
    # The template never shows the password anywhere but its one key.
    assert SMTP['password'] not in output


@pytest.mark.parametrize('smtp, message', [
    ({}, 'alertmanager_smtp must name a smarthost and a from address, since receivers oncall have email_to'),
    ({'smarthost': 'mail.example.test', 'from': 'a@example.test'},
     'alertmanager_smtp.smarthost "mail.example.test" must be host:port'),
    ({'smarthost': '[2001:db8::25]:25', 'from': 'a@example.test', 'username': 'alerts'},
     'alertmanager_smtp.password is needed with alertmanager_smtp.username'),
])
def test_mail_receiver_without_a_working_relay_is_refused(tmp_path, smtp, message):
    rc, output = run_local_play(tmp_path, PREFLIGHT_PLAY % {'root': ROOT}, {
        'out': str(tmp_path / 'a.yml'), 'alertmanager_listen_address': '127.0.0.1', 'alertmanager_smtp': smtp,
        'alertmanager_receivers': [{'name': 'oncall', 'email_to': ['oncall@example.test']},
                                   {'name': 'team'}, {'name': 'security'}]})
    assert rc != 0
    assert message in ' '.join(output.split())
    assert not (tmp_path / 'a.yml').exists()


def test_mail_relay_with_password_and_ipv6_passes_preflight(tmp_path):
    rc, output = run_local_play(tmp_path, PREFLIGHT_PLAY % {'root': ROOT}, {
        'out': str(tmp_path / 'a.yml'), 'alertmanager_listen_address': '127.0.0.1',
        'alertmanager_smtp': dict(SMTP, smarthost='[2001:db8::25]:587'),
        'alertmanager_receivers': [{'name': 'oncall', 'email_to': ['oncall@example.test']},
                                   {'name': 'team'}, {'name': 'security'}]})
    assert rc == 0, output
    assert SMTP['password'] not in output
