# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's variables read as its argument specs take them (_role_variables)."""

from __future__ import annotations

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _role_variables as rv


@pytest.mark.parametrize('value, text', [
    ('abc', 'abc'), ('', ''), (None, ''), (6380, '6380'), (2.5, '2.5'), (True, 'True')])
def test_text(value, text):
    assert rv.text(value) == text


@pytest.mark.parametrize('value, number', [
    (6380, 6380), ('6380', 6380), (' 6380 ', 6380), ('0', 0), (None, None), ('', None), ('port', None), ([], None)])
def test_integer(value, number):
    assert rv.integer(value) == number


@pytest.mark.parametrize('value', [[], ['a'], ('a', 'b')])
def test_items_of_a_list(value):
    errors = []
    assert rv.items(errors, {'x_list': value}, 'x_list') == list(value)
    assert errors == []


@pytest.mark.parametrize('value, shown', [('a,b', 'a,b'), ('', ''), (None, 'None'), ({'a': 1}, "{'a': 1}")])
def test_items_of_anything_else_is_reported(value, shown):
    errors = ['earlier']
    assert rv.items(errors, {'x_list': value}, 'x_list') is None
    assert errors == ['earlier', 'x_list: "%s" is not a list' % shown]


@pytest.mark.parametrize('value, broken', [('ab', False), ('a\nb', True), ('a\r', True), ('', False)])
def test_has_line_break(value, broken):
    assert rv.has_line_break(value) is broken


def test_variables_of():
    assert rv.variables_of({'a': 1, 'b': None}, ('a', 'b'), 'f') == {'a': 1, 'b': None}
    with pytest.raises(ValueError, match='^f: variables missing from the input: b, c$'):
        rv.variables_of({'a': 1}, ('a', 'b', 'c'), 'f')
    with pytest.raises(ValueError, match=r"^f: expects a dict of the role variables, got \['a'\]$"):
        rv.variables_of(['a'], ('a',), 'f')


FILES = {'x_tls_cert_file': '/c', 'x_tls_key_file': '/k', 'x_tls_ca_file': '/ca'}
NEEDS = 'x_tls_enabled: set x_tls_certificate, or x_tls_cert_file, x_tls_key_file and x_tls_ca_file'


def tls_variables(certificate='', certificates=None, **files):
    variables = dict(FILES, x_tls_certificate=certificate, tls_certificates=certificates or [])
    variables.update(files)
    return variables


@pytest.mark.parametrize('variables, errors', [
    (tls_variables(), []),
    (tls_variables('web', [{'name': 'web'}]), []),
    (tls_variables('web', [{'name': 'db'}, {'name': 'web'}], x_tls_cert_file=''), []),
    (tls_variables(x_tls_key_file=''), [NEEDS]),
    (tls_variables(x_tls_ca_file=None), [NEEDS]),
    (tls_variables(None, x_tls_cert_file='', x_tls_key_file='', x_tls_ca_file=''), [NEEDS]),
    (tls_variables('web'), ['x_tls_certificate: "web" is not a certificate of tls_certificates']),
    (tls_variables('web', [{'name': 'db'}, {}, 'web']), ['x_tls_certificate: "web" is not a certificate of tls_certificates']),
    (dict(tls_variables('web'), tls_certificates=None), ['x_tls_certificate: "web" is not a certificate of tls_certificates']),
])
def test_tls_source_errors(variables, errors):
    assert rv.tls_source_errors(variables, 'x') == errors


@pytest.mark.parametrize('variables, errors', [
    # No certificate named: nothing to check (the files are another role's rule).
    ({'x_tls_certificate': '', 'tls_certificates': []}, []),
    ({'x_tls_certificate': None, 'tls_certificates': None}, []),
    ({'x_tls_certificate': 'web', 'tls_certificates': [{'name': 'db'}, {'name': 'web'}]}, []),
    ({'x_tls_certificate': 'web', 'tls_certificates': []}, ['x_tls_certificate: "web" is not a certificate of tls_certificates']),
    ({'x_tls_certificate': 'web', 'tls_certificates': [{}, 'web']},
     ['x_tls_certificate: "web" is not a certificate of tls_certificates']),
])
def test_declared_certificate_errors(variables, errors):
    assert rv.declared_certificate_errors(variables, 'x') == errors


@pytest.mark.parametrize('value, expected', [
    (0, 0), (8080, 8080), ('6380', 6380), (' 42 ', 42),
    (True, None), (False, None), (-1, -1), ('-1', None), ('1.5', None), (2.5, None), (None, None), ('', None),
])
def test_whole_number_takes_ints_and_digits_only(value, expected):
    assert rv.whole_number(value) == expected
