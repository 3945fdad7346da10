# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _redact

PW = 'Canary-Pw-7'


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
    ('Authorization: Bearer %s' % PW, 'Authorization: Bearer ********'),
    ('-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----',
     '-----BEGIN EC PRIVATE KEY-----********-----END EC PRIVATE KEY-----'),
])
def test_credentials_are_masked(text, expected):
    assert _redact.redact(text) == expected


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
    assert _redact.redact(text, [secret, None, 'abc']) == 'value ********, in a URL ********, and abc'


def test_summary_keeps_the_end_masked_and_bounded():
    output = 'step 1\n\n\x1b[31mstep 2\x1b[0m\n' + 'x' * 2000 + '\nFATAL: postgresql://quiz:%s@db/quiz\n' % PW
    summary = _redact.summary(output, 120)
    assert len(summary) == 120
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
    assert _redact.redact(text, {'QUIZ_DATABASE_URL': dsn}.values()) == (
        'connecting to postgresql://quiz:********@db.internal:5432/quiz\n'
        'auth failed for password ******** (********)')
