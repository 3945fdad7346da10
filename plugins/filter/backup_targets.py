# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters on backup targets: backup_targets (each target's CA file path resolved) and pgbackrest_conf (the
pgBackRest configuration of the targets, written by the backup role and by the restore role on a fresh host).

Their documentation is in backup_targets.yml and pgbackrest_conf.yml beside this file.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

PEM_CERT = re.compile(r'-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----')


def backup_targets(targets, ca_dir):
    """The targets with ca_file pointing at <ca_dir>/<name>-ca.pem where ca_cert is given."""
    if not isinstance(targets, list):
        raise AnsibleFilterError('backup_targets: expected a list of targets, got %s' % type(targets).__name__)
    resolved = []
    for target in targets:
        if not isinstance(target, dict):
            raise AnsibleFilterError('backup_targets: each target is a dictionary, got %s' % type(target).__name__)
        name = target.get('name', '?')
        cert = target.get('ca_cert') or ''
        if not cert:
            resolved.append(target)
            continue
        if target.get('ca_file'):
            raise AnsibleFilterError('backup target %s: set ca_cert (the PEM text) or ca_file (a file already on the '
                                     'host), not both' % name)
        if target.get('type') != 's3':
            raise AnsibleFilterError('backup target %s: ca_cert is for s3 targets only (type is %s)'
                                     % (name, target.get('type')))
        if not PEM_CERT.search(cert):
            raise AnsibleFilterError('backup target %s: ca_cert is not a PEM certificate (-----BEGIN CERTIFICATE----- '
                                     '... -----END CERTIFICATE-----)' % name)
        item = dict(target)
        item['ca_file'] = '%s/%s-ca.pem' % (ca_dir.rstrip('/'), name)
        resolved.append(item)
    return resolved


def _line_value(target, key, value):
    """A value that pgbackrest.conf holds on one line: a newline in it would write lines of its own."""
    text = str(value)
    if '\n' in text or '\r' in text:
        raise AnsibleFilterError('pgbackrest_conf: %s of backup target %s holds a line break'
                                 % (key, target.get('name', '?')))
    return text


def pgbackrest_conf(targets, stanza, cipher_pass, pg_version, pg_port=5432, generation=1, retention_full=2,
                    process_max=2):
    """pgbackrest.conf for stanza, one repository per target, of the given generation of repositories.

    Generation 1 keeps its repositories under pgbackrest/, generation N under pgbackrest-gN/: a rotation of the
    cipher passphrase starts a new generation and the old ones stay readable with their own configuration."""
    if not isinstance(targets, list) or not targets:
        raise AnsibleFilterError('pgbackrest_conf: expected a non-empty list of backup targets')
    generation = int(generation)
    if generation < 1:
        raise AnsibleFilterError('pgbackrest_conf: generation must be 1 or more, got %d' % generation)
    if not cipher_pass:
        raise AnsibleFilterError('pgbackrest_conf: the cipher passphrase is empty')
    for key, value in (('stanza', stanza), ('pg_version', pg_version)):
        if not re.match(r'^[A-Za-z0-9._-]+$', str(value)):
            raise AnsibleFilterError('pgbackrest_conf: %s %r is not a plain name' % (key, value))
    suffix = 'pgbackrest' if generation == 1 else 'pgbackrest-g%d' % generation
    lines = ['# Managed by aiquiz.ops (pgbackrest_conf); changes made here are overwritten.',
             '# pgBackRest repositories of stanza %s, generation %d: one per backup target.' % (stanza, generation),
             '[global]']
    for n, target in enumerate(targets, 1):
        if not isinstance(target, dict):
            raise AnsibleFilterError('pgbackrest_conf: each target is a dictionary, got %s' % type(target).__name__)
        repo = 'repo%d-' % n
        kind = target.get('type')
        if kind == 'local':
            lines.append(repo + 'path=%s/%s' % (_line_value(target, 'path', target['path']), suffix))
        elif kind == 's3':
            region = target.get('region') or 'us-east-1'
            prefix = ('%s/%s' % (target.get('prefix') or '', suffix)).lstrip('/')
            # (setting, the target's field it comes from, value)
            settings = [
                ('type', 'type', 's3'), ('path', 'prefix', '/' + prefix), ('s3-bucket', 'bucket', target['bucket']),
                ('s3-endpoint', 'endpoint', target.get('endpoint') or 's3.%s.amazonaws.com' % region),
                ('s3-region', 'region', region), ('s3-uri-style', 'uri_style', target.get('uri_style') or 'path'),
                ('storage-port', 'port', target.get('port') or 443), ('s3-key', 'access_key', target['access_key']),
                ('s3-key-secret', 'secret_key', target['secret_key']),
            ]
            if target.get('ca_file'):
                settings.append(('storage-ca-file', 'ca_file', target['ca_file']))
            if not target.get('verify_tls', True):
                settings.append(('storage-verify-tls', 'verify_tls', 'n'))
            lines.extend('%s%s=%s' % (repo, key, _line_value(target, field, value)) for key, field, value in settings)
        else:
            raise AnsibleFilterError('pgbackrest_conf: backup target %s has type %r (local or s3)'
                                     % (target.get('name', '?'), kind))
        lines.extend([repo + 'cipher-type=aes-256-cbc',
                      repo + 'cipher-pass=' + _line_value(target, 'cipher passphrase', cipher_pass),
                      repo + 'retention-full=%d' % int(retention_full)])
    lines.extend(['compress-type=zst', 'process-max=%d' % int(process_max), 'start-fast=y',
                  'log-level-console=warn', 'log-level-file=info', '',
                  '[%s]' % stanza, 'pg1-path=/var/lib/postgresql/%s/main' % pg_version, 'pg1-port=%d' % int(pg_port)])
    return '\n'.join(lines) + '\n'


class FilterModule:

    def filters(self):
        return {'backup_targets': backup_targets, 'pgbackrest_conf': pgbackrest_conf}
