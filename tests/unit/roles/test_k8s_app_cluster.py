# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_app role against a real cluster, through playbooks/deploy.yml and
playbooks/rollback.yml: a first release, a re-run that changes nothing, a
second release on the other colour, a broken release undone automatically,
and a rollback to the previous good release.

Runs only when KUBECONFIG names a cluster this machine reaches and the
`kubernetes` Python package is installed; skipped otherwise, saying why
(never counted as a pass). docs/user-guide/kubernetes.md says how to run it
against a kind cluster. The workload is one small web service of
AIQUIZ_K8S_TEST_IMAGE (default python:3.12-slim, which the cluster must be
able to pull or have loaded), in a namespace of its own, deleted afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
IMAGE = os.environ.get('AIQUIZ_K8S_TEST_IMAGE', 'python:3.12-slim')


def _cluster_reason():
    """Why the cluster tests cannot run here, or None."""
    kubeconfig = os.environ.get('KUBECONFIG')
    if not kubeconfig or not os.path.isfile(kubeconfig.split(os.pathsep)[0]):
        return 'KUBECONFIG does not name a kubeconfig file: no Kubernetes cluster to deploy to'
    try:
        import kubernetes  # noqa: F401  pylint: disable=unused-import
    except ImportError:
        return 'the kubernetes Python package (kubernetes.core needs it) is not installed'
    try:
        from kubernetes import client, config
        config.load_kube_config()
        client.VersionApi().get_code(_request_timeout=10)
    except Exception as exc:  # pylint: disable=broad-except
        return 'the cluster of KUBECONFIG does not answer: %s' % exc
    return None


REASON = _cluster_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or '')


def _release(release, broken=False):
    command = ['python3', '-c', 'raise SystemExit(3)'] if broken else ['python3', '-m', 'http.server', '8080']
    return [{'name': 'web', 'image': IMAGE, 'port': 8080, 'upstream': 'quiz_web', 'command': command,
             'environment': {'QUIZ_RELEASE': release}}]


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    from kubernetes import client, config
    config.load_kube_config()
    tmp = tmp_path_factory.mktemp('k8s-cluster')
    namespace = 'aiquiz-k8s-test-%s' % uuid.uuid4().hex[:6]
    (tmp / 'inventory.yml').write_text(yaml.safe_dump({'all': {'children': {'app': {'hosts': {'cluster': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
        'aiquiz_platform': 'kubernetes'}}}}}}))
    base = {
        'compose_app_name': 'quiz', 'k8s_app_namespace': namespace, 'compose_app_environment': {},
        'compose_app_secrets': {'QUIZ_TOKEN': 'cluster-test-secret'},
        'compose_app_migrate_service': 'web', 'compose_app_migrate_command': ['python3', '-c', 'print("migrated")'],
        'compose_app_health_deadline': 120, 'k8s_app_rollout_timeout': 180, 'k8s_app_ingress_host': '',
        'k8s_app_hpa_max_replicas': 0, 'k8s_app_replicas': 2,
        'k8s_app_ingress_paths': {'web': '/'},
        # http.server answers / with 200; it has no /healthz or /readyz.
        'k8s_app_probes': {'web': {'readiness': {'httpGet': {'path': '/', 'port': 'http'}},
                                   'liveness': {'httpGet': {'path': '/', 'port': 'http'}}}},
    }

    def run(playbook, **variables):
        path = tmp / ('vars-%s.json' % uuid.uuid4().hex[:6])
        path.write_text(json.dumps(dict(base, **variables)))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   AIQUIZ_AUDIT_DIR=str(tmp / 'audit'))
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                               '-i', str(tmp / 'inventory.yml'), os.path.join(ROOT, 'playbooks', playbook),
                               '-e', '@' + str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def ledger():
        configmap = client.CoreV1Api().read_namespaced_config_map('quiz-releases', namespace)
        return dict((entry['id'], (entry['state'], entry['colour']))
                    for entry in json.loads(configmap.data['ledger.json'])['releases'])

    def ready(name):
        deployment = client.AppsV1Api().read_namespaced_deployment(name, namespace)
        return deployment.spec.replicas, deployment.status.ready_replicas or 0

    def front():
        return client.CoreV1Api().read_namespaced_service('web', namespace).spec.selector['aiquiz.ops/colour']

    yield {'run': run, 'ledger': ledger, 'ready': ready, 'front': front}
    client.CoreV1Api().delete_namespace(namespace)


def _changed(output):
    return [int(n) for n in re.findall(r'cluster\s+:.*changed=(\d+)', output)]


def test_releases_undo_and_rollback_on_a_cluster(cluster):
    run, ledger, ready, front = cluster['run'], cluster['ledger'], cluster['ready'], cluster['front']

    rc, output = run('deploy.yml', compose_app_release='1.0.0', compose_app_services=_release('1.0.0'))
    assert rc == 0, output[-4000:]
    assert ledger() == {'1.0.0': ('active', 'blue')}
    assert ready('quiz-web-blue') == (2, 2) and front() == 'blue'
    assert 'cluster-test-secret' not in output

    rc, output = run('deploy.yml', compose_app_release='1.0.0', compose_app_services=_release('1.0.0'))
    assert rc == 0 and _changed(output) == [0], output[-4000:]

    rc, output = run('deploy.yml', compose_app_release='1.1.0', compose_app_services=_release('1.1.0'))
    assert rc == 0, output[-4000:]
    assert ledger() == {'1.1.0': ('active', 'green'), '1.0.0': ('standby', 'blue')}
    assert ready('quiz-web-green') == (2, 2) and ready('quiz-web-blue')[0] == 0 and front() == 'green'

    # A release whose pods never become ready is undone: 1.1.0 keeps serving.
    rc, output = run('deploy.yml', compose_app_release='1.2.0', compose_app_services=_release('1.2.0', broken=True),
                     k8s_app_rollout_timeout=40)
    assert rc != 0 and 'failed and was undone' in output, output[-4000:]
    assert ledger()['1.2.0'][0] == 'failed' and ledger()['1.1.0'] == ('active', 'green')
    assert front() == 'green' and ready('quiz-web-green') == (2, 2) and ready('quiz-web-blue')[0] == 0

    rc, output = run('rollback.yml', compose_app_services=_release('1.1.0'))
    assert rc == 0, output[-4000:]
    assert ledger()['1.0.0'] == ('active', 'blue') and ledger()['1.1.0'] == ('standby', 'green')
    assert front() == 'blue' and ready('quiz-web-blue') == (2, 2)
