# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exporters role's counter of failed SSH logins (roles/exporters/files/aiquiz_ssh_failed_logins.py):
which sshd lines count, as sshd 9.2 (Debian 12) and 10.0 (Debian 13) write them, and the textfile it
writes. molecule/monitoring runs it under systemd against a real sshd."""

from __future__ import annotations

import importlib.util
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SCRIPT = os.path.join(ROOT, 'roles', 'exporters', 'files', 'aiquiz_ssh_failed_logins.py')


@pytest.fixture(scope='module')
def counter():
    spec = importlib.util.spec_from_file_location('aiquiz_ssh_failed_logins', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('message, kind', [
    # Lines of a wrong key, an unknown user and a client without keys (VERBOSE, both releases).
    ('Connection closed by authenticating user root 127.0.0.1 port 41910 [preauth]', 'known_user'),
    ('Connection closed by invalid user nosuchuser 127.0.0.1 port 41914 [preauth]', 'invalid_user'),
    ('Disconnected from authenticating user deploy 192.0.2.7 port 50022 [preauth]', 'known_user'),
    ('Disconnecting invalid user admin 192.0.2.7 port 40876: Too many authentication failures [preauth]', 'invalid_user'),
    ('Disconnecting authenticating user root 2001:db8::7 port 40876: Too many authentication failures [preauth]',
     'known_user'),
    # A user name with spaces or the word "port" is the client's text: still one failure.
    ('Connection closed by invalid user a port 1 b 192.0.2.7 port 40872 [preauth]', 'invalid_user'),
    # Not failures of a login: a successful one, the steps before the end of a failed one, others.
    ('Accepted publickey for deploy from 192.0.2.7 port 50022 ssh2: ED25519 SHA256:abc', None),
    ('Failed publickey for root from 127.0.0.1 port 41910 ssh2: ED25519 SHA256:wgcTaWpvJM51', None),
    ('Invalid user nosuchuser from 127.0.0.1 port 41914', None),
    ('Connection closed by 192.0.2.7 port 50022 [preauth]', None),
    ('Received disconnect from 192.0.2.7 port 50022:11: disconnected by user', None),
    ('Disconnected from user deploy 192.0.2.7 port 50022', None),
    ('srclimit_penalise: ipv4: new 127.0.0.1/32 deferred penalty of 5 seconds for penalty: failed authentication',
     None),
    (['binary', 'message'], None),
    (None, None),
])
def test_what_counts_as_a_failed_login(counter, message, kind):
    assert counter.kind(message) == kind


def test_textfile_is_a_counter_per_kind_written_atomically(counter, tmp_path):
    path = str(tmp_path / 'aiquiz_ssh.prom')
    counter.write(path, {'known_user': 3, 'invalid_user': 12, 'penalised': 0})
    assert open(path, encoding='utf-8').read().splitlines() == [
        '# HELP aiquiz_ssh_failed_logins_total SSH connections closed before a user authenticated (sshd journal).',
        '# TYPE aiquiz_ssh_failed_logins_total counter',
        'aiquiz_ssh_failed_logins_total{kind="invalid_user"} 12',
        'aiquiz_ssh_failed_logins_total{kind="known_user"} 3',
        'aiquiz_ssh_failed_logins_total{kind="penalised"} 0']
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'
    assert sorted(os.listdir(tmp_path)) == ['aiquiz_ssh.prom']


@pytest.mark.parametrize('argv', [['x'], ['x', 'relative.prom'], ['x', '/var/lib/x.txt'], ['x', '/a.prom', 'b']])
def test_bad_arguments_are_refused(counter, argv, capsys):
    assert counter.main(argv) == 2
    assert 'usage: ssh_failed_logins' in capsys.readouterr().err
