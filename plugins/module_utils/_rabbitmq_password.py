# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the
# aiquiz.ops.rabbitmq_user_password module only. Its functions may change or
# go away in any release; do not import it from outside this collection.
#
# Runs on the managed host: Python 3.9+ and the standard library.

"""Compare a password with RabbitMQ's stored hash, and the rabbitmqctl calls
that set one with the password on standard input, never on a command line.

RabbitMQ stores base64(salt + H(salt + UTF-8 password)) with a 4-byte salt
and the hash function of the user's hashing_algorithm (SHA-256 by default,
SHA-512, or MD5 in old definitions); `rabbitmqctl export_definitions -`
prints it for every user. A password that matches needs no call at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

SALT_BYTES = 4
ALGORITHMS = {
    'rabbit_password_hashing_sha256': hashlib.sha256,
    'rabbit_password_hashing_sha512': hashlib.sha512,
    'rabbit_password_hashing_md5': hashlib.md5,
}
# Definitions without hashing_algorithm use the node's default, SHA-256.
DEFAULT_ALGORITHM = 'rabbit_password_hashing_sha256'


class PasswordError(Exception):
    """Something the operator can act on, named in the message."""


def password_matches(password, password_hash, algorithm=None):
    """Whether password is the one behind RabbitMQ's password_hash (False for an empty or unreadable hash)."""
    algorithm = algorithm or DEFAULT_ALGORITHM
    if algorithm not in ALGORITHMS:
        raise PasswordError('hashing algorithm %s is not one the module knows (%s)'
                            % (algorithm, ', '.join(sorted(ALGORITHMS))))
    if not password_hash:
        return False
    try:
        raw = base64.b64decode(password_hash, validate=True)
    except (binascii.Error, ValueError):
        return False
    salt, digest = raw[:SALT_BYTES], raw[SALT_BYTES:]
    if len(salt) < SALT_BYTES or not digest:
        return False
    ours = ALGORITHMS[algorithm](salt + password.encode('utf-8')).digest()
    return hmac.compare_digest(ours, digest)


def users_of(definitions_json):
    """{name: user entry} of `rabbitmqctl export_definitions -` output."""
    try:
        definitions = json.loads(definitions_json)
    except ValueError as exc:
        raise PasswordError('rabbitmqctl export_definitions printed no JSON: %s' % exc)
    if not isinstance(definitions, dict) or not isinstance(definitions.get('users', []), list):
        raise PasswordError('rabbitmqctl export_definitions printed no list of users')
    return {user.get('name'): user for user in definitions.get('users', []) if isinstance(user, dict)}


def decide(users, name, password):
    """What to do for one user: 'create', 'change' or None (the stored hash is of this password)."""
    user = users.get(name)
    if user is None:
        return 'create'
    if password_matches(password, user.get('password_hash', ''), user.get('hashing_algorithm')):
        return None
    return 'change'


def commands(rabbitmqctl, action, name):
    """The rabbitmqctl argv for action on user name: the password is left out, so rabbitmqctl reads it from stdin.

    Neither -q nor -n for those two: RabbitMQ 4.0's rabbitmqctl waits forever
    for a password on a stdin that is not a terminal when either is given
    (the node goes in the environment instead, see environment()).
    """
    return {
        'export': [rabbitmqctl, '-q', 'export_definitions', '-', '--format', 'json'],
        'create': [rabbitmqctl, 'add_user', name],
        'change': [rabbitmqctl, 'change_password', name],
    }[action]


def environment(node):
    """The environment that names the node for rabbitmqctl (it passes through Debian's su wrapper)."""
    return {'RABBITMQ_NODENAME': node} if node else {}


def check_password(password):
    """A password rabbitmqctl reads whole from one line of stdin."""
    if not password:
        raise PasswordError('the password is empty; use state=absent or clear it with rabbitmqctl clear_password')
    if '\n' in password or '\r' in password:
        raise PasswordError('the password holds a line break; rabbitmqctl reads one line from stdin')
