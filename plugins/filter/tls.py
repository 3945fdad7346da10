# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the tls role's decisions: tls_certificate_errors,
tls_certificates_normalised, tls_rotation_reasons, tls_report,
tls_reader_errors (the readers entry point), and tls_summary for the
playbooks that run the role on several hosts.

Their documentation is in the .yml files of the same names beside this file.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames

ISSUERS = ('own_ca', 'acme')
CHALLENGES = ('http-01', 'dns-01')
ECDSA_SIZES = (256, 384)
SAN_PREFIX_RE = re.compile(r'^(DNS|IP):')
WILDCARD_SAN_RE = re.compile(r'^(DNS:)?\*\.')
MODE_RE = re.compile(r'^0?[0-7]{3}$')
# The date format of community.crypto.x509_certificate_info.
ASN1_TIME = '%Y%m%d%H%M%SZ'


def _int(value, default=0, base=10):
    """What the Jinja int filter gives: "42.5" is 42, anything else not a number is the default."""
    try:
        if isinstance(value, str):
            return int(value, base)
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def _items(value):
    """A list of what a list-valued field holds (None and text hold nothing to iterate)."""
    if value is None or isinstance(value, (str, Mapping)):
        return []
    return list(value)


def _certificates(certificates):
    if certificates is None:
        return []
    if isinstance(certificates, (str, Mapping)):
        raise AnsibleFilterError('tls: expects the list tls_certificates, got %r' % (certificates,))
    for index, cert in enumerate(certificates):
        if not isinstance(cert, Mapping):
            raise AnsibleFilterError('tls: tls_certificates[%d] is not a dictionary: %r' % (index, cert))
    return list(certificates)


def _san_ok(san):
    text = str(san)
    value = SAN_PREFIX_RE.sub('', text, count=1)
    if text.startswith('IP:'):
        return _netnames.is_ip_address(value)
    if text.startswith('DNS:'):
        return _netnames.is_dns_name(value, wildcard=True)
    return _netnames.is_dns_name(value, wildcard=True) or _netnames.is_ip_address(value)


def _key_errors(cert, where, rsa_min_size):
    key_type = cert.get('key_type', 'ecdsa')
    if key_type == 'rsa':
        if _int(cert.get('key_size', rsa_min_size)) < rsa_min_size:
            return ['%s key_size: %s is below the policy for RSA keys (at least %d bits)'
                    % (where, cert.get('key_size'), rsa_min_size)]
    elif key_type == 'ecdsa':
        if _int(cert.get('key_size', 256)) not in ECDSA_SIZES:
            return ['%s key_size: %s is not allowed for ECDSA keys (256 or 384)' % (where, cert.get('key_size'))]
    else:
        return ['%s key_type: "%s" is not rsa or ecdsa' % (where, key_type)]
    return []


def _issuer_errors(cert, where, issuer, sans, options):
    errors = []
    if issuer == 'own_ca':
        days = _int(cert.get('valid_days', options['own_ca_valid_days']))
        if days < 1:
            errors.append('%s valid_days: %s must be 1 or more' % (where, days))
        elif days < options['renew_before_days']:
            errors.append('%s valid_days: %d is shorter than tls_renew_before_days (%d): it would be renewed on every run'
                          % (where, days, options['renew_before_days']))
        if not options['ca_passphrase_set']:
            errors.append('%s issuer: own_ca needs tls_ca_passphrase (8 characters or more, from vault)' % where)
    elif issuer == 'acme':
        challenge = cert.get('challenge', options['acme_challenge'])
        if challenge not in CHALLENGES:
            errors.append('%s challenge: "%s" is not http-01 or dns-01' % (where, challenge))
        elif challenge == 'dns-01' and not options['dns01_hook_set']:
            errors.append('%s challenge: dns-01 needs tls_acme_dns01_hook (a task file that publishes TXT records)'
                          % where)
        elif challenge == 'http-01' and any(WILDCARD_SAN_RE.match(str(san)) for san in _items(sans)):
            errors.append('%s challenge: a wildcard name needs dns-01' % where)
    return errors


def _mode_errors(cert, where):
    mode = str(cert.get('mode', '0600'))
    if not MODE_RE.match(mode):
        return ['%s mode: "%s" is not an octal file mode such as "0600"' % (where, cert.get('mode'))]
    if int(mode, 8) % 8 != 0:
        return ['%s mode: "%s" would let every user read the private key' % (where, cert.get('mode'))]
    return []


def tls_certificate_errors(certificates, names=None, renew_before_days=30, tls_dir='/etc/aiquiz/tls',
                           rsa_min_size=2048, own_ca_valid_days=90, ca_passphrase_set=False,
                           acme_challenge='http-01', dns01_hook_set=False, consumer_units=None,
                           name_re=r'^[A-Za-z0-9][A-Za-z0-9_.-]*$'):
    """The list of errors of the declared certificates (empty when they are valid)."""
    certificates = _certificates(certificates)
    consumer_units = list(consumer_units or [])
    options = {'renew_before_days': renew_before_days, 'own_ca_valid_days': own_ca_valid_days,
               'ca_passphrase_set': bool(ca_passphrase_set), 'acme_challenge': acme_challenge,
               'dns01_hook_set': bool(dns01_hook_set)}
    errors = []
    if renew_before_days < 1:
        errors.append('tls_renew_before_days: %s must be 1 or more' % (renew_before_days,))
    if not str(tls_dir).startswith('/'):
        errors.append('tls_dir: "%s" is not an absolute path' % (tls_dir,))
    seen = []
    for index, cert in enumerate(certificates):
        where = 'tls_certificates[%d]' % index
        name = str(cert.get('name', ''))
        if not re.match(name_re, name):
            errors.append('%s.name: "%s" must be a letter or digit then letters, digits, ".", "_" or "-"'
                          % (where, name))
        elif name in seen:
            errors.append('%s.name: "%s" is declared twice' % (where, name))
        seen.append(name)
        where = 'certificate "%s" (%s)' % (name, where)

        sans = cert.get('sans', [])
        if isinstance(sans, str) or not sans:
            errors.append('%s sans: must be a list of at least one name or IP:address' % where)
        else:
            for san_index, san in enumerate(sans):
                if not _san_ok(san):
                    errors.append('%s sans[%d]: "%s" is not a DNS name or an IP address' % (where, san_index, san))

        issuer = cert.get('issuer', '')
        if issuer not in ISSUERS:
            errors.append('%s issuer: "%s" is not a known issuer (own_ca, acme)' % (where, issuer))
        errors.extend(_key_errors(cert, where, rsa_min_size))
        errors.extend(_issuer_errors(cert, where, issuer, sans, options))
        for consumer_index, consumer in enumerate(_items(cert.get('consumers'))):
            if consumer not in consumer_units:
                errors.append('%s consumers[%d]: "%s" is not in tls_consumer_units (%s)'
                              % (where, consumer_index, consumer, ', '.join(str(unit) for unit in consumer_units)))
        errors.extend(_mode_errors(cert, where))
    for name in names or []:
        if name not in seen:
            errors.append('tls_names: "%s" is not a declared certificate (%s)' % (name, ', '.join(seen)))
    return errors


def _normalised_san(san):
    text = str(san)
    value = SAN_PREFIX_RE.sub('', text, count=1)
    if text.startswith('IP:') or _netnames.is_ip_address(value):
        return 'IP:' + value.lower()
    return 'DNS:' + value.lower()


def tls_certificates_normalised(certificates, names=None, tls_dir='/etc/aiquiz/tls', rsa_min_size=2048,
                                own_ca_valid_days=90, acme_challenge='http-01'):
    """The selected certificates (all when names is empty), every default filled in."""
    names = list(names or [])
    out = []
    for cert in _certificates(certificates):
        if names and cert.get('name') not in names:
            continue
        sans = [_normalised_san(san) for san in _items(cert.get('sans'))]
        key_type = cert.get('key_type', 'ecdsa')
        if 'common_name' in cert:
            common_name = cert['common_name']
        else:
            common_name = SAN_PREFIX_RE.sub('', sans[0], count=1) if sans else ''
        out.append({
            'name': cert.get('name'),
            'sans': sans,
            'common_name': common_name,
            'issuer': cert.get('issuer'),
            'key_type': key_type,
            'key_size': _int(cert.get('key_size', rsa_min_size if key_type == 'rsa' else 256)),
            'valid_days': _int(cert.get('valid_days', own_ca_valid_days)),
            'challenge': cert.get('challenge', acme_challenge),
            'consumers': cert.get('consumers', []),
            'owner': cert.get('owner', 'root'),
            'group': cert.get('group', 'root'),
            'mode': str(cert.get('mode', '0600')),
            'dir': '%s/%s' % (tls_dir, cert.get('name')),
        })
    return out


def _get(mapping, *keys, default=None):
    """mapping[k1][k2]... or the default when a level is missing or not a dictionary."""
    for key in keys:
        if not isinstance(mapping, Mapping) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def _key_id(value):
    return str(value or '').replace(':', '').lower()


def tls_rotation_reasons(current_info, cert, force=False, renew_before_days=30, key_exists=True,
                         own_ca_signing_cn='', own_ca_cns=None, own_ca_key_id=''):
    """Why a certificate must be (re)issued; empty: it stays. A reason starting "signed by another own CA" (its
    authority key identifier is not own_ca_key_id, the signing CA's) is one the role stops on unless told to adopt."""
    if not isinstance(cert, Mapping):
        raise AnsibleFilterError('tls_rotation_reasons: expects a normalised certificate, got %r' % (cert,))
    current = current_info if isinstance(current_info, Mapping) else {}
    if 'not_after' not in current:
        return ['no certificate yet']
    reasons = []
    if force:
        reasons.append('forced')
    if not _get(current, 'valid_at', 'renew'):
        reasons.append('expires within %d days (%s)' % (renew_before_days, current['not_after']))
    have_sans = ','.join(sorted(str(san).lower() for san in current.get('subject_alt_name') or []))
    want_sans = ','.join(sorted(str(san).lower() for san in cert.get('sans', [])))
    if have_sans != want_sans:
        reasons.append('SANs changed')
    want_type = 'ECC' if cert.get('key_type') == 'ecdsa' else 'RSA'
    have_size = _get(current, 'public_key_data', 'exponent_size' if want_type == 'ECC' else 'size', default=0)
    if current.get('public_key_type') != want_type or have_size != cert.get('key_size'):
        reasons.append('key type or size changed')
    issuer_cn = _get(current, 'issuer', 'commonName', default='')
    if cert.get('issuer') == 'own_ca' and issuer_cn != own_ca_signing_cn:
        reasons.append('issuer changed')
    elif (cert.get('issuer') == 'own_ca' and _key_id(own_ca_key_id) and current.get('authority_key_identifier')
          and _key_id(current['authority_key_identifier']) != _key_id(own_ca_key_id)):
        reasons.append('signed by another own CA (authority key id %s; the own CA in tls_ca_dir is %s)'
                       % (current['authority_key_identifier'], own_ca_key_id))
    elif cert.get('issuer') == 'acme' and issuer_cn in (own_ca_cns or []):
        reasons.append('issuer changed')
    if not key_exists:
        reasons.append('private key missing')
    return reasons


def _asn1_time(value, what):
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.datetime.strptime(str(value), ASN1_TIME)
    except ValueError:
        raise AnsibleFilterError('tls_report: %s "%s" is not a time such as 20261231235959Z' % (what, value))


def tls_report(results, declared_names, rotated, now=None):
    """{rotated, unchanged, certificates, next_expiry} of the host's certificates."""
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc).strftime(ASN1_TIME)
    now = _asn1_time(now, 'now')
    rotated = list(rotated or [])
    certificates = []
    for result in results or []:
        if not isinstance(result, Mapping) or 'not_after' not in result:
            continue
        left = (_asn1_time(result['not_after'], 'not_after') - now).total_seconds() / 86400
        certificates.append({
            'name': result.get('item'),
            'serial': '%x' % (result.get('serial_number'),),
            'issuer': _get(result, 'issuer', 'commonName', default=''),
            'not_after': result['not_after'],
            'days_left': round(left, 2),
        })
    return {
        'rotated': rotated,
        'unchanged': [name for name in declared_names or [] if name not in rotated],
        'certificates': certificates,
        # min() keeps the first of equals, as a stable sort then first did.
        'next_expiry': min(certificates, key=lambda cert: cert['days_left']) if certificates else None,
    }


def tls_summary(hosts, hostvars):
    """{rotated, unchanged, next_expiry} of the tls_report facts of hosts, in their order."""
    rotated, unchanged, certificates = [], [], []
    for host in hosts or []:
        host_vars = hostvars[host]
        # Hosts the tls role did not run on have no report.
        if 'tls_report' not in host_vars:
            continue
        report = host_vars['tls_report']
        if not isinstance(report, Mapping):
            raise AnsibleFilterError('tls_summary: the tls_report of %s is not a dictionary: %r' % (host, report))
        rotated.extend('%s: %s' % (host, name) for name in report.get('rotated') or [])
        unchanged.extend('%s: %s' % (host, name) for name in report.get('unchanged') or [])
        certificates.extend(dict(cert, host=host) for cert in report.get('certificates') or [])
    return {
        'rotated': rotated,
        'unchanged': unchanged,
        # min() keeps the first of equals, as a stable sort then first did.
        'next_expiry': min(certificates, key=lambda cert: cert['days_left']) if certificates else None,
    }


def tls_reader_errors(results, host, pending=None):
    """One message per reader of the readers entry point whose user cannot read a file, naming the host, the
    user, the files, the variable to fix and how; readers of a certificate in ``pending`` (issued or rotated
    only in a check-mode run) are let through."""
    if not isinstance(results, list):
        raise AnsibleFilterError('tls_reader_errors: expected the results of the readers check, got %s'
                                 % type(results).__name__)
    pending = set(pending or [])
    messages = []
    for result in results:
        if not isinstance(result, Mapping) or result.get('skipped') or result.get('rc') == 0:
            continue
        reader = result.get('__tls_reader') or {}
        certificate = reader.get('certificate') or ''
        if certificate and certificate in pending:
            continue
        user = reader.get('user', '?')
        unreadable = [line for line in (result.get('stdout') or '').splitlines() if line.strip()]
        files = unreadable or list(reader.get('files') or [])
        if result.get('rc') not in (None, 1) and not unreadable:
            detail = (result.get('stderr') or result.get('msg') or '').strip()
            why = 'could not be checked as %s (rc %s: %s)' % (user, result.get('rc'), detail)
        else:
            why = 'are missing or not readable by %s' % user
        if certificate:
            fix = ('Declare the certificate %s (%s) in tls_certificates with a group %s is in and mode 0640.'
                   % (certificate, reader.get('variable', '?'), user))
        else:
            fix = 'Give them a group %s is in and mode 0640, or fix %s.' % (user, reader.get('variable', '?'))
        hint = (' ' + reader['hint']) if reader.get('hint') else ''
        messages.append('%s: %s (%s) %s: nothing else was changed. %s%s'
                        % (host, reader.get('variable', '?'), ', '.join(files), why, fix, hint))
    return messages


class FilterModule:

    def filters(self):
        return {
            'tls_reader_errors': tls_reader_errors,
            'tls_certificate_errors': tls_certificate_errors,
            'tls_certificates_normalised': tls_certificates_normalised,
            'tls_rotation_reasons': tls_rotation_reasons,
            'tls_report': tls_report,
            'tls_summary': tls_summary,
        }
