# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the
# aiquiz.ops.certificate_inventory module only. Its functions may change or go
# away in any release; do not import it from outside this collection.
#
# Runs on the managed host: Python 3.9+, the standard library and
# cryptography 38 or later (Debian 12's python3-cryptography). Only APIs that
# cryptography 38 has are used: no load_pem_x509_certificates (39),
# verify_directly_issued_by (40), signature_algorithm_parameters (41) or
# not_valid_after_utc (42) unless present. Private keys are read only to
# compare their public half with the certificate's; nothing of them is
# returned, logged or kept.

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import glob
import math
import os
import re
import socket
import ssl

from ansible_collections.aiquiz.ops.plugins.module_utils import _files

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
    from cryptography.x509.oid import SignatureAlgorithmOID
except ImportError:  # reported by the module with missing_required_lib()
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

UTC = datetime.timezone.utc
# Mode of the textfile (node exporter runs as its own user).
FILE_MODE = 0o644
DIR_MODE = 0o755
# Longest chain followed from a leaf to a trust anchor.
MAX_DEPTH = 10
PEM_CERT = re.compile(
    br'-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----\s*(.+?)\s*-----END (?:X509 |TRUSTED )?CERTIFICATE-----',
    re.S)
GLOB_CHARS = re.compile(r'[*?[]')
METRIC_PREFIX = 'aiquiz_certificate_'


class CertError(Exception):
    """A problem with one scanned item, reported in its error field."""


def validate_params(params):
    """Return a list of readable errors in the module arguments."""
    errors = []
    if params['min_days'] < 0:
        errors.append('min_days must be >= 0, got %d' % params['min_days'])
    if params['timeout'] <= 0:
        errors.append('timeout must be > 0, got %s' % params['timeout'])
    for index, endpoint in enumerate(params['endpoints'] or []):
        if not endpoint.get('host'):
            errors.append('endpoints[%d].host must not be empty' % index)
        if not 1 <= endpoint['port'] <= 65535:
            errors.append('endpoints[%d].port must be 1-65535, got %d' % (index, endpoint['port']))
    textfile = params.get('textfile')
    if textfile:
        if not os.path.isabs(textfile):
            errors.append('textfile must be an absolute path, got %s' % textfile)
        if not textfile.endswith('.prom'):
            errors.append('textfile must end with .prom (the node exporter reads only those), got %s' % textfile)
    for cert_path in params['keys'] or {}:
        if not os.path.isabs(cert_path):
            errors.append('keys: %s is not an absolute certificate path' % cert_path)
    return errors


# --- reading certificates ------------------------------------------------


def split_certificates(data):
    """DER of each certificate in data: PEM blocks, or data itself as one DER certificate."""
    blocks = PEM_CERT.findall(data)
    if blocks:
        ders = []
        for block in blocks:
            try:
                ders.append(base64.b64decode(b''.join(block.split()), validate=True))
            except (binascii.Error, ValueError):
                raise CertError('a PEM certificate block is not valid base64')
        return ders
    if data.startswith(b'\x30'):
        return [data]
    if b'-----BEGIN' in data:
        raise CertError('no certificate in the file (PEM of another kind only)')
    raise CertError('not a PEM or DER certificate')


def load_certificates(data):
    """x509.Certificate objects of data (PEM, several allowed, or one DER)."""
    certs = []
    for der in split_certificates(data):
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise CertError('cannot parse certificate: %s' % exc)
    return certs


def not_before(cert):
    value = getattr(cert, 'not_valid_before_utc', None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=UTC)


def not_after(cert):
    value = getattr(cert, 'not_valid_after_utc', None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=UTC)


def iso(moment):
    return moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def subject_alt_names(cert):
    """SANs as DNS:<name>, IP:<address>, email:<addr>, URI:<uri> (openssl's form)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = []
    for general in ext:
        if isinstance(general, x509.DNSName):
            names.append('DNS:%s' % general.value)
        elif isinstance(general, x509.IPAddress):
            names.append('IP:%s' % general.value)
        elif isinstance(general, x509.RFC822Name):
            names.append('email:%s' % general.value)
        elif isinstance(general, x509.UniformResourceIdentifier):
            names.append('URI:%s' % general.value)
        elif isinstance(general, x509.DirectoryName):
            names.append('DirName:%s' % general.value.rfc4514_string())
        else:
            names.append('othername:%s' % type(general).__name__)
    return names


def describe(cert, now):
    """The returned facts of one certificate."""
    expires = not_after(cert)
    return dict(
        subject=cert.subject.rfc4514_string(),
        sans=subject_alt_names(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial='%x' % cert.serial_number,
        not_before=iso(not_before(cert)),
        not_after=iso(expires),
        days_left=round((expires - now).total_seconds() / 86400.0, 3),
    )


# --- chain validation ----------------------------------------------------


# Hashes of RSASSA-PSS parameters (RFC 4055), by OID.
PSS_HASHES = {
    '1.3.14.3.2.26': 'SHA1',
    '2.16.840.1.101.3.4.2.4': 'SHA224',
    '2.16.840.1.101.3.4.2.1': 'SHA256',
    '2.16.840.1.101.3.4.2.2': 'SHA384',
    '2.16.840.1.101.3.4.2.3': 'SHA512',
}


def _tlv(data, offset):
    """(tag, start of content, end of content) of the DER element at offset."""
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7f
        length = int.from_bytes(data[start:start + count], 'big')
        start += count
    end = start + length
    if end > len(data):
        raise ValueError('truncated DER')
    return tag, start, end


def _children(data, start, end):
    offset = start
    while offset < end:
        tag, child_start, child_end = _tlv(data, offset)
        yield tag, child_start, child_end
        offset = child_end


def _oid(data):
    first = data[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in data[1:]:
        value = (value << 7) | (byte & 0x7f)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return '.'.join(str(arc) for arc in arcs)


def _algorithm_hash(data, start, end):
    """Hash of an AlgorithmIdentifier SEQUENCE's content (an OID, maybe parameters)."""
    for tag, child_start, child_end in _children(data, start, end):
        if tag == 0x06:
            return _hash_named(PSS_HASHES.get(_oid(data[child_start:child_end])))
    raise ValueError('no algorithm OID')


def _hash_named(name):
    if name is None:
        raise ValueError('unsupported hash in RSASSA-PSS parameters')
    return getattr(hashes, name)()


def pss_parameters(cert):
    """(hash, MGF1 hash) of a RSASSA-PSS certificate, read from its DER (cryptography < 41)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    _tag, start, end = _tlv(der, 0)
    parts = list(_children(der, start, end))
    _tag, alg_start, alg_end = parts[1]  # signatureAlgorithm, after tbsCertificate
    hash_algorithm = mgf_hash = hashes.SHA1()  # the RFC 4055 defaults
    for tag, child_start, child_end in _children(der, alg_start, alg_end):
        if tag != 0x30:
            continue
        for field, field_start, field_end in _children(der, child_start, child_end):
            _inner, seq_start, seq_end = _tlv(der, field_start)
            if field == 0xa0:
                hash_algorithm = _algorithm_hash(der, seq_start, seq_end)
            elif field == 0xa1:
                # MGF1 with its own AlgorithmIdentifier of the hash.
                for sub, sub_start, sub_end in _children(der, seq_start, seq_end):
                    if sub == 0x30:
                        mgf_hash = _algorithm_hash(der, sub_start, sub_end)
    return hash_algorithm, mgf_hash


def _verify_pss(key, cert, data, signature):
    params = getattr(cert, 'signature_algorithm_parameters', None)
    if params is not None:
        # cryptography >= 41 reads the PSS parameters itself.
        key.verify(signature, data, params, cert.signature_hash_algorithm)
        return
    hash_algorithm, mgf_hash = pss_parameters(cert)
    key.verify(signature, data, padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=padding.PSS.AUTO),
               hash_algorithm)


def signed_by(cert, issuer):
    """True when issuer's public key verifies cert's signature (RSA, ECDSA, EdDSA, DSA)."""
    key = issuer.public_key()
    data = cert.tbs_certificate_bytes
    signature = cert.signature
    try:
        if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
            return True
        if isinstance(key, rsa.RSAPublicKey) and cert.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
            _verify_pss(key, cert, data, signature)
            return True
        hash_algorithm = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, data, hash_algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, IndexError):
        return False
    return True


def _key_identifier(cert, ext_class):
    try:
        value = cert.extensions.get_extension_for_class(ext_class).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    if ext_class is x509.AuthorityKeyIdentifier:
        return value.key_identifier
    return value.digest


def _may_issue(cert, candidate):
    """Cheap pre-check before the signature: names and key identifiers agree."""
    if candidate.subject != cert.issuer:
        return False
    authority = _key_identifier(cert, x509.AuthorityKeyIdentifier)
    subject_key = _key_identifier(candidate, x509.SubjectKeyIdentifier)
    return authority is None or subject_key is None or authority == subject_key


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _dated(cert, now):
    if now < not_before(cert):
        return 'not valid before %s' % iso(not_before(cert))
    if now > not_after(cert):
        return 'expired on %s' % iso(not_after(cert))
    return None


def check_chain(leaf, intermediates, anchors, now):
    """(valid, reason): a path from leaf through intermediates to one of anchors.

    Every certificate on the path must be within its dates and signed by the
    next one; intermediates must be CA certificates. anchors are trusted as
    they are (their own signature is not checked, their dates are).
    """
    anchor_ders = set(a.public_bytes(serialization.Encoding.DER) for a in anchors)
    current = leaf
    seen = set()
    for _depth in range(MAX_DEPTH):
        problem = _dated(current, now)
        label = current.subject.rfc4514_string() or '(empty subject)'
        if problem:
            return False, '%s: %s' % (label, problem)
        der = current.public_bytes(serialization.Encoding.DER)
        if der in anchor_ders:
            return True, None
        seen.add(der)
        for anchor in anchors:
            if _may_issue(current, anchor) and signed_by(current, anchor):
                problem = _dated(anchor, now)
                if problem:
                    return False, 'CA %s: %s' % (anchor.subject.rfc4514_string(), problem)
                return True, None
        issuer = None
        for candidate in intermediates:
            candidate_der = candidate.public_bytes(serialization.Encoding.DER)
            if candidate_der in seen or not _may_issue(current, candidate):
                continue
            if signed_by(current, candidate):
                issuer = candidate
                break
        if issuer is None:
            return False, 'no trusted issuer verifies %s (issuer %s)' % (
                label, current.issuer.rfc4514_string())
        if not _is_ca(issuer):
            return False, 'issuer %s is not a CA certificate' % issuer.subject.rfc4514_string()
        current = issuer
    return False, 'chain longer than %d certificates' % MAX_DEPTH


def load_ca_file(path):
    """Trust anchors from a PEM file; raises CertError."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise CertError('cannot read ca_file %s: %s' % (path, exc.strerror or exc))
    try:
        anchors = load_certificates(data)
    except CertError as exc:
        raise CertError('ca_file %s: %s' % (path, exc))
    return anchors


# --- private keys --------------------------------------------------------


def _public_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches(cert, key_path):
    """Whether the private key in key_path belongs to cert. Raises CertError.

    The key is loaded only to derive its public key; messages never quote the
    file's content.
    """
    try:
        with open(key_path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise CertError('cannot read key %s: %s' % (key_path, exc.strerror or exc))
    try:
        if b'-----BEGIN' in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except TypeError:
        raise CertError('key %s is encrypted; it cannot be checked without its passphrase' % key_path)
    except (ValueError, UnsupportedAlgorithm):
        raise CertError('key %s is not a readable PEM or DER private key' % key_path)
    finally:
        data = None
    return _public_der(key.public_key()) == _public_der(cert.public_key())


# --- the items -----------------------------------------------------------


def empty_item(source, kind):
    return dict(source=source, type=kind, subject=None, sans=[], issuer=None, serial=None, not_before=None,
                not_after=None, days_left=None, key_match=None, chain_valid=None, chain_error=None,
                chain_length=0, error=None)


def _fill(item, certs, key_path, anchors, now):
    leaf = certs[0]
    item.update(describe(leaf, now))
    item['chain_length'] = len(certs)
    if anchors is not None:
        item['chain_valid'], item['chain_error'] = check_chain(leaf, certs[1:], anchors, now)
    if key_path:
        try:
            item['key_match'] = key_matches(leaf, key_path)
        except CertError as exc:
            item['error'] = str(exc)
    return item


def scan_file(path, key_path, anchors, now):
    """One item for a certificate file (its first certificate; the rest is its chain)."""
    item = empty_item(path, 'file')
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
        certs = load_certificates(data)
    except (IOError, OSError) as exc:
        item['error'] = 'cannot read %s: %s' % (path, exc.strerror or exc)
        return item
    except CertError as exc:
        item['error'] = '%s: %s' % (path, exc)
        return item
    return _fill(item, certs, key_path, anchors, now)


def endpoint_source(endpoint):
    host = endpoint['host']
    shown = '[%s]' % host if ':' in host else host
    source = '%s:%d' % (shown, endpoint['port'])
    name = endpoint.get('server_name')
    if name and name != host:
        source = '%s@%s' % (name, source)
    return source


def _der_of(cert):
    if isinstance(cert, bytes):
        return cert
    return cert.public_bytes(ssl._ssl.ENCODING_DER)  # pylint: disable=protected-access


def fetch_chain(host, port, server_name, timeout):
    """DER certificates the server sends (leaf first), without verifying them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=server_name or None) as tls:
            chain = None
            # Public from Python 3.13; the same method is on the private
            # _sslobj since 3.10.
            getter = getattr(tls, 'get_unverified_chain', None)
            if getter is None:
                getter = getattr(getattr(tls, '_sslobj', None), 'get_unverified_chain', None)
            if getter is not None:
                chain = getter()
            if chain:
                return [_der_of(cert) for cert in chain]
            leaf = tls.getpeercert(binary_form=True)
            return [leaf] if leaf else []


def scan_endpoint(endpoint, anchors, now, timeout):
    """One item for a TLS endpoint: the certificate it serves and the chain it sends."""
    item = empty_item(endpoint_source(endpoint), 'endpoint')
    host, port = endpoint['host'], endpoint['port']
    server_name = endpoint.get('server_name')
    if server_name is None and not _is_ip(host):
        server_name = host
    try:
        ders = fetch_chain(host, port, server_name, timeout)
    except socket.timeout:
        item['error'] = 'no TLS answer from %s:%d within %s s' % (host, port, timeout)
        return item
    except (ssl.SSLError, socket.error, OSError) as exc:
        item['error'] = 'TLS connection to %s:%d failed: %s' % (host, port, exc)
        return item
    if not ders:
        item['error'] = '%s:%d sent no certificate' % (host, port)
        return item
    try:
        certs = [x509.load_der_x509_certificate(der) for der in ders]
    except ValueError as exc:
        item['error'] = '%s:%d sent an unreadable certificate: %s' % (host, port, exc)
        return item
    return _fill(item, certs, None, anchors, now)


def _is_ip(host):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except (OSError, ValueError):
            continue
    return False


def expand_paths(patterns):
    """(paths, unmatched): patterns expanded (globs sorted), each path once, in order.

    A literal path is kept even when missing (its item reports the error); a
    glob that matches nothing is returned in unmatched.
    """
    paths, unmatched, seen = [], [], set()
    for pattern in patterns:
        if GLOB_CHARS.search(pattern):
            matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not matches:
                unmatched.append(pattern)
        else:
            matches = [pattern]
        for path in matches:
            if path not in seen:
                seen.add(path)
                paths.append(path)
    return paths, unmatched


def utc_now():
    return datetime.datetime.now(UTC)


def scan(params, now):
    """Scan every file and endpoint at time now; return (items, unmatched globs). Raises CertError for ca_file."""
    anchors = load_ca_file(params['ca_file']) if params.get('ca_file') else None
    keys = params.get('keys') or {}
    paths, unmatched = expand_paths(params.get('paths') or [])
    items = [scan_file(path, keys.get(path), anchors, now) for path in paths]
    for endpoint in params.get('endpoints') or []:
        items.append(scan_endpoint(endpoint, anchors, now, params['timeout']))
    return items, unmatched


def expiring(items, min_days):
    return [item['source'] for item in items if item['days_left'] is not None and item['days_left'] < min_days]


def expiring_message(items, min_days):
    parts = []
    for item in items:
        if item['days_left'] is not None and item['days_left'] < min_days:
            state = 'expired %.1f days ago' % -item['days_left'] if item['days_left'] < 0 else \
                '%.1f days left' % item['days_left']
            parts.append('%s (%s, %s, not after %s)' % (item['source'], item['subject'], state, item['not_after']))
    return 'certificates expiring within %d days: %s' % (min_days, '; '.join(parts))


# --- node exporter textfile ----------------------------------------------


def _label(value):
    return str(value).replace('\\', '\\\\').replace('\n', '\\n').replace('"', '\\"')


def _labels(pairs):
    return '{%s}' % ','.join('%s="%s"' % (name, _label(value)) for name, value in pairs)


METRICS = (
    ('expiry_seconds', 'Unix time at which the certificate expires (notAfter).'),
    ('days_left', 'Whole days left before the certificate expires (negative once expired).'),
    ('chain_valid', '1 when the chain verifies against the CA file, 0 when not.'),
    ('key_match', '1 when the private key belongs to the certificate, 0 when not.'),
    ('scan_error', '1 when the certificate or its key could not be read, else 0.'),
)


def render_textfile(items, now):
    """The node exporter textfile of the items: stable while the certificates are unchanged.

    days_left is whole days (floor) from now to notAfter, so the file changes
    at most once a day per certificate; use expiry_seconds - time() for
    finer alerts.
    """
    now_ts = calendar.timegm(now.astimezone(UTC).timetuple()) + now.microsecond / 1e6
    samples = dict((name, []) for name, _help in METRICS)
    for item in items:
        source = [('source', item['source'])]
        samples['scan_error'].append((_labels(source), '1' if item['error'] else '0'))
        if item['not_after'] is None:
            continue
        labels = _labels(source + [('subject', item['subject']), ('serial', item['serial'])])
        expires = calendar.timegm(datetime.datetime.strptime(item['not_after'], '%Y-%m-%dT%H:%M:%SZ').timetuple())
        samples['expiry_seconds'].append((labels, '%d' % expires))
        samples['days_left'].append((labels, '%d' % math.floor((expires - now_ts) / 86400.0)))
        if item['chain_valid'] is not None:
            samples['chain_valid'].append((labels, '1' if item['chain_valid'] else '0'))
        if item['key_match'] is not None:
            samples['key_match'].append((labels, '1' if item['key_match'] else '0'))
    lines = []
    for name, text in METRICS:
        metric = METRIC_PREFIX + name
        lines.append('# HELP %s %s' % (metric, text))
        lines.append('# TYPE %s gauge' % metric)
        lines.extend('%s%s %s' % (metric, labels, value) for labels, value in samples[name])
    return '\n'.join(lines) + '\n'


def read_text(path):
    """Content of path, or None when it does not exist."""
    try:
        with open(path, 'r', encoding='utf-8') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if not os.path.exists(path):
            return None
        raise CertError('cannot read textfile %s: %s' % (path, exc.strerror or exc))
    except UnicodeDecodeError:
        return ''


def write_atomic(path, text):
    """Write text to a temporary file beside path (not *.prom), fsync it, rename it over path."""
    _files.write_atomic(path, text, FILE_MODE, DIR_MODE)


def file_mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None
