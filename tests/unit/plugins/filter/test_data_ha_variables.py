# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""High availability in the data roles' checks: redis_ha: sentinel and
rabbitmq_ha: cluster refused before any change (a group of two, a primary
not in the group, a node of another cluster...), and the decisions the
roles take from the hosts' state (redis_sentinel_primary,
rabbitmq_join_target)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter import rabbitmq, redis

from test_data_variables import check  # pylint: disable=import-error

MEMBERS = {'data1': '10.0.0.1', 'data2': '10.0.0.2', 'data3': '10.0.0.3'}
NODES = {host: {'node': 'rabbit@' + host, 'address': address} for host, address in MEMBERS.items()}
COOKIE = 'A' * 20 + '0123'


def sentinel(**overrides):
    variables = {'redis_ha': 'sentinel', 'redis_ha_group': 'redis', 'redis_ha_primary': 'data1',
                 'redis_ha_address': '10.0.0.1', 'redis_bind': ['127.0.0.1', '10.0.0.1'],
                 'redis_ha_members': dict(MEMBERS), 'redis_ha_host': 'data1'}
    variables.update(overrides)
    return check('redis', variables)


def cluster(**overrides):
    variables = {'rabbitmq_ha': 'cluster', 'rabbitmq_ha_group': 'rabbitmq', 'rabbitmq_erlang_cookie': COOKIE,
                 'rabbitmq_nodename': 'rabbit@data1', 'rabbitmq_erlang_dist_address': '10.0.0.1',
                 'rabbitmq_ha_members': {host: dict(node) for host, node in NODES.items()}, 'rabbitmq_ha_host': 'data1'}
    variables.update(overrides)
    return check('rabbitmq', variables)


def test_a_sentinel_group_of_three_is_accepted():
    assert sentinel() == []
    # The first host is the primary when none is named; "-" in redis_bind is Redis's "skip when absent".
    assert sentinel(redis_ha_primary='', redis_bind=['127.0.0.1', '-10.0.0.1']) == []
    # A Redis that replicates a member already (a rerun) is one of ours.
    assert sentinel(redis_ha_running_master='10.0.0.2') == []
    assert sentinel(redis_sentinel_quorum=3, redis_min_replicas_to_write=2) == []


@pytest.mark.parametrize('overrides, errors', [
    ({'redis_ha_members': {'data1': '10.0.0.1', 'data2': '10.0.0.2'}},
     ['redis_ha_group: 2 host(s) in "redis" (data1, data2); Sentinel needs an odd number, three or more']),
    ({'redis_ha_members': {'data1': '10.0.0.1'}, 'redis_sentinel_quorum': 1},
     ['redis_ha_group: 1 host(s) in "redis" (data1); Sentinel needs an odd number, three or more',
      'redis_min_replicas_to_write: 1, but the group has 0 replicas (0 to 0)']),
    ({'redis_ha_members': {}}, ['redis_ha_group: "redis" is no inventory group with hosts']),
    ({'redis_ha_primary': 'data9'}, ['redis_ha_primary: "data9" is not a host of redis_ha_group (redis)']),
    ({'redis_ha_host': 'other'}, ['redis_ha_group: this host (other) is not in "redis"',
                                  'redis_ha_address: 10.0.0.1 is the address of data1 too']),
    ({'redis_ha_members': dict(MEMBERS, data3=None)},
     ['redis_ha_group: data3 not in this play (--limit?); the whole group runs the role together']),
    ({'redis_ha_address': ''}, ["redis_ha_address: required with redis_ha: sentinel (this host's private address)"]),
    ({'redis_ha_address': 'data1'}, ['redis_ha_address: "data1" is not an IP address']),
    ({'redis_ha_address': '127.0.0.1'}, ['redis_ha_address: 127.0.0.1 is not an address the other hosts can reach']),
    ({'redis_bind': ['127.0.0.1']}, ['redis_ha_address: 10.0.0.1 is not in redis_bind (Redis would not listen on it)']),
    ({'redis_ha_members': dict(MEMBERS, data2='10.0.0.1')}, ['redis_ha_address: 10.0.0.1 is the address of data2 too']),
    ({'redis_sentinel_quorum': 1},
     ['redis_sentinel_quorum: 1 for 3 Sentinels; it must be more than half of them (2 to 3)']),
    ({'redis_sentinel_quorum': 4},
     ['redis_sentinel_quorum: 4 for 3 Sentinels; it must be more than half of them (2 to 3)']),
    ({'redis_min_replicas_to_write': 3}, ['redis_min_replicas_to_write: 3, but the group has 2 replicas (0 to 2)']),
    ({'redis_ha_running_master': '10.9.9.9'},
     ["redis_ha_group: this host's Redis replicates 10.9.9.9, no host of \"redis\": it belongs to another Redis"
      " group; make it a primary (REPLICAOF NO ONE) or remove it first"]),
    ({'redis_ha': 'cluster'}, ['redis_ha: "cluster" is not none or sentinel']),
])
def test_sentinel_group_refused(overrides, errors):
    assert sentinel(**overrides) == errors


def test_single_host_reads_no_ha_variable():
    assert check('redis', {'redis_ha_address': 'junk', 'redis_ha_members': {'a': None}, 'redis_sentinel_quorum': 9}) == []
    assert check('rabbitmq', {'rabbitmq_erlang_cookie': '', 'rabbitmq_ha_members': {'a': None}}) == []


def test_a_cluster_of_three_is_accepted():
    assert cluster() == []
    # Running already in the cluster of the group, under its name (a rerun).
    assert cluster(rabbitmq_ha_running={'nodes': ['rabbit@data1', 'rabbit@data2'], 'cluster_name': 'aiquiz'}) == []
    # Alone (a new or reset node): its own name does not count.
    assert cluster(rabbitmq_ha_running={'nodes': ['rabbit@data1'], 'cluster_name': 'rabbit@data1'}) == []


@pytest.mark.parametrize('overrides, errors', [
    ({'rabbitmq_ha_members': {host: NODES[host] for host in ('data1', 'data2')}},
     ['rabbitmq_ha_group: 2 host(s) in "rabbitmq" (data1, data2); a cluster needs an odd number, three or more']),
    ({'rabbitmq_ha_members': {}}, ['rabbitmq_ha_group: "rabbitmq" is no inventory group with hosts']),
    ({'rabbitmq_ha_host': 'mq9'}, ['rabbitmq_ha_group: this host (mq9) is not in "rabbitmq"']),
    ({'rabbitmq_ha_members': dict(NODES, data2=None)},
     ['rabbitmq_ha_group: data2 not in this play (--limit?); the whole group runs the role together']),
    ({'rabbitmq_erlang_cookie': ''},
     ['rabbitmq_erlang_cookie: required with rabbitmq_ha: cluster, 20 characters or more, letters and digits only']),
    ({'rabbitmq_erlang_cookie': 'short'},
     ['rabbitmq_erlang_cookie: required with rabbitmq_ha: cluster, 20 characters or more, letters and digits only']),
    ({'rabbitmq_erlang_cookie': COOKIE + ' x'},
     ['rabbitmq_erlang_cookie: required with rabbitmq_ha: cluster, 20 characters or more, letters and digits only']),
    ({'rabbitmq_nodename': 'rabbit@localhost'},
     ['rabbitmq_nodename: rabbit@localhost cannot be a cluster member; name a host that resolves to'
      ' rabbitmq_erlang_dist_address on every node (rabbit@data1)']),
    ({'rabbitmq_erlang_dist_address': '127.0.0.1'},
     ["rabbitmq_erlang_dist_address: 127.0.0.1; a cluster needs this host's private address"]),
    ({'rabbitmq_ha_members': dict(NODES, data3={'node': 'rabbit@data2', 'address': '10.0.0.3'})},
     ['rabbitmq_nodename: rabbit@data2 is the name of data2, data3']),
    ({'rabbitmq_ha_running': {'nodes': ['rabbit@data1', 'rabbit@old7'], 'cluster_name': 'aiquiz'}},
     ['rabbitmq_ha_group: this node (rabbit@data1) is clustered with rabbit@old7, no node of "rabbitmq": it belongs'
      ' to another cluster; take it out of that one first (rabbitmqctl forget_cluster_node there, reset here)']),
    ({'rabbitmq_ha_running': {'nodes': ['rabbit@data1', 'rabbit@data2'], 'cluster_name': 'billing'}},
     ['rabbitmq_cluster_name: "aiquiz", but this node runs in cluster "billing"; a cluster\'s name is not changed'
      ' by the role (rabbitmqctl set_cluster_name, then the inventory)']),
    ({'rabbitmq_ha': 'mirrored'}, ['rabbitmq_ha: "mirrored" is not none or cluster']),
])
def test_cluster_refused(overrides, errors):
    assert cluster(**overrides) == errors


def test_the_cookie_is_never_in_a_message():
    secret = 'hunter2hunter2'
    assert not any(secret in error for error in cluster(rabbitmq_erlang_cookie=secret))


@pytest.mark.parametrize('queues, errors', [
    ([{'name': 'quiz.events'}, {'name': 'jobs', 'vhost': '/', 'type': 'classic'}], []),
    ([{'name': 'q', 'type': 'stream'}], ['rabbitmq_queues[0] (q): type "stream" is not quorum or classic']),
    ([{'name': 'q', 'vhost': 'orders'}], ['rabbitmq_queues[0] (q): vhost "orders" is not in rabbitmq_vhosts']),
    ([{'vhost': '/'}, 'q'], ['rabbitmq_queues[0]: "{\'vhost\': \'/\'}" is not a dictionary with a name',
                             'rabbitmq_queues[1]: "q" is not a dictionary with a name']),
    ('q', ['rabbitmq_queues: "q" is not a list']),
])
def test_queues(queues, errors):
    assert check('rabbitmq', {'rabbitmq_queues': queues}) == errors


primary = redis.redis_sentinel_primary


def test_primary_from_the_sentinels_majority():
    assert primary(['10.0.0.2', '10.0.0.2', '10.0.0.1'], MEMBERS, 'data1') == '10.0.0.2'
    # A Sentinel that did not answer (its host is down) does not count.
    assert primary(['', '10.0.0.3', '10.0.0.3'], MEMBERS) == '10.0.0.3'
    assert primary(['10.0.0.3', '', ''], MEMBERS) == '10.0.0.3'


def test_primary_of_a_new_group():
    assert primary(['', '', ''], MEMBERS, 'data2') == '10.0.0.2'
    assert primary([], MEMBERS, '') == '10.0.0.1'


def test_sentinels_that_disagree_stop_the_run():
    with pytest.raises(AnsibleFilterError, match='the Sentinels disagree on the primary'):
        primary(['10.0.0.1', '10.0.0.2', ''], MEMBERS)
    with pytest.raises(AnsibleFilterError, match='is not a member'):
        primary([], MEMBERS, 'data9')
    with pytest.raises(AnsibleFilterError, match='expects the members'):
        primary([], {})


join = rabbitmq.rabbitmq_join_target
ORDER = {host: 'rabbit@' + host for host in MEMBERS}


def test_a_new_cluster_joins_its_first_node():
    views = {host: ['rabbit@' + host] for host in MEMBERS}
    assert join(views, 'data1', ORDER) == ''
    assert join(views, 'data2', ORDER) == 'rabbit@data1'
    assert join(views, 'data3', ORDER) == 'rabbit@data1'


def test_a_clustered_node_joins_nothing():
    everyone = ['rabbit@data1', 'rabbit@data2', 'rabbit@data3']
    assert join({host: everyone for host in MEMBERS}, 'data2', ORDER) == ''


def test_a_rebuilt_first_node_joins_the_running_cluster():
    views = {'data1': ['rabbit@data1'], 'data2': ['rabbit@data2', 'rabbit@data3'],
             'data3': ['rabbit@data2', 'rabbit@data3']}
    assert join(views, 'data1', ORDER) == 'rabbit@data2'


def test_a_node_that_does_not_run_is_not_joined():
    views = {'data1': None, 'data2': ['rabbit@data2'], 'data3': ['rabbit@data3']}
    assert join(views, 'data3', ORDER) == 'rabbit@data1'
    with pytest.raises(AnsibleFilterError, match='a member host'):
        join(views, 'data9', ORDER)


@pytest.mark.parametrize('module, names', [
    (redis, {'redis_variable_errors', 'redis_sentinel_primary'}),
    (rabbitmq, {'rabbitmq_variable_errors', 'rabbitmq_join_target'}),
])
def test_filters_are_registered(module, names):
    assert set(module.FilterModule().filters()) == names
