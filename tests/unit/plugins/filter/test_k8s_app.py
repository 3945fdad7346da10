# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_app role's decisions: variable checks, plan (colour, canary, no-op,
rollback), ledger ConfigMap, manifests by phase, undo, health gate."""

from __future__ import annotations

import copy
import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter import k8s_app as f
from ansible_collections.aiquiz.ops.plugins.module_utils import _k8s_app, _release

NOW = '2026-12-04T20:00:00Z'


def variables(**overrides):
    services = [
        {'name': 'api', 'image': 'registry1:5000/aiquiz/quiz-api:1.0.0', 'port': 8080, 'upstream': 'quiz_api',
         'health_path': '/readyz'},
        {'name': 'web', 'image': 'registry1:5000/aiquiz/quiz-web:1.0.0', 'port': 8080, 'upstream': 'quiz_web',
         'environment': {'QUIZ_API_URL': 'http://api:8080'}, 'depends_on': ['api']},
        {'name': 'worker', 'image': 'registry1:5000/aiquiz/quiz-worker:1.0.0',
         'compose': {'healthcheck': {'test': ['CMD', 'python3', '/app/healthcheck.py', 'worker']}}},
    ]
    v = {
        'k8s_app_name': 'quiz', 'k8s_app_release': '1.0.0', 'k8s_app_namespace': 'quiz',
        'k8s_app_services': services, 'k8s_app_environment': {'QUIZ_TLS_CA_FILE': '/etc/quiz/tls/ca.pem'},
        'k8s_app_secrets': {'QUIZ_DATABASE_URL': 'postgresql://quiz:s3cret@db/quiz'},
        'k8s_app_resources': {'requests': {'cpu': '100m', 'memory': '128Mi'},
                              'limits': {'cpu': '1', 'memory': '512Mi'}},
        'k8s_app_service_resources': {}, 'k8s_app_probes': {}, 'k8s_app_replicas': 2,
        'k8s_app_hpa_max_replicas': 6, 'k8s_app_hpa_cpu_percent': 70, 'k8s_app_canary_percent': 10,
        'k8s_app_ingress_host': 'quiz.example.com', 'k8s_app_ingress_class': 'nginx',
        'k8s_app_ingress_paths': {'web': '/', 'api': '/api/'}, 'k8s_app_ingress_annotations': {},
        'k8s_app_ingress_tls_secret_name': '', 'k8s_app_ingress_namespace': 'ingress-nginx',
        'k8s_app_ingress_pod_labels': {'app.kubernetes.io/name': 'ingress-nginx'},
        'k8s_app_data_clients': ['api', 'worker'],
        'k8s_app_data_egress': [{'cidr': '192.0.2.10/32', 'ports': [5432]}], 'k8s_app_files': [],
        'k8s_app_migrate': True, 'k8s_app_migrate_service': 'api', 'k8s_app_migrate_command': ['migrate'],
        'k8s_app_migrate_timeout': 300, 'k8s_app_manage_namespace': True, 'k8s_app_image_pull_secret_names': [],
    }
    v.update(overrides)
    return v


def release_vars(release):
    v = variables(k8s_app_release=release)
    v['k8s_app_services'] = [dict(s, image=s['image'].rsplit(':', 1)[0] + ':' + release)
                             for s in v['k8s_app_services']]
    return v


def images(release):
    return dict((s['name'], s['image']) for s in release_vars(release)['k8s_app_services'])


def deployed(*releases, failed=None):
    """The ledger ConfigMap after each release was deployed and activated in turn (failed: deployed, failed)."""
    ledger = _release.empty_ledger('quiz')
    for release in releases:
        ledger = _k8s_app.ledger_update(ledger, 'quiz', 'deploying', release, images(release), now=NOW)['ledger']
        ledger = _k8s_app.ledger_update(ledger, 'quiz', 'active', release, images(release), now=NOW)['ledger']
    if failed:
        ledger = _k8s_app.ledger_update(ledger, 'quiz', 'deploying', failed, images(failed), now=NOW)['ledger']
        ledger = _k8s_app.ledger_update(ledger, 'quiz', 'failed', failed, images(failed), 'gate', now=NOW)['ledger']
    return [_k8s_app.ledger_configmap(ledger, 'quiz')]


# --- variable checks -------------------------------------------------------

def test_valid_variables_have_no_errors():
    assert f.k8s_app_variable_errors(variables()) == []


@pytest.mark.parametrize('overrides, fragment', [
    ({'k8s_app_name': 'Quiz_App'}, 'k8s_app_name'),
    ({'k8s_app_release': '1.0.0/evil'}, 'k8s_app_release'),
    ({'k8s_app_release': '-1'}, 'k8s_app_release'),
    ({'k8s_app_namespace': 'Quiz'}, 'k8s_app_namespace'),
    ({'k8s_app_canary_percent': 101}, 'k8s_app_canary_percent'),
    ({'k8s_app_canary_percent': -1}, 'k8s_app_canary_percent'),
    ({'k8s_app_canary_percent': 'ten'}, 'k8s_app_canary_percent'),
    ({'k8s_app_replicas': 0}, 'k8s_app_replicas'),
    ({'k8s_app_hpa_max_replicas': 1}, 'k8s_app_hpa_max_replicas'),
    ({'k8s_app_resources': {'requests': {'cpu': '100 m', 'memory': '128Mi'},
                            'limits': {'cpu': '1', 'memory': '512MB'}}}, 'k8s_app_resources.limits.memory'),
    ({'k8s_app_resources': {'requests': {'cpu': '100m'}, 'limits': {'cpu': '1', 'memory': '1Gi'}}},
     'k8s_app_resources.requests: needs cpu and memory'),
    ({'k8s_app_ingress_paths': {'web': 'x'}}, 'k8s_app_ingress_paths.web'),
    ({'k8s_app_data_egress': [{'cidr': '10.0.0.0/33', 'ports': [5432]}]}, 'is not a CIDR'),
    ({'k8s_app_data_egress': [{'cidr': '10.0.0.0/8', 'ports': [70000]}]}, 'is not a port number'),
    ({'k8s_app_data_clients': ['db']}, 'k8s_app_data_clients'),
    ({'k8s_app_secrets': {'BAD NAME': 'x'}}, 'k8s_app_secrets'),
    ({'k8s_app_migrate_service': 'db'}, 'k8s_app_migrate_service'),
])
def test_bad_input_is_refused_naming_the_variable(overrides, fragment):
    errors = f.k8s_app_variable_errors(variables(**overrides))
    assert any(fragment in error for error in errors), errors


@pytest.mark.parametrize('image', ['registry1:5000/aiquiz/Quiz:1', 'quiz api:1', 'quiz:1@sha256:abc', 'quiz:',
                                   'http://registry/quiz:1'])
def test_image_references_kubernetes_refuses_are_refused(image):
    v = variables()
    v['k8s_app_services'][0]['image'] = image
    assert any('image' in error and 'api' in error for error in f.k8s_app_variable_errors(v))


@pytest.mark.parametrize('image', ['quiz', 'registry1:5000/aiquiz/quiz-api:1.0.0', 'ghcr.io/o/quiz_api:v1-rc.2',
                                   'registry.example.com/aiquiz/quiz-api@sha256:' + 'a' * 64])
def test_good_image_references_pass(image):
    v = variables()
    v['k8s_app_services'][0]['image'] = image
    assert f.k8s_app_variable_errors(v) == []


def test_secret_values_never_appear_in_errors():
    v = variables(k8s_app_secrets={'BAD NAME': 'hunter2-secret'})
    assert 'hunter2-secret' not in json.dumps(f.k8s_app_variable_errors(v))


def test_filters_refuse_invalid_variables():
    with pytest.raises(AnsibleFilterError, match='k8s_app_canary_percent'):
        f.k8s_app_plan([], variables(k8s_app_canary_percent=200))


def test_missing_variables_are_named():
    v = variables()
    del v['k8s_app_files']
    with pytest.raises(AnsibleFilterError, match='k8s_app_files'):
        f.k8s_app_variable_errors(v)


# --- plan ------------------------------------------------------------------

def test_first_release_goes_to_blue_without_canary():
    plan = f.k8s_app_plan([], variables())
    assert (plan['colour'], plan['old_colour'], plan['canary_weight'], plan['noop'], plan['migrate']) == \
        ('blue', None, 0, False, True)
    entry = plan['ledger']['releases'][0]
    assert (entry['id'], entry['state'], entry['colour']) == ('1.0.0', 'deploying', 'blue')
    stored = json.loads(plan['ledger_configmap']['data']['ledger.json'])
    assert stored == plan['ledger']
    assert plan['ledger_configmap']['metadata'] == {
        'name': 'quiz-releases', 'namespace': 'quiz', 'labels': _k8s_app.labels('quiz')}


def test_next_release_goes_to_the_other_colour_with_the_canary_weight():
    plan = f.k8s_app_plan(deployed('1.0.0'), release_vars('1.1.0'))
    assert (plan['colour'], plan['old_colour'], plan['old_release'], plan['canary_weight']) == \
        ('green', 'blue', '1.0.0', 10)
    # Uses canary_weights: 25 % of the traffic on the one "host" the Ingress is.
    assert f.k8s_app_plan(deployed('1.0.0'), release_vars('1.1.0') | {'k8s_app_canary_percent': 25})[
        'canary_weight'] == 25
    assert f.k8s_app_plan(deployed('1.0.0'), release_vars('1.1.0') | {'k8s_app_canary_percent': 0})[
        'canary_weight'] == 0


def test_third_release_comes_back_to_blue():
    plan = f.k8s_app_plan(deployed('1.0.0', '1.1.0'), release_vars('1.2.0'))
    assert (plan['colour'], plan['old_colour']) == ('blue', 'green')


def test_the_active_release_again_is_a_noop():
    resources = deployed('1.0.0')
    plan = f.k8s_app_plan(resources, release_vars('1.0.0'))
    assert plan['noop'] and not plan['migrate'] and plan['canary_weight'] == 0 and plan['old_colour'] is None
    assert plan['colour'] == 'blue'
    assert plan['ledger_configmap'] == resources[0]


def test_a_release_id_names_one_set_of_images():
    v = release_vars('1.0.0')
    v['k8s_app_services'][0]['image'] = 'registry1:5000/aiquiz/quiz-api:other'
    with pytest.raises(AnsibleFilterError, match='deploy the new images under a new release id'):
        f.k8s_app_plan(deployed('1.0.0'), v)


def test_release_ids_that_share_object_names_are_refused():
    with pytest.raises(AnsibleFilterError, match='distinct'):
        f.k8s_app_plan(deployed('1.1.0'), release_vars('1-1-0'))


def test_a_failed_release_can_be_deployed_again():
    plan = f.k8s_app_plan(deployed('1.0.0', failed='1.1.0'), release_vars('1.1.0'))
    assert (plan['colour'], plan['old_release']) == ('green', '1.0.0')
    assert plan['ledger']['releases'][0]['state'] == 'deploying'


def test_rollback_goes_to_the_previous_good_release_with_its_images():
    plan = f.k8s_app_plan(deployed('1.0.0', '1.1.0'), release_vars('9.9.9') | {'k8s_app_release': None},
                          rollback=True)
    assert (plan['release'], plan['colour'], plan['old_colour']) == ('1.0.0', 'blue', 'green')
    assert plan['images'] == images('1.0.0')
    assert plan['rollback'] and not plan['migrate'] and plan['canary_weight'] == 0
    # Its Deployments were kept on blue: scaled up as they are, not re-applied.
    assert plan['kept'] is True
    objects = f.k8s_app_manifests(plan, variables(k8s_app_release='1.0.0'))
    assert [o['kind'] for o in objects['workload'] if o['kind'] == 'Deployment'] == []
    assert objects['deployments'] == ['quiz-api-blue', 'quiz-web-blue', 'quiz-worker-blue']


def test_rollback_after_a_failed_deploy_on_its_colour_applies_the_deployments_again():
    # 1.0.0 (blue), 1.1.0 (green), 1.2.0 failed on blue: blue holds 1.2.0's Deployments.
    plan = f.k8s_app_plan(deployed('1.0.0', '1.1.0', failed='1.2.0'), variables(k8s_app_release=None),
                          rollback=True)
    assert (plan['release'], plan['colour'], plan['kept']) == ('1.0.0', 'blue', False)
    objects = f.k8s_app_manifests(plan, variables(k8s_app_release='1.0.0'))
    images_ = [o['spec']['template']['spec']['containers'][0]['image'] for o in objects['workload']
               if o['kind'] == 'Deployment']
    assert images_ == [images('1.0.0')[name] for name in ('api', 'web', 'worker')]


def test_rollback_to_a_named_release():
    plan = f.k8s_app_plan(deployed('1.0.0', '1.1.0', '1.2.0'), variables(k8s_app_release=None),
                          rollback=True, rollback_to='1.0.0')
    assert (plan['release'], plan['colour'], plan['kept']) == ('1.0.0', 'green', False)


def test_rollback_to_an_unknown_release_names_those_that_exist():
    with pytest.raises(AnsibleFilterError, match=r'2\.0\.0 is not in the ledger.*1\.1\.0 \(active\)'):
        f.k8s_app_plan(deployed('1.0.0', '1.1.0'), variables(k8s_app_release=None), rollback=True,
                       rollback_to='2.0.0')


def test_rollback_without_a_previous_good_release_fails():
    with pytest.raises(AnsibleFilterError, match='no previous good release'):
        f.k8s_app_plan(deployed('1.0.0'), variables(k8s_app_release=None), rollback=True)


@pytest.mark.parametrize('data, match', [
    ({}, 'has no ledger.json'),
    ({'ledger.json': '{not json'}, 'not valid JSON'),
    ({'ledger.json': json.dumps({'version': 1, 'workload': 'quiz', 'releases': 'x'})}, 'corrupt'),
    ({'ledger.json': json.dumps(_release.empty_ledger('other'))}, "belongs to workload 'other'"),
])
def test_a_ledger_it_cannot_read_stops_the_plan(data, match):
    with pytest.raises(AnsibleFilterError, match=match):
        f.k8s_app_plan([{'data': data}], variables())


# --- ledger ----------------------------------------------------------------

def test_ledger_states_follow_the_release_module():
    plan = f.k8s_app_plan(deployed('1.0.0'), release_vars('1.1.0'))
    active = f.k8s_app_ledger(plan['ledger'], 'quiz', 'active', '1.1.0', images('1.1.0'))
    states = dict((e['id'], e['state']) for e in active['ledger']['releases'])
    assert states == {'1.1.0': 'active', '1.0.0': 'standby'}
    assert _release.previous_good(active['ledger'])['id'] == '1.0.0'
    failed = f.k8s_app_ledger(plan['ledger'], 'quiz', 'failed', '1.1.0', images('1.1.0'), 'gate: no endpoints')
    states = dict((e['id'], (e['state'], e['reason'])) for e in failed['ledger']['releases'])
    assert states == {'1.1.0': ('failed', 'gate: no endpoints'), '1.0.0': ('active', None)}


def test_ledger_prunes_beyond_keep_with_the_objects_of_each_release():
    resources = deployed('1.0.0', '1.1.0', '1.2.0', '1.3.0')
    ledger = json.loads(resources[0]['data']['ledger.json'])
    pruned = f.k8s_app_ledger(ledger, 'quiz', 'absent', keep=2)
    assert pruned['removed'] == ['1.1.0', '1.0.0']
    assert [e['id'] for e in pruned['ledger']['releases']] == ['1.3.0', '1.2.0']
    names = [(o['kind'], o['name']) for o in pruned['removed_objects']]
    assert ('ConfigMap', 'quiz-1-1-0-env') in names and ('Secret', 'quiz-1-0-0-env') in names
    assert ('Job', 'quiz-migrate-1-0-0') in names


def test_ledger_refuses_an_unknown_state():
    with pytest.raises(AnsibleFilterError, match='unknown state'):
        f.k8s_app_ledger(_release.empty_ledger('quiz'), 'quiz', 'gone', '1.0.0')


def test_ledger_refuses_activating_a_failed_release():
    ledger = json.loads(deployed('1.0.0', failed='1.1.0')[0]['data']['ledger.json'])
    with pytest.raises(AnsibleFilterError, match='marked failed'):
        f.k8s_app_ledger(ledger, 'quiz', 'active', '1.1.0', images('1.1.0'))


# --- manifests -------------------------------------------------------------

def test_manifests_of_a_first_release():
    v = variables()
    objects = f.k8s_app_manifests(f.k8s_app_plan([], v), v)
    assert objects['canary'] is None and objects['retire'] == []
    assert [o['kind'] for o in objects['namespace']] == ['Namespace']
    assert 'Namespace' not in [o['kind'] for o in objects['setup']]
    assert f.k8s_app_manifests(f.k8s_app_plan([], v), v | {'k8s_app_manage_namespace': False})['namespace'] == []
    assert objects['gate'] == ['quiz-api-blue', 'quiz-web-blue']
    assert objects['deployments'] == ['quiz-api-blue', 'quiz-web-blue', 'quiz-worker-blue']
    assert objects['migration']['metadata']['name'] == 'quiz-migrate-1-0-0'
    assert objects['migration']['spec']['template']['spec']['containers'][0]['args'] == ['migrate']
    assert objects['migration']['spec']['backoffLimit'] == 0
    # Traffic: the Ingress on blue, the bare Service names on blue.
    ingress = next(o for o in objects['switch'] if o['kind'] == 'Ingress')
    assert [(p['path'], p['backend']['service']['name']) for p in ingress['spec']['rules'][0]['http']['paths']] == \
        [('/api/', 'quiz-api-blue'), ('/', 'quiz-web-blue')]
    bare = dict((o['metadata']['name'], o['spec']['selector']['aiquiz.ops/colour'])
                for o in objects['switch'] if o['kind'] == 'Service')
    assert bare == {'api': 'blue', 'web': 'blue'}
    assert objects['undo']['restore'] == [] and objects['undo']['scale_down'] == objects['deployments']


def test_manifests_of_a_canary_release():
    v = release_vars('1.1.0')
    objects = f.k8s_app_manifests(f.k8s_app_plan(deployed('1.0.0'), v), v)
    annotations = objects['canary']['metadata']['annotations']
    assert annotations['nginx.ingress.kubernetes.io/canary'] == 'true'
    assert annotations['nginx.ingress.kubernetes.io/canary-weight'] == '10'
    assert objects['canary']['metadata']['name'] == 'quiz-canary'
    assert [r['name'] for r in objects['retire']] == ['quiz-api-blue', 'quiz-web-blue', 'quiz-worker-blue']
    assert [r['name'] for r in objects['retire_hpa']] == ['quiz-api-blue', 'quiz-web-blue', 'quiz-worker-blue']
    # Undo: traffic back on blue, blue up again, green down without autoscalers.
    restore = objects['undo']['restore']
    assert [o['spec']['selector']['aiquiz.ops/colour'] for o in restore if o['kind'] == 'Service'] == ['blue', 'blue']
    ingress = next(o for o in restore if o['kind'] == 'Ingress')
    assert {p['backend']['service']['name'] for p in ingress['spec']['rules'][0]['http']['paths']} == \
        {'quiz-api-blue', 'quiz-web-blue'}
    assert objects['undo']['scale_up'] == ['quiz-api-blue', 'quiz-web-blue', 'quiz-worker-blue']
    assert objects['undo']['delete_hpa'] == ['quiz-api-green', 'quiz-web-green', 'quiz-worker-green']


def test_the_deployment_of_a_colour():
    v = variables()
    objects = f.k8s_app_manifests(f.k8s_app_plan([], v), v)
    deployment = next(o for o in objects['workload'] if o['metadata']['name'] == 'quiz-web-blue')
    assert 'replicas' not in deployment['spec']  # the autoscaler owns them
    container = deployment['spec']['template']['spec']['containers'][0]
    assert container['image'] == 'registry1:5000/aiquiz/quiz-web:1.0.0'
    assert container['imagePullPolicy'] == 'Always'
    assert container['env'] == [{'name': 'QUIZ_API_URL', 'value': 'http://api:8080'}]
    assert container['envFrom'] == [{'configMapRef': {'name': 'quiz-1-0-0-env'}},
                                    {'secretRef': {'name': 'quiz-1-0-0-env'}}]
    assert container['readinessProbe']['httpGet'] == {'path': '/readyz', 'port': 'http'}
    assert container['livenessProbe']['httpGet'] == {'path': '/healthz', 'port': 'http'}
    worker = next(o for o in objects['workload'] if o['metadata']['name'] == 'quiz-worker-blue')
    probe = worker['spec']['template']['spec']['containers'][0]['livenessProbe']
    assert probe['exec'] == {'command': ['python3', '/app/healthcheck.py', 'worker']}
    hpa = next(o for o in objects['workload'] if o['kind'] == 'HorizontalPodAutoscaler')
    assert (hpa['spec']['minReplicas'], hpa['spec']['maxReplicas']) == (2, 6)


def test_without_autoscaler_the_replicas_are_fixed():
    v = variables(k8s_app_hpa_max_replicas=0, k8s_app_replicas=3)
    objects = f.k8s_app_manifests(f.k8s_app_plan([], v), v)
    assert not [o for o in objects['workload'] if o['kind'] == 'HorizontalPodAutoscaler']
    assert {o['spec']['replicas'] for o in objects['workload'] if o['kind'] == 'Deployment'} == {3}
    assert objects['undo']['delete_hpa'] == []


def test_digests_are_kept_and_pulled_once():
    v = variables()
    digest = 'registry.example.com/aiquiz/quiz-api@sha256:' + 'b' * 64
    v['k8s_app_services'][0]['image'] = digest
    objects = f.k8s_app_manifests(f.k8s_app_plan([], v), v)
    container = objects['workload'][0]['spec']['template']['spec']['containers'][0]
    assert (container['image'], container['imagePullPolicy']) == (digest, 'IfNotPresent')


def test_secrets_render_only_into_the_secret():
    v = variables()
    objects = f.k8s_app_manifests(f.k8s_app_plan([], v), v)
    assert objects['secret']['stringData'] == {'QUIZ_DATABASE_URL': 'postgresql://quiz:s3cret@db/quiz'}
    rest = copy.deepcopy(objects)
    del rest['secret']
    assert 's3cret' not in json.dumps(rest)
    redacted = f.k8s_app_manifests(f.k8s_app_plan([], v), v, redact_secrets=True)
    assert redacted['secret']['stringData'] == {'QUIZ_DATABASE_URL': 'REDACTED'}


def test_long_names_stay_dns_labels_and_distinct():
    first = _k8s_app.object_name('a' * 40, 'migrate', 'x' * 40)
    second = _k8s_app.object_name('a' * 40, 'migrate', 'x' * 39 + 'y')
    assert len(first) == len(second) == 63 and first != second
    assert _k8s_app.DNS_LABEL_RE.match(first)


def test_without_ingress_host_there_is_no_ingress_and_no_canary():
    v = release_vars('1.1.0') | {'k8s_app_ingress_host': ''}
    objects = f.k8s_app_manifests(f.k8s_app_plan(deployed('1.0.0'), v), v)
    assert objects['canary'] is None
    assert not [o for o in objects['switch'] if o['kind'] == 'Ingress']


# --- health gate and canary verdict ------------------------------------------

def slice_of(*conditions):
    return {'endpoints': [{'addresses': ['10.0.0.%d' % i], 'conditions': c} for i, c in enumerate(conditions)]}


def test_gate_counts_ready_endpoints_only():
    slices = [slice_of({'ready': True}, {'ready': False}), slice_of({'ready': True, 'terminating': True})]
    assert f.k8s_app_ready(slices, 2) == {'ready': False, 'count': 1, 'want': 2}
    slices.append(slice_of({'ready': True}))
    assert f.k8s_app_ready(slices, 2)['ready'] is True
    assert f.k8s_app_ready([], 1)['ready'] is False


def pod(name, ready=True, restarts=0):
    return {'metadata': {'name': name}, 'status': {'containerStatuses': [{'ready': ready, 'restartCount': restarts}]}}


def test_canary_verdict_fails_on_a_restart_or_an_unready_pod():
    before = f.k8s_app_ready([], 0, [pod('a'), pod('b')])['restarts']
    assert f.k8s_app_ready([], 0, [pod('a'), pod('b')], before)['healthy'] is True
    verdict = f.k8s_app_ready([], 0, [pod('a', restarts=1), pod('b', ready=False)], before)
    assert verdict['healthy'] is False
    assert verdict['problems'] == ['a restarted 1 time(s) during the canary', 'b is not ready']
    assert f.k8s_app_ready([], 0, [], before)['problems'] == ['no pods of the new colour']


def test_gate_refuses_bad_input():
    with pytest.raises(AnsibleFilterError):
        f.k8s_app_ready('x', 1)
    with pytest.raises(AnsibleFilterError):
        f.k8s_app_ready([], 'two')
