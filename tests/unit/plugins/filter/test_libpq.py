# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.libpq import libpq_conninfo, pgpass_line


def test_conninfo_keeps_the_order_and_leaves_out_empty_values():
    assert libpq_conninfo({'host': 'db1', 'port': 5432, 'user': 'replicator', 'sslrootcert': '',
                           'sslmode': 'verify-full', 'application_name': None}) == \
        "host=db1 port=5432 user=replicator sslmode=verify-full"


@pytest.mark.parametrize('value, quoted', [
    ("/path with space/ca.pem", "'/path with space/ca.pem'"),
    ("tab\there", "'tab\there'"),
    ("it's", "'it\\'s'"),
    ("back\\slash", "'back\\\\slash'"),
    ("a=b", "a=b"),
    ("/etc/aiquiz/tls/postgresql/ca.pem", "/etc/aiquiz/tls/postgresql/ca.pem"),
])
def test_conninfo_keeps_odd_values_one_value(value, quoted):
    assert libpq_conninfo({'sslrootcert': value}) == 'sslrootcert=' + quoted


@pytest.mark.parametrize('params, message', [
    ({'password': 'secret'}, 'no password in a connection string'),
    ({'host name': 'x'}, 'is not a connection parameter name'),
    ({'host': ['a']}, 'host must be a string'),
    ('host=db1', 'expects a dictionary'),
])
def test_conninfo_refuses(params, message):
    with pytest.raises(AnsibleFilterError, match=message):
        libpq_conninfo(params)


def test_pgpass_line_escapes_colons_and_backslashes():
    assert pgpass_line('pa:ss\\word', 'db1', 5432, '*', 'replicator') == 'db1:5432:*:replicator:pa\\:ss\\\\word'
    assert pgpass_line('x') == '*:*:*:*:x'
    # A literal '*' password is a password, and stays one.
    assert pgpass_line('*', 'db1') == 'db1:*:*:*:*'


@pytest.mark.parametrize('args, message', [
    (('two\nlines',), 'the password holds a line break'),
    (('',), 'the password is empty'),
    (('x', ''), 'the host is empty'),
    ((None,), 'password must be a string'),
])
def test_pgpass_line_refuses(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        pgpass_line(*args)
