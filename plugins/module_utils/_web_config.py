# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection (the leading _): no stable interface.

The web configuration file of Prometheus and Alertmanager (exporter-toolkit's
--web.config.file): tls_server_config and basic_auth_users with bcrypt hashes.
The file is written as JSON (a YAML document both programs read), so that it
can be read back without a YAML library on the host. A user's hash is kept
while it still verifies the password, so that a re-run changes nothing; the
hash and check functions are given by the caller (python3-bcrypt on the
host), which keeps this file testable without bcrypt.
"""

from __future__ import annotations

import json
import re

USER_RE = re.compile(r'[A-Za-z0-9_.@-]{1,64}')
BCRYPT_RE = re.compile(r'\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}')
HEADER = '# Managed by aiquiz.ops (prometheus_web_config): bcrypt hashes only, never a password.\n'


class WebConfigError(Exception):
    """Input an operator must fix; the message names the user, never a password."""


def check_users(users):
    """Stop on names that are not unique or not plain, and on empty or multi-line passwords."""
    seen = set()
    for index, user in enumerate(users):
        name = user.get('name') if isinstance(user, dict) else None
        if not isinstance(name, str) or not USER_RE.fullmatch(name):
            raise WebConfigError('users[%d]: name must be 1 to 64 letters, digits and _.@-, got %r' % (index, name))
        if name in seen:
            raise WebConfigError('users[%d]: user %s comes earlier' % (index, name))
        seen.add(name)
        password = user.get('password')
        if not isinstance(password, str) or not password:
            raise WebConfigError('user %s: the password must not be empty' % name)
        if '\n' in password or '\r' in password:
            raise WebConfigError('user %s: the password must be one line' % name)
        if len(password.encode('utf-8')) > 72:
            # bcrypt ignores what comes after 72 bytes: a longer password would verify by its prefix.
            raise WebConfigError('user %s: the password must be at most 72 bytes (bcrypt reads no more)' % name)


def parse(text):
    """The dictionary of a file this module wrote; {} for anything else (it is then rewritten)."""
    if not text:
        return {}
    body = ''.join(line for line in text.splitlines(True) if not line.startswith('#'))
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def existing_hashes(data):
    """{user: hash} of the basic_auth_users of a parsed file, well-formed bcrypt hashes only."""
    users = data.get('basic_auth_users')
    if not isinstance(users, dict):
        return {}
    return {name: value for name, value in users.items()
            if isinstance(name, str) and isinstance(value, str) and BCRYPT_RE.fullmatch(value)}


def build(users, old_hashes, hasher, checker, cert_file='', key_file=''):
    """(data, rehashed): the web configuration for these users and TLS files.

    A user keeps the hash of old_hashes when checker(password, hash) is true; otherwise
    hasher(password) makes a new one and the user is named in rehashed."""
    check_users(users)
    data = {}
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise WebConfigError('tls_cert_file and tls_key_file go together')
        data['tls_server_config'] = {'cert_file': cert_file, 'key_file': key_file, 'min_version': 'TLS12'}
    rehashed = []
    if users:
        hashes = {}
        for user in users:
            old = old_hashes.get(user['name'])
            if old and checker(user['password'], old):
                hashes[user['name']] = old
            else:
                hashes[user['name']] = hasher(user['password'])
                rehashed.append(user['name'])
        data['basic_auth_users'] = hashes
    return data, rehashed


def render(data):
    """The file's text: a header comment, then the data as indented JSON with sorted keys."""
    return HEADER + json.dumps(data, indent=2, sort_keys=True) + '\n'


def masked(data, rehashed=()):
    """The text of the data with every hash replaced, for --diff: a new hash shows as new."""
    shown = dict(data)
    if 'basic_auth_users' in shown:
        shown['basic_auth_users'] = {name: '<bcrypt hash, new>' if name in rehashed else '<bcrypt hash>'
                                     for name in shown['basic_auth_users']}
    return render(shown)
