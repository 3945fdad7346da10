# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS to S3 (issue 13): the backup host script against a real S3 endpoint
(moto's server on loopback) presenting a certificate from a CA of our own.
A client that does not know that CA must refuse it, whatever else is set,
unless verify_tls is false, which is said on stderr at every connection."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import BACKUP_SCRIPT, load_host_script

MOTO = os.path.join(os.path.dirname(sys.executable), 'moto_server')
pytestmark = pytest.mark.skipif(not os.path.exists(MOTO), reason='moto_server is installed with the venv')

x509 = pytest.importorskip('cryptography.x509')
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402  pylint: disable=wrong-import-position
from cryptography.x509.oid import NameOID  # noqa: E402  pylint: disable=wrong-import-position


def _name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(directory, common):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    path = os.path.join(directory, common + '.pem')
    with open(path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def _server(directory, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name('127.0.0.1')).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, 'server.pem'), os.path.join(directory, 'server.key')
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def s3(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp('s3tls'))
    ca_key, ca_cert, ours = _ca(directory, 'our-ca')
    _other_key, _other_cert, other = _ca(directory, 'another-ca')
    cert, key = _server(directory, ca_key, ca_cert)
    port = _free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID='unit', AWS_SECRET_ACCESS_KEY='unit')
    proc = subprocess.Popen([MOTO, '-H', '127.0.0.1', '-p', str(port), '-c', cert, '-k', key],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail('moto_server did not start on 127.0.0.1:%d' % port)
                time.sleep(0.2)
        yield {'port': port, 'ours': ours, 'other': other, 'dir': directory}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def backup(tmp_path):
    module = load_host_script(tmp_path / 'lib', BACKUP_SCRIPT, 'aiquiz_backup_s3_tls')
    produced = tmp_path / 'produced.bin'
    produced.write_bytes(b'backup bytes\n' * 100)
    return module, str(produced)


def _target(s3, bucket, **extra):
    target = {'name': 's3', 'type': 's3', 'endpoint': '127.0.0.1', 'port': s3['port'], 'bucket': bucket,
              'region': 'us-east-1', 'access_key': 'unit', 'secret_key': 'unit', 'uri_style': 'path'}
    target.update(extra)
    return target


def _bucket(module, s3, name):
    module.s3_client(_target(s3, name, ca_file=s3['ours'])).create_bucket(Bucket=name)
    return name


def _keys(module, s3, bucket):
    listed = module.s3_client(_target(s3, bucket, ca_file=s3['ours'])).list_objects_v2(Bucket=bucket)
    return [item['Key'] for item in listed.get('Contents', [])]


def test_an_endpoint_whose_ca_is_unknown_is_refused_when_no_ca_file_is_set(backup, s3):
    module, produced = backup
    bucket = _bucket(module, s3, 'no-ca-file')
    for extra in ({}, {'verify_tls': True}, {'ca_file': ''}, {'ca_file': None}):
        with pytest.raises(module.BackupError, match='CERTIFICATE_VERIFY_FAILED|certificate verify failed'):
            module.store(_target(s3, bucket, **extra), produced, 'files/one.bin')
    assert _keys(module, s3, bucket) == []


def test_an_endpoint_signed_by_another_ca_is_refused(backup, s3):
    module, produced = backup
    bucket = _bucket(module, s3, 'other-ca')
    with pytest.raises(module.BackupError, match='CERTIFICATE_VERIFY_FAILED|certificate verify failed'):
        module.store(_target(s3, bucket, ca_file=s3['other']), produced, 'files/one.bin')
    assert _keys(module, s3, bucket) == []


def test_the_right_ca_file_stores_and_fetches(backup, s3, tmp_path):
    module, produced = backup
    bucket = _bucket(module, s3, 'right-ca')
    target = _target(s3, bucket, ca_file=s3['ours'])
    location = module.store(target, produced, 'files/one.bin')
    assert location == 's3://right-ca/files/one.bin' and _keys(module, s3, bucket) == ['files/one.bin']


def test_verification_off_works_and_is_said_at_every_client(backup, s3, capsys):
    module, produced = backup
    bucket = _bucket(module, s3, 'verify-off')
    capsys.readouterr()
    module.store(_target(s3, bucket, verify_tls=False), produced, 'files/one.bin')
    err = capsys.readouterr().err
    assert 'TLS certificate verification is OFF for target s3' in err, err
    assert _keys(module, s3, bucket) == ['files/one.bin']
