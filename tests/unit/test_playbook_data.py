# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/data.yml refuses a data_services value it does not know before
any role runs (the lab's end-to-end drill runs the accepted values)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_data(tmp_path, value):
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[data]\ndata-test ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               AIQUIZ_AUDIT_DIR=str(tmp_path / 'audit'))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(inventory),
                           'playbooks/data.yml', '-e', json.dumps({'data_services': value})],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize('value, unknown', [
    ('postgresql,mysql', 'mysql'),
    (['redis', 'mongodb', 'cassandra'], 'mongodb, cassandra'),
])
def test_an_unknown_data_service_stops_the_play_before_any_role(tmp_path, value, unknown):
    rc, output = run_data(tmp_path, value)
    assert rc == 2, output
    assert 'data_services names %s: it takes a comma-separated subset of postgresql,redis,rabbitmq' % unknown \
        in output, output
    # Nothing of a role ran: the check is the play's first task.
    assert 'aiquiz.ops.postgresql' not in output and 'aiquiz.ops.redis' not in output, output
