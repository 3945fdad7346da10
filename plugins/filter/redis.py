# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter redis_variable_errors: what the redis role's argument specs cannot
express, every error at once, each naming the variable.

Its documentation is in redis_variable_errors.yml beside this file.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _role_variables as rv

MIN_PASSWORD_LENGTH = 16
# Redis's memory units: bytes, k, kb, m, mb, g, gb, in any case.
MAXMEMORY_RE = re.compile(r'[0-9]+([kmg]b?)?', re.IGNORECASE)
SAVE_RE = re.compile(r'[0-9]+ [0-9]+')
# A loopback bind address ("-" in front: skipped when absent). Looser than an
# address parser on purpose: Redis reads 127.1 as 127.0.0.1, and what is not
# loopback is only ever refused.
LOOPBACK_RE = re.compile(r'-?(127\.[0-9.]+|::1|localhost)')

VARIABLES = ('redis_password', 'redis_bind', 'redis_port', 'redis_maxmemory', 'redis_save', 'redis_tls_enabled',
             'redis_tls_certificate', 'redis_tls_cert_file', 'redis_tls_key_file', 'redis_tls_ca_file',
             'redis_plaintext_port', 'tls_certificates')


def _plaintext_port_errors(v, bind):
    port = rv.integer(v['redis_plaintext_port'])
    if port is None:
        return ['redis_plaintext_port: "%s" is not a port number' % (v['redis_plaintext_port'],)]
    if port == 0:
        return []
    remote = [str(address) for address in bind or [] if not LOOPBACK_RE.fullmatch(rv.text(address))]
    if remote:
        return ['redis_plaintext_port: %d would take plaintext clients on %s too (redis_bind); set it to 0 or bind'
                ' loopback only' % (port, ', '.join(remote))]
    if port == rv.integer(v['redis_port']):
        return ['redis_plaintext_port: the TLS port (redis_port) already is %d' % port]
    return []


def redis_variable_errors(variables):
    """The list of errors of the redis variables (empty when they are valid)."""
    v = rv.variables_of(variables, VARIABLES, 'redis_variable_errors', AnsibleFilterError)
    errors = []
    password = rv.text(v['redis_password'])
    if len(password) < MIN_PASSWORD_LENGTH:
        errors.append('redis_password: shorter than %d characters' % MIN_PASSWORD_LENGTH)
    if rv.has_line_break(password):
        errors.append('redis_password: holds a line break')
    bind = rv.items(errors, v, 'redis_bind')
    if bind == []:
        errors.append('redis_bind: empty (Redis would listen on every address)')
    if not MAXMEMORY_RE.fullmatch(rv.text(v['redis_maxmemory'])):
        errors.append('redis_maxmemory: "%s" is not a size such as 256mb or 0' % (v['redis_maxmemory'],))
    for index, item in enumerate(rv.items(errors, v, 'redis_save') or []):
        if not SAVE_RE.fullmatch(rv.text(item)):
            errors.append('redis_save[%d]: "%s" is not "seconds changes"' % (index, item))
    # Truthiness, as the role's templates read it.
    if v['redis_tls_enabled']:
        errors.extend(rv.tls_source_errors(v, 'redis'))
        errors.extend(_plaintext_port_errors(v, bind))
    return errors


class FilterModule:

    def filters(self):
        return {'redis_variable_errors': redis_variable_errors}
