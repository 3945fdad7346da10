# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module with a stand-in for python3-bcrypt (the controller has none): a salted SHA-256 in bcrypt's
shape, so that keeping a hash that verifies and making a new one are both seen."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.modules import prometheus_web_config

ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'


class FakeBcrypt:
    """hashpw/gensalt/checkpw in bcrypt's format ($2b$<cost>$<22 salt><31 hash>)."""

    calls = 0

    @staticmethod
    def gensalt(rounds):
        FakeBcrypt.calls += 1
        salt = ''.join(ALPHABET[b % 64] for b in os.urandom(22))
        return ('$2b$%02d$%s' % (rounds, salt)).encode()

    @staticmethod
    def hashpw(password, salt):
        salt = salt.decode()[:29]
        digest = base64.b64encode(hashlib.sha256(salt.encode() + password).digest()).decode()
        body = ''.join(c if c in ALPHABET else '.' for c in digest)[:31]
        return (salt + body).encode()

    @staticmethod
    def checkpw(password, hashed):
        return FakeBcrypt.hashpw(password, hashed) == hashed


@pytest.fixture(autouse=True)
def fake_bcrypt(monkeypatch):
    monkeypatch.setattr(prometheus_web_config, 'bcrypt', FakeBcrypt)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / 'web.yml')


def args(path, **extra):
    base = {'path': path, 'users': [{'name': 'admin', 'password': 'secret-admin-pw'},
                                    {'name': 'prometheus', 'password': 'secret-scrape-pw'}],
            'tls_cert_file': '/etc/aiquiz/tls/web/fullchain.pem', 'tls_key_file': '/etc/aiquiz/tls/web/privkey.pem',
            'owner': str(os.getuid()), 'group': str(os.getgid()), 'mode': '0640'}
    base.update(extra)
    return base


def run_module(capsys, module_args, check=False, diff=False):
    if check:
        module_args = dict(module_args, _ansible_check_mode=True)
    if diff:
        module_args = dict(module_args, _ansible_diff=True)
    with patch_module_args(module_args):
        with pytest.raises(SystemExit) as exit_info:
            prometheus_web_config.main()
    out = capsys.readouterr().out
    assert 'secret-admin-pw' not in out and 'secret-scrape-pw' not in out
    return exit_info.value.code, json.loads(out)


def written(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def test_writes_hashes_only_and_a_rerun_changes_nothing(path, capsys):
    rc, result = run_module(capsys, args(path), diff=True)
    assert rc == 0 and result['changed'] is True and result['rehashed'] == ['admin', 'prometheus']
    text = written(path)
    assert 'secret' not in text
    data = json.loads(text.split('\n', 1)[1])
    assert data['tls_server_config'] == {'cert_file': '/etc/aiquiz/tls/web/fullchain.pem',
                                         'key_file': '/etc/aiquiz/tls/web/privkey.pem', 'min_version': 'TLS12'}
    assert FakeBcrypt.checkpw(b'secret-admin-pw', data['basic_auth_users']['admin'].encode())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert data['basic_auth_users']['admin'] not in result['diff']['after']
    rc, again = run_module(capsys, args(path))
    assert rc == 0 and again['changed'] is False and again['rehashed'] == []
    assert written(path) == text


def test_a_changed_password_rehashes_that_user_alone(path, capsys):
    run_module(capsys, args(path))
    before = json.loads(written(path).split('\n', 1)[1])['basic_auth_users']
    changed = args(path, users=[{'name': 'admin', 'password': 'secret-admin-pw-2'},
                                {'name': 'prometheus', 'password': 'secret-scrape-pw'}])
    rc, result = run_module(capsys, changed)
    assert rc == 0 and result['changed'] is True and result['rehashed'] == ['admin']
    after = json.loads(written(path).split('\n', 1)[1])['basic_auth_users']
    assert after['prometheus'] == before['prometheus'] and after['admin'] != before['admin']


def test_check_mode_writes_nothing(path, capsys):
    rc, result = run_module(capsys, args(path), check=True)
    assert rc == 0 and result['changed'] is True and not os.path.exists(path)
    run_module(capsys, args(path))
    rc, result = run_module(capsys, args(path), check=True)
    assert result['changed'] is False


def test_a_file_that_fails_validation_never_replaces_the_live_one(path, tmp_path, capsys):
    run_module(capsys, args(path))
    live = written(path)
    check = tmp_path / 'check'
    check.write_text('#!/bin/sh\necho "bad web config: $1" >&2\nexit 1\n')
    check.chmod(0o755)
    rc, result = run_module(capsys, args(path, tls_cert_file='/missing.pem', validate='%s %%s' % check))
    assert rc == 1 and 'the live one is kept' in result['msg'] and 'bad web config' in result['msg']
    assert written(path) == live
    assert sorted(os.listdir(tmp_path)) == ['check', 'web.yml']


def test_validation_sees_the_new_file(path, tmp_path, capsys):
    seen = tmp_path / 'seen'
    check = tmp_path / 'check'
    check.write_text('#!/bin/sh\ncp "$1" %s\n' % seen)
    check.chmod(0o755)
    rc, result = run_module(capsys, args(path, validate='%s %%s' % check))
    assert rc == 0 and result['changed'] is True
    assert seen.read_text() == written(path)


def test_mode_is_converged_without_rewriting(path, capsys):
    run_module(capsys, args(path))
    os.chmod(path, 0o644)
    rc, result = run_module(capsys, args(path))
    assert rc == 0 and result['changed'] is True and result['rehashed'] == []
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_bad_input_fails_naming_the_user(path, capsys):
    rc, result = run_module(capsys, args(path, users=[{'name': 'admin', 'password': 'secret-admin-pw\nx'}]))
    assert rc == 1 and 'user admin: the password must be one line' in result['msg']
    assert not os.path.exists(path)


def test_without_bcrypt_it_says_what_to_install(path, capsys, monkeypatch):
    monkeypatch.setattr(prometheus_web_config, 'bcrypt', None)
    rc, result = run_module(capsys, args(path))
    assert rc == 1 and 'python3-bcrypt' in result['msg']


def test_switching_tls_off_asks_for_a_restart(path, capsys):
    rc, result = run_module(capsys, args(path))
    assert result['tls'] is True and result['tls_switched'] is False
    rc, result = run_module(capsys, args(path, tls_cert_file='', tls_key_file=''))
    assert rc == 0 and result['changed'] is True and result['tls'] is False and result['tls_switched'] is True
    assert 'tls_server_config' not in written(path)
