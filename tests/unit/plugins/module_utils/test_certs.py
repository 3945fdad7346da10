# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of module_utils/_certs.py: parsing, arguments, names, the
textfile. Certificates and endpoints are in tests/unit/plugins/modules/."""

from __future__ import annotations

import base64
import datetime

import pytest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.aiquiz.ops.plugins.module_utils import _certs

NOW = datetime.datetime(2026, 11, 27, 12, 0, 0, tzinfo=datetime.timezone.utc)


def params(**changes):
    base = dict(paths=[], keys={}, endpoints=[], ca_file=None, min_days=14, fail_on_expiring=False, timeout=10.0,
                textfile=None)
    base.update(changes)
    return base


@pytest.fixture(scope='module')
def cert():
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'unit.test')])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(0xabc).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=10, hours=12))
            .sign(key, hashes.SHA256()))


def test_validate_params_accepts_the_defaults():
    assert _certs.validate_params(params()) == []
    assert _certs.validate_params(params(textfile='/var/lib/node/certs.prom',
                                         endpoints=[{'host': 'a', 'port': 443, 'server_name': None}])) == []


def test_validate_params_names_each_problem():
    errors = _certs.validate_params(params(min_days=-2, timeout=-1, textfile='/x/certs.txt',
                                           endpoints=[{'host': '', 'port': 0, 'server_name': None}]))
    assert errors == ['min_days must be >= 0, got -2', 'timeout must be > 0, got -1',
                      'endpoints[0].host must not be empty', 'endpoints[0].port must be 1-65535, got 0',
                      'textfile must end with .prom (the node exporter reads only those), got /x/certs.txt']


def test_split_certificates_pem_bundle_der_and_junk(cert):
    der = cert.public_bytes(serialization.Encoding.DER)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    assert _certs.split_certificates(b'junk before\n' + pem + pem) == [der, der]
    assert _certs.split_certificates(der) == [der]
    # OpenSSL's "TRUSTED CERTIFICATE" blocks are read too.
    trusted = b'-----BEGIN TRUSTED CERTIFICATE-----\n' + base64.encodebytes(der) + b'-----END TRUSTED CERTIFICATE-----\n'
    assert _certs.split_certificates(trusted) == [der]
    with pytest.raises(_certs.CertError, match='PEM of another kind only'):
        _certs.split_certificates(b'-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')
    with pytest.raises(_certs.CertError, match='not a PEM or DER certificate'):
        _certs.split_certificates(b'')
    with pytest.raises(_certs.CertError, match='cannot parse certificate'):
        _certs.load_certificates(b'\x30\x03\x02\x01\x01')


def test_describe_uses_utc_and_rounds_days(cert):
    facts = _certs.describe(cert, NOW)
    assert facts == dict(subject='CN=unit.test', sans=[], issuer='CN=unit.test', serial='abc',
                         not_before='2026-11-26T12:00:00Z', not_after='2026-12-08T00:00:00Z', days_left=10.5)


def test_oid_decoding():
    assert _certs._oid(bytes.fromhex('608648016503040201')) == '2.16.840.1.101.3.4.2.1'
    assert _certs._oid(bytes.fromhex('2b0e03021a')) == '1.3.14.3.2.26'


def test_endpoint_source_and_address_detection():
    assert _certs.endpoint_source({'host': 'edge.test', 'port': 443, 'server_name': None}) == 'edge.test:443'
    assert _certs.endpoint_source({'host': 'edge.test', 'port': 443, 'server_name': 'edge.test'}) == 'edge.test:443'
    assert _certs.endpoint_source({'host': '::1', 'port': 8443, 'server_name': 'a.test'}) == 'a.test@[::1]:8443'
    assert _certs._is_ip('127.0.0.1') and _certs._is_ip('::1') and not _certs._is_ip('localhost')


def test_expand_paths_keeps_order_and_literal_missing_paths(tmp_path):
    for name in ('b.pem', 'a.pem', 'c.crt'):
        (tmp_path / name).write_text('x')
    (tmp_path / 'dir.pem').mkdir()
    literal = str(tmp_path / 'missing.pem')
    paths, unmatched = _certs.expand_paths([literal, str(tmp_path / '*.pem'), str(tmp_path / 'a.pem'),
                                            str(tmp_path / '*.der')])
    assert paths == [literal, str(tmp_path / 'a.pem'), str(tmp_path / 'b.pem')]
    assert unmatched == [str(tmp_path / '*.der')]


def test_expiring_and_its_message():
    items = []
    for source, days in (('/a.pem', 20.0), ('/b.pem', 3.25), ('/c.pem', -1.5), ('/d.pem', None)):
        item = _certs.empty_item(source, 'file')
        if days is not None:
            item.update(subject='CN=' + source[1], days_left=days, not_after='2026-12-01T00:00:00Z')
        items.append(item)
    assert _certs.expiring(items, 14) == ['/b.pem', '/c.pem']
    assert _certs.expiring(items, 0) == ['/c.pem']
    assert _certs.expiring_message(items, 14) == (
        'certificates expiring within 14 days: /b.pem (CN=b, 3.2 days left, not after 2026-12-01T00:00:00Z); '
        '/c.pem (CN=c, expired 1.5 days ago, not after 2026-12-01T00:00:00Z)')


def test_textfile_of_nothing_has_only_the_headers():
    text = _certs.render_textfile([], NOW)
    lines = text.splitlines()
    assert len(lines) == 10 and all(line.startswith('# ') for line in lines)
    assert text.endswith('\n')


def test_textfile_days_left_is_floored_from_the_exact_time():
    item = _certs.empty_item('/y.pem', 'file')
    # 30 days less one second: days_left rounds to 30.0, the metric says 29.
    item.update(subject='CN=y', serial='2', not_after='2026-12-27T11:59:59Z', days_left=30.0)
    assert 'aiquiz_certificate_days_left{source="/y.pem",subject="CN=y",serial="2"} 29\n' in \
        _certs.render_textfile([item], NOW)


def test_textfile_days_left_is_floored_also_when_expired():
    item = _certs.empty_item('/x.pem', 'file')
    item.update(subject='CN=x', serial='1', not_after='2026-11-26T00:00:00Z', days_left=-1.5, chain_valid=False)
    text = _certs.render_textfile([item], NOW)
    labels = '{source="/x.pem",subject="CN=x",serial="1"}'
    assert 'aiquiz_certificate_days_left%s -2\n' % labels in text
    assert 'aiquiz_certificate_chain_valid%s 0\n' % labels in text
    assert 'aiquiz_certificate_key_match{' not in text
    assert 'aiquiz_certificate_expiry_seconds%s 1795651200\n' % labels in text
