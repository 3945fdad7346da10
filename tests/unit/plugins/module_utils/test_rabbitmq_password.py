# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils._rabbitmq_password import (
    PasswordError,
    check_password,
    commands,
    decide,
    environment,
    password_matches,
    users_of,
)

# Printed by `rabbitmqctl export_definitions -` on RabbitMQ 3.10 for users made
# with the passwords "other-pw" and "guest".
REAL_OTHER_PW = '9v3mwXQ9P0km4B/3nztNevYDXkvOGz1b56XSxgt32wZ6Nhbg'
REAL_GUEST = 'OYVNCPH7L2lVbxAS1UUCJchJgOsSUbaTJxiMzXktO7LGPGeH'


def stored(password, algorithm=hashlib.sha256, salt=b'\x01\x02\x03\x04'):
    return base64.b64encode(salt + algorithm(salt + password.encode()).digest()).decode()


def test_hashes_of_a_real_node_match_their_passwords_only():
    assert password_matches('other-pw', REAL_OTHER_PW, 'rabbit_password_hashing_sha256')
    assert password_matches('guest', REAL_GUEST)
    assert not password_matches('other-pw ', REAL_OTHER_PW)
    assert not password_matches('guest', REAL_OTHER_PW)


@pytest.mark.parametrize('algorithm, name', [(hashlib.sha512, 'rabbit_password_hashing_sha512'),
                                             (hashlib.md5, 'rabbit_password_hashing_md5')])
def test_other_hashing_algorithms(algorithm, name):
    assert password_matches('päss wörd', stored('päss wörd', algorithm), name)
    assert not password_matches('pass word', stored('päss wörd', algorithm), name)


@pytest.mark.parametrize('bad', ['', 'not base64!', base64.b64encode(b'abc').decode(), base64.b64encode(b'abcd').decode()])
def test_missing_or_odd_hashes_never_match(bad):
    assert not password_matches('x', bad)


def test_unknown_algorithm_is_named():
    with pytest.raises(PasswordError, match='rabbit_password_hashing_sha3 is not one the module knows'):
        password_matches('x', REAL_GUEST, 'rabbit_password_hashing_sha3')


def test_decide_creates_changes_or_leaves_alone():
    users = users_of(json.dumps({'users': [
        {'name': 'quiz', 'password_hash': stored('right'), 'hashing_algorithm': 'rabbit_password_hashing_sha256'},
        {'name': 'nopass', 'password_hash': '', 'hashing_algorithm': 'rabbit_password_hashing_sha256'}]}))
    assert decide(users, 'quiz', 'right') is None
    assert decide(users, 'quiz', 'wrong') == 'change'
    assert decide(users, 'nopass', 'any') == 'change'
    assert decide(users, 'absent', 'any') == 'create'


@pytest.mark.parametrize('text', ['', 'Error: node down', '[]', '{"users": {}}'])
def test_unreadable_definitions_are_refused(text):
    with pytest.raises(PasswordError):
        users_of(text)


def test_commands_never_carry_the_password():
    # No -q or -n there: RabbitMQ 4.0's rabbitmqctl then never reads a password from a pipe.
    assert commands('/usr/sbin/rabbitmqctl', 'create', 'quiz') == ['/usr/sbin/rabbitmqctl', 'add_user', 'quiz']
    assert commands('rabbitmqctl', 'change', 'quiz') == ['rabbitmqctl', 'change_password', 'quiz']
    assert commands('rabbitmqctl', 'export', 'quiz') == \
        ['rabbitmqctl', '-q', 'export_definitions', '-', '--format', 'json']
    assert environment('rabbit@localhost') == {'RABBITMQ_NODENAME': 'rabbit@localhost'}
    assert environment('') == {}


@pytest.mark.parametrize('password, message', [('', 'empty'), ('a\nb', 'line break'), ('a\rb', 'line break')])
def test_passwords_rabbitmqctl_cannot_read_from_one_line_are_refused(password, message):
    with pytest.raises(PasswordError, match=message):
        check_password(password)
