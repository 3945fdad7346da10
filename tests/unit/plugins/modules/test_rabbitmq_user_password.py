# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.modules import rabbitmq_user_password

# A stand-in for rabbitmqctl: prints the definitions of $FAKE_DIR/definitions.json,
# records every call's argv and stdin, and applies add_user / change_password.
FAKE = r'''#!/usr/bin/env python3
import base64, hashlib, json, os, sys
d = os.environ["FAKE_DIR"]
args = sys.argv[1:]
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
with open(os.path.join(d, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps({"argv": args, "stdin": stdin, "node": os.environ.get("RABBITMQ_NODENAME")}) + "\n")
path = os.path.join(d, "definitions.json")
defs = json.load(open(path))
words = [a for a in args if a not in ("-q",)]
if words[:1] == ["-n"]:
    words = words[2:]
if words[0] == "export_definitions":
    print(json.dumps(defs))
elif words[0] in ("add_user", "change_password"):
    pw = stdin.rstrip("\n")
    salt = b"\x09\x08\x07\x06"
    h = base64.b64encode(salt + hashlib.sha256(salt + pw.encode()).digest()).decode()
    defs["users"] = [u for u in defs["users"] if u["name"] != words[1]] + [
        {"name": words[1], "password_hash": h, "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}]
    json.dump(defs, open(path, "w"))
else:
    sys.exit(64)
'''


def stored(password):
    salt = b'\x01\x02\x03\x04'
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    script = bindir / 'rabbitmqctl'
    script.write_text(FAKE)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (tmp_path / 'definitions.json').write_text(json.dumps({'users': [
        {'name': 'quiz', 'password_hash': stored('current-pw'), 'hashing_algorithm': 'rabbit_password_hashing_sha256'}]}))
    monkeypatch.setenv('FAKE_DIR', str(tmp_path))
    monkeypatch.setenv('PATH', str(bindir) + os.pathsep + os.environ['PATH'])

    def calls():
        path = tmp_path / 'calls.jsonl'
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return calls


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            rabbitmq_user_password.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_unchanged_password_needs_no_call_with_it(fake, capsys):
    rc, result = run_module(capsys, {'name': 'quiz', 'password': 'current-pw', 'node': 'rabbit@localhost'})
    assert rc == 0 and result['changed'] is False and result['action'] == 'unchanged'
    assert [(c['argv'], c['node']) for c in fake()] == [
        (['-q', 'export_definitions', '-', '--format', 'json'], 'rabbit@localhost')]


def test_changed_password_goes_through_stdin_only(fake, capsys):
    rc, result = run_module(capsys, {'name': 'quiz', 'password': 'rotated-pw'})
    assert rc == 0 and result == dict(result, changed=True, action='changed')
    calls = fake()
    assert calls[-1] == {'argv': ['change_password', 'quiz'], 'stdin': 'rotated-pw\n', 'node': None}
    assert not [c for c in calls if any('rotated-pw' in a for a in c['argv'])]
    assert 'rotated-pw' not in json.dumps(result)
    # Idempotent: the stored hash is now of the new password.
    assert run_module(capsys, {'name': 'quiz', 'password': 'rotated-pw'})[1]['changed'] is False


def test_new_user_is_created_through_stdin(fake, capsys):
    rc, result = run_module(capsys, {'name': 'worker', 'password': 'new-pw'})
    assert rc == 0 and result['action'] == 'created'
    assert fake()[-1] == {'argv': ['add_user', 'worker'], 'stdin': 'new-pw\n', 'node': None}


def test_check_mode_reads_only(fake, capsys):
    rc, result = run_module(capsys, {'name': 'worker', 'password': 'new-pw'}, check=True)
    assert rc == 0 and result['changed'] is True and result['action'] == 'created'
    assert [c['argv'][-4] for c in fake()] == ['export_definitions']


def test_bad_password_fails_before_any_call(fake, capsys):
    rc, result = run_module(capsys, {'name': 'quiz', 'password': 'two\nlines'})
    assert rc == 1 and 'user quiz: the password holds a line break' in result['msg']
    assert fake() == []
