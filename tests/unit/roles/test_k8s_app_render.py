# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_app role's render entry point, run for real (ansible-playbook on
localhost, playbooks/k8s-render.yml) for the lab's sample workload and for the
production example inventory; every manifest it writes is then validated
offline against the Kubernetes OpenAPI schemas of two minor versions, strictly
(an unknown field fails), checked against the restricted Pod Security Standard
and the network rules, and scanned with checkov's Kubernetes checks.

checkov lives in a venv of its own (its pins conflict with the project's):
tests/lab/setup.sh makes .cache/checkov-venv; AIQUIZ_CHECKOV names another
binary. Without it the checkov tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

kubernetes_validate = pytest.importorskip('kubernetes_validate')

from ansible_collections.aiquiz.ops.plugins.filter import k8s_app as k8s_filters  # noqa: E402
from ansible_collections.aiquiz.ops.plugins.module_utils import _k8s_app  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PLAYBOOK = os.path.join(ROOT, 'playbooks', 'k8s-render.yml')
# Two supported minor versions; the schemas ship with kubernetes-validate.
KUBE_VERSIONS = ('1.31.0', '1.33.0')
CHECKOV = os.environ.get('AIQUIZ_CHECKOV') or os.path.join(ROOT, '.cache', 'checkov-venv', 'bin', 'checkov')
# checkov checks skipped, and why:
# - CKV_K8S_35 "secrets as files rather than environment variables": the
#   workload reads its settings from its environment, as on the Compose path
#   (one env file per release); the Secret reaches the pods by envFrom, its
#   values never appear in a pod spec.
# - CKV_K8S_43 "image by digest": the role uses a digest wherever the
#   inventory gives one (the digest render below passes this check); the lab
#   and the production example name tags because their images are built per
#   release (the lab) or are an example to be pinned by the operator.
SKIP_ALWAYS = ('CKV_K8S_35',)
# The digest check is left out for the tagged renders only (by filtering
# its failures there); it runs, unskipped, on the digest render.
SKIP_TAGGED = SKIP_ALWAYS + ('CKV_K8S_43',)
SECRET_VALUES = ('lab-db-secret-1', 'lab-redis-secret-2', 'prod-db-secret-3', 'prod-redis-secret-4')

LAB_K8S_VARS = {
    # The lab's data host as the test names it (the lab inventory finds its
    # address on the lab network).
    'quiz_data_host': '10.89.0.5',
    'quiz_db_password': SECRET_VALUES[0],
    'quiz_redis_password': SECRET_VALUES[1],
    'k8s_app_ingress_tls_secret_name': 'quiz-lab-tls',
    'k8s_app_data_egress': [{'cidr': '10.89.0.5/32', 'ports': [5432, 6379, 5671]}],
    # The CA the Compose path mounts from the host, as a file of the release.
    'k8s_app_files': [{'path': '/etc/quiz/tls/ca.pem',
                       'content': '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'}],
}


def _ledger_with_active(release, images):
    """The ledger ConfigMap of a cluster where release is active (on blue)."""
    ledger = _k8s_app._release.empty_ledger('quiz')
    ledger = _k8s_app.ledger_update(ledger, 'quiz', 'deploying', release, images)['ledger']
    return _k8s_app.ledger_update(ledger, 'quiz', 'active', release, images)['configmap']


def _render_commands(tmp):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               AIQUIZ_AUDIT_DIR=str(tmp / 'audit'))
    bin_dir = os.path.dirname(sys.executable)
    env['PATH'] = bin_dir + os.pathsep + env.get('PATH', '')
    playbook = [os.path.join(bin_dir, 'ansible-playbook')]
    local = {'ansible_connection': 'local', 'ansible_become': False, 'ansible_python_interpreter': sys.executable}

    # The lab: its group_vars (all, app/workload) on a host of group app.
    (tmp / 'lab-inventory.yml').write_text(yaml.safe_dump({'all': {'children': {'app': {'hosts': {
        'lab-cluster': dict(local)}}}}}))
    (tmp / 'lab-k8s.json').write_text(json.dumps(dict(LAB_K8S_VARS, k8s_app_render_dir=str(tmp / 'lab'))))
    lab = playbook + ['-i', str(tmp / 'lab-inventory.yml'), PLAYBOOK,
                      '-e', '@' + os.path.join(ROOT, 'inventories', 'lab', 'group_vars', 'all.yml'),
                      '-e', '@' + os.path.join(ROOT, 'inventories', 'lab', 'group_vars', 'app', 'workload.yml'),
                      '-e', '@' + str(tmp / 'lab-k8s.json')]

    # The production example as it stands, release 1.0.0 after 0.9.0: the
    # plan goes to the other colour with a canary step.
    images = {'api': 'registry.example.com/aiquiz/quiz-api:0.9.0', 'web': 'registry.example.com/aiquiz/quiz-web:0.9.0',
              'worker': 'registry.example.com/aiquiz/quiz-worker:0.9.0'}
    (tmp / 'prod.json').write_text(json.dumps(dict(local, **{
        'vault_aiquiz_database_password': SECRET_VALUES[2],
        'vault_aiquiz_redis_password': SECRET_VALUES[3],
        'vault_aiquiz_amqp_password': 'prod-amqp-secret-5',
        'k8s_app_render_ledger': [_ledger_with_active('0.9.0', images)],
        'k8s_app_render_dir': str(tmp / 'prod')})))
    prod = playbook + ['-i', os.path.join(ROOT, 'inventories', 'production'), '-l', 'app1.quiz.example.com',
                       PLAYBOOK, '-e', '@' + str(tmp / 'prod.json')]
    # The lab's workload with values Kubernetes would refuse.
    (tmp / 'bad.json').write_text(json.dumps(dict(LAB_K8S_VARS, k8s_app_render_dir=str(tmp / 'bad'), **{
        'k8s_app_canary_percent': 150, 'compose_app_release': '1.0.0/../x',
        'k8s_app_resources': {'requests': {'cpu': '100 m', 'memory': '128Mi'},
                              'limits': {'cpu': '1', 'memory': '512Mi'}}})))
    bad = lab[:-1] + ['@' + str(tmp / 'bad.json')]
    return env, {'lab': lab, 'production': prod, 'bad': bad}


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    """The renders, side by side: {'lab': (dir, output), 'production': (dir, output),
    'bad': (dir, output, returncode)}."""
    tmp = tmp_path_factory.mktemp('k8s-render')
    env, commands = _render_commands(tmp)
    procs = dict((name, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         text=True)) for name, cmd in commands.items())
    result = {}
    for name, proc in procs.items():
        output = proc.communicate(timeout=300)[0]
        if name == 'bad':
            result[name] = (tmp / 'bad', output, proc.returncode)
            continue
        assert proc.returncode == 0, '%s render failed:\n%s' % (name, output[-4000:])
        result[name] = (tmp / ('lab' if name == 'lab' else 'prod'), output)
    return result


def _objects(directory):
    docs = []
    for name in ('manifests.yml', 'secret.yml'):
        with open(str(directory / name), encoding='utf-8') as handle:
            docs.extend(doc for doc in yaml.safe_load_all(handle) if doc)
    return docs


def _by_kind(objects, kind):
    return [obj for obj in objects if obj['kind'] == kind]


def _pod_specs(objects):
    for obj in objects:
        if obj['kind'] in ('Deployment', 'Job'):
            yield obj['metadata']['name'], obj['spec']['template']['spec']


WORKLOADS = ('lab', 'production')


def test_values_kubernetes_would_refuse_stop_the_role_before_rendering(rendered):
    directory, output, returncode = rendered['bad']
    assert returncode != 0
    for fragment in ('k8s_app_canary_percent: "150"', 'k8s_app_release: "1.0.0/../x"',
                     'k8s_app_resources.requests.cpu: "100 m"'):
        assert fragment in output
    assert not directory.exists()
    for value in SECRET_VALUES[:2]:
        assert value not in output


@pytest.mark.parametrize('workload', WORKLOADS)
def test_render_plans_the_release(rendered, workload):
    directory = rendered[workload][0]
    with open(str(directory / 'plan.json'), encoding='utf-8') as handle:
        plan = json.load(handle)
    objects = _objects(directory)
    canaries = [obj for obj in _by_kind(objects, 'Ingress')
                if obj['metadata'].get('annotations', {}).get('nginx.ingress.kubernetes.io/canary') == 'true']
    if workload == 'lab':
        # A first release: blue, nothing to share traffic with.
        assert (plan['colour'], plan['old_colour'], plan['canary_weight']) == ('blue', None, 0)
        assert canaries == []
    else:
        # After 0.9.0 on blue: green, 10 % through the canary Ingress.
        assert (plan['colour'], plan['old_colour'], plan['old_release'], plan['canary_weight']) == \
            ('green', 'blue', '0.9.0', 10)
        assert len(canaries) == 1
        assert canaries[0]['metadata']['annotations']['nginx.ingress.kubernetes.io/canary-weight'] == '10'
        backends = [path['backend']['service']['name'] for path in canaries[0]['spec']['rules'][0]['http']['paths']]
        assert backends == ['quiz-api-green', 'quiz-web-green']
    kinds = sorted(set(obj['kind'] for obj in objects))
    assert kinds == ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'Job', 'Namespace',
                     'NetworkPolicy', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceAccount']
    deployments = sorted(obj['metadata']['name'] for obj in _by_kind(objects, 'Deployment'))
    assert deployments == ['quiz-%s-%s' % (service, plan['colour']) for service in ('api', 'web', 'worker')]
    ledger = json.loads(next(obj for obj in objects if obj['metadata']['name'] == 'quiz-releases')
                        ['data']['ledger.json'])
    assert ledger['releases'][0]['id'] == plan['release']
    assert ledger['releases'][0]['state'] == 'deploying'


@pytest.mark.parametrize('version', KUBE_VERSIONS)
@pytest.mark.parametrize('workload', WORKLOADS)
def test_manifests_pass_strict_schema_validation(rendered, workload, version):
    directory = rendered[workload][0]
    objects = _objects(directory)
    assert len(objects) > 20
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append('%s %s: %s' % (obj['kind'], obj['metadata']['name'], exc))
    assert errors == []


def test_strict_validation_refuses_an_unknown_field(rendered):
    directory = rendered['lab'][0]
    deployment = _by_kind(_objects(directory), 'Deployment')[0]
    deployment['spec']['template']['spec']['containers'][0]['livenessProbes'] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)


@pytest.mark.parametrize('workload', WORKLOADS)
def test_pods_meet_the_restricted_pod_security_standard(rendered, workload):
    directory = rendered[workload][0]
    objects = _objects(directory)
    namespace = _by_kind(objects, 'Namespace')[0]
    assert namespace['metadata']['labels']['pod-security.kubernetes.io/enforce'] == 'restricted'
    specs = list(_pod_specs(objects))
    assert len(specs) == 4  # three Deployments and the migration Job
    for name, spec in specs:
        assert spec['securityContext']['runAsNonRoot'] is True, name
        assert spec['securityContext']['seccompProfile'] == {'type': 'RuntimeDefault'}, name
        assert spec['automountServiceAccountToken'] is False, name
        assert not any(key in spec for key in ('hostNetwork', 'hostPID', 'hostIPC')), name
        assert all(set(volume) - {'name'} <= {'emptyDir', 'configMap', 'secret'} for volume in spec['volumes']), name
        for container in spec['containers']:
            context = container['securityContext']
            assert context['allowPrivilegeEscalation'] is False, name
            assert context['capabilities'] == {'drop': ['ALL']}, name
            assert context['runAsNonRoot'] is True and context['runAsUser'] > 0, name
            assert context['readOnlyRootFilesystem'] is True, name
            assert set(container['resources']) == {'requests', 'limits'}, name
            if spec.get('restartPolicy') != 'Never':
                assert 'readinessProbe' in container and 'livenessProbe' in container, name


@pytest.mark.parametrize('workload', WORKLOADS)
def test_network_policies_deny_by_default_and_allow_only_the_paths(rendered, workload):
    directory = rendered[workload][0]
    policies = dict((obj['metadata']['name'], obj['spec']) for obj in _by_kind(_objects(directory), 'NetworkPolicy'))
    assert policies['quiz-default-deny'] == {'podSelector': {}, 'policyTypes': ['Ingress', 'Egress']}
    # Who may reach each service: the ingress controller the exposed ones,
    # web (which depends on it) the API; nothing reaches the worker.
    sources = {}
    for spec in policies.values():
        for rule in spec.get('ingress', []):
            target = spec['podSelector']['matchLabels']['app.kubernetes.io/name']
            for peer in rule['from']:
                sources.setdefault(target, []).append(
                    peer.get('namespaceSelector', {}).get('matchLabels', {}).get('kubernetes.io/metadata.name')
                    or peer['podSelector']['matchLabels']['app.kubernetes.io/name'])
    assert sorted((key, sorted(value)) for key, value in sources.items()) == [
        ('api', ['ingress-nginx', 'web']), ('web', ['ingress-nginx'])]
    # Where each service may go besides DNS: web to the API; the API and the
    # worker to the data host's ports only.
    egress = {}
    for name, spec in policies.items():
        if name in ('quiz-dns', 'quiz-default-deny') or 'egress' not in spec:
            continue
        target = spec['podSelector']['matchLabels']['app.kubernetes.io/name']
        for rule in spec['egress']:
            for peer in rule['to']:
                egress.setdefault(target, []).append(
                    peer['ipBlock']['cidr'] if 'ipBlock' in peer else peer['podSelector']['matchLabels'][
                        'app.kubernetes.io/name'])
            assert all(port['protocol'] == 'TCP' for port in rule['ports'])
    data = '10.89.0.5/32' if workload == 'lab' else '192.0.2.10/32'
    assert egress == {'web': ['api'], 'api': [data], 'worker': [data]}
    dns = policies['quiz-dns']['egress'][0]
    assert sorted(port['port'] for port in dns['ports']) == [53, 53]


@pytest.mark.parametrize('workload', WORKLOADS)
def test_secret_values_stay_out_of_the_manifests_and_the_output(rendered, workload):
    directory, output = rendered[workload]
    secret = _by_kind(_objects(directory), 'Secret')[0]
    assert set(secret['stringData']) == {'QUIZ_DATABASE_URL', 'QUIZ_REDIS_URL', 'QUIZ_AMQP_URL'}
    assert set(secret['stringData'].values()) == {'REDACTED'}
    text = (directory / 'manifests.yml').read_text() + output
    for value in SECRET_VALUES:
        assert value not in text


def _checkov(files, skips):
    """checkov's Kubernetes checks on files; its JSON report (one dict)."""
    env = dict(os.environ, BC_SKIP_MAPPING='TRUE', LOG_LEVEL='WARNING')
    proc = subprocess.run([CHECKOV, '--framework', 'kubernetes', '--skip-download', '--quiet', '--compact',
                           '-o', 'json', '--skip-check', ','.join(skips)] + [arg for f in files for arg in ('-f', f)],
                          capture_output=True, text=True, timeout=240, env=env, check=False)
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def _digest_docs():
    """The production example's objects with every image by digest (rendered by the filters)."""
    with open(os.path.join(ROOT, 'inventories', 'production', 'group_vars', 'app.yml'), encoding='utf-8') as handle:
        prod = yaml.safe_load(handle)
    with open(os.path.join(ROOT, 'roles', 'k8s_app', 'defaults', 'main.yml'), encoding='utf-8') as handle:
        defaults = yaml.safe_load(handle)
    services = [dict(service, image=service['image'].split(':{{')[0] + '@sha256:' + '%064x' % index)
                for index, service in enumerate(prod['compose_app_services'], 1)]
    variables = dict((name, value) for name, value in defaults.items() if not str(value).startswith('{{'))
    variables.update(dict((name, value) for name, value in prod.items() if name.startswith('k8s_app_')))
    variables.update({'k8s_app_name': 'quiz', 'k8s_app_release': '1.0.0', 'k8s_app_namespace': 'quiz',
                      'k8s_app_services': services, 'k8s_app_environment': prod['compose_app_environment'],
                      'k8s_app_secrets': {'QUIZ_DATABASE_URL': 'x'}, 'k8s_app_migrate': True,
                      'k8s_app_migrate_service': 'api', 'k8s_app_migrate_command': ['migrate'],
                      'k8s_app_migrate_timeout': 300, 'k8s_app_canary_percent': 10})
    plan = k8s_filters.k8s_app_plan([_ledger_with_active('0.9.0', {'api': 'a:1', 'web': 'w:1', 'worker': 'k:1'})],
                                    variables)
    objects = k8s_filters.k8s_app_manifests(plan, variables)
    return objects['namespace'] + objects['setup'] + [objects['secret'], objects['migration']] + objects['workload'] + \
        [objects['canary']] + objects['switch']


@pytest.fixture(scope='module')
def checkov_report(rendered, tmp_path_factory):
    """One checkov run over both renders and the digest variant: failed checks by input."""
    if not os.access(CHECKOV, os.X_OK):
        pytest.skip('checkov not installed at %s (tests/lab/setup.sh makes it; AIQUIZ_CHECKOV names another)'
                    % CHECKOV)
    tmp = tmp_path_factory.mktemp('checkov')
    (tmp / 'digests.yml').write_text(yaml.safe_dump_all(_digest_docs()))
    inputs = {'digests': [str(tmp / 'digests.yml')]}
    for workload in WORKLOADS:
        directory = rendered[workload][0]
        inputs[workload] = [str(directory / 'manifests.yml'), str(directory / 'secret.yml')]
    report = _checkov([f for files in inputs.values() for f in files], SKIP_ALWAYS)
    failed = dict((name, []) for name in inputs)
    for check in report.get('results', {}).get('failed_checks', []):
        name = next(name for name, files in inputs.items() if check['file_abs_path'] in files)
        failed[name].append((check['check_id'], check['resource']))
    return {'failed': failed, 'passed': report['summary']['passed']}


@pytest.mark.parametrize('workload', WORKLOADS)
def test_checkov_kubernetes_checks_pass(checkov_report, workload):
    """Every check but the skipped ones passes; the digest check fails only for images named by tag."""
    failed = checkov_report['failed'][workload]
    assert [item for item in failed if item[0] not in SKIP_TAGGED] == []
    # The scan did read these files: their tags fail the digest check.
    assert ('CKV_K8S_43', 'Deployment.quiz.quiz-api-%s' % ('blue' if workload == 'lab' else 'green')) in failed
    assert checkov_report['passed'] > 600


def test_checkov_passes_image_digests_unskipped(checkov_report):
    """With images by digest, the digest check (CKV_K8S_43) runs too, and passes."""
    assert checkov_report['failed']['digests'] == []


def test_digest_manifests_pass_strict_schema_validation():
    docs = _digest_docs()
    specs = list(_pod_specs(docs))
    assert all('@sha256:' in spec['containers'][0]['image'] for _name, spec in specs)
    assert all(spec['containers'][0]['imagePullPolicy'] == 'IfNotPresent' for _name, spec in specs)
    for version in KUBE_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
