# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The own CA outlives a job (AWX starts each job with an empty home): with
tls_ca_fingerprint in the inventory, a run whose tls_ca_dir holds no root, or
another root, stops before it creates or hands out anything. The tls role's
own-CA and trust tasks, run by ansible-playbook on localhost."""

from __future__ import annotations

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
