# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attack on the audit trail: secrets of every shape an operator's run can
produce, each with a canary value, pushed through the callback as task
arguments, results, messages, diffs (before/after and prepared), item labels,
task names, stdout/stderr and exceptions. No canary may reach the trail."""

from __future__ import annotations

import base64
import types

import pytest

from ansible._internal._datatag._tags import VaultedValue
from ansible.parsing.vault import EncryptedString, VaultLib, VaultSecret, VaultSecretsContext

from audit_driver import events_of, where

PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC{0}A\nBKcwggSjAgEAAoIBAQC7{0}B\n0XbOxPqK{0}C=='


def pem(label, canary):
    return '-----BEGIN %s-----\n%s\n-----END %s-----' % (label, PEM_BODY.format(canary), label)


# shape id -> (canaries, text the secret travels in)
TEXT_SHAPES = {
    # credentials in URLs
    'url-postgresql': (['CnryPgUrl4821'], 'connecting to postgresql://quiz:CnryPgUrl4821@db1.internal:5432/quiz?sslmode=verify-full'),
    'url-amqp': (['CnryAmqp5532'], 'broker amqp://quiz:CnryAmqp5532@mq1:5672/%2Fquiz refused'),
    'url-redis-no-user': (['CnryRedis6613'], 'REDIS_URL=redis://:CnryRedis6613@cache1:6379/0'),
    'url-https-user-password': (['CnryHttps7734'], 'GET https://deploy:CnryHttps7734@registry.example.com/v2/ -> 401'),
    'url-token-as-user': (['CnryGhTok8845x'], 'git clone https://CnryGhTok8845x@github.com/org/repo.git'),
    'url-unencoded-password': (['Cnry/Sl+ash@9956'], 'DATABASE_URL=postgresql://quiz:Cnry/Sl+ash@9956@db1/quiz'),
    'url-in-json-text': (['CnryJsonUrl1067'], '{"DATABASE_URL": "postgres://app:CnryJsonUrl1067@db/quiz"}'),
    'url-sqlalchemy-driver': (['CnrySqla2178'], "engine = create_engine('postgresql+psycopg://app:CnrySqla2178@db/quiz')"),
    # {key: name, value: secret} items written out as text
    'item-yaml-env': (['CnryYamlEnv6512'], 'env:\n  - name: QUIZ_SECRET_KEY\n    value: CnryYamlEnv6512\n  - name: PORT\n    value: "8000"\n'),
    'item-json-env': (['CnryJsonEnv7623'], '[{"name": "DB_PASSWORD", "value": "CnryJsonEnv7623"}, {"name": "PORT", "value": "8000"}]'),
    'item-value-first': (['CnryValFirst8734'], '- value: CnryValFirst8734\n  name: DB_PASSWORD\n- value: "8000"\n  name: PORT\n'),
    'item-python-repr': (['CnryRepr8735'], "[{'key': 'api_token', 'value': 'CnryRepr8735'}]"),
    # YAML block scalars and nested values under a secret key
    'yaml-literal-block': (['CnryBlockA9845', 'CnryBlockB0956'], 'db_password: |\n  CnryBlockA9845\n  CnryBlockB0956\nport: 5432\n'),
    'yaml-folded-block': (['CnryFoldA1067', 'CnryFoldB2178'], 'app:\n  api_token: >-\n    CnryFoldA1067\n    CnryFoldB2178\n  next: 1\n'),
    'yaml-nested-under-secret': (['CnryNested3289'], 'credentials:\n  - CnryNested3289\nport: 1\n'),
    # PEM bodies
    'pem-pkcs8': (['CnryPkcs8'], pem('PRIVATE KEY', 'CnryPkcs8')),
    'pem-rsa': (['CnryRsaKey'], pem('RSA PRIVATE KEY', 'CnryRsaKey')),
    'pem-ec': (['CnryEcKey'], pem('EC PRIVATE KEY', 'CnryEcKey')),
    'pem-openssh': (['CnryOpenssh'], pem('OPENSSH PRIVATE KEY', 'CnryOpenssh')),
    'pem-encrypted': (['CnryEncPem'], pem('ENCRYPTED PRIVATE KEY', 'CnryEncPem')),
    'pem-pgp': (['CnryPgpKey'], pem('PGP PRIVATE KEY BLOCK', 'CnryPgpKey')),
    'pem-json-escaped': (['CnryPemEsc'], '{"key": "%s"}' % pem('PRIVATE KEY', 'CnryPemEsc').replace('\n', '\\n')),
    'pem-cut-short': (['CnryPemCut'], pem('PRIVATE KEY', 'CnryPemCut').split('-----END')[0]),
    'pem-in-yaml-block': (['CnryPemYaml'], 'tls_files:\n  - content: |\n'
                          + ''.join('      %s\n' % line for line in pem('EC PRIVATE KEY', 'CnryPemYaml').splitlines())),
    # values with spaces
    'space-yaml-value': (['CnrySpace6512'], 'db_password: correct horse CnrySpace6512 staple\nport: 5432'),
    'space-ini-value': (['CnryIni7623'], '[db]\npassword = two words CnryIni7623\nhost = db1'),
    'space-bearer-header': (['CnryBearer8734abc'], 'Authorization: Bearer CnryBearer8734abc'),
    'space-basic-header': (['Q25yeUJhc2ljOTg0NQ'], 'curl -H "Authorization: Basic Q25yeUJhc2ljOTg0NQ==" https://api'),
    'space-shell-quoted': (['CnryShellQ9845'], "PGPASSWORD='a b CnryShellQ9845' psql -h db1 -U quiz"),
    'space-json-value': (['CnryJsonSp0956'], '{"secret_key": "two CnryJsonSp0956 words", "user": "app"}'),
    'space-cli-quoted': (['CnryCliSp1067'], "mysqladmin --password 'two CnryCliSp1067 words' status"),
    # key names outside the old list, and other spellings
    'name-token': (['CnryTok2178'], 'token: CnryTok2178'),
    'name-apikey': (['CnryApikey3289'], 'https://api.example.com/v1?apikey=CnryApikey3289&page=2'),
    'name-secret-key': (['CnrySecKey4390'], 'secret_key: CnrySecKey4390'),
    'name-credentials': (['CnryCreds5401'], 'credentials: CnryCreds5401'),
    'name-auth': (['CnryAuth6512'], '"auth": "CnryAuth6512"'),
    'name-passphrase': (['CnryPhrase7623'], 'passphrase=CnryPhrase7623'),
    'name-dsn-keywords': (['CnryDsnKw8734'], 'dsn: host=db1 user=quiz password=CnryDsnKw8734 dbname=quiz'),
    'name-dsn-opaque': (['CnryDsnOpaque9845'], 'SENTRY_DSN=CnryDsnOpaque9845'),
    'name-camel-case': (['CnryCamel0956'], '{"dbPassword": "CnryCamel0956"}'),
    'name-pwd': (['CnryPwd4390'], 'MYSQL_PWD=CnryPwd4390 mysql -u root'),
    'name-pgpassword': (['CnryPgPw5501'], 'PGPASSWORD=CnryPgPw5501 pg_dump quiz'),
    'name-aws-secret': (['CnryAws3289'], 'export AWS_SECRET_ACCESS_KEY=CnryAws3289'),
    'name-cli-equals': (['CnryCliEq1067'], 'migrate --db-password=CnryCliEq1067 --verbose'),
    'name-cli-space': (['CnryCliTok2178'], 'gh auth login --token CnryCliTok2178 --hostname github.com'),
    'name-client-secret': (['CnryClient6613'], "{'client_secret': 'CnryClient6613', 'client_id': 'quiz'}"),
    'name-x-api-key': (['CnryXApi7734'], 'X-Api-Key: CnryXApi7734'),
    'name-escaped-json': (['CnryEsc6512'], '{\\"password\\": \\"CnryEsc6512\\"}'),
    'jwt': (['eyJzdWIiOiJDbnJ5Snd0In0', 'CnryJwtSig5401'], 'cookie value eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDbnJ5Snd0In0.CnryJwtSig5401xyz'),
}

NAMES = ('token', 'apikey', 'api_key', 'secret_key', 'credentials', 'auth', 'passphrase', 'dsn', 'client_secret',
         'x-api-key', 'MYSQL_PWD', 'PGPASSWORD', 'ansible_become_pass', 'dbPassword', 'authorization', 'private_key',
         'session_cookie', 'jwt', 'connection_string')

# shape id -> (canaries, structured value)
DATA_SHAPES = {
    'item-key-value': (['CnryKeyVal3289'], [{'key': 'DB_PASSWORD', 'value': 'CnryKeyVal3289'}, {'key': 'PORT', 'value': '8000'}]),
    'item-name-value': (['CnryNameVal4390'], [{'name': 'API_TOKEN', 'value': 'CnryNameVal4390'}]),
    'item-aws-tag': (['CnryAwsTag5401'], {'Tags': [{'Key': 'ClientSecret', 'Value': 'CnryAwsTag5401'}]}),
    'pem-under-harmless-key': (['CnryPemDict'], {'dest': '/etc/ssl/private/edge.pem', 'content': pem('EC PRIVATE KEY', 'CnryPemDict')}),
    'url-under-harmless-key': (['CnryUrlDict'], {'env': {'DATABASE_URL': 'postgresql://quiz:CnryUrlDict@db1/quiz'}}),
    'docker-auths': (['Q25yeURvY2tlckF1dGg'], {'auths': {'registry.example.com': {'auth': 'Q25yeURvY2tlckF1dGg='}}}),
}
for _index, _name in enumerate(NAMES):
    DATA_SHAPES['name-dict-%s' % _name] = (['CnryName%02dX' % _index], {'user': 'app', _name: 'CnryName%02dX two words' % _index})


def prepared_diff(text):
    lines = text.splitlines() or ['']
    return '--- before\n+++ after\n@@ -1,%d +1,%d @@\n%s\n%s\n' % (
        len(lines), len(lines), '\n'.join('-' + line for line in lines), '\n'.join('+' + line for line in lines))


def push_text(run, text):
    """The text through every channel of a result the callback sees."""
    one_line = '\n' not in text
    name = ('Run %s' % text) if one_line else 'Render the config'
    run.send(run.task(name, {'msg': text}), {'msg': text, 'changed': False})
    run.send(run.task('Structured message', {'var': 'x'}), {'msg': {'output': text, 'lines': text.splitlines()}})
    run.send(run.task('Write the file', {'content': text, 'dest': '/etc/quiz.conf'}, action='ansible.builtin.copy'),
             {'changed': True, 'diff': [{'before': text, 'after': 'header\n' + text, 'before_header': '/etc/quiz.conf',
                                         'after_header': '/etc/quiz.conf'}]})
    run.send(run.task('Prepared diff', {'name': 'quiz'}, action='ansible.builtin.apt'),
             {'changed': True, 'diff': {'prepared': prepared_diff(text)}})
    run.send(run.task('Fail with output', {'cmd': text}, action='ansible.builtin.command'),
             {'failed': True, 'rc': 3, 'msg': 'non-zero return code: ' + text, 'stdout': text, 'stderr': text,
              'stderr_lines': text.splitlines(), 'cmd': text, 'invocation': {'module_args': {'_raw_params': text}}},
             kind='failed')
    run.send(run.task('Module crash', {'name': 'quiz'}, action='aiquiz.ops.release'),
             {'failed': True, 'msg': 'MODULE FAILURE: ' + text, 'module_stderr': text, 'module_stdout': '',
              'exception': 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: ' + text},
             kind='failed')
    loop = run.task('Loop over values', {'msg': '{{ item }}'}, loop=[text])
    run.send(loop, {'msg': text, 'item': text, '_ansible_item_label': text, 'changed': True}, kind='item_on_ok')
    run.send(loop, {'changed': True, 'results': [{'msg': text, 'item': text}]})
    run.send(run.task('Secret task', {'cmd': text}, no_log=True), {'msg': text, 'stdout': text, 'changed': True})


def push_data(run, value):
    run.send(run.task('Show the value', {'var': 'value'}), {'value': value, 'msg': value})
    run.send(run.task('Change the value', {'data': value}, action='ansible.builtin.copy'),
             {'changed': True, 'diff': {'before': value, 'after': {'wrapped': value}}})
    loop = run.task('Loop over the value', {'msg': '{{ item }}'}, loop=[value])
    run.send(loop, {'msg': 'ok', 'item': value, '_ansible_item_label': value, 'changed': False}, kind='item_on_ok')
    run.send(run.task('Fail on the value', {'data': value}), {'failed': True, 'msg': value}, kind='failed')


def assert_no_canary(text, canaries):
    leaks = {canary: where(text, canary) for canary in canaries if canary in text}
    assert not leaks, 'LEAKED %s' % leaks


@pytest.mark.parametrize('shape', sorted(TEXT_SHAPES))
def test_no_canary_from_text_shapes(trail, shape):
    canaries, text = TEXT_SHAPES[shape]
    run = trail()
    push_text(run, text)
    written = run.finish()
    assert_no_canary(written, canaries)
    events = events_of(written)
    assert len([e for e in events if e['event'] == 'task_result']) == 9
    assert not run.display.warnings


@pytest.mark.parametrize('shape', sorted(DATA_SHAPES))
def test_no_canary_from_structured_shapes(trail, shape):
    canaries, value = DATA_SHAPES[shape]
    run = trail()
    push_data(run, value)
    written = run.finish()
    assert_no_canary(written, canaries)
    assert not run.display.warnings


# --------------------------------------------------------------------------
# Secrets marked at their source: vault


@pytest.fixture
def vault(monkeypatch):
    """Vault secrets as ansible-playbook sets them up for a run with --vault-password-file."""
    secrets = [('default', VaultSecret(b'corpus-vault-password'))]
    monkeypatch.setattr(VaultSecretsContext, '_current', VaultSecretsContext(secrets=secrets))
    lib = VaultLib(secrets)
    return types.SimpleNamespace(secrets=secrets, encrypt=lambda text: lib.encrypt(text).decode())


def test_vault_tagged_value_used_whole(trail, vault):
    canary = 'CnryVaultWhole1234'
    secret = VaultedValue(ciphertext=vault.encrypt(canary)).tag(canary)
    run = trail()
    task = run.task('Show the greeting', {'msg': secret})
    run.send(task, {'msg': secret, 'greeting': {'text': secret}}, task_fields={'name': 'Show the greeting', 'args': {'msg': secret}})
    written = run.finish()
    assert_no_canary(written, [canary])
    (event,) = [e for e in events_of(written) if e.get('task') == 'Show the greeting']
    assert event['msg'] == '<redacted:vault>'


def test_vault_value_learnt_from_task_args_is_hidden_inside_other_text(trail, vault):
    """The migration's stderr echoes the password inside its own sentence: only its vault mark gives it away."""
    canary = 'CnryVaultArg2345'
    secret = VaultedValue(ciphertext=vault.encrypt(canary)).tag(canary)
    run = trail()
    task = run.task('Run the migrations', {'argv': ['migrate'], 'environment': {'DB_PW': secret}}, action='ansible.builtin.command')
    run.send(task, {'failed': True, 'rc': 1, 'msg': 'migrate: login rejected for quiz with %s (check pg_hba)' % canary},
             kind='failed', task_fields={'name': task.name, 'args': {'argv': ['migrate'], 'environment': {'DB_PW': secret}}})
    written = run.finish()
    assert_no_canary(written, [canary])
    (event,) = [e for e in events_of(written) if e.get('task') == 'Run the migrations']
    assert event['msg'] == 'migrate: login rejected for quiz with <redacted:vault> (check pg_hba)'


def test_vault_encrypted_inline_variables_are_known_before_use(trail, vault):
    """!vault values in play vars and host vars: known from the start, wherever their plaintext shows up."""
    play_canary, host_canary = 'CnryVaultPlay3456', 'CnryVaultHost4567'
    run = trail(play_vars={'quiz_db_pw': EncryptedString(ciphertext=vault.encrypt(play_canary))},
                host_vars={'quiz_api_pw': EncryptedString(ciphertext=vault.encrypt(host_canary))})
    run.send(run.task('Template', {'src': 'x.j2'}, action='ansible.builtin.template'),
             {'changed': True, 'diff': [{'before': '', 'after': 'url=postgresql://quiz@db/quiz?pw=%s\nkey %s\n' % (play_canary, host_canary)}]})
    written = run.finish()
    assert_no_canary(written, [play_canary, host_canary])


def test_vault_encrypted_file_values_are_known(trail, vault, tmp_path):
    """A whole vault-encrypted vars file (group_vars/all/vault.yml) read by Ansible's loader: every value in it."""
    canaries = ['CnryVaultFileA5678', 'CnryVaultFileB6789']
    path = tmp_path / 'vault.yml'
    path.write_text(vault.encrypt('vault_quiz_db_password: %s\nvault_nested:\n  - %s\n' % tuple(canaries)))
    from ansible.parsing.dataloader import DataLoader
    loader = DataLoader()
    loader.set_vault_secrets(vault.secrets)
    run = trail(loader=loader)
    loader.load_from_file(str(path), cache='all', unsafe=True)  # as the host_group_vars plugin does, after the play started
    run.send(run.task('Migrate', {'cmd': 'migrate'}, action='ansible.builtin.shell'),
             {'failed': True, 'msg': 'could not connect with %s; fallback %s' % tuple(canaries)}, kind='failed')
    written = run.finish()
    assert_no_canary(written, canaries)


def test_base64_and_url_encoded_forms_of_a_vault_value(trail, vault):
    canary = 'Cnry Vault/Forms+7890'
    secret = VaultedValue(ciphertext=vault.encrypt(canary)).tag(canary)
    encoded = [base64.b64encode(canary.encode()).decode(), 'Cnry%20Vault%2FForms%2B7890', 'Cnry+Vault%2FForms%2B7890']
    run = trail()
    task = run.task('Use it', {'password': secret})
    run.send(task, {'msg': 'b64 %s url %s form %s' % tuple(encoded)}, task_fields={'name': 'Use it', 'args': {'password': secret}})
    written = run.finish()
    assert_no_canary(written, [canary] + encoded)


def test_a_short_vault_value_hides_itself_but_blurs_no_field_of_the_trail(trail, vault):
    secret = VaultedValue(ciphertext=vault.encrypt('ok')).tag('ok')
    run = trail()
    task = run.task('Say it', {'msg': secret})
    run.send(task, {'msg': secret}, task_fields={'name': 'Say it', 'args': {'msg': secret}})
    run.send(run.task('Say more'), {'msg': 'looks ok to me'})
    events = events_of(run.finish())
    said, more = [e for e in events if e['event'] == 'task_result']
    assert said['status'] == 'ok' and said['msg'] == '<redacted:vault>'
    assert more['status'] == 'ok' and more['msg'] == 'looks ok to me'  # shorter than 4 characters: whole values only


def test_no_log_task_arguments_are_never_written(trail):
    """ansible-core 2.19 hands callbacks the templated arguments of a no_log task (task_fields): none reaches the trail."""
    run = trail()
    task = run.task('Set the password', {'name': 'quiz', 'password': 'CnryNoLogArg7777'}, action='community.postgresql.postgresql_user',
                    no_log=True)
    run.send(task, {'changed': True, 'invocation': {'module_args': {'password': 'CnryNoLogArg7777'}}})
    written = run.finish()
    assert_no_canary(written, ['CnryNoLogArg7777'])
    (event,) = [e for e in events_of(written) if e['event'] == 'task_result']
    assert event['censored'] is True and event['status'] == 'changed' and set(event) >= {'task', 'host', 'action'}
