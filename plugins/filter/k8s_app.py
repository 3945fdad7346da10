# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the k8s_app role: k8s_app_variable_errors, k8s_app_plan,
k8s_app_manifests, k8s_app_ledger and k8s_app_ready.

The decisions live in module_utils/_k8s_app.py (and the ledger rules in
module_utils/_release.py, shared with the release module); these filters only
check their input and turn errors into filter errors.
Their documentation is in the .yml file of the same name beside this file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.canary import canary_weights
from ansible_collections.aiquiz.ops.plugins.module_utils import _k8s_app

VARIABLES = ('k8s_app_name', 'k8s_app_release', 'k8s_app_namespace', 'k8s_app_services', 'k8s_app_environment',
             'k8s_app_secrets', 'k8s_app_resources', 'k8s_app_service_resources', 'k8s_app_probes',
             'k8s_app_replicas', 'k8s_app_hpa_max_replicas', 'k8s_app_hpa_cpu_percent', 'k8s_app_canary_percent',
             'k8s_app_ingress_host', 'k8s_app_ingress_class', 'k8s_app_ingress_paths', 'k8s_app_ingress_annotations',
             'k8s_app_ingress_tls_secret_name', 'k8s_app_ingress_namespace', 'k8s_app_ingress_pod_labels',
             'k8s_app_data_clients', 'k8s_app_data_egress', 'k8s_app_files', 'k8s_app_migrate',
             'k8s_app_migrate_service', 'k8s_app_migrate_command', 'k8s_app_migrate_timeout',
             'k8s_app_manage_namespace', 'k8s_app_image_pull_secret_names')


def _variables(variables, name, check=True):
    if not isinstance(variables, Mapping):
        raise AnsibleFilterError('%s: expects a dict of the k8s_app variables, got %r' % (name, variables))
    missing = [key for key in VARIABLES if key not in variables]
    if missing:
        raise AnsibleFilterError('%s: variables missing from the input: %s' % (name, ', '.join(missing)))
    variables = dict(variables)
    if check:
        errors = _k8s_app.variable_errors(variables)
        if errors:
            raise AnsibleFilterError('%s: invalid variables: %s' % (name, '; '.join(errors)))
    return variables


def k8s_app_variable_errors(variables):
    """Every error in the k8s_app variables, each naming the variable; [] when they are valid."""
    return _k8s_app.variable_errors(_variables(variables, 'k8s_app_variable_errors', check=False))


def k8s_app_plan(ledger_resources, variables, rollback=False, rollback_to=None):
    """Which colour the release goes to and which traffic steps it takes, from the ledger ConfigMap."""
    name = 'k8s_app_plan'
    v = _variables(variables, name)
    images = dict((s['name'], s['image']) for s in v['k8s_app_services'])
    weight = canary_weights(v['k8s_app_canary_percent'], 1)['new']
    try:
        ledger = _k8s_app.ledger_from_resources(ledger_resources, v['k8s_app_name'], v['k8s_app_namespace'])
        return _k8s_app.plan(ledger, v['k8s_app_namespace'], v['k8s_app_release'], images, weight,
                             rollback_to=rollback_to or None, rollback=bool(rollback))
    except _k8s_app.K8sAppError as exc:
        raise AnsibleFilterError('%s: %s' % (name, exc))


def k8s_app_manifests(plan, variables, redact_secrets=False):
    """Every Kubernetes object of the planned release, by phase of the rollout."""
    name = 'k8s_app_manifests'
    v = _variables(variables, name)
    if not isinstance(plan, Mapping) or not {'release', 'images', 'colour'} <= set(plan):
        raise AnsibleFilterError('%s: expects the plan of k8s_app_plan, got %r' % (name, plan))
    secrets = v['k8s_app_secrets'] or {}
    if redact_secrets:
        secrets = dict((key, 'REDACTED') for key in secrets)
    return _k8s_app.manifests(v, dict(plan), secrets)


def k8s_app_ledger(ledger, namespace, state, release=None, images=None, reason=None, keep=None):
    """The ledger after a state change of a release, and the ConfigMap that holds it."""
    name = 'k8s_app_ledger'
    if not isinstance(ledger, Mapping) or 'workload' not in ledger:
        raise AnsibleFilterError('%s: expects a ledger (the plan\'s "ledger"), got %r' % (name, ledger))
    if state not in _k8s_app._release.STATES + ('absent',):
        raise AnsibleFilterError('%s: unknown state %r' % (name, state))
    try:
        return _k8s_app.ledger_update(dict(ledger), namespace, state, release=release, images=images,
                                      reason=reason, keep=int(keep) if keep is not None else None)
    except _k8s_app.K8sAppError as exc:
        raise AnsibleFilterError('%s: %s' % (name, exc))


def k8s_app_ready(slices, want, pods=None, before=None):
    """The health gate's verdict from the EndpointSlices of a Service and, with
    pods, whether the new colour's pods are all ready with no restart since before."""
    try:
        want = int(want)
    except (TypeError, ValueError):
        raise AnsibleFilterError('k8s_app_ready: want must be a whole number, got %r' % (want,))
    if not isinstance(slices, list):
        raise AnsibleFilterError('k8s_app_ready: expects the EndpointSlices (k8s_info resources), got %r' % (slices,))
    result = _k8s_app.endpoints_ready(slices, want)
    if pods is not None:
        if not isinstance(pods, list) or (before is not None and not isinstance(before, Mapping)):
            raise AnsibleFilterError('k8s_app_ready: pods must be a list (k8s_info resources) and before a dict')
        health = _k8s_app.pods_healthy(pods, before)
        result.update(health)
        result['ready'] = result['ready'] and health['healthy']
    return result


class FilterModule:

    def filters(self):
        return {
            'k8s_app_variable_errors': k8s_app_variable_errors,
            'k8s_app_plan': k8s_app_plan,
            'k8s_app_manifests': k8s_app_manifests,
            'k8s_app_ledger': k8s_app_ledger,
            'k8s_app_ready': k8s_app_ready,
        }
