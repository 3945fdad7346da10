# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _web_config as web

OLD = '$2b$10$' + 'a' * 53


def fake_hasher(password):
    return '$2b$10$' + ('h%s' % len(password)).ljust(53, 'x')


def test_a_hash_that_still_verifies_is_kept_and_a_new_user_is_hashed():
    users = [{'name': 'admin', 'password': 'pw-one'}, {'name': 'prometheus', 'password': 'pw-two'}]
    data, rehashed = web.build(users, {'admin': OLD, 'gone': OLD}, fake_hasher,
                               lambda password, hashed: password == 'pw-one' and hashed == OLD)
    assert data == {'basic_auth_users': {'admin': OLD, 'prometheus': fake_hasher('pw-two')}}
    assert rehashed == ['prometheus']


def test_a_changed_password_gets_a_new_hash():
    data, rehashed = web.build([{'name': 'admin', 'password': 'rotated'}], {'admin': OLD}, fake_hasher,
                               lambda password, hashed: False)
    assert data['basic_auth_users']['admin'] == fake_hasher('rotated') and rehashed == ['admin']


def test_tls_and_no_users_is_tls_alone():
    data, rehashed = web.build([], {}, fake_hasher, None, '/t/fullchain.pem', '/t/privkey.pem')
    assert data == {'tls_server_config': {'cert_file': '/t/fullchain.pem', 'key_file': '/t/privkey.pem',
                                          'min_version': 'TLS12'}}
    assert rehashed == []
    with pytest.raises(web.WebConfigError, match='go together'):
        web.build([], {}, fake_hasher, None, '/t/fullchain.pem', '')


@pytest.mark.parametrize('users, message', [
    ([{'name': 'a b', 'password': 'x'}], "users\\[0\\]: name must be"),
    ([{'name': 'a', 'password': 'x'}, {'name': 'a', 'password': 'y'}], 'users\\[1\\]: user a comes earlier'),
    ([{'name': 'a', 'password': ''}], 'user a: the password must not be empty'),
    ([{'name': 'a', 'password': 'two\nlines'}], 'user a: the password must be one line'),
    ([{'name': 'a', 'password': 'p' * 73}], 'at most 72 bytes'),
])
def test_bad_users_are_refused_without_the_password(users, message):
    with pytest.raises(web.WebConfigError, match=message) as info:
        web.build(users, {}, fake_hasher, lambda p, h: False)
    assert 'two\nlines' not in str(info.value) and 'p' * 73 not in str(info.value)


def test_render_parses_back_and_foreign_files_read_as_empty():
    data = {'basic_auth_users': {'admin': OLD}}
    text = web.render(data)
    assert text.startswith('#') and web.parse(text) == data
    assert web.existing_hashes(web.parse(text)) == {'admin': OLD}
    assert web.parse('basic_auth_users:\n  admin: x\n') == {}
    assert web.parse('') == {}
    assert web.existing_hashes({'basic_auth_users': {'admin': 'plain-password'}}) == {}


def test_masked_shows_no_hash():
    text = web.masked({'basic_auth_users': {'admin': OLD, 'new': OLD}}, ['new'])
    assert OLD not in text
    assert json.loads(text.split('\n', 1)[1])['basic_auth_users'] == {'admin': '<bcrypt hash>',
                                                                      'new': '<bcrypt hash, new>'}
