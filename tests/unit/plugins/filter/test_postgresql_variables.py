# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgresql_variable_errors: every message of the postgresql role's variable
check, in order, and the inputs it accepts. Cases marked "was:" were judged
otherwise by the Jinja program of roles/postgresql/tasks/validate.yml that the
filter replaces."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter import postgresql
from ansible_collections.aiquiz.ops.plugins.filter.postgresql import postgresql_variable_errors

ROLE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'postgresql'
HOSTS = {'db1': {}, 'db2': {}, 'db3': {}}
CERTIFICATES = [{'name': 'postgresql', 'issuer': 'own_ca'}, {'name': 'other', 'issuer': 'acme'}]
HBA = {'type': 'hostssl', 'database': 'appdb', 'user': 'app', 'address': ['10.0.0.0/8'], 'method': 'scram-sha-256'}
USER = {'name': 'app', 'password': 'secret'}
CONNINFO = ('host=db1 port=5432 user=replicator passfile=/var/lib/postgresql/.aiquiz-replication.pgpass'
            ' sslmode=verify-full sslrootcert=/etc/aiquiz/tls/postgresql/ca.pem application_name=db2')
BREAKS_CONNINFO = ("postgresql_replica_primary_host, postgresql_replication_user or postgresql_replication_ca_file:"
                   " a ' or , would break primary_conninfo")
NO_CA_FILE = ('postgresql_replication_ca_file: empty, and no postgresql_tls_certificate to take ca.pem from;'
              ' sslmode %s needs the CA that signed the certificate of db1')
NOT_DECLARED = 'postgresql_tls_certificate: "%s" is not a certificate of tls_certificates'


def primary(**overrides):
    """What the role's task passes for db1, a primary without replicas: its
    defaults, then what facts.yml and vars/main.yml derive."""
    defaults = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    variables = {name: defaults[name] for name in postgresql.VARIABLES if name in defaults}
    variables.update({
        'postgresql_version_effective': '15', 'distribution_major_version': '12', 'tls_certificates': [],
        'inventory_hostname': 'db1', '_postgresql_is_replica': False, '_postgresql_replicas': [],
        '_postgresql_primary_conninfo': 'sslmode=verify-full application_name=db1',
        '_postgresql_replication_ca_file': ''})
    variables.update(overrides)
    return variables


def replica(**overrides):
    """db2, a replica of db1 with a certificate of the own CA."""
    variables = primary(inventory_hostname='db2', postgresql_replica_of='db1', postgresql_replication_password='pw',
                        postgresql_tls_certificate='postgresql', tls_certificates=CERTIFICATES,
                        _postgresql_is_replica=True, _postgresql_primary_conninfo=CONNINFO,
                        _postgresql_replication_ca_file='/etc/aiquiz/tls/postgresql/ca.pem')
    variables.update(overrides)
    return variables


def hba(**fields):
    return [dict(HBA, **fields)]


def check(variables, hosts=None):
    return postgresql_variable_errors(variables, HOSTS if hosts is None else hosts)


ACCEPTED = [
    primary(),
    primary(postgresql_hba=hba()),
    primary(postgresql_hba=hba(address='10.0.0.5/32')),
    primary(postgresql_hba=hba(type='hostnossl')),
    primary(postgresql_hba=[{'type': 'local', 'database': 'all', 'user': 'all', 'method': 'peer'}]),
    primary(postgresql_hba=hba(type='local', address=[])),
    # host lines are plaintext only while TLS is on.
    primary(postgresql_hba=hba(type='host'), postgresql_tls_enabled=False),
    primary(postgresql_hba=hba(method='cert') + hba(method='reject') + hba(method='peer')),
    primary(postgresql_users=[USER, {'name': 'old', 'state': 'absent'}]),
    # A state that is not "present" (None too) is not checked, as before.
    primary(postgresql_users=[{'name': 'app', 'state': None}]),
    primary(postgresql_tls_certificate='postgresql', tls_certificates=CERTIFICATES),
    primary(_postgresql_replicas=['db2', 'db3'], postgresql_replication_password='pw'),
    replica(),
    replica(postgresql_replication_sslmode='require', postgresql_tls_certificate='', _postgresql_replication_ca_file=''),
    replica(postgresql_tls_certificate='', _postgresql_replication_ca_file='/etc/ssl/primary-ca.pem'),
    # A number where the argument spec wants text: its digits, as the spec reads them.
    # was: a template error (length of an int).
    replica(postgresql_replication_password=12345),
    primary(postgresql_users=[dict(USER, password=12345)]),
    # was: a template error (length of None).
    primary(postgresql_tls_certificate=None),
    # was: a template error (an entry without a name).
    primary(postgresql_tls_certificate='postgresql', tls_certificates=[{}, {'name': 'postgresql'}]),
]

REFUSED = [
    (primary(postgresql_version_effective=''), ['postgresql_version: Debian 12 has no PostgreSQL known to the role; set it']),
    (primary(postgresql_version_effective=None, distribution_major_version='14'),
     ['postgresql_version: Debian 14 has no PostgreSQL known to the role; set it']),
    (primary(postgresql_hba=hba(type='hosts')),
     ['postgresql_hba[0]: type "hosts" is not one of local, host, hostssl, hostnossl']),
    (primary(postgresql_hba=hba(method='trust')),
     ['postgresql_hba[0]: method "trust" is not one of scram-sha-256, peer, cert, reject']),
    (primary(postgresql_hba=hba(method='md5') + hba(method='password')), [
        'postgresql_hba[0]: method "md5" is not one of scram-sha-256, peer, cert, reject',
        'postgresql_hba[1]: method "password" is not one of scram-sha-256, peer, cert, reject']),
    (primary(postgresql_hba=hba(type='host')),
     ['postgresql_hba[0]: type host also admits connections without TLS; use hostssl']),
    # Truthiness, as the role's templates read it: extra vars "false" is text, and true.
    (primary(postgresql_hba=hba(type='host'), postgresql_tls_enabled='false'),
     ['postgresql_hba[0]: type host also admits connections without TLS; use hostssl']),
    (primary(postgresql_hba=hba(address=[])), ['postgresql_hba[0]: type hostssl needs an address']),
    (primary(postgresql_hba=hba(address='')), ['postgresql_hba[0]: type hostssl needs an address']),
    (primary(postgresql_hba=hba(address=None)), ['postgresql_hba[0]: type hostssl needs an address']),
    (primary(postgresql_hba=[{'type': 'hostssl', 'database': 'a', 'user': 'b', 'method': 'cert'}]),
     ['postgresql_hba[0]: type hostssl needs an address']),
    (primary(postgresql_hba=hba() + hba(type='host', address=[], method='ident')), [
        'postgresql_hba[1]: method "ident" is not one of scram-sha-256, peer, cert, reject',
        'postgresql_hba[1]: type host also admits connections without TLS; use hostssl',
        'postgresql_hba[1]: type host needs an address']),
    # was: a template error (an entry without a type).
    (primary(postgresql_hba=[{'database': 'a', 'user': 'b', 'address': '10.0.0.1/32', 'method': 'peer'}]),
     ['postgresql_hba[0]: type "None" is not one of local, host, hostssl, hostnossl']),
    # was: a template error (None is not iterable; a text was read one character at a time).
    (primary(postgresql_hba=None), ['postgresql_hba: "None" is not a list']),
    (primary(postgresql_hba='10.0.0.0/8'), ['postgresql_hba: "10.0.0.0/8" is not a list']),
    (primary(postgresql_hba=['hostssl all all 10.0.0.0/8 scram-sha-256']),
     ['postgresql_hba[0]: "hostssl all all 10.0.0.0/8 scram-sha-256" is not a dictionary']),
    (primary(postgresql_users=[{'name': 'app'}]), ['postgresql_users[0] (app): no password']),
    (primary(postgresql_users=[{'name': 'app', 'password': ''}]), ['postgresql_users[0] (app): no password']),
    (primary(postgresql_users=[{'name': 'app', 'password': None}]), ['postgresql_users[0] (app): no password']),
    (primary(postgresql_users=[{'name': 'app', 'password': 0}]), ['postgresql_users[0] (app): no password']),
    (primary(postgresql_users=[{'name': 'app', 'state': 'present'}]), ['postgresql_users[0] (app): no password']),
    (primary(postgresql_users=[USER, {'name': 'b'}, {'name': 'c', 'state': 'absent'}, {'name': 'd', 'password': ''}]), [
        'postgresql_users[1] (b): no password', 'postgresql_users[3] (d): no password']),
    # was: a template error.
    (primary(postgresql_users=None), ['postgresql_users: "None" is not a list']),
    (primary(postgresql_users=['app']), ['postgresql_users[0]: "app" is not a dictionary']),
    (primary(_postgresql_replicas=['db2']),
     ['postgresql_replication_password: empty, but this host is the primary of db2']),
    (primary(_postgresql_replicas=['db2', 'db3']),
     ['postgresql_replication_password: empty, but this host is the primary of db2, db3']),
    (replica(postgresql_replication_password=''), ['postgresql_replication_password: empty, but this host is a replica']),
    # was: a template error (length of None).
    (replica(postgresql_replication_password=None), ['postgresql_replication_password: empty, but this host is a replica']),
    (replica(postgresql_replica_of='db9'), ['postgresql_replica_of: "db9" is not an inventory host']),
    (replica(postgresql_replica_of='db2'), ['postgresql_replica_of: a host cannot be its own replica']),
    (primary(postgresql_tls_certificate='postgresql'), [NOT_DECLARED % 'postgresql']),
    # Checked with TLS off too.
    (primary(postgresql_tls_certificate='x', tls_certificates=CERTIFICATES, postgresql_tls_enabled=False),
     [NOT_DECLARED % 'x']),
    (primary(postgresql_tls_certificate='postgresql', tls_certificates=None), [NOT_DECLARED % 'postgresql']),
    (replica(_postgresql_primary_conninfo=CONNINFO.replace('host=db1', 'host=db1,db3')), [BREAKS_CONNINFO]),
    # libpq_conninfo quotes a value with a space, a quote or a backslash.
    (replica(_postgresql_primary_conninfo=CONNINFO.replace('user=replicator', "user='rep licator'")), [BREAKS_CONNINFO]),
    (replica(postgresql_tls_certificate='', _postgresql_replication_ca_file=''), [NO_CA_FILE % 'verify-full']),
    (replica(postgresql_tls_certificate='', _postgresql_replication_ca_file='', postgresql_replication_sslmode='verify-ca'),
     [NO_CA_FILE % 'verify-ca']),
]


@pytest.mark.parametrize('variables', ACCEPTED)
def test_accepted(variables):
    assert check(variables) == []


@pytest.mark.parametrize('variables, errors', REFUSED)
def test_refused(variables, errors):
    assert check(variables) == errors


def test_every_error_at_once_in_order():
    variables = replica(
        postgresql_version_effective='', distribution_major_version='13', postgresql_replica_of='db2',
        postgresql_hba=hba(type='host', address=[], method='md5'), postgresql_users=[{'name': 'app'}],
        postgresql_replication_password='', postgresql_tls_certificate='nope', _postgresql_replication_ca_file='',
        _postgresql_primary_conninfo="host='a b'")
    assert check(variables) == [
        'postgresql_version: Debian 13 has no PostgreSQL known to the role; set it',
        'postgresql_hba[0]: method "md5" is not one of scram-sha-256, peer, cert, reject',
        'postgresql_hba[0]: type host also admits connections without TLS; use hostssl',
        'postgresql_hba[0]: type host needs an address',
        'postgresql_users[0] (app): no password',
        'postgresql_replication_password: empty, but this host is a replica',
        'postgresql_replica_of: a host cannot be its own replica',
        NOT_DECLARED % 'nope',
        BREAKS_CONNINFO,
        NO_CA_FILE.replace('db1', 'db2') % 'verify-full']


def test_passwords_never_in_a_message():
    errors = check(replica(postgresql_replication_password='hunter2', postgresql_replica_of='db9',
                           postgresql_users=[{'name': 'app', 'password': 'hunter3', 'state': 'present'}, {'name': 'b'}]))
    assert errors == ['postgresql_users[1] (b): no password', 'postgresql_replica_of: "db9" is not an inventory host']
    assert not any('hunter' in error for error in errors)


class ReadOnce(dict):
    """The task's variables as Ansible hands them over: a value is templated
    when it is read; those named in unread must not be."""

    def __init__(self, variables, unread):
        super().__init__(variables)
        self.unread = unread

    def __getitem__(self, key):
        assert key not in self.unread, '%s was read' % key
        return super().__getitem__(key)


@pytest.mark.parametrize('variables', [
    primary(),
    primary(_postgresql_replicas=['db2'], postgresql_replication_password='pw'),
    # A replica of a host that is not in the inventory: its hostvars are not there to build from.
    replica(postgresql_replica_of='db9'),
])
def test_connection_string_read_only_for_a_replica_of_an_inventory_host(variables):
    check(ReadOnce(variables, {'_postgresql_primary_conninfo'}))


def test_primary_reads_nothing_of_a_replica():
    assert check(ReadOnce(primary(), {'_postgresql_primary_conninfo', '_postgresql_replication_ca_file',
                                      'postgresql_replication_sslmode', 'postgresql_replica_of'})) == []


class Membership:
    """Only "in" is asked of the hosts, as of hostvars (which also holds localhost)."""

    def __contains__(self, name):
        return name in ('db1', 'db2', 'localhost')


@pytest.mark.parametrize('name, errors', [
    ('db1', []), ('localhost', []), ('db9', ['postgresql_replica_of: "db9" is not an inventory host'])])
def test_hosts_are_asked_only_whether_they_hold_the_primary(name, errors):
    assert check(replica(postgresql_replica_of=name), Membership()) == errors


@pytest.mark.parametrize('value, replica_host', [(True, True), ('yes', True), (1, True), (False, False),
                                                 ('false', False), (0, False)])
def test_is_replica_read_as_the_bool_filter_reads_it(value, replica_host):
    errors = check(primary(_postgresql_is_replica=value, postgresql_replica_of='db9',
                           _postgresql_replication_ca_file='/etc/ssl/primary-ca.pem'))
    assert errors == (['postgresql_replication_password: empty, but this host is a replica',
                       'postgresql_replica_of: "db9" is not an inventory host'] if replica_host else [])


def test_input_must_hold_every_variable():
    variables = primary()
    del variables['postgresql_hba']
    del variables['_postgresql_replicas']
    with pytest.raises(AnsibleFilterError, match='variables missing from the input: postgresql_hba, _postgresql_replicas'):
        check(variables)
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        check(['postgresql_hba'])


def test_task_passes_every_variable():
    task = yaml.safe_load((ROLE / 'tasks' / 'validate.yml').read_text())[0]
    assert task['vars']['__postgresql_errors'] == (
        '{{ __postgresql_variables | aiquiz.ops.postgresql_variable_errors(hostvars) }}')
    passed = task['vars']['__postgresql_variables']
    assert sorted(passed) == sorted(postgresql.VARIABLES)
    # Each under its own name, but the release from the facts.
    assert all(value == '{{ %s }}' % name for name, value in passed.items()
               if name not in ('distribution_major_version', 'tls_certificates'))


def test_filter_is_registered():
    assert postgresql.FilterModule().filters() == {'postgresql_variable_errors': postgresql_variable_errors}
