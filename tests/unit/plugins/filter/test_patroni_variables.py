# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""patroni_variable_errors: every message of the patroni role's variable check,
and the inputs it accepts."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter import patroni
from ansible_collections.aiquiz.ops.plugins.filter.patroni import patroni_variable_errors

ROLE = pathlib.Path(__file__).resolve().parents[4] / 'roles' / 'patroni'
MEMBERS = ['db1', 'db2', 'db3']


def node(host, cluster_name='quiz', running_scope='', etcd_token=''):
    return {'host': host, 'cluster_name': cluster_name, 'running_scope': running_scope, 'etcd_token': etcd_token}


def variables(**overrides):
    """What the role's task passes for db1 of a new cluster of three."""
    defaults = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    values = {name: defaults[name] for name in patroni.VARIABLES if name in defaults}
    values.update({
        'patroni_cluster_name': 'quiz',
        'patroni_members': list(MEMBERS),
        'patroni_etcd_members': list(MEMBERS),
        'patroni_superuser_password': 's',
        'patroni_replication_password': 'r',
        'patroni_restapi_password': 'p',
        'inventory_hostname': 'db1',
        '_patroni_nodes': [node(host) for host in MEMBERS],
        'tls_certificates': [],
    })
    values.update(overrides)
    return values


def test_defaults_of_a_new_cluster_are_valid():
    assert patroni_variable_errors(variables()) == []


def test_a_running_cluster_of_the_same_name_is_valid():
    nodes = [node(host, running_scope='quiz', etcd_token='quiz') for host in MEMBERS]
    assert patroni_variable_errors(variables(_patroni_nodes=nodes)) == []


def test_members_outside_the_play_are_not_judged():
    assert patroni_variable_errors(variables(_patroni_nodes=[node('db1'), {}, {}])) == []


@pytest.mark.parametrize('etcd', [['db1', 'db2'], ['db1', 'db2', 'db3', 'db4'], []])
def test_an_even_number_of_etcd_members_is_refused(etcd):
    members = sorted(set(MEMBERS + etcd))
    errors = patroni_variable_errors(variables(patroni_members=members, patroni_etcd_members=etcd))
    assert errors == ['patroni_etcd_members: %d members (%s); etcd needs an odd number (3 or 5) so that a quorum'
                      ' survives the loss of one' % (len(etcd), ', '.join(etcd) or 'none')]


def test_etcd_members_outside_the_cluster_are_refused():
    errors = patroni_variable_errors(variables(patroni_etcd_members=['db1', 'db2', 'db9']))
    assert errors == ["patroni_etcd_members: db9 not in patroni_members; etcd runs on the cluster's own hosts"]


def test_a_renamed_cluster_is_refused_naming_the_variable():
    nodes = [node('db1', cluster_name='renamed', running_scope='quiz', etcd_token='quiz')]
    errors = patroni_variable_errors(variables(patroni_cluster_name='renamed', _patroni_nodes=nodes))
    assert errors == [
        'patroni_cluster_name: "renamed", but Patroni on db1 already runs cluster "quiz"; a running cluster is never'
        ' renamed (set it back, or rebuild the host: docs/user-guide/data.md)',
        'patroni_cluster_name: "renamed", but the etcd of db1 is a member of cluster "quiz"']


def test_a_node_of_another_cluster_is_refused():
    nodes = [node('db1'), node('db2', running_scope='billing'), node('db3', etcd_token='billing')]
    errors = patroni_variable_errors(variables(_patroni_nodes=nodes))
    assert errors == ['patroni_members: db2 already belongs to cluster "billing" (its Patroni runs it)',
                      'patroni_members: db3 already belongs to cluster "billing" (its etcd is a member of it)']


def test_a_member_declaring_another_cluster_name_is_refused():
    errors = patroni_variable_errors(variables(_patroni_nodes=[node('db1'), node('db2', cluster_name='other')]))
    assert errors == ['patroni_members: db2 names cluster "other" (its patroni_cluster_name), this host "quiz"']


@pytest.mark.parametrize('name', ['', None, 'Quiz', '-quiz', 'quiz/main', 'a' * 64])
def test_bad_cluster_names_are_refused(name):
    errors = patroni_variable_errors(variables(patroni_cluster_name=name,
                                               _patroni_nodes=[node(h, cluster_name=name) for h in MEMBERS]))
    assert errors == ['patroni_cluster_name: "%s" is not 1 to 63 of a-z, 0-9, _ and - (starting with a letter or'
                      ' digit)' % ('' if name is None else name)]


def test_member_list_problems_are_reported():
    errors = patroni_variable_errors(variables(patroni_members=['db2', 'db3', 'db3'], patroni_etcd_members=['db2']))
    assert errors == ['patroni_members: db3 listed more than once',
                      'patroni_members: db1 is not in it (db2, db3, db3), but the role runs on it']
    assert patroni_variable_errors(variables(patroni_members=[], patroni_etcd_members=['db1']))[0] == \
        'patroni_members: empty; list the inventory hosts of the cluster'


def test_a_list_option_given_as_text_is_refused():
    errors = patroni_variable_errors(variables(patroni_members='db1,db2,db3'))
    assert errors == ['patroni_members: "db1,db2,db3" is not a list']


def test_synchronous_mode_needs_two_members():
    errors = patroni_variable_errors(variables(patroni_members=['db1'], patroni_etcd_members=['db1'],
                                               patroni_synchronous_mode=True))
    assert errors == ['patroni_synchronous_mode: on, but the cluster has 1 member; a synchronous standby needs 2'
                      ' or more']
    assert patroni_variable_errors(variables(patroni_synchronous_mode='yes')) == []


def test_empty_passwords_are_named_without_a_value():
    errors = patroni_variable_errors(variables(patroni_superuser_password='', patroni_restapi_password=None))
    assert errors == ['patroni_superuser_password: empty; set it (from vault)',
                      'patroni_restapi_password: empty; set it (from vault)']


def test_every_error_at_once():
    errors = patroni_variable_errors(variables(patroni_etcd_members=['db1', 'db2'], patroni_replication_password='',
                                               _patroni_nodes=[node('db1', running_scope='old')]))
    assert [error.split(':')[0] for error in errors] == [
        'patroni_etcd_members', 'patroni_replication_password', 'patroni_cluster_name']


@pytest.mark.parametrize('bad', [None, 'text', ['list']])
def test_input_must_be_a_dict(bad):
    with pytest.raises(AnsibleFilterError, match='expects a dict'):
        patroni_variable_errors(bad)


def test_missing_variables_are_named():
    values = variables()
    del values['_patroni_nodes']
    with pytest.raises(AnsibleFilterError, match='missing from the input: _patroni_nodes'):
        patroni_variable_errors(values)


def test_the_filter_is_registered():
    assert patroni.FilterModule().filters() == {'patroni_variable_errors': patroni_variable_errors}


TLS_DECLARED = [{'name': 'etcd', 'group': 'etcd', 'mode': '0640'}, {'name': 'patroni', 'group': 'postgres'}]


def test_tls_with_both_certificates_declared_for_their_readers_is_valid():
    assert patroni_variable_errors(variables(patroni_etcd_tls_certificate='etcd', patroni_tls_certificate='patroni',
                                             tls_certificates=TLS_DECLARED)) == []


@pytest.mark.parametrize('etcd,client', [('etcd', ''), ('', 'patroni')])
def test_tls_needs_both_certificates(etcd, client):
    errors = patroni_variable_errors(variables(patroni_etcd_tls_certificate=etcd, patroni_tls_certificate=client,
                                               tls_certificates=TLS_DECLARED))
    assert errors == ['patroni_etcd_tls_certificate and patroni_tls_certificate: set both (TLS between etcd and its'
                      ' clients) or neither']


def test_tls_certificates_must_be_declared_and_readable_by_their_service():
    errors = patroni_variable_errors(variables(
        patroni_etcd_tls_certificate='nope', patroni_tls_certificate='etcd', tls_certificates=TLS_DECLARED))
    assert errors == ['patroni_etcd_tls_certificate: "nope" is not a certificate of tls_certificates',
                      'patroni_tls_certificate: the certificate "etcd" has group "etcd"; postgres reads its key: set'
                      ' group postgres (mode 0640)']


@pytest.mark.parametrize('running,etcd,client,word', [('http', 'etcd', 'patroni', 'set'), ('https', '', '', 'empty')])
def test_a_running_etcd_is_never_switched_between_http_and_tls(running, etcd, client, word):
    nodes = [dict(node(host, running_scope='quiz', etcd_token='quiz'), etcd_scheme=running) for host in MEMBERS]
    errors = patroni_variable_errors(variables(_patroni_nodes=nodes, patroni_etcd_tls_certificate=etcd,
                                               patroni_tls_certificate=client, tls_certificates=TLS_DECLARED))
    assert errors == ['patroni_etcd_tls_certificate: %s, but etcd on db1 already runs with %s peer URLs; a running'
                      ' etcd is not switched in place (docs/user-guide/postgresql-ha.md, "TLS")'
                      % (word, running.upper())]


def test_the_same_scheme_as_the_running_etcd_is_valid():
    nodes = [dict(node(host, running_scope='quiz', etcd_token='quiz'), etcd_scheme='https') for host in MEMBERS]
    assert patroni_variable_errors(variables(_patroni_nodes=nodes, patroni_etcd_tls_certificate='etcd',
                                             patroni_tls_certificate='patroni', tls_certificates=TLS_DECLARED)) == []
