# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz.ops.certificate_inventory against certificates made here with
cryptography (a root CA, an intermediate, RSA, ECDSA and Ed25519 leaves,
expired, expiring and not yet valid ones) and against a real TLS server on
127.0.0.1 that picks its certificate by SNI. Runs with cryptography 38 (Debian
12) as well as the controller's."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import threading

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _certs
from ansible_collections.aiquiz.ops.plugins.modules import certificate_inventory

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
ITEM_KEYS = ['chain_error', 'chain_length', 'chain_valid', 'days_left', 'error', 'issuer', 'key_match', 'not_after',
             'not_before', 'sans', 'serial', 'source', 'subject', 'type']
ISO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$')


# --- a small PKI ----------------------------------------------------------


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'aiquiz test'),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ec_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_cert(subject, key, issuer=None, issuer_key=None, ca=False, start=None, end=None, sans=(), serial=None,
              hash_algorithm=None):
    """A certificate of key for subject, signed by issuer_key (self-signed without it)."""
    issuer_key = issuer_key or key
    builder = (x509.CertificateBuilder()
               .subject_name(name(subject))
               .issuer_name(issuer.subject if issuer is not None else name(subject))
               .public_key(key.public_key())
               .serial_number(serial or x509.random_serial_number())
               .not_valid_before(start or NOW - DAY)
               .not_valid_after(end or NOW + 90 * DAY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    if sans:
        general = [x509.IPAddress(ipaddress.ip_address(s[3:])) if s.startswith('IP:') else x509.DNSName(s)
                   for s in sans]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey):
        algorithm = None
    else:
        algorithm = hash_algorithm or hashes.SHA256()
    return builder.sign(issuer_key, algorithm)


def pem(*certs):
    return b''.join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key, password=None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


class Pki:
    """Keys and certificates made once for the whole module."""

    def __init__(self, directory):
        self.dir = directory
        self.root_key = rsa_key()
        self.root = make_cert('aiquiz test root', self.root_key, ca=True, end=NOW + 3650 * DAY)
        self.inter_key = ec_key(ec.SECP384R1())
        self.inter = make_cert('aiquiz test intermediate', self.inter_key, self.root, self.root_key, ca=True,
                               hash_algorithm=hashes.SHA384())
        self.other_key = ec_key()
        self.other = make_cert('other root', self.other_key, ca=True)

        self.ec_leaf_key = ec_key()
        self.ec_leaf = make_cert('edge.test', self.ec_leaf_key, self.inter, self.inter_key,
                                 sans=['edge.test', 'www.edge.test', 'IP:127.0.0.1'], serial=0x1234abcd)
        self.rsa_leaf_key = rsa_key()
        self.rsa_leaf = make_cert('api.test', self.rsa_leaf_key, self.root, self.root_key, sans=['api.test'])
        self.self_key = ec_key()
        self.self_signed = make_cert('self.test', self.self_key, sans=['self.test'])
        self.expired = make_cert('expired.test', self.ec_leaf_key, self.inter, self.inter_key,
                                 start=NOW - 60 * DAY, end=NOW - 2 * DAY)
        self.soon = make_cert('soon.test', self.ec_leaf_key, self.inter, self.inter_key, end=NOW + 5 * DAY)
        self.future = make_cert('future.test', self.ec_leaf_key, self.inter, self.inter_key,
                                start=NOW + 2 * DAY, end=NOW + 30 * DAY)
        self.stranger = make_cert('stranger.test', self.ec_leaf_key, self.other, self.other_key)

        self.files = {}
        self.write('root.pem', pem(self.root))
        self.write('ca-bundle.pem', pem(self.other, self.root))
        self.write('ec-fullchain.pem', pem(self.ec_leaf, self.inter))
        self.write('ec-cert.pem', pem(self.ec_leaf))
        self.write('ec-key.pem', key_pem(self.ec_leaf_key), 0o600)
        self.write('rsa-cert.der', self.rsa_leaf.public_bytes(serialization.Encoding.DER))
        self.write('rsa-key.pem', key_pem(self.rsa_leaf_key), 0o600)
        self.write('self.pem', pem(self.self_signed))
        self.write('self-key.pem', key_pem(self.self_key), 0o600)
        self.write('encrypted-key.pem', key_pem(self.self_key, b'secret passphrase'), 0o600)
        self.write('expired.pem', pem(self.expired, self.inter))
        self.write('soon.pem', pem(self.soon, self.inter))
        self.write('future.pem', pem(self.future, self.inter))
        self.write('stranger.pem', pem(self.stranger))
        self.write('garbage.pem', b'-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n')
        self.write('key-only.pem', key_pem(ec_key()), 0o600)
        self.write('text.pem', b'hello\n')

    def write(self, filename, data, mode=0o644):
        path = os.path.join(self.dir, filename)
        with open(path, 'wb') as handle:
            handle.write(data)
        os.chmod(path, mode)
        self.files[filename] = path
        return path

    def __getitem__(self, filename):
        return self.files[filename]


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp('pki')))


def run_module(capsys, args, check=False, diff=False):
    """Run main() with args; return (exit code, parsed JSON result)."""
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            certificate_inventory.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out)


def read(path):
    with open(path, encoding='utf-8') as handle:
        return handle.read()


def by_source(result):
    return dict((item['source'], item) for item in result['certificates'])


# --- files ----------------------------------------------------------------


def test_fullchain_file_with_key_and_ca(capsys, pki):
    path = pki['ec-fullchain.pem']
    code, result = run_module(capsys, {'paths': [path], 'keys': {path: pki['ec-key.pem']}, 'ca_file': pki['root.pem']})
    assert code == 0, result
    assert result['changed'] is False
    assert result['expiring'] == [] and result['errors'] == [] and result['textfile'] is None
    [item] = result['certificates']
    assert sorted(item) == ITEM_KEYS
    assert item['source'] == path and item['type'] == 'file'
    assert item['subject'] == 'CN=edge.test,O=aiquiz test'
    assert item['issuer'] == 'CN=aiquiz test intermediate,O=aiquiz test'
    assert item['sans'] == ['DNS:edge.test', 'DNS:www.edge.test', 'IP:127.0.0.1']
    assert item['serial'] == '1234abcd'
    assert ISO.match(item['not_before']) and ISO.match(item['not_after'])
    assert item['not_after'] == _certs.iso(_certs.not_after(pki.ec_leaf))
    assert 89.9 < item['days_left'] < 90.1
    assert (item['key_match'], item['chain_valid'], item['chain_error']) == (True, True, None)
    assert (item['chain_length'], item['error']) == (2, None)


def test_rsa_der_certificate_signed_by_the_root(capsys, pki):
    path = pki['rsa-cert.der']
    code, result = run_module(capsys, {'paths': [path], 'keys': {path: pki['rsa-key.pem']},
                                       'ca_file': pki['ca-bundle.pem']})
    assert code == 0
    [item] = result['certificates']
    assert item['subject'] == 'CN=api.test,O=aiquiz test'
    assert (item['key_match'], item['chain_valid'], item['chain_length']) == (True, True, 1)


def test_wrong_key_is_reported_not_fatal(capsys, pki):
    cert = pki['ec-cert.pem']
    der = pki['rsa-cert.der']
    code, result = run_module(capsys, {'paths': [cert, der], 'keys': {cert: pki['self-key.pem'],
                                                                      der: pki['ec-key.pem']}})
    assert code == 0
    items = by_source(result)
    assert items[cert]['key_match'] is False and items[cert]['error'] is None
    assert items[der]['key_match'] is False
    # No ca_file: the chain is not judged.
    assert items[cert]['chain_valid'] is None


def test_key_material_never_appears_in_the_result(capsys, pki):
    cert, key = pki['self.pem'], pki['self-key.pem']
    code, result = run_module(capsys, {'paths': [cert, pki['encrypted-key.pem']], 'keys': {cert: key}})
    assert code == 0
    out = json.dumps(result)
    assert 'PRIVATE KEY' not in out
    with open(key, 'rb') as handle:
        key_body = b''.join(handle.read().splitlines()[1:-1]).decode()
    for start in range(0, len(key_body) - 16, 16):
        assert key_body[start:start + 16] not in out
    secret = pki.self_key.private_numbers().private_value
    assert str(secret) not in out and ('%x' % secret) not in out
    # A key file given as a certificate is an error item naming the problem, not its content.
    item = by_source(result)[pki['encrypted-key.pem']]
    assert item['error'].endswith('no certificate in the file (PEM of another kind only)')


def test_encrypted_or_missing_key_sets_the_error_and_keeps_the_facts(capsys, pki):
    cert = pki['self.pem']
    code, result = run_module(capsys, {'paths': [cert], 'keys': {cert: pki['encrypted-key.pem']}})
    assert code == 0
    [item] = result['certificates']
    assert item['key_match'] is None
    assert 'is encrypted' in item['error']
    assert item['subject'] == 'CN=self.test,O=aiquiz test'
    assert result['errors'] == [cert]
    code, result = run_module(capsys, {'paths': [cert], 'keys': {cert: pki.dir + '/nope.pem'}})
    assert result['certificates'][0]['error'] == 'cannot read key %s/nope.pem: No such file or directory' % pki.dir


def test_expired_and_expiring_certificates(capsys, pki):
    expired, soon, good = pki['expired.pem'], pki['soon.pem'], pki['ec-fullchain.pem']
    code, result = run_module(capsys, {'paths': [expired, soon, good], 'ca_file': pki['root.pem']})
    assert code == 0
    assert result['expiring'] == [expired, soon]
    items = by_source(result)
    assert -2.1 < items[expired]['days_left'] < -1.9
    assert items[expired]['chain_valid'] is False
    assert 'expired on' in items[expired]['chain_error']
    assert 4.9 < items[soon]['days_left'] < 5.1 and items[soon]['chain_valid'] is True

    code, result = run_module(capsys, {'paths': [soon], 'min_days': 3})
    assert code == 0 and result['expiring'] == []


def test_fail_on_expiring_names_each_certificate(capsys, pki):
    expired, soon, good = pki['expired.pem'], pki['soon.pem'], pki['ec-fullchain.pem']
    code, result = run_module(capsys, {'paths': [good, soon, expired], 'fail_on_expiring': True})
    assert code == 1
    assert result['failed'] is True
    assert result['msg'].startswith('certificates expiring within 14 days: ')
    assert '%s (CN=soon.test,O=aiquiz test, 5.0 days left' % soon in result['msg']
    assert '%s (CN=expired.test,O=aiquiz test, expired 2.0 days ago' % expired in result['msg']
    assert good not in result['msg']
    assert len(result['certificates']) == 3
    code, result = run_module(capsys, {'paths': [good], 'fail_on_expiring': True})
    assert code == 0


def test_not_yet_valid_certificate_has_no_valid_chain(capsys, pki):
    code, result = run_module(capsys, {'paths': [pki['future.pem']], 'ca_file': pki['root.pem']})
    [item] = result['certificates']
    assert item['chain_valid'] is False
    assert item['chain_error'].startswith('CN=future.test,O=aiquiz test: not valid before ')


def test_chain_against_another_ca_or_without_intermediate(capsys, pki):
    code, result = run_module(capsys, {'paths': [pki['stranger.pem'], pki['ec-cert.pem'], pki['self.pem']],
                                       'ca_file': pki['root.pem']})
    items = by_source(result)
    assert items[pki['stranger.pem']]['chain_valid'] is False
    assert 'issuer CN=other root' in items[pki['stranger.pem']]['chain_error']
    # The leaf alone: its issuer (the intermediate) is not in the file nor the CA file.
    assert items[pki['ec-cert.pem']]['chain_valid'] is False
    assert items[pki['self.pem']]['chain_valid'] is False
    # A self-signed certificate trusted as its own CA.
    code, result = run_module(capsys, {'paths': [pki['self.pem']], 'ca_file': pki['self.pem']})
    assert result['certificates'][0]['chain_valid'] is True


def test_unreadable_files_are_items_with_an_error(capsys, pki):
    missing = pki.dir + '/missing.pem'
    paths = [missing, pki.dir, pki['garbage.pem'], pki['text.pem'], pki['ec-cert.pem']]
    code, result = run_module(capsys, {'paths': paths})
    assert code == 0
    items = by_source(result)
    assert [item['source'] for item in result['certificates']] == paths
    assert items[missing]['error'] == 'cannot read %s: No such file or directory' % missing
    assert items[pki.dir]['error'] == 'cannot read %s: Is a directory' % pki.dir
    assert 'not valid base64' in items[pki['garbage.pem']]['error']
    assert items[pki['text.pem']]['error'].endswith('not a PEM or DER certificate')
    for path in paths[:-1]:
        assert items[path]['subject'] is None and items[path]['days_left'] is None
    assert result['errors'] == paths[:-1]
    assert result['expiring'] == []


def test_unreadable_ca_file_fails_the_module(capsys, pki):
    code, result = run_module(capsys, {'paths': [pki['ec-cert.pem']], 'ca_file': pki['text.pem']})
    assert code == 1
    assert result['msg'] == 'ca_file %s: not a PEM or DER certificate' % pki['text.pem']


def test_globs_are_sorted_and_an_empty_glob_warns(capsys, pki):
    code, result = run_module(capsys, {'paths': [pki.dir + '/s[!e]*.pem', pki['soon.pem'], pki['self.pem'],
                                                 pki.dir + '/none-*.crt']})
    assert code == 0
    sources = [item['source'] for item in result['certificates']]
    assert sources == [pki['soon.pem'], pki['stranger.pem'], pki['self.pem']]
    assert result['unmatched'] == [pki.dir + '/none-*.crt']


def test_invalid_arguments(capsys, pki):
    code, result = run_module(capsys, {'paths': [], 'min_days': -1, 'timeout': 0, 'textfile': 'metrics.txt',
                                       'endpoints': [{'host': '127.0.0.1', 'port': 70000}],
                                       'keys': {'cert.pem': '/k.pem'}})
    assert code == 1
    for part in ('min_days must be >= 0', 'timeout must be > 0', 'endpoints[0].port must be 1-65535',
                 'textfile must be an absolute path', 'textfile must end with .prom',
                 'keys: cert.pem is not an absolute certificate path'):
        assert part in result['msg']


def test_ed25519_and_pss_signatures_verify(pki, tmp_path):
    root_key = ed25519.Ed25519PrivateKey.generate()
    root = make_cert('ed root', root_key, ca=True)
    leaf = make_cert('ed.test', ec_key(), root, root_key)
    assert _certs.check_chain(leaf, [], [root], NOW) == (True, None)
    assert _certs.check_chain(leaf, [], [pki.root], NOW)[0] is False
    assert _certs.signed_by(pki.rsa_leaf, pki.root) and not _certs.signed_by(pki.rsa_leaf, pki.inter)


def test_rsa_pss_signature_verifies(pki, tmp_path):
    # Signed by the openssl CLI: cryptography < 41 cannot sign with PSS.
    root_key = tmp_path / 'root-key.pem'
    root_key.write_bytes(key_pem(pki.root_key))
    csr_key = tmp_path / 'leaf-key.pem'
    csr = tmp_path / 'leaf.csr'
    leaf_file = tmp_path / 'leaf.pem'
    subprocess.run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                    '-subj', '/CN=pss.test', '-keyout', str(csr_key), '-out', str(csr)], check=True,
                   capture_output=True)
    subprocess.run(['openssl', 'x509', '-req', '-in', str(csr), '-CA', pki['root.pem'], '-CAkey', str(root_key),
                    '-set_serial', '7', '-days', '2', '-sha256', '-sigopt', 'rsa_padding_mode:pss',
                    '-sigopt', 'rsa_pss_saltlen:32', '-out', str(leaf_file)], check=True, capture_output=True)
    leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
    assert _certs.signed_by(leaf, pki.root)
    assert not _certs.signed_by(leaf, pki.other)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert _certs.check_chain(leaf, [], [pki.root], now) == (True, None)
    for sha in ('sha384', 'sha512'):
        subprocess.run(['openssl', 'x509', '-req', '-in', str(csr), '-CA', pki['root.pem'], '-CAkey', str(root_key),
                        '-set_serial', '8', '-days', '2', '-' + sha, '-sigopt', 'rsa_padding_mode:pss',
                        '-sigopt', 'rsa_mgf1_md:' + sha, '-out', str(leaf_file)], check=True, capture_output=True)
        other = x509.load_pem_x509_certificate(leaf_file.read_bytes())
        assert _certs.signed_by(other, pki.root), sha
        assert _certs.pss_parameters(other)[0].name == sha


def test_tampered_signature_and_non_ca_issuer(pki):
    der = bytearray(pki.rsa_leaf.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xff  # in the signature, at the end of the certificate
    tampered = x509.load_der_x509_certificate(bytes(der))
    assert not _certs.signed_by(tampered, pki.root)
    assert _certs.check_chain(tampered, [], [pki.root], NOW)[0] is False
    # An end-entity certificate used as an intermediate is refused.
    leaf_key = ec_key()
    under_leaf = make_cert('under.test', leaf_key, pki.ec_leaf, pki.ec_leaf_key)
    valid, reason = _certs.check_chain(under_leaf, [pki.ec_leaf, pki.inter], [pki.root], NOW)
    assert valid is False and reason == 'issuer CN=edge.test,O=aiquiz test is not a CA certificate'


# --- endpoints --------------------------------------------------------------


class TlsServer:
    """A TLS server on 127.0.0.1 that serves one chain per SNI name (a default one without SNI)."""

    def __init__(self, chains, default):
        self.names_seen = []
        self.contexts = dict((server_name, self._context(*files)) for server_name, files in chains.items())
        self.default = self._context(*default)
        self.default.sni_callback = self._pick
        self.sock = socket.create_server(('127.0.0.1', 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _context(cert_file, key_file):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context

    def _pick(self, connection, server_name, _context):
        self.names_seen.append(server_name)
        if server_name in self.contexts:
            connection.context = self.contexts[server_name]

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.default.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def tls_server(pki):
    server = TlsServer({'edge.test': (pki['ec-fullchain.pem'], pki['ec-key.pem']),
                        'soon.test': (pki['soon.pem'], pki['ec-key.pem'])},
                       default=(pki['self.pem'], pki['self-key.pem']))
    yield server
    server.stop()


def test_endpoint_chain_is_read_by_sni(capsys, pki, tls_server):
    endpoints = [{'host': '127.0.0.1', 'port': tls_server.port, 'server_name': 'edge.test'},
                 {'host': '127.0.0.1', 'port': tls_server.port},
                 {'host': '127.0.0.1', 'port': tls_server.port, 'server_name': 'soon.test'}]
    code, result = run_module(capsys, {'endpoints': endpoints, 'ca_file': pki['root.pem']})
    assert code == 0, result
    edge, plain, soon = result['certificates']
    assert edge['source'] == 'edge.test@127.0.0.1:%d' % tls_server.port and edge['type'] == 'endpoint'
    assert edge['subject'] == 'CN=edge.test,O=aiquiz test' and edge['serial'] == '1234abcd'
    assert edge['sans'] == ['DNS:edge.test', 'DNS:www.edge.test', 'IP:127.0.0.1']
    assert (edge['chain_length'], edge['chain_valid'], edge['key_match'], edge['error']) == (2, True, None, None)
    # No SNI for an address: the server's default certificate.
    assert plain['source'] == '127.0.0.1:%d' % tls_server.port
    assert plain['subject'] == 'CN=self.test,O=aiquiz test' and plain['chain_valid'] is False
    assert soon['subject'] == 'CN=soon.test,O=aiquiz test'
    assert result['expiring'] == [soon['source']]
    assert 'edge.test' in tls_server.names_seen and 'soon.test' in tls_server.names_seen


def test_endpoint_name_is_sent_as_sni_by_default(pki, tls_server):
    endpoint = {'host': 'localhost', 'port': tls_server.port, 'server_name': None}
    item = _certs.scan_endpoint(endpoint, None, NOW, 5)
    assert item['error'] is None and item['source'] == 'localhost:%d' % tls_server.port
    assert 'localhost' in tls_server.names_seen


def test_endpoint_that_does_not_answer_is_an_error_item(capsys, pki):
    listener = socket.create_server(('127.0.0.1', 0))
    silent = listener.getsockname()[1]  # accepts, never answers the handshake
    closed = socket.create_server(('127.0.0.1', 0))
    refused = closed.getsockname()[1]
    closed.close()
    try:
        code, result = run_module(capsys, {'endpoints': [{'host': '127.0.0.1', 'port': silent},
                                                         {'host': '127.0.0.1', 'port': refused}],
                                           'timeout': 0.5, 'fail_on_expiring': True})
    finally:
        listener.close()
    assert code == 0
    first, second = result['certificates']
    assert first['error'] == 'no TLS answer from 127.0.0.1:%d within 0.5 s' % silent
    assert second['error'].startswith('TLS connection to 127.0.0.1:%d failed: ' % refused)
    assert 'refused' in second['error'].lower()
    assert result['errors'] == [first['source'], second['source']]


# --- node exporter textfile -------------------------------------------------


def test_textfile_is_written_once_then_unchanged(capsys, pki, tmp_path):
    textfile = str(tmp_path / 'node-exporter' / 'aiquiz_certificates.prom')
    path = pki['ec-fullchain.pem']
    args = {'paths': [path, pki['soon.pem'], pki.dir + '/missing.pem'], 'keys': {path: pki['ec-key.pem']},
            'ca_file': pki['root.pem'], 'textfile': textfile}

    code, result = run_module(capsys, args, check=True, diff=True)
    assert (code, result['changed']) == (0, True)
    assert not os.path.exists(os.path.dirname(textfile))
    assert result['diff']['before'] == '' and 'aiquiz_certificate_expiry_seconds{' in result['diff']['after']

    code, result = run_module(capsys, args)
    assert (code, result['changed'], result['textfile']) == (0, True, textfile)
    assert stat.S_IMODE(os.stat(textfile).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.dirname(textfile)).st_mode) == 0o755
    assert os.listdir(os.path.dirname(textfile)) == ['aiquiz_certificates.prom']
    text = read(textfile)
    expiry = int((_certs.not_after(pki.ec_leaf) - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc))
                 .total_seconds())
    labels = '{source="%s",subject="CN=edge.test,O=aiquiz test",serial="1234abcd"}' % path
    assert 'aiquiz_certificate_expiry_seconds%s %d\n' % (labels, expiry) in text
    # Whole days, floor: 90 days less the seconds since the certificate was made.
    assert 'aiquiz_certificate_days_left%s 89\n' % labels in text
    assert 'aiquiz_certificate_chain_valid%s 1\n' % labels in text
    assert 'aiquiz_certificate_key_match%s 1\n' % labels in text
    assert 'aiquiz_certificate_scan_error{source="%s"} 0\n' % path in text
    assert 'aiquiz_certificate_scan_error{source="%s/missing.pem"} 1\n' % pki.dir in text
    assert re.search(r'aiquiz_certificate_days_left\{source="%s",[^}]*\} 4\n' % re.escape(pki['soon.pem']), text)
    assert text.count('# TYPE ') == 5 and '# TYPE aiquiz_certificate_expiry_seconds gauge\n' in text

    code, result = run_module(capsys, args, diff=True)
    assert (code, result['changed']) == (0, False)
    assert result['diff']['before'] == result['diff']['after'] == text
    code, result = run_module(capsys, args, check=True)
    assert (code, result['changed']) == (0, False)

    # A new certificate in the file changes the metrics; a wrong mode alone is put right.
    pki.write('rotated.pem', pem(make_cert('edge.test', pki.ec_leaf_key, pki.inter, pki.inter_key)))
    code, result = run_module(capsys, dict(args, paths=[pki['rotated.pem']], keys={}))
    assert result['changed'] is True and 'rotated.pem' in read(textfile)
    os.chmod(textfile, 0o600)
    code, result = run_module(capsys, dict(args, paths=[pki['rotated.pem']], keys={}))
    assert result['changed'] is True and stat.S_IMODE(os.stat(textfile).st_mode) == 0o644


def test_textfile_labels_are_escaped():
    item = _certs.empty_item('/etc/odd "name"\\x\n.pem', 'file')
    item.update(subject='CN=a"b', serial='ff', not_after='2027-01-01T00:00:00Z', days_left=1.5)
    text = _certs.render_textfile([item], NOW)
    assert ('aiquiz_certificate_expiry_seconds{source="/etc/odd \\"name\\"\\\\x\\n.pem",subject="CN=a\\"b",'
            'serial="ff"} 1798761600\n') in text


def test_textfile_in_an_unwritable_place_fails_clearly(capsys, pki, tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    textfile = str(blocker / 'certs.prom')
    code, result = run_module(capsys, {'paths': [pki['self.pem']], 'textfile': textfile})
    assert code == 1
    assert result['msg'].startswith('cannot write textfile %s: ' % textfile)
    assert len(result['certificates']) == 1
