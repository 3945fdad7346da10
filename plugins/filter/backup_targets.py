# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter backup_targets: backup targets as the host uses them (each target's CA file path resolved).

Its documentation is in backup_targets.yml beside this file.
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


class FilterModule:

    def filters(self):
        return {'backup_targets': backup_targets}
