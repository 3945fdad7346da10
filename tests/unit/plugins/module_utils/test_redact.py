# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/_redact.py: the one redaction shared by the audit trail and the release ledger."""

from __future__ import annotations

import base64
import re
import time

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _redact
from ansible_collections.aiquiz.ops.plugins.module_utils._redact import (
    SecretValues, is_secret_name, marker, mask_url_credentials, redact_data, redact_text)

NAMED = '<redacted:named-secret>'


@pytest.mark.parametrize('text, expected', [
    ('postgresql://quiz:s3cr3t@db1:5432/quiz', 'postgresql://quiz:<redacted:url-password>@db1:5432/quiz'),
    ('amqp://quiz:s3cr3t@mq1:5672/%2F', 'amqp://quiz:<redacted:url-password>@mq1:5672/%2F'),
    ('redis://:s3cr3t@cache1:6379/0', 'redis://:<redacted:url-password>@cache1:6379/0'),
    ('https://deploy:s3cr3t@registry.example.com/v2/', 'https://deploy:<redacted:url-password>@registry.example.com/v2/'),
    ('git clone https://ghp_tok3n@github.com/o/r.git', 'git clone https://<redacted:url-user>@github.com/o/r.git'),
    ('postgresql+psycopg://app:a/b+c@d@db/quiz', 'postgresql+psycopg://app:<redacted:url-password>@db/quiz'),
    ('"postgres://app:pw12@db/q", "redis://:pw34@c/0"', '"postgres://app:<redacted:url-password>@db/q", "redis://:<redacted:url-password>@c/0"'),
    # no credentials: unchanged
    ('https://registry.npmjs.org/@scope/pkg', 'https://registry.npmjs.org/@scope/pkg'),
    ('https://edge1:8443/api?email=ops@example.com', 'https://edge1:8443/api?email=ops@example.com'),
    ('git@github.com:org/repo.git and quiz@sha256:abc', 'git@github.com:org/repo.git and quiz@sha256:abc'),
    ('postgresql://db1:5432/quiz', 'postgresql://db1:5432/quiz'),
])
def test_mask_url_credentials(text, expected):
    assert mask_url_credentials(text) == expected
    assert redact_text(text) == expected


@pytest.mark.parametrize('text, expected', [
    ('db_password: hunter2', 'db_password: ' + NAMED),
    ('api_token=abc123&next=1', 'api_token=%s&next=1' % NAMED),
    ('deliberate failure, api_token=abc user=app', 'deliberate failure, api_token=%s user=app' % NAMED),
    ('{"secret_key": "two words", "user": "app"}', '{"secret_key": "%s", "user": "app"}' % NAMED),
    ("{'private_key': 'x', 'port': 5432}", "{'private_key': '%s', 'port': 5432}" % NAMED),
    ('db_password: correct horse battery\nport: 5432', 'db_password: %s\nport: 5432' % NAMED),
    ('[db]\npassword = two words\nhost = db1', '[db]\npassword = %s\nhost = db1' % NAMED),
    ('db_password: "unterminated sec\nnext: 1', 'db_password: "%s\nnext: 1' % NAMED),
    ('{\\"password\\": \\"x y\\"}', '{\\"password\\": \\"%s\\"}' % NAMED),
    ("PGPASSWORD='a b c' psql -h db1", "PGPASSWORD='%s' psql -h db1" % NAMED),
    ('MYSQL_PWD=x1 mysql', 'MYSQL_PWD=%s mysql' % NAMED),
    ('migrate --db-password=x1 --verbose', 'migrate --db-password=%s --verbose' % NAMED),
    ('gh auth login --token x1y2 --hostname h', 'gh auth login --token %s --hostname h' % NAMED),
    ("mysqladmin --password 'a b' status", "mysqladmin --password '%s' status" % NAMED),
    ('Authorization: Bearer abc123', 'Authorization: ' + NAMED),
    ('curl -H "X: Bearer abc.123"', 'curl -H "X: Bearer <redacted:auth-token>"'),
    ('a eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl b', 'a <redacted:jwt> b'),
    ('{"dbPassword": "x"}', '{"dbPassword": "%s"}' % NAMED),
    ('dsn: host=db1 password=x', 'dsn: ' + NAMED),
    # left alone
    ('PasswordAuthentication no', 'PasswordAuthentication no'),
    ('password:\nuser: app', 'password:\nuser: app'),
    ('Basic authentication failed; Token expired', 'Basic authentication failed; Token expired'),
    ('non-zero return code: 2', 'non-zero return code: 2'),
    ('nothing to hide', 'nothing to hide'),
    ('', ''),
])
def test_redact_text(text, expected):
    assert redact_text(text) == expected


def test_yaml_block_scalars_and_nested_values_under_a_secret_name():
    text = 'app:\n  db_password: |\n    line one\n    line two\n  port: 5432\ncredentials:\n- a\n- b\nnext: 1\n'
    assert redact_text(text) == ('app:\n  db_password: |\n    %s\n    %s\n  port: 5432\ncredentials:\n- %s\n- %s\nnext: 1\n'
                                 % (NAMED, NAMED, NAMED, NAMED))


def test_unified_diff_lines_keep_their_sign():
    diff = '--- before\n+++ after\n@@ -1,3 +1,3 @@\n-api_token: old1\n+api_token: new1\n db_password: >-\n-  oldline\n+  newline\n port: 1\n'
    clean = redact_text(diff)
    assert 'old1' not in clean and 'new1' not in clean and 'oldline' not in clean and 'newline' not in clean
    assert '\n-  %s\n+  %s\n port: 1\n' % (NAMED, NAMED) in clean


@pytest.mark.parametrize('label, kind', [
    ('PRIVATE KEY', 'private-key'), ('RSA PRIVATE KEY', 'private-key'), ('OPENSSH PRIVATE KEY', 'private-key'),
    ('ENCRYPTED PRIVATE KEY', 'private-key'), ('PGP PRIVATE KEY BLOCK', 'private-key'), ('CERTIFICATE', 'pem'),
])
def test_pem_bodies(label, kind):
    text = 'before\n-----BEGIN %s-----\nMIIBody1\nBody2==\n-----END %s-----\nafter' % (label, label)
    assert redact_text(text) == 'before\n-----BEGIN %s-----<redacted:%s>-----END %s-----\nafter' % (label, kind, label)
    cut = text.split('-----END')[0]
    assert redact_text(cut) == 'before\n-----BEGIN %s-----<redacted:%s>' % (label, kind)


@pytest.mark.parametrize('text', [
    'env:\n  - name: QUIZ_SECRET_KEY\n    value: s3cr3t\n  - name: PORT\n    value: "8000"',
    '[{"name": "DB_PASSWORD", "value": "s3cr3t"}, {"name": "PORT", "value": "8000"}]',
    '- value: s3cr3t\n  name: DB_PASSWORD\n- value: "8000"\n  name: PORT',
    "[{'Key': 'ClientSecret', 'Value': 's3cr3t'}, {'Key': 'PORT', 'Value': '8000'}]",
])
def test_name_value_items_in_text_hide_the_value_and_keep_the_name(text):
    clean = redact_text(text)
    assert 's3cr3t' not in clean and '8000' in clean
    assert any(name in clean for name in ('QUIZ_SECRET_KEY', 'DB_PASSWORD', 'ClientSecret'))


def test_redact_data_by_key_name_at_any_depth_and_items():
    value = {'users': [{'name': 'a', 'Password': {'hash': 'x'}}], 'AWS_SECRET': 's', 'ssh_key_file': '/k', 'port': 22, 'on': True,
             'env': [{'name': 'API_TOKEN', 'value': 't'}, {'name': 'PORT', 'value': '8000'}],
             'Tags': [{'Key': 'ClientSecret', 'Value': 'v'}], 'update_password': True, 'token': None,
             'dsn': 'postgresql://u:pw@h/db', 'url': 'redis://:pw@h/0', 'ratio': float('nan')}
    assert redact_data(value) == {
        'users': [{'name': 'a', 'Password': NAMED}], 'AWS_SECRET': NAMED, 'ssh_key_file': NAMED, 'port': 22, 'on': True,
        'env': [{'name': 'API_TOKEN', 'value': NAMED}, {'name': 'PORT', 'value': '8000'}],
        'Tags': [{'Key': 'ClientSecret', 'Value': NAMED}], 'update_password': True, 'token': None,
        'dsn': NAMED, 'url': 'redis://:<redacted:url-password>@h/0', 'ratio': 'nan'}


def test_redact_data_redacts_lines_of_one_text_together():
    lines = ['-----BEGIN PRIVATE KEY-----', 'MIIBody1', 'Body2', '-----END PRIVATE KEY-----', 'db_password: |', '  s3cr3t', 'ok']
    clean = redact_data({'stdout_lines': lines})['stdout_lines']
    assert 'MIIBody1' not in clean and 'Body2' not in clean and 's3cr3t' not in clean and clean[-1] == 'ok'
    assert redact_data(['a', 'b']) == ['a', 'b']
    assert redact_data(['mysqladmin', '--password', 'two words', '-u', 'root']) == ['mysqladmin', '--password', NAMED, '-u', 'root']


@pytest.mark.parametrize('name', ['token', 'apikey', 'api_key', 'secret_key', 'credentials', 'auth', 'passphrase', 'dsn',
                                  'client_secret', 'x-api-key', 'MYSQL_PWD', 'PGPASSWORD', 'ansible_become_pass', 'dbPassword',
                                  'Authorization', 'private_key', 'session_cookie', 'jwt', 'connection_string', 'vault_quiz_db_password'])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize('name', ['port', 'user', 'name', 'value', 'host', 'monkey', 'keyboard', 'bypass', 'compass', 'author',
                                  'private_address', 'state', 'dest', ''])
def test_plain_names(name):
    assert not is_secret_name(name)


def test_known_secret_values_in_every_encoding():
    secrets = SecretValues()
    assert secrets.add('Two Words/+pw', 'vault') is True
    assert secrets.add('Two Words/+pw', 'vault') is False
    assert len(secrets) > 1 and 'Two Words/+pw' in secrets
    for form in ('Two Words/+pw', base64.b64encode(b'Two Words/+pw').decode(), 'Two%20Words%2F%2Bpw', 'Two+Words%2F%2Bpw'):
        assert redact_text('a %s b' % form, secrets) == 'a <redacted:vault> b'
    assert redact_text('ok', secrets) == 'ok'


def test_short_known_values_only_as_whole_strings_and_multiline_values_by_line():
    secrets = SecretValues()
    secrets.add('abc')
    secrets.add('first-line-123\n    second-line-456\n')
    assert secrets.mask('abc') == marker('secret') and secrets.mask('abcdef') == 'abcdef'
    assert secrets.mask('x:   second-line-456') == 'x:   <redacted:secret>'
    assert secrets.add('   ') is False and secrets.add(None) is False


def test_markers_are_never_redacted_again():
    secrets = SecretValues()
    secrets.add('s3cr3t-value', 'vault')
    text = 'password: s3cr3t-value and postgresql://u:s3cr3t-value@h/db'
    once = redact_text(text, secrets)
    assert once == 'password: <redacted:vault> and postgresql://u:<redacted:vault>@h/db'
    assert redact_text(once, secrets) == once


@pytest.mark.parametrize('text', [
    'a' * 100000, 'x:' * 50000, 'https://' * 12500, 'https://u:p@h ' * 7000, 'password=x ' * 9000, 'value: 1\n' * 11000,
    '- value: x\n' * 9000, '-----BEGIN X-----' * 6000, '{' * 100000, 'key: ' + 'b' * 100000, '--token x ' * 10000,
    'password:\n' + '  - x\n' * 16000,
], ids=lambda text: repr(text[:12]))
def test_large_and_hostile_texts_stay_fast(text):
    """About 100 KB, the most a diff of Ansible's holds (max_diff_size): linear work, well under the bound even on a busy host."""
    started = time.monotonic()
    redact_text(text)
    assert time.monotonic() - started < 5


def test_module_utils_stays_importable_on_managed_hosts():
    source = open(_redact.__file__, encoding='utf-8').read()
    assert 'ansible.' not in source.replace('ansible.builtin', '')  # no controller imports in a module_utils file
    compile(source, _redact.__file__, 'exec', dont_inherit=True)


# ----------------------------------------------------------------------
# redact() and summary(): program output (a migration's stderr) for the
# release ledger and the redact filter. Markers are compared as ********.

PW = 'Canary-Pw-7'


def _stars(text):
    return re.sub(r'<redacted:[a-z-]+>', '********', text)


@pytest.mark.parametrize('text, expected', [
    ('FATAL: could not connect to postgresql://quiz:%s@10.0.0.5:5432/quiz: password authentication failed' % PW,
     'FATAL: could not connect to postgresql://quiz:********@10.0.0.5:5432/quiz: password authentication failed'),
    ('redis://:%s@cache:6379/0' % PW, 'redis://:********@cache:6379/0'),
    ('amqp://quiz:%s@mq:5672/%%2F and amqps://u:x@y' % PW, 'amqp://quiz:********@mq:5672/%2F and amqps://u:********@y'),
    # An unencoded @ or / in the password: masked to the last @ of the word.
    ('postgresql://u:p@ss/w@host/db', 'postgresql://u:********@host/db'),
    ('"postgresql+psycopg://u:%s@h/db"' % PW, '"postgresql+psycopg://u:********@h/db"'),
    ('host=db user=quiz password=%s dbname=quiz' % PW, 'host=db user=quiz password=******** dbname=quiz'),
    ('PGPASSWORD=%s psql -h db' % PW, 'PGPASSWORD=******** psql -h db'),
    ('{"db_password": "a b c", "api_token": "%s", "x": 1}' % PW,
     '{"db_password": "********", "api_token": "********", "x": 1}'),
    ("secret_key: '%s'" % PW, "secret_key: '********'"),
    ('pwd=%s;' % PW, 'pwd=********;'),
    ('Authorization: Bearer %s' % PW, 'Authorization: ********'),
    ('-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----',
     '-----BEGIN EC PRIVATE KEY-----********-----END EC PRIVATE KEY-----'),
])
def test_credentials_are_masked(text, expected):
    assert _stars(_redact.redact(text)) == expected


@pytest.mark.parametrize('text', [
    'password authentication failed for user "quiz"',
    'https://registry.example.com/v2/aiquiz/quiz-api/manifests/1.1.0',
    'mail alice@example.com at 10:30',
    'Bind for 0.0.0.0:8021 failed: port is already allocated',
    'keyboard=us',
])
def test_ordinary_text_is_kept(text):
    assert _redact.redact(text) == text


def test_known_secrets_are_masked_as_they_are_and_url_encoded():
    secret = 'p@ss/w:rd+1'
    text = 'value %s, in a URL %s, and abc' % (secret, 'p%40ss%2Fw%3Ard%2B1')
    assert _stars(_redact.redact(text, [secret, None, 'abc'])) == 'value ********, in a URL ********, and abc'


def test_summary_keeps_the_end_masked_and_bounded():
    output = 'step 1\n\n\x1b[31mstep 2\x1b[0m\n' + 'x' * 2000 + '\nFATAL: postgresql://quiz:%s@db/quiz\n' % PW
    summary = _stars(_redact.summary(output, 120))
    assert len(_redact.summary(output, 120)) == 120
    assert summary.startswith('... ') and summary.endswith('FATAL: postgresql://quiz:********@db/quiz')
    assert PW not in summary and '\x1b' not in summary
    assert _redact.summary('a\n\n  b  \n', 100) == 'a | b'
    assert _redact.summary(None) == ''


def test_a_cut_never_reveals_part_of_a_secret():
    # The cut falls inside the password: masking came first, so only the mask is cut.
    text = 'postgresql://quiz:%s@db/quiz' % ('S' * 300)
    for limit in range(5, 60):
        assert 'S' not in _redact.summary(text, limit)


def test_a_secret_dsn_keeps_its_host_and_its_password_is_masked_anywhere():
    dsn = 'postgresql://quiz:Canary%40Pw%2F7@db.internal:5432/quiz'
    text = 'connecting to %s\nauth failed for password Canary@Pw/7 (Canary%%40Pw%%2F7)' % dsn
    assert _stars(_redact.redact(text, {'QUIZ_DATABASE_URL': dsn}.values())) == (
        'connecting to postgresql://quiz:********@db.internal:5432/quiz\n'
        'auth failed for password ******** (********)')
