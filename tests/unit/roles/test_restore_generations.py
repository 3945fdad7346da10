# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""restore_from=<target>.g<N> (a retired generation of pgBackRest's repositories): the restore
role's own checks, run by ansible-playbook on localhost, before anything is touched."""

from __future__ import annotations

import pytest

from conftest import run_local_play

SECRET = 'retired-cipher-canary-7d1e'
PLAY = '''- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: aiquiz.ops.restore
        tasks_from: validate
'''


def validate(tmp_path, **extra):
    variables = {'restore_targets': [{'name': 'local', 'type': 'local', 'path': '/var/backups/aiquiz'},
                                     {'name': 's3', 'type': 's3', 'bucket': 'b'}],
                 'restore_passphrase': 'a passphrase of the backups',
                 'restore_pgbackrest_generation': 2,
                 'restore_pgbackrest_retired': [{'generation': 1, 'cipher_pass': SECRET}]}
    variables.update(extra)
    return run_local_play(tmp_path, PLAY, variables, timeout=180)


@pytest.mark.parametrize('restore_from, kind', [('s3.g9', 'postgresql'), ('s3.g1', 'redis'), ('nas.g1', 'postgresql')])
def test_a_generation_that_is_not_retired_or_not_postgresql_is_refused(tmp_path, restore_from, kind):
    rc, out = validate(tmp_path, restore_from=restore_from, restore_kind=kind)
    assert rc != 0, out
    assert 'restore_from name one of them, or <target>.g<N> for a retired generation' in ' '.join(out.split())
    assert SECRET not in out


def test_a_retired_generation_of_a_known_target_passes_the_checks(tmp_path):
    rc, out = validate(tmp_path, restore_from='s3.g1', restore_kind='postgresql')
    assert rc == 0, out
    assert SECRET not in out
