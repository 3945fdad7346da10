# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.prometheus import prometheus_scrape_configs, target_address

GROUPS = {
    'all': ['app1', 'data1', 'mon1'],
    'app': ['app1'],
    'data': ['data1'],
    'monitoring': ['mon1'],
    'empty': [],
}
HOSTVARS = {
    'app1': {'firewall_host_address': '10.0.0.11', 'ansible_host': 'app1.example'},
    'data1': {'ansible_host': '10.0.0.21', 'exporters_redis_enabled': True},
    'mon1': {'ansible_default_ipv4': {'address': '10.0.0.31'}, 'exporters_redis_enabled': 'false'},
}
VARS = ['firewall_host_address']


def test_node_job_covers_every_host_labelled_by_inventory_name():
    out = prometheus_scrape_configs([{'name': 'node', 'groups': ['all'], 'port': 9100}], GROUPS, HOSTVARS, VARS)
    assert out['errors'] == []
    assert out['targets'] == {'node': ['10.0.0.11:9100', '10.0.0.21:9100', '10.0.0.31:9100']}
    assert out['scrape_configs'] == [{
        'job_name': 'node',
        'static_configs': [
            {'targets': ['10.0.0.11:9100'], 'labels': {'instance': 'app1', 'group': 'all'}},
            {'targets': ['10.0.0.21:9100'], 'labels': {'instance': 'data1', 'group': 'all'}},
            {'targets': ['10.0.0.31:9100'], 'labels': {'instance': 'mon1', 'group': 'all'}},
        ]}]


def test_host_var_keeps_only_hosts_that_enable_the_exporter():
    jobs = [{'name': 'redis', 'groups': ['data', 'monitoring'], 'port': 9121, 'host_var': 'exporters_redis_enabled'}]
    out = prometheus_scrape_configs(jobs, GROUPS, HOSTVARS, VARS)
    assert out['targets'] == {'redis': ['10.0.0.21:9121']}
    assert out['scrape_configs'][0]['static_configs'][0]['labels'] == {'instance': 'data1', 'group': 'data'}


def test_job_of_empty_or_missing_group_is_left_out():
    jobs = [{'name': 'a', 'groups': ['empty'], 'port': 1}, {'name': 'b', 'groups': ['nosuch'], 'port': 2}]
    assert prometheus_scrape_configs(jobs, GROUPS, HOSTVARS) == {'errors': [], 'scrape_configs': [], 'targets': {}}


def test_host_in_two_groups_is_one_target_labelled_by_the_first():
    jobs = [{'name': 'x', 'groups': ['app', 'all'], 'port': 80, 'metrics_path': '/m', 'scheme': 'https',
             'scrape_interval': '30s'}]
    out = prometheus_scrape_configs(jobs, GROUPS, HOSTVARS, VARS)
    config = out['scrape_configs'][0]
    assert [s['labels']['group'] for s in config['static_configs']] == ['app', 'all', 'all']
    assert (config['metrics_path'], config['scheme'], config['scrape_interval']) == ('/m', 'https', '30s')


@pytest.mark.parametrize('host_vars, expected', [
    ({'firewall_host_address': ['10.1.1.1', 'fd00::1']}, '10.1.1.1'),
    ({'firewall_host_address': 'mon1.internal'}, 'mon1.internal'),
    ({'firewall_host_address': 'not an address!', 'ansible_host': '10.2.2.2'}, '10.2.2.2'),
    ({'ansible_host': '127.0.0.1', 'ansible_default_ipv4': {'address': '10.3.3.3'}}, '10.3.3.3'),
    ({'ansible_host': 'h.example'}, 'h1'),
    ({}, 'h1'),
])
def test_target_address_order(host_vars, expected):
    assert target_address('h1', host_vars, VARS) == expected


def test_ipv6_target_is_bracketed():
    out = prometheus_scrape_configs([{'name': 'node', 'groups': ['app'], 'port': 9100}],
                                    GROUPS, {'app1': {'ansible_host': 'fd00::11'}})
    assert out['targets'] == {'node': ['[fd00::11]:9100']}


@pytest.mark.parametrize('job, message', [
    ({'name': 'bad-name', 'groups': ['all'], 'port': 1}, 'prometheus_scrape_jobs[0]: name must be a job name'),
    ({'name': 'n', 'groups': ['all'], 'port': 0}, 'prometheus_scrape_jobs[0] (n): port must be an integer'),
    ({'name': 'n', 'groups': ['all'], 'port': '9100'}, 'port must be an integer'),
    ({'name': 'n', 'groups': [], 'port': 1}, 'groups must be a non-empty list'),
    ({'name': 'n', 'groups': 'all', 'port': 1}, 'groups must be a non-empty list'),
    ({'name': 'n', 'groups': ['all'], 'port': 1, 'colour': 'x'}, 'unknown keys colour'),
    ({'name': 'n', 'groups': ['all'], 'port': 1, 'metrics_path': 'metrics'}, 'metrics_path must be'),
    ({'name': 'n', 'groups': ['all'], 'port': 1, 'scheme': 'ftp'}, 'scheme must be http or https'),
    ({'name': 'n', 'groups': ['all'], 'port': 1, 'scrape_interval': '15'}, 'scrape_interval must be'),
    ({'name': 'n', 'groups': ['all'], 'port': 1, 'host_var': ''}, 'host_var must be'),
    ('node', 'must be a dictionary'),
])
def test_invalid_job_is_named_and_left_out(job, message):
    out = prometheus_scrape_configs([job], GROUPS, HOSTVARS)
    assert len(out['errors']) == 1 and message in out['errors'][0]
    assert out['scrape_configs'] == []


def test_duplicate_job_name_is_an_error():
    job = {'name': 'node', 'groups': ['all'], 'port': 9100}
    out = prometheus_scrape_configs([job, dict(job, port=9101)], GROUPS, HOSTVARS)
    assert out['errors'] == ['prometheus_scrape_jobs[1] (node): a job of this name comes earlier']
    assert len(out['scrape_configs']) == 1


def test_input_that_is_not_a_list_fails():
    with pytest.raises(AnsibleFilterError, match='expects a list of jobs'):
        prometheus_scrape_configs({'name': 'node'}, GROUPS, HOSTVARS)


def test_host_address_is_the_scrape_target_address():
    from ansible_collections.aiquiz.ops.plugins.filter.prometheus import prometheus_host_address
    assert prometheus_host_address('app1', HOSTVARS, VARS) == '10.0.0.11'
    assert prometheus_host_address('mon1', HOSTVARS, VARS) == '10.0.0.31'
    assert prometheus_host_address('nosuch', HOSTVARS, VARS) == 'nosuch'
    with pytest.raises(AnsibleFilterError):
        prometheus_host_address(None, HOSTVARS)


def test_role_default_jobs_scrape_rabbitmq_where_its_plugin_is_enabled():
    path = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles', 'prometheus', 'defaults', 'main.yml')
    with open(path, encoding='utf-8') as handle:
        jobs = yaml.safe_load(handle)['prometheus_scrape_jobs']
    hostvars = dict(HOSTVARS, data1=dict(HOSTVARS['data1'], rabbitmq_prometheus_enabled=True))
    out = prometheus_scrape_configs(jobs, GROUPS, hostvars, VARS)
    assert out['errors'] == []
    assert out['targets']['rabbitmq'] == ['10.0.0.21:15692']
    # Not set in the inventory: the job has no target (the role's default is not a host variable).
    assert 'rabbitmq' not in prometheus_scrape_configs(jobs, GROUPS, HOSTVARS, VARS)['targets']


def test_access_lays_tls_and_basic_auth_over_the_named_job():
    jobs = [{'name': 'prometheus', 'groups': ['monitoring'], 'port': 9090},
            {'name': 'node', 'groups': ['monitoring'], 'port': 9100}]
    access = {'prometheus': {'scheme': 'https', 'tls_config': {'ca_file': '/etc/aiquiz/tls/web/ca.pem'},
                             'basic_auth': {'username': 'prometheus', 'password_file': '/etc/prometheus/secrets/p'}},
              'alertmanager': {'scheme': 'https'}}
    out = prometheus_scrape_configs(jobs, GROUPS, HOSTVARS, VARS, access)
    assert out['errors'] == []
    prom, node = out['scrape_configs']
    assert (prom['scheme'], prom['tls_config'], prom['basic_auth']) == (
        'https', {'ca_file': '/etc/aiquiz/tls/web/ca.pem'},
        {'username': 'prometheus', 'password_file': '/etc/prometheus/secrets/p'})
    assert set(node) == {'job_name', 'static_configs'}


def test_access_with_empty_values_leaves_the_job_plain_http():
    jobs = [{'name': 'prometheus', 'groups': ['monitoring'], 'port': 9090}]
    out = prometheus_scrape_configs(jobs, GROUPS, HOSTVARS, VARS,
                                    {'prometheus': {'scheme': '', 'tls_config': {}, 'basic_auth': {}}})
    assert out['errors'] == [] and set(out['scrape_configs'][0]) == {'job_name', 'static_configs'}


@pytest.mark.parametrize('extra, message', [
    ({'basic_auth': {'username': 'u', 'password': 'secret'}}, 'basic_auth must be a dictionary of password_file, '
                                                              'username (non-empty strings; a password only by file)'),
    ({'basic_auth': {'username': 'u'}}, 'basic_auth needs both username and password_file'),
    ({'tls_config': {'ca_file': 'relative.pem'}}, 'tls_config files must be absolute paths'),
    ({'tls_config': 'yes'}, 'tls_config must be a dictionary'),
])
def test_bad_access_is_named_and_never_echoes_a_password(extra, message):
    out = prometheus_scrape_configs([dict({'name': 'prometheus', 'groups': ['monitoring'], 'port': 9090}, **extra)],
                                    GROUPS, HOSTVARS, VARS)
    assert out['scrape_configs'] == []
    assert len(out['errors']) == 1 and message in out['errors'][0], out['errors']
    assert 'secret' not in out['errors'][0]


def test_access_that_is_not_a_dictionary_fails():
    with pytest.raises(AnsibleFilterError, match='access must be a dictionary'):
        prometheus_scrape_configs([], GROUPS, HOSTVARS, VARS, ['prometheus'])
