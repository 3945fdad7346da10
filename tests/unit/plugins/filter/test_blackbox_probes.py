# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.prometheus import blackbox_probes


def test_a_public_url_probed_through_an_edge_address_keeps_its_name_for_host_and_tls():
    out = blackbox_probes([{'name': 'public', 'url': 'https://quiz.example.com:8443/api/quizzes',
                            'address': '10.0.0.5', 'ca_file': '/etc/aiquiz/tls/aiquiz-ca.pem', 'service': 'api'}])
    assert out['errors'] == []
    http = out['modules']['probe_public']['http']
    assert http['headers'] == {'Host': 'quiz.example.com:8443'}
    assert http['tls_config'] == {'server_name': 'quiz.example.com', 'ca_file': '/etc/aiquiz/tls/aiquiz-ca.pem'}
    assert http['fail_if_not_ssl'] is True and http['no_follow_redirects'] is True
    assert 'valid_status_codes' not in http  # any 2xx
    job, = out['scrape_configs']
    assert job['job_name'] == 'blackbox' and job['metrics_path'] == '/probe'
    assert job['static_configs'] == [{'targets': ['https://10.0.0.5:8443/api/quizzes'],
                                      'labels': {'instance': 'public', 'service': 'api',
                                                 '__param_module': 'probe_public'}}]
    assert job['relabel_configs'] == [{'source_labels': ['__address__'], 'target_label': '__param_target'},
                                      {'target_label': '__address__', 'replacement': '127.0.0.1:9115'}]


def test_a_plain_url_is_probed_as_it_is_and_an_ipv6_address_is_bracketed():
    out = blackbox_probes([{'name': 'status', 'url': 'http://status.example.com/healthz', 'status': [200, 204],
                            'timeout': '3s', 'insecure': True},
                           {'name': 'v6', 'url': 'https://quiz.example.com/', 'address': '2001:db8::5'}],
                          'mon1.example.com:9115')
    assert out['errors'] == []
    assert out['modules']['probe_status'] == {
        'prober': 'http', 'timeout': '3s',
        'http': {'method': 'GET', 'preferred_ip_protocol': 'ip4', 'ip_protocol_fallback': True,
                 'no_follow_redirects': True, 'valid_status_codes': [200, 204],
                 'tls_config': {'insecure_skip_verify': True}}}
    targets = [c['targets'][0] for c in out['scrape_configs'][0]['static_configs']]
    assert targets == ['http://status.example.com/healthz', 'https://[2001:db8::5]/']
    assert out['scrape_configs'][0]['relabel_configs'][1]['replacement'] == 'mon1.example.com:9115'
    assert out['scrape_configs'][0]['static_configs'][0]['labels']['service'] == 'status'


def test_no_probe_no_job():
    assert blackbox_probes([]) == {'errors': [], 'modules': {}, 'scrape_configs': []}


@pytest.mark.parametrize('probe, message', [
    ({'name': 'Public', 'url': 'https://a.example/'}, "exporters_blackbox_probes[0]: name must be lower-case"),
    ({'name': 'p', 'url': 'ftp://a.example/'}, "exporters_blackbox_probes[0] (p): url must be an http:// or https://"),
    ({'name': 'p', 'url': 'https://a.example/', 'address': 'not an address'}, "(p): address must be an IP address"),
    ({'name': 'p', 'url': 'https://a.example/', 'ca_file': 'ca.pem'}, "(p): ca_file must be an absolute path"),
    ({'name': 'p', 'url': 'https://a.example/', 'status': ['200']}, "(p): status must be a list of HTTP status"),
    ({'name': 'p', 'url': 'https://a.example/', 'timeout': '5 seconds'}, "(p): timeout must be a Prometheus duration"),
    ({'name': 'p', 'url': 'https://a.example/', 'insecure': 'yes'}, "(p): insecure must be true or false"),
    ({'name': 'p', 'url': 'https://a.example/', 'service': 'API!'}, "(p): service must be a label value"),
    ({'name': 'p', 'url': 'https://a.example/', 'path': '/'}, "(p): unknown keys path"),
])
def test_a_bad_probe_is_named_and_left_out(probe, message):
    out = blackbox_probes([probe, {'name': 'good', 'url': 'https://b.example/'}])
    assert len(out['errors']) == 1 and message in out['errors'][0], out['errors']
    assert list(out['modules']) == ['probe_good']


def test_a_name_given_twice_and_the_variable_named_in_errors():
    out = blackbox_probes([{'name': 'p', 'url': 'https://a.example/'}, {'name': 'p', 'url': 'https://b.example/'}],
                          variable='prometheus_blackbox_probes')
    assert out['errors'] == ['prometheus_blackbox_probes[1] (p): a probe of this name comes earlier']


def test_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match='expects a list of probes'):
        blackbox_probes({'name': 'p'})
