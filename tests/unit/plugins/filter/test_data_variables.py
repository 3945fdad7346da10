# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis_variable_errors and rabbitmq_variable_errors: every message of the
data roles' variable checks, and the inputs they accept. Cases marked "was:"
were judged otherwise by the Jinja programs of roles/redis/tasks/main.yml and
roles/rabbitmq/tasks/main.yml that the filters replace."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter import rabbitmq, redis

ROLES = pathlib.Path(__file__).resolve().parents[4] / 'roles'
FILTERS = {'redis': redis, 'rabbitmq': rabbitmq}

PASSWORD = 'p' * 16
USER = {'name': 'quiz', 'password': 'secret', 'vhost': '/'}
REDIS_CERTIFICATES = [{'name': 'data1', 'issuer': 'own_ca'}, {'name': 'data2', 'issuer': 'own_ca'}]
RABBITMQ_CERTIFICATES = [{'name': 'mq1', 'issuer': 'own_ca'}, {'name': 'mq2', 'issuer': 'own_ca'}]
NEEDS_REDIS_TLS_SOURCE = ('redis_tls_enabled: set redis_tls_certificate, or redis_tls_cert_file, redis_tls_key_file'
                          ' and redis_tls_ca_file')
NEEDS_RABBITMQ_TLS_SOURCE = ('rabbitmq_tls_enabled: set rabbitmq_tls_certificate, or rabbitmq_tls_cert_file,'
                             ' rabbitmq_tls_key_file and rabbitmq_tls_ca_file')
NEEDS_TLS_SOURCE = {'redis': NEEDS_REDIS_TLS_SOURCE, 'rabbitmq': NEEDS_RABBITMQ_TLS_SOURCE}


def defaults(role):
    """What the role's task passes: its defaults (and a password), no tls_certificates."""
    variables = yaml.safe_load((ROLES / role / 'defaults' / 'main.yml').read_text())
    variables.setdefault('redis_password', PASSWORD)
    variables['tls_certificates'] = []
    # What the task derives from the inventory and the host (one host, no HA).
    variables.update({'%s_ha_host' % role: 'data1', '%s_ha_members' % role: {}})
    variables.update({'redis_ha_running_master': ''} if role == 'redis' else {'rabbitmq_ha_running': {}})
    return {name: variables[name] for name in FILTERS[role].VARIABLES}


def check(role, overrides):
    """The errors of the role's defaults with overrides."""
    variables = defaults(role)
    variables.update(copy.deepcopy(overrides))
    return FILTERS[role].FilterModule().filters()['%s_variable_errors' % role](variables)


def tls_files(role):
    return {'%s_tls_%s_file' % (role, kind): '/etc/%s/tls/%s.pem' % (role, kind) for kind in ('cert', 'key', 'ca')}


def redis_tls(**overrides):
    return dict(tls_files('redis'), redis_tls_enabled=True, **overrides)


def rabbitmq_tls(**overrides):
    return dict(tls_files('rabbitmq'), rabbitmq_tls_enabled=True, **overrides)


def user(**fields):
    return dict(USER, **fields)


# redis: overrides of the defaults that are valid.
REDIS_ACCEPTED = [
    {},
    {'redis_password': 'x' * 64},
    {'redis_bind': ['0.0.0.0']},
    {'redis_bind': ['10.0.0.5', '-fd00::5']},
    {'redis_maxmemory': '0'},
    {'redis_maxmemory': '1GB'},
    {'redis_maxmemory': '512k'},
    {'redis_maxmemory': '2g'},
    {'redis_maxmemory': '1048576'},
    {'redis_save': []},
    {'redis_save': ['900 1', '60 10000']},
    redis_tls(),
    {'redis_tls_enabled': True, 'redis_tls_certificate': 'data2', 'tls_certificates': REDIS_CERTIFICATES},
    # A certificate named wins over the files.
    {'redis_tls_enabled': True, 'redis_tls_certificate': 'data1', 'redis_tls_cert_file': '',
     'tls_certificates': REDIS_CERTIFICATES},
    redis_tls(redis_plaintext_port=6380),
    redis_tls(redis_plaintext_port=6380, redis_bind=['127.0.0.1', '-::1', 'localhost', '-127.0.0.2', '127.1']),
    redis_tls(redis_plaintext_port=0, redis_bind=['10.0.0.5']),
    # Without TLS the plaintext port, the TLS files and certificate are not read.
    {'redis_plaintext_port': 6379, 'redis_bind': ['10.0.0.5'], 'redis_tls_certificate': 'nowhere'},
    # Numbers where the argument spec wants text: their digits, as the spec reads them.
    # was: a template error (length of an int).
    {'redis_password': 12345678901234567890, 'redis_maxmemory': 0},
    # Extra vars arrive as text; the argument spec has checked that they are numbers.
    # was: a template error (%d of a text).
    redis_tls(redis_plaintext_port='0', redis_bind=['10.0.0.5'], redis_port='6379'),
]

# redis: overrides of the defaults, and the errors they give, in order.
REDIS_REFUSED = [
    ({'redis_password': 'p' * 15}, ['redis_password: shorter than 16 characters']),
    ({'redis_password': ''}, ['redis_password: shorter than 16 characters']),
    # was: a template error (length of None); the argument spec lets None through.
    ({'redis_password': None}, ['redis_password: shorter than 16 characters']),
    ({'redis_password': PASSWORD + '\n'}, ['redis_password: holds a line break']),
    ({'redis_password': PASSWORD + '\rx'}, ['redis_password: holds a line break']),
    ({'redis_password': 'short\n'}, ['redis_password: shorter than 16 characters', 'redis_password: holds a line break']),
    ({'redis_bind': []}, ['redis_bind: empty (Redis would listen on every address)']),
    ({'redis_maxmemory': 'lots'}, ['redis_maxmemory: "lots" is not a size such as 256mb or 0']),
    ({'redis_maxmemory': '256 mb'}, ['redis_maxmemory: "256 mb" is not a size such as 256mb or 0']),
    ({'redis_maxmemory': '1t'}, ['redis_maxmemory: "1t" is not a size such as 256mb or 0']),
    ({'redis_maxmemory': ''}, ['redis_maxmemory: "" is not a size such as 256mb or 0']),
    ({'redis_maxmemory': None}, ['redis_maxmemory: "None" is not a size such as 256mb or 0']),
    # was: accepted ("$" of the regular expression matched before a final newline).
    ({'redis_maxmemory': '256mb\n'}, ['redis_maxmemory: "256mb\n" is not a size such as 256mb or 0']),
    # was: the items were numbered among the invalid ones only (redis_save[0] for "300").
    ({'redis_save': ['900 1', '300', 'x y', '60 10000', '1  2', 5]}, [
        'redis_save[1]: "300" is not "seconds changes"',
        'redis_save[2]: "x y" is not "seconds changes"',
        'redis_save[4]: "1  2" is not "seconds changes"',
        'redis_save[5]: "5" is not "seconds changes"']),
    # was: accepted.
    ({'redis_save': ['3600 1\n']}, ['redis_save[0]: "3600 1\n" is not "seconds changes"']),
    ({'redis_tls_enabled': True}, [NEEDS_REDIS_TLS_SOURCE]),
    ({'redis_tls_enabled': True, 'redis_tls_cert_file': '/a.pem', 'redis_tls_key_file': '/k.pem'}, [NEEDS_REDIS_TLS_SOURCE]),
    # was: a template error (length of None).
    (redis_tls(redis_tls_ca_file=None), [NEEDS_REDIS_TLS_SOURCE]),
    ({'redis_tls_enabled': True, 'redis_tls_certificate': 'data3', 'tls_certificates': REDIS_CERTIFICATES},
     ['redis_tls_certificate: "data3" is not a certificate of tls_certificates']),
    ({'redis_tls_enabled': True, 'redis_tls_certificate': 'data1'},
     ['redis_tls_certificate: "data1" is not a certificate of tls_certificates']),
    # was: a template error (an entry without a name).
    ({'redis_tls_enabled': True, 'redis_tls_certificate': 'data1', 'tls_certificates': [{}, 'data1', {'name': 'x'}]},
     ['redis_tls_certificate: "data1" is not a certificate of tls_certificates']),
    ({'redis_tls_enabled': True, 'redis_tls_certificate': 'data1', 'tls_certificates': None},
     ['redis_tls_certificate: "data1" is not a certificate of tls_certificates']),
    (redis_tls(redis_plaintext_port=6380, redis_bind=['10.0.0.5', '-::1', '127.0.0.1', '-fd00::5']), [
        'redis_plaintext_port: 6380 would take plaintext clients on 10.0.0.5, -fd00::5 too (redis_bind); set it to 0'
        ' or bind loopback only']),
    (redis_tls(redis_plaintext_port=6380, redis_bind=['0.0.0.0', '-::*']), [
        'redis_plaintext_port: 6380 would take plaintext clients on 0.0.0.0, -::* too (redis_bind); set it to 0'
        ' or bind loopback only']),
    # was: accepted as loopback.
    (redis_tls(redis_plaintext_port=6380, redis_bind=['localhost\n']), [
        'redis_plaintext_port: 6380 would take plaintext clients on localhost\n too (redis_bind); set it to 0'
        ' or bind loopback only']),
    (redis_tls(redis_plaintext_port=6379), ['redis_plaintext_port: the TLS port (redis_port) already is 6379']),
    # Remote binds are the first thing to fix; the same port is told after.
    (redis_tls(redis_plaintext_port=6379, redis_bind=['10.0.0.5']), [
        'redis_plaintext_port: 6379 would take plaintext clients on 10.0.0.5 too (redis_bind); set it to 0'
        ' or bind loopback only']),
    # was: a template error (%d of a text).
    (redis_tls(redis_plaintext_port='6380', redis_bind=['10.0.0.5']), [
        'redis_plaintext_port: 6380 would take plaintext clients on 10.0.0.5 too (redis_bind); set it to 0'
        ' or bind loopback only']),
    (redis_tls(redis_plaintext_port='6379', redis_port='6379'), ['redis_plaintext_port: the TLS port (redis_port) already is 6379']),
    # The argument spec refuses None for an int; the filter names it all the same.
    (redis_tls(redis_plaintext_port=None), ['redis_plaintext_port: "None" is not a port number']),
    # A list option given as text passes the argument spec (as a comma-separated list) but stays text.
    # was: accepted (redis.conf would have bound each character).
    ({'redis_bind': '127.0.0.1'}, ['redis_bind: "127.0.0.1" is not a list']),
    ({'redis_bind': ''}, ['redis_bind: "" is not a list']),
    ({'redis_save': '900 1'}, ['redis_save: "900 1" is not a list']),
    (redis_tls(redis_plaintext_port=6380, redis_bind='10.0.0.5'), ['redis_bind: "10.0.0.5" is not a list']),
]

# rabbitmq: overrides of the defaults that are valid.
RABBITMQ_ACCEPTED = [
    {},
    {'rabbitmq_nodename': 'rabbit@mq1.example'},
    {'rabbitmq_nodename': 'rabbit_1.a-b@h_2'},
    {'rabbitmq_bind': ['::', '10.0.0.1']},
    {'rabbitmq_users': [USER]},
    {'rabbitmq_users': [user(vhost='/quiz'), {'name': 'ops', 'password': 'x'}], 'rabbitmq_vhosts': ['/', '/quiz']},
    {'rabbitmq_users': [{'name': 'guest', 'password': 'guest'}], 'rabbitmq_remove_guest': False},
    # An absent user needs no password and no declared vhost.
    {'rabbitmq_users': [{'name': 'old', 'state': 'absent', 'vhost': '/gone'}]},
    {'rabbitmq_erlang_dist_address': '10.0.0.5'},
    {'rabbitmq_erlang_dist_address': '0.0.0.0'},
    rabbitmq_tls(),
    {'rabbitmq_tls_enabled': True, 'rabbitmq_tls_certificate': 'mq2', 'tls_certificates': RABBITMQ_CERTIFICATES},
    # Without TLS the TLS port, files and certificate are not read.
    {'rabbitmq_tls_port': 5672, 'rabbitmq_tls_certificate': 'nowhere'},
    # A number where the argument spec wants text: its digits, as the spec reads them.
    # was: a template error (length of an int).
    {'rabbitmq_users': [user(password=12345)]},
]

# rabbitmq: overrides of the defaults, and the errors they give, in order.
RABBITMQ_REFUSED = [
    ({'rabbitmq_nodename': 'rabbit'}, ['rabbitmq_nodename: "rabbit" is not name@host']),
    ({'rabbitmq_nodename': 'rabbit@'}, ['rabbitmq_nodename: "rabbit@" is not name@host']),
    ({'rabbitmq_nodename': 'rab bit@host'}, ['rabbitmq_nodename: "rab bit@host" is not name@host']),
    ({'rabbitmq_nodename': 'a@b@c'}, ['rabbitmq_nodename: "a@b@c" is not name@host']),
    ({'rabbitmq_nodename': None}, ['rabbitmq_nodename: "None" is not name@host']),
    # was: accepted ("$" of the regular expression matched before a final newline).
    ({'rabbitmq_nodename': 'rabbit@localhost\n'}, ['rabbitmq_nodename: "rabbit@localhost\n" is not name@host']),
    ({'rabbitmq_bind': []}, ['rabbitmq_bind: empty']),
    ({'rabbitmq_users': [{'name': 'guest', 'password': 'guest'}]}, [
        'rabbitmq_users[0]: guest is removed (rabbitmq_remove_guest); declare another user']),
    # Declaring guest absent is still declaring it.
    ({'rabbitmq_users': [{'name': 'guest', 'state': 'absent'}]}, [
        'rabbitmq_users[0]: guest is removed (rabbitmq_remove_guest); declare another user']),
    ({'rabbitmq_users': [{'name': 'quiz'}]}, ['rabbitmq_users[0] (quiz): no password']),
    ({'rabbitmq_users': [user(password='')]}, ['rabbitmq_users[0] (quiz): no password']),
    ({'rabbitmq_users': [user(password=None)]}, ['rabbitmq_users[0] (quiz): no password']),
    ({'rabbitmq_users': [user(password=0)]}, ['rabbitmq_users[0] (quiz): no password']),
    ({'rabbitmq_users': [user(password='a\nb')]}, ['rabbitmq_users[0] (quiz): the password holds a line break']),
    ({'rabbitmq_users': [user(password='a\rb')]}, ['rabbitmq_users[0] (quiz): the password holds a line break']),
    ({'rabbitmq_users': [user(vhost='/quiz')]}, ['rabbitmq_users[0] (quiz): vhost "/quiz" is not in rabbitmq_vhosts']),
    ({'rabbitmq_users': [user(vhost=None)]}, ['rabbitmq_users[0] (quiz): vhost "None" is not in rabbitmq_vhosts']),
    ({'rabbitmq_users': [USER, {'name': 'guest'}, user(name='a', password='x\n', vhost='v'),
                         {'name': 'b', 'state': 'absent', 'vhost': 'v'}]}, [
        'rabbitmq_users[1]: guest is removed (rabbitmq_remove_guest); declare another user',
        'rabbitmq_users[1] (guest): no password',
        'rabbitmq_users[2] (a): the password holds a line break',
        'rabbitmq_users[2] (a): vhost "v" is not in rabbitmq_vhosts']),
    ({'rabbitmq_erlang_dist_address': '::1'}, ['rabbitmq_erlang_dist_address: "::1" is not an IPv4 address']),
    ({'rabbitmq_erlang_dist_address': '::ffff:10.0.0.1'}, [
        'rabbitmq_erlang_dist_address: "::ffff:10.0.0.1" is not an IPv4 address']),
    ({'rabbitmq_erlang_dist_address': 'localhost'}, ['rabbitmq_erlang_dist_address: "localhost" is not an IPv4 address']),
    ({'rabbitmq_erlang_dist_address': '10.0.0.300'}, [
        'rabbitmq_erlang_dist_address: "10.0.0.300" is not an IPv4 address']),
    ({'rabbitmq_erlang_dist_address': '10.0.0.0/8'}, [
        'rabbitmq_erlang_dist_address: "10.0.0.0/8" is not an IPv4 address']),
    ({'rabbitmq_erlang_dist_address': ' 10.0.0.5'}, ['rabbitmq_erlang_dist_address: " 10.0.0.5" is not an IPv4 address']),
    ({'rabbitmq_erlang_dist_address': None}, ['rabbitmq_erlang_dist_address: "None" is not an IPv4 address']),
    ({'rabbitmq_tls_enabled': True}, [NEEDS_RABBITMQ_TLS_SOURCE]),
    ({'rabbitmq_tls_enabled': True, 'rabbitmq_tls_key_file': '/k.pem'}, [NEEDS_RABBITMQ_TLS_SOURCE]),
    # was: a template error (length of None).
    (rabbitmq_tls(rabbitmq_tls_cert_file=None), [NEEDS_RABBITMQ_TLS_SOURCE]),
    ({'rabbitmq_tls_enabled': True, 'rabbitmq_tls_certificate': 'mq3', 'tls_certificates': RABBITMQ_CERTIFICATES},
     ['rabbitmq_tls_certificate: "mq3" is not a certificate of tls_certificates']),
    ({'rabbitmq_tls_enabled': True, 'rabbitmq_tls_certificate': 'mq1'},
     ['rabbitmq_tls_certificate: "mq1" is not a certificate of tls_certificates']),
    # was: a template error (an entry without a name).
    ({'rabbitmq_tls_enabled': True, 'rabbitmq_tls_certificate': 'mq1', 'tls_certificates': [{}, 'mq1']},
     ['rabbitmq_tls_certificate: "mq1" is not a certificate of tls_certificates']),
    (rabbitmq_tls(rabbitmq_tls_port=5672), ['rabbitmq_tls_port: the same as rabbitmq_port (5672)']),
    # Extra vars arrive as text; the argument spec has checked that they are numbers.
    # was: accepted ("5672" is not 5672), and with both as text a template error (%d of a text).
    (rabbitmq_tls(rabbitmq_tls_port='5672'), ['rabbitmq_tls_port: the same as rabbitmq_port (5672)']),
    (rabbitmq_tls(rabbitmq_tls_port='5672', rabbitmq_port='5672'), ['rabbitmq_tls_port: the same as rabbitmq_port (5672)']),
    # A list option given as text passes the argument spec (as a comma-separated list) but stays text.
    # was: accepted; "/" was looked up in the text "/".
    ({'rabbitmq_bind': '127.0.0.1'}, ['rabbitmq_bind: "127.0.0.1" is not a list']),
    ({'rabbitmq_vhosts': '/', 'rabbitmq_users': [USER]}, ['rabbitmq_vhosts: "/" is not a list']),
    # The argument spec refuses these; the filter names them all the same.
    ({'rabbitmq_users': 'quiz'}, ['rabbitmq_users: "quiz" is not a list']),
    ({'rabbitmq_users': ['quiz', {'password': 'p'}]}, [
        'rabbitmq_users[0]: "quiz" is not a dictionary']),
]


def cases(**lists):
    return [(role, *case) if isinstance(case, tuple) else (role, case) for role, items in lists.items() for case in items]


@pytest.mark.parametrize('role, overrides', cases(redis=REDIS_ACCEPTED, rabbitmq=RABBITMQ_ACCEPTED))
def test_accepted(role, overrides):
    assert check(role, overrides) == []


@pytest.mark.parametrize('role, overrides, errors', cases(redis=REDIS_REFUSED, rabbitmq=RABBITMQ_REFUSED))
def test_refused(role, overrides, errors):
    assert check(role, overrides) == errors


@pytest.mark.parametrize('role, overrides, errors', [
    ('redis', {'redis_password': 'x\n', 'redis_bind': [], 'redis_maxmemory': 'big', 'redis_save': ['1', '2 2', 'x'],
               'redis_tls_enabled': True, 'redis_tls_certificate': 'nope', 'tls_certificates': REDIS_CERTIFICATES,
               'redis_plaintext_port': 6379}, [
        'redis_password: shorter than 16 characters',
        'redis_password: holds a line break',
        'redis_bind: empty (Redis would listen on every address)',
        'redis_maxmemory: "big" is not a size such as 256mb or 0',
        'redis_save[0]: "1" is not "seconds changes"',
        'redis_save[2]: "x" is not "seconds changes"',
        'redis_tls_certificate: "nope" is not a certificate of tls_certificates',
        'redis_plaintext_port: the TLS port (redis_port) already is 6379']),
    ('rabbitmq', {'rabbitmq_nodename': 'x', 'rabbitmq_bind': [], 'rabbitmq_users': [{'name': 'guest', 'vhost': 'v'}],
                  'rabbitmq_erlang_dist_address': '::', 'rabbitmq_tls_enabled': True,
                  'rabbitmq_tls_certificate': 'no', 'rabbitmq_tls_port': 5672}, [
        'rabbitmq_nodename: "x" is not name@host',
        'rabbitmq_bind: empty',
        'rabbitmq_users[0]: guest is removed (rabbitmq_remove_guest); declare another user',
        'rabbitmq_users[0] (guest): no password',
        'rabbitmq_users[0] (guest): vhost "v" is not in rabbitmq_vhosts',
        'rabbitmq_erlang_dist_address: "::" is not an IPv4 address',
        'rabbitmq_tls_certificate: "no" is not a certificate of tls_certificates',
        'rabbitmq_tls_port: the same as rabbitmq_port (5672)']),
])
def test_every_error_at_once_in_order(role, overrides, errors):
    assert check(role, overrides) == errors


@pytest.mark.parametrize('role, overrides, secret', [
    ('redis', {'redis_password': 'hunter2\n'}, 'hunter2'),
    ('rabbitmq', {'rabbitmq_users': [user(password='hunter2\n', vhost='/x')]}, 'hunter2'),
])
def test_passwords_never_in_a_message(role, overrides, secret):
    errors = check(role, overrides)
    assert len(errors) == 2
    assert not any(secret in error for error in errors)


@pytest.mark.parametrize('role', FILTERS)
@pytest.mark.parametrize('enabled', [True, 'yes', 1])
def test_tls_enabled_read_as_the_templates_read_it(role, enabled):
    assert check(role, {'%s_tls_enabled' % role: enabled}) == [NEEDS_TLS_SOURCE[role]]


@pytest.mark.parametrize('role', FILTERS)
@pytest.mark.parametrize('enabled', [False, '', 0, None])
def test_tls_disabled(role, enabled):
    assert check(role, {'%s_tls_enabled' % role: enabled}) == []


@pytest.mark.parametrize('role', FILTERS)
def test_input_must_hold_every_variable(role):
    errors = FILTERS[role].FilterModule().filters()['%s_variable_errors' % role]
    variables = defaults(role)
    del variables['%s_bind' % role]
    del variables['tls_certificates']
    with pytest.raises(AnsibleFilterError, match='variables missing from the input: %s_bind, tls_certificates' % role):
        errors(variables)
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        errors(['%s_bind' % role])


@pytest.mark.parametrize('role', FILTERS)
def test_task_passes_every_variable(role):
    tasks = yaml.safe_load((ROLES / role / 'tasks' / 'main.yml').read_text())
    task = [task for task in tasks if '__%s_errors' % role in task.get('vars', {})][0]
    assert task['vars']['__%s_errors' % role] == '{{ __%s_variables | aiquiz.ops.%s_variable_errors }}' % (role, role)
    assert sorted(task['vars']['__%s_variables' % role]) == sorted(FILTERS[role].VARIABLES)


@pytest.mark.parametrize('role', FILTERS)
def test_filter_is_registered(role):
    name = '%s_variable_errors' % role
    assert FILTERS[role].FilterModule().filters()[name] is getattr(FILTERS[role], name)
