# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for libpq's own formats: libpq_conninfo and pgpass_line.

Their documentation is in libpq_conninfo.yml and pgpass_line.yml beside this file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _text(value, what, filter_name):
    if value is None or isinstance(value, (bool, dict, list)):
        raise AnsibleFilterError('%s: %s must be a string or a number, got %r' % (filter_name, what, value))
    return str(value)


def _value(value):
    """value as libpq reads it: bare when it can be, else quoted with backslash and single quote escaped."""
    if any(c.isspace() or c in "'\\" for c in value):
        return "'%s'" % value.replace('\\', '\\\\').replace("'", "\\'")
    return value


def libpq_conninfo(params):
    """A libpq connection string (key=value ...) of params, in their order; empty values left out.

    A value holding white space, a single quote or a backslash is quoted (and
    those escaped), so that it stays one value; others stay bare, as
    PostgreSQL shows primary_conninfo.
    """
    name = 'libpq_conninfo'
    if not isinstance(params, Mapping):
        raise AnsibleFilterError('%s: expects a dictionary of connection parameters, got %r' % (name, params))
    parts = []
    for key, value in params.items():
        key = _text(key, 'a key', name)
        if not key or not all(c.isalnum() or c == '_' for c in key):
            raise AnsibleFilterError('%s: %r is not a connection parameter name' % (name, key))
        if key == 'password':
            # Connection strings end up in command lines and in postgresql.auto.conf.
            raise AnsibleFilterError('%s: no password in a connection string; use a passfile' % name)
        value = '' if value is None else _text(value, key, name)
        if value == '':
            continue
        parts.append('%s=%s' % (key, _value(value)))
    return ' '.join(parts)


def pgpass_line(password, host='*', port='*', database='*', user='*'):
    """One line of a libpq password file: host:port:database:user:password, with ':' and '\\' escaped."""
    name = 'pgpass_line'
    fields = []
    for what, value in (('host', host), ('port', port), ('database', database), ('user', user),
                        ('password', password)):
        value = _text(value, what, name)
        if '\n' in value or '\r' in value:
            raise AnsibleFilterError('%s: the %s holds a line break' % (name, what))
        if value == '':
            raise AnsibleFilterError('%s: the %s is empty' % (name, what))
        fields.append(value if value == '*' and what != 'password' else value.replace('\\', '\\\\').replace(':', '\\:'))
    return ':'.join(fields)


class FilterModule:

    def filters(self):
        return {
            'libpq_conninfo': libpq_conninfo,
            'pgpass_line': pgpass_line,
        }
