# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS to S3 (issue 13): the backup host script's restic against a real S3
endpoint (moto's server on loopback) presenting a certificate from a CA of
our own. restic must refuse it when it does not know that CA, whatever else
is set, unless verify_tls is false, which is said on stderr at every call;
with the right ca_file (--cacert) backups, listing and restores work."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import BACKUP_SCRIPT, load_host_script

MOTO = os.path.join(os.path.dirname(sys.executable), 'moto_server')
pytestmark = [pytest.mark.skipif(not os.path.exists(MOTO), reason='moto_server is installed with the venv'),
              pytest.mark.skipif(not shutil.which('restic'), reason='needs restic (Debian package restic)')]

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
    (tmp_path / 'passphrase').write_text('unit test passphrase')
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'file.txt').write_text('backup bytes\n' * 100)
    cfg = {'catalogue': str(tmp_path / 'catalogue.json'), 'staging': str(tmp_path / 'staging'),
           'passphrase_file': str(tmp_path / 'passphrase'), 'postgresql': False, 'host': 'data1',
           'restic_cache': str(tmp_path / 'cache'), 'targets': [],
           'paths': [{'name': 'data', 'paths': [str(tmp_path / 'data')]}],
           'retention': {'daily': 1, 'weekly': 1, 'monthly': 1, 'yearly': 1}}
    return module, cfg, tmp_path


def _target(s3, bucket, **extra):
    target = {'name': 's3', 'type': 's3', 'endpoint': '127.0.0.1', 'port': s3['port'], 'bucket': bucket,
              'region': 'us-east-1', 'access_key': 'unit', 'secret_key': 'unit', 'uri_style': 'path', 'repo': 1}
    target.update(extra)
    return target


def _client(s3):
    import boto3  # pylint: disable=import-outside-toplevel
    return boto3.client('s3', endpoint_url='https://127.0.0.1:%d' % s3['port'], region_name='us-east-1',
                        aws_access_key_id='unit', aws_secret_access_key='unit', verify=s3['ours'])


def _bucket(s3, name):
    _client(s3).create_bucket(Bucket=name)
    return name


def _keys(s3, bucket):
    listed = _client(s3).list_objects_v2(Bucket=bucket)
    return [item['Key'] for item in listed.get('Contents', [])]


def _with(cfg, target):
    return dict(cfg, targets=[target])


def test_an_endpoint_whose_ca_is_unknown_is_refused_when_no_ca_file_is_set(backup, s3):
    module, cfg, _tmp = backup
    bucket = _bucket(s3, 'no-ca-file')
    for extra in ({}, {'verify_tls': True}, {'ca_file': ''}, {'ca_file': None}):
        result = module.cmd_init(_with(cfg, _target(s3, bucket, **extra)), None)[0]
        assert result['status'] == 'failed' and 'certificate signed by unknown authority' in result['detail'], result
        backed = module.cmd_files(_with(cfg, _target(s3, bucket, **extra)), None)[0]
        assert backed['status'] == 'failed' and 'certificate signed by unknown authority' in backed['detail']
    assert _keys(s3, bucket) == []


def test_an_endpoint_signed_by_another_ca_is_refused(backup, s3):
    module, cfg, _tmp = backup
    bucket = _bucket(s3, 'other-ca')
    result = module.cmd_init(_with(cfg, _target(s3, bucket, ca_file=s3['other'])), None)[0]
    assert result['status'] == 'failed' and 'certificate signed by unknown authority' in result['detail']
    assert _keys(s3, bucket) == []


def test_the_right_ca_file_backs_up_lists_and_restores(backup, s3):
    module, cfg, tmp = backup
    bucket = _bucket(s3, 'right-ca')
    cfg = _with(cfg, _target(s3, bucket, ca_file=s3['ours']))
    assert module.cmd_init(cfg, None)[0]['status'] == 'created'
    assert [r['status'] for r in module.cmd_files(cfg, None)] == ['good']
    keys = _keys(s3, bucket)
    assert 'restic/config' in keys and any(key.startswith('restic/snapshots/') for key in keys)
    # The catalogue is not the record: gone, it is rebuilt from the bucket, and the set restores.
    os.unlink(cfg['catalogue'])
    (tmp / 'data' / 'file.txt').write_text('lost\n')
    args = type('A', (), dict(id=None, kind='files', subject='data', target=None, before=None, plan=False))()
    assert module.cmd_restore(cfg, args)[0]['status'] == 'restored'
    assert (tmp / 'data' / 'file.txt').read_text() == 'backup bytes\n' * 100


def test_verification_off_works_and_is_said_at_every_call(backup, s3, capsys):
    module, cfg, _tmp = backup
    bucket = _bucket(s3, 'verify-off')
    cfg = _with(cfg, _target(s3, bucket, verify_tls=False))
    capsys.readouterr()
    assert module.cmd_init(cfg, None)[0]['status'] == 'created'
    assert module.cmd_files(cfg, None)[0]['status'] == 'good'
    err = capsys.readouterr().err
    warning = 'TLS certificate verification is OFF for target s3'
    # init probes and creates, then the backup: a warning at each of the three restic calls.
    assert err.count(warning) == 3, err
    assert 'restic/config' in _keys(s3, bucket)


def test_a_missing_bucket_fails_the_backup_and_is_never_created(backup, s3):
    module, cfg, _tmp = backup
    cfg = _with(cfg, _target(s3, 'no-such-bucket', ca_file=s3['ours']))
    result = module.cmd_files(cfg, None)[0]
    assert result['status'] == 'failed' and 'no restic repository there yet' in result['detail'], result
    assert 'no-such-bucket' not in [b['Name'] for b in _client(s3).list_buckets()['Buckets']]
