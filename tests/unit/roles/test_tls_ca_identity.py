# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The own CA outlives a job (AWX starts each job with an empty home): with
tls_ca_fingerprint in the inventory, a run whose tls_ca_dir holds no root, or
another root, stops before it creates or hands out anything; without it, a
trust file holding another root is never overwritten unless asked. And the
readers entry point the service roles call. The tls role's tasks, run by
ansible-playbook on localhost."""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from conftest import run_local_play

PASSPHRASE = 'ca-passphrase-canary-41f0'
PLAY = '''- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: aiquiz.ops.tls
        tasks_from: own_ca
    - ansible.builtin.include_role:
        name: aiquiz.ops.tls
        tasks_from: ca_trust
      when: tls_ca_trust_file | default('') | length > 0
'''


def run(tmp_path, env=None, **extra):
    variables = {'_tls_certs': [{'name': 'x', 'issuer': 'own_ca'}], 'tls_ca_passphrase': PASSPHRASE,
                 'ansible_become': False}
    variables.update(extra)
    rc, out = run_local_play(tmp_path, PLAY, variables,
                             env=dict({'HOME': str(tmp_path / 'home'), 'AIQUIZ_TLS_CA_DIR': None}, **(env or {})))
    assert PASSPHRASE not in out
    return rc, ' '.join(out.split())


def fingerprint(ca_dir):
    cert = x509.load_pem_x509_certificate((ca_dir / 'root.pem').read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex()


def test_a_first_run_creates_the_root_and_prints_its_fingerprint(tmp_path):
    ca_dir = tmp_path / 'ca'
    rc, out = run(tmp_path, tls_ca_dir=str(ca_dir))
    assert rc == 0, out
    found = fingerprint(ca_dir)
    assert ':'.join(found[i:i + 2] for i in range(0, 64, 2)) in out.lower()
    assert 'Set tls_ca_fingerprint to it in the inventory' in out


def test_an_empty_ca_dir_with_a_named_root_creates_nothing_and_says_where_it_looked(tmp_path):
    ca_dir = tmp_path / 'home' / '.aiquiz' / 'tls-ca'
    rc, out = run(tmp_path, tls_ca_fingerprint='sha256:' + 'ab' * 32)
    assert rc != 0
    assert 'there is no root certificate in %s' % ca_dir in out
    assert 'looked for %s/root.pem' % ca_dir in out
    assert 'nothing was created' in out
    assert not (ca_dir / 'root.pem').exists() and not (ca_dir / 'root-key.pem').exists()


def test_the_ca_dir_comes_from_the_environment_when_not_set(tmp_path):
    ca_dir = tmp_path / 'persistent'
    rc, out = run(tmp_path, env={'AIQUIZ_TLS_CA_DIR': str(ca_dir)})
    assert rc == 0, out
    assert (ca_dir / 'root.pem').exists() and not (tmp_path / 'home' / '.aiquiz').exists()


def test_the_named_root_passes_in_any_spelling_and_another_root_is_refused_before_trust(tmp_path):
    ca_dir = tmp_path / 'ca'
    rc, out = run(tmp_path, tls_ca_dir=str(ca_dir))
    assert rc == 0, out
    found = fingerprint(ca_dir)
    spelled = 'SHA256:' + ':'.join(found[i:i + 2] for i in range(0, 64, 2)).upper()
    trust = tmp_path / 'trust' / 'ca.pem'
    rc, out = run(tmp_path, tls_ca_dir=str(ca_dir), tls_ca_fingerprint=spelled)
    assert rc == 0, out
    assert 'Set tls_ca_fingerprint' not in out

    other = tmp_path / 'other'
    rc, out = run(tmp_path, tls_ca_dir=str(other))
    assert rc == 0, out
    rc, out = run(tmp_path, tls_ca_dir=str(other), tls_ca_fingerprint=found, tls_ca_trust_file=str(trust))
    assert rc != 0
    assert '%s/root.pem is not the own CA the inventory names' % other in out
    assert 'tls_ca_fingerprint is %s' % found in out
    assert not trust.exists()


def test_a_host_that_only_trusts_the_ca_never_gets_another_root(tmp_path):
    ca_dir, other = tmp_path / 'ca', tmp_path / 'other'
    for directory in (ca_dir, other):
        rc, out = run(tmp_path, tls_ca_dir=str(directory))
        assert rc == 0, out
    trust = tmp_path / 'trust' / 'ca.pem'
    # No certificate of the play uses the own CA: only the trust tasks run.
    rc, out = run(tmp_path, _tls_certs=[], tls_ca_dir=str(other), tls_ca_fingerprint=fingerprint(ca_dir),
                  tls_ca_trust_file=str(trust))
    assert rc != 0
    assert '%s/root.pem is not the own CA the inventory names' % other in out
    assert not trust.exists()
    rc, out = run(tmp_path, _tls_certs=[], tls_ca_dir=str(ca_dir), tls_ca_fingerprint=fingerprint(ca_dir),
                  tls_ca_trust_file=str(trust))
    assert rc == 0, out
    assert trust.read_bytes().strip() == (ca_dir / 'root.pem').read_bytes().strip()


def test_a_trust_file_with_another_root_is_kept_until_the_move_is_asked_for(tmp_path):
    """Without tls_ca_fingerprint, a controller holding another own CA (another home's) must not write its
    root over the one the host trusts: the host's services serve certificates of the first CA."""
    ca_dir, other = tmp_path / 'ca', tmp_path / 'other'
    trust = tmp_path / 'trust' / 'ca.pem'
    rc, out = run(tmp_path, tls_ca_dir=str(ca_dir), tls_ca_trust_file=str(trust))
    assert rc == 0, out
    first = trust.read_bytes()
    rc, out = run(tmp_path, tls_ca_dir=str(other), tls_ca_trust_file=str(trust))
    assert rc != 0
    assert 'tls_ca_trust_file (%s) of localhost holds another root than the own CA\'s in tls_ca_dir (%s' % (
        trust, other) in out
    assert 'Nothing was changed' in out and 'tls_ca_adopt_foreign_certificates' in out
    assert trust.read_bytes() == first
    rc, out = run(tmp_path, tls_ca_dir=str(other), tls_ca_trust_file=str(trust),
                  tls_ca_adopt_foreign_certificates=True)
    assert rc == 0, out
    assert trust.read_bytes().strip() == (other / 'root.pem').read_bytes().strip()


READERS = '''- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: aiquiz.ops.tls
        tasks_from: readers
'''


def test_readers_entry_point_names_the_files_a_service_user_cannot_read(tmp_path):
    """The check the eight service roles run through the entry point, as the service's user (nobody here):
    a key only root reads is named with the variable to fix; readable files pass. Nothing is issued when no
    certificate is named (files given by path)."""
    shared = pathlib.Path(tempfile.mkdtemp(prefix='aiquiz-readers-', dir='/tmp'))
    try:
        shared.chmod(0o755)
        cert, key = shared / 'cert.pem', shared / 'key.pem'
        cert.write_text('certificate\n')
        cert.chmod(0o644)
        key.write_text('key\n')
        key.chmod(0o600)
        reader = {'user': 'nobody', 'certificate': '', 'variable': 'demo_tls_key_file', 'files': [str(cert), str(key)],
                  'hint': 'Or run the service as root.'}
        rc, out = run_local_play(tmp_path, READERS, {'tls_readers': [reader], 'ansible_become': False})
        out = ' '.join(out.split())
        assert rc != 0
        assert ('localhost: demo_tls_key_file (%s) are missing or not readable by nobody: nothing else was changed. '
                'Give them a group nobody is in and mode 0640, or fix demo_tls_key_file. Or run the service as root.'
                % key) in out, out
        assert '(%s' % cert not in out
        key.chmod(0o644)
        rc, out = run_local_play(tmp_path, READERS, {'tls_readers': [reader], 'ansible_become': False})
        assert rc == 0, out
    finally:
        shutil.rmtree(shared)


def test_readers_entry_point_refuses_a_reader_without_its_variable(tmp_path):
    rc, out = run_local_play(tmp_path, READERS, {'tls_readers': [{'user': 'nobody', 'files': ['/etc/hostname']}],
                                                 'ansible_become': False})
    assert rc != 0
    assert 'variable' in out and 'tls_readers' in out, out
