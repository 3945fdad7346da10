# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real `ansible-playbook` run on localhost with vault-encrypted variables, a
no_log task, a failing task whose stderr prints a DSN and a template shown with
--diff: no secret in the audit trail, and the trail still says what ran."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
BIN = os.path.dirname(sys.executable)
DB_PASSWORD = 'CnryVaultFile-db-5831'  # in group_vars/all/vault.yml, a whole encrypted file
API_TOKEN = 'CnryVaultInline-api-6942'  # an inline !vault value in group_vars/all/main.yml
INCLUDED = 'CnryVaultIncluded-7053'  # in an encrypted file read by include_vars
SECRETS = (DB_PASSWORD, API_TOKEN, INCLUDED)


def ansible_env(tmp):
    env = dict(os.environ)
    env.pop('AIQUIZ_AUDIT_DIR', None)
    env.update({
        'HOME': str(tmp / 'home'),
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, 'collections'),
        'ANSIBLE_CALLBACKS_ENABLED': 'aiquiz.ops.audit',
        'ANSIBLE_LOCAL_TEMP': str(tmp / 'ansible-tmp'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
    })
    return env


@pytest.fixture(scope='module')
def vault_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('audit-vault')
    (tmp / 'home').mkdir()
    env = ansible_env(tmp)
    password_file = tmp / 'vault-password'
    password_file.write_text('audit-test-vault-password\n')
    password_file.chmod(0o600)
    group_vars = tmp / 'inventory' / 'group_vars' / 'all'
    group_vars.mkdir(parents=True)
    (tmp / 'inventory' / 'hosts').write_text('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    vault_file = group_vars / 'vault.yml'
    vault_file.write_text('vault_quiz_db_password: %s\n' % DB_PASSWORD)
    vault = [os.path.join(BIN, 'ansible-vault')]
    subprocess.run(vault + ['encrypt', '--vault-password-file', str(password_file), str(vault_file)],
                   env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    inline = subprocess.run(vault + ['encrypt_string', '--vault-password-file', str(password_file), '--name', 'quiz_api_token', API_TOKEN],
                            env=env, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    (group_vars / 'main.yml').write_text('quiz_db_password: "{{ vault_quiz_db_password }}"\n' + inline)
    extra_file = tmp / 'extra-vault.yml'
    extra_file.write_text('quiz_extra_secret: %s\n' % INCLUDED)
    subprocess.run(vault + ['encrypt', '--vault-password-file', str(password_file), str(extra_file)],
                   env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    assert DB_PASSWORD not in vault_file.read_text() and API_TOKEN not in (group_vars / 'main.yml').read_text()
    work = tmp / 'work'
    work.mkdir()
    cmd = [os.path.join(BIN, 'ansible-playbook'), '-i', str(tmp / 'inventory' / 'hosts'), '--vault-password-file', str(password_file),
           '--diff', '-e', 'workdir=%s' % work, '-e', 'extra_vault_file=%s' % extra_file, os.path.join(FIXTURES, 'secrets.yml')]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The secrets did reach the host and the screen: the run really used them.
    assert DB_PASSWORD in (work / 'quiz.env').read_text() and API_TOKEN in (work / 'quiz.env').read_text()
    assert INCLUDED in proc.stdout
    log_dir = tmp / 'home' / '.ansible' / 'aiquiz-audit'
    files = sorted(log_dir.glob('*.jsonl'))
    assert len(files) == 1, files
    text = files[0].read_text(encoding='utf-8')
    return {'proc': proc, 'dir': log_dir, 'file': files[0], 'text': text, 'events': [json.loads(line) for line in text.splitlines()]}


def by_task(events, name):
    return [e for e in events if e['event'] == 'task_result' and e['task'] == name]


def test_no_vault_value_anywhere_in_the_trail(vault_run):
    leaks = [secret for secret in SECRETS if secret in vault_run['text']]
    tasks = [e.get('task') for e in vault_run['events'] if any(s in json.dumps(e) for s in leaks)]
    assert not leaks, 'LEAKED %s in %s' % (leaks, tasks)


def test_trail_and_directory_are_private_from_creation(vault_run):
    # Created under umask 0: only the modes given at creation can explain these.
    assert stat.S_IMODE(vault_run['file'].stat().st_mode) == 0o600
    assert stat.S_IMODE(vault_run['dir'].stat().st_mode) == 0o700


def test_the_trail_still_says_what_ran(vault_run):
    events = vault_run['events']
    (render,) = by_task(events, 'Render the service environment')
    assert render['status'] == 'changed' and render['host'] == 'localhost'
    after = render['diff'][0]['after']
    assert 'QUIZ_PORT=8000' in after
    assert 'QUIZ_DATABASE_URL=postgresql://quiz:<redacted:' in after
    assert 'QUIZ_GREETING=password is <redacted:vault> today' in after
    (stored,) = by_task(events, 'Store the password, no_log')
    assert stored['censored'] is True and stored['status'] == 'changed'
    (token,) = by_task(events, 'Show the API token')
    assert token['msg'] == '<redacted:vault>'
    (migration,) = by_task(events, 'Run the migrations')
    assert migration['status'] == 'failed' and migration['ignored'] is True and migration['rc'] == 2
    (report,) = by_task(events, 'Report the failed migration')
    assert report['msg'].startswith('migrations failed: migrate: FATAL: could not connect to postgresql://quiz:<redacted:')
    assert [e['task'] for e in events if e['event'] == 'task_result' and e['task'].startswith('Check the login of')] == \
        ['Check the login of <redacted:vault>']
    (included,) = by_task(events, 'Read more secrets from an encrypted file')
    assert included['censored'] is True  # Ansible hides what include_vars read from an encrypted file
    (used,) = by_task(events, 'Use the included secret')
    assert used['msg'] == 'included <redacted:vault> here'
    items = [e for e in by_task(events, 'Set the environment items') if 'item' in e]
    assert [i['item']['name'] for i in items] == ['QUIZ_DB_PASSWORD', 'QUIZ_PORT']
    assert items[1]['item']['value'] == '8000'
