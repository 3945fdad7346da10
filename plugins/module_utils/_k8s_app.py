# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the k8s_app filters
# (plugins/filter/k8s_app.py) only. Its functions may change or go away in any
# release; do not import it from outside this collection.
#
# The decisions of the k8s_app role, as plain functions on dicts so that they
# are tested without Ansible or a cluster running:
# - variable_errors(): what Kubernetes would refuse, before anything renders;
# - plan(): which colour a release goes to, from the ledger ConfigMap, with
#   the ledger rules of _release (the same release ids, states and history);
# - manifests(): every object of a release, by phase of the rollout;
# - ledger_update(): a transition of the ledger and its ConfigMap;
# - endpoints_ready(): the health gate's verdict from the EndpointSlices of a
#   Service;
# - undo(): what to put back when a release fails.

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import re

from ansible_collections.aiquiz.ops.plugins.module_utils import _release
from ansible_collections.aiquiz.ops.plugins.module_utils._role_variables import whole_number

COLOURS = _release.COLOURS
LEDGER_KEY = 'ledger.json'
LABEL_PREFIX = 'aiquiz.ops'
NAME_MAX = 63
# RFC 1123 label (Service and object names we build), RFC 1035 for the workload
# name: it starts the Service names.
DNS_LABEL_RE = re.compile(r'^[a-z]([-a-z0-9]*[a-z0-9])?$')
# A container image reference as the kubelet takes it: [registry[:port]/]path[:tag][@digest].
IMAGE_RE = re.compile(
    r'^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?'
    r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*'
    r'(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$')
DIGEST_RE = re.compile(r'@sha256:[a-f0-9]{64}$')
# Resource quantities the API server accepts in requests and limits (a subset:
# no exponent forms), e.g. 250m, 0.5, 512Mi, 1G.
QUANTITY_RE = re.compile(r'^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$')
ENV_NAME_RE = re.compile(r'^[-._a-zA-Z][-._a-zA-Z0-9]*$')
CONFIG_KEY_RE = re.compile(r'^[-._a-zA-Z0-9]+$')
PORT_NAME = 'http'
RUN_AS = 10001


class K8sAppError(Exception):
    """Input the role cannot render, or a ledger it cannot read."""


# --------------------------------------------------------------------------
# Names and labels
# --------------------------------------------------------------------------

def object_name(*parts):
    """A DNS label of the parts joined by '-': cut to 63 characters with a hash
    of the whole when longer, so that two long names stay distinct."""
    name = '-'.join(str(part) for part in parts if part not in (None, ''))
    name = re.sub(r'-+', '-', name).strip('-')
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]
    return '%s-%s' % (name[:NAME_MAX - 9].rstrip('-'), digest)


def release_slug(release):
    return _release.slug(release).strip('-') or 'r'


def labels(workload, service=None, colour=None):
    result = {'app.kubernetes.io/instance': workload, 'app.kubernetes.io/part-of': workload,
              'app.kubernetes.io/managed-by': 'aiquiz.ops.k8s_app'}
    if service:
        result['app.kubernetes.io/name'] = service
    if colour:
        result['%s/colour' % LABEL_PREFIX] = colour
    return result


def selector(workload, service, colour=None):
    result = {'app.kubernetes.io/instance': workload, 'app.kubernetes.io/name': service}
    if colour:
        result['%s/colour' % LABEL_PREFIX] = colour
    return result


def ledger_name(workload):
    return object_name(workload, 'releases')


def release_config_name(workload, release):
    return object_name(workload, release_slug(release), 'env')


# --------------------------------------------------------------------------
# Validation: what the argument specs cannot express
# --------------------------------------------------------------------------

def _services(value):
    return [service for service in value if isinstance(service, dict)] if isinstance(value, list) else []


def exposed(services):
    """Services the edge (the Ingress) reaches: those with a port and an upstream."""
    return [service for service in services if service.get('port') and service.get('upstream')]


def with_port(services):
    return [service for service in services if service.get('port')]


def _quantity_errors(where, resources):
    errors = []
    if not isinstance(resources, dict):
        return ['%s: "%s" is not a dict of requests and limits' % (where, resources)]
    for kind in ('requests', 'limits'):
        values = resources.get(kind)
        if not isinstance(values, dict) or not values.get('cpu') or not values.get('memory'):
            errors.append('%s.%s: needs cpu and memory' % (where, kind))
            continue
        for key, value in sorted(values.items()):
            if key not in ('cpu', 'memory', 'ephemeral-storage'):
                errors.append('%s.%s.%s: not a resource Kubernetes knows here (cpu, memory, ephemeral-storage)'
                              % (where, kind, key))
            elif not QUANTITY_RE.match(str(value)):
                errors.append('%s.%s.%s: "%s" is not a Kubernetes quantity such as 250m, 0.5, 512Mi or 1Gi'
                              % (where, kind, key, value))
    return errors


def variable_errors(v):
    """Every error in the k8s_app variables, each naming its variable; [] when valid."""
    errors = []
    name = v.get('k8s_app_name')
    if not isinstance(name, str) or not DNS_LABEL_RE.match(name) or len(name) > 40:
        errors.append('k8s_app_name: "%s" must be 1-40 lowercase letters, digits and "-", starting with a letter '
                      'and ending with a letter or digit (it starts the names of Kubernetes objects)' % (name,))
    release = v.get('k8s_app_release')
    if release is not None and (not isinstance(release, str) or not _release.NAME_RE.match(release)):
        errors.append('k8s_app_release: "%s" must be 1-128 letters, digits, ".", "_", "+" or "-" starting with a '
                      'letter or digit' % (release,))
    namespace = v.get('k8s_app_namespace')
    if not isinstance(namespace, str) or not DNS_LABEL_RE.match(namespace):
        errors.append('k8s_app_namespace: "%s" is not a namespace name (a DNS label)' % (namespace,))
    services = v.get('k8s_app_services')
    if not isinstance(services, list) or not services:
        errors.append('k8s_app_services: at least one service is needed')
        services = []
    names = set()
    for index, service in enumerate(services):
        where = 'k8s_app_services[%d]' % index
        if not isinstance(service, dict):
            errors.append('%s: not a dict' % where)
            continue
        sname = service.get('name')
        where = '%s (%s)' % (where, sname)
        if not isinstance(sname, str) or not DNS_LABEL_RE.match(sname) or len(sname) > 15:
            errors.append('%s: the name must be 1-15 lowercase letters, digits and "-", starting with a letter '
                          '(a Kubernetes Service and port-safe name)' % where)
        if sname in names:
            errors.append('%s: the name appears twice' % where)
        names.add(sname)
        image = service.get('image')
        if not isinstance(image, str) or not IMAGE_RE.match(image):
            errors.append('%s: image "%s" is not an image reference Kubernetes pulls ([registry/]path[:tag]'
                          '[@sha256:<64 hex>])' % (where, image))
        port = service.get('port')
        if port is not None and (whole_number(port) is None or not 1 <= whole_number(port) <= 65535):
            errors.append('%s: port "%s" is not a port number' % (where, port))
        if service.get('upstream') and not port:
            errors.append('%s: an upstream needs a port' % where)
        for key in sorted(service.get('environment') or {}):
            if not ENV_NAME_RE.match(str(key)):
                errors.append('%s: environment name "%s" is not one Kubernetes accepts' % (where, key))
        for dep in service.get('depends_on') or []:
            if dep not in [s.get('name') for s in services if isinstance(s, dict)]:
                errors.append('%s: depends_on names "%s", which is not a service' % (where, dep))
    for var in ('k8s_app_environment', 'k8s_app_secrets'):
        values = v.get(var)
        if not isinstance(values, dict):
            errors.append('%s: not a dict' % var)
            continue
        for key in sorted(values):
            if not ENV_NAME_RE.match(str(key)):
                errors.append('%s: "%s" is not an environment name Kubernetes accepts' % (var, key))
    errors.extend(_quantity_errors('k8s_app_resources', v.get('k8s_app_resources')))
    for sname, resources in sorted((v.get('k8s_app_service_resources') or {}).items()):
        if sname not in names:
            errors.append('k8s_app_service_resources: "%s" is not a service' % sname)
        errors.extend(_quantity_errors('k8s_app_service_resources.%s' % sname, resources))
    for sname in sorted(v.get('k8s_app_probes') or {}):
        if sname not in names:
            errors.append('k8s_app_probes: "%s" is not a service' % sname)
    percent = whole_number(v.get('k8s_app_canary_percent'))
    if percent is None or not 0 <= percent <= 100:
        errors.append('k8s_app_canary_percent: "%s" must be a whole number from 0 to 100 (ingress-nginx\'s '
                      'canary-weight)' % (percent,))
    replicas = whole_number(v.get('k8s_app_replicas'))
    if replicas is None or replicas < 1:
        errors.append('k8s_app_replicas: "%s" must be a whole number of 1 or more' % (replicas,))
    hpa_max = whole_number(v.get('k8s_app_hpa_max_replicas'))
    if hpa_max is None or (hpa_max and replicas is not None and hpa_max < replicas):
        errors.append('k8s_app_hpa_max_replicas: "%s" must be 0 (no autoscaler) or at least k8s_app_replicas'
                      % (v.get('k8s_app_hpa_max_replicas'),))
    cpu = whole_number(v.get('k8s_app_hpa_cpu_percent'))
    if cpu is None or not 1 <= cpu <= 1000:
        errors.append('k8s_app_hpa_cpu_percent: "%s" must be a whole number from 1 to 1000'
                      % (v.get('k8s_app_hpa_cpu_percent'),))
    paths = v.get('k8s_app_ingress_paths') or {}
    for sname in sorted(paths):
        if sname not in names:
            errors.append('k8s_app_ingress_paths: "%s" is not a service' % sname)
        elif not str(paths[sname]).startswith('/'):
            errors.append('k8s_app_ingress_paths.%s: "%s" must start with /' % (sname, paths[sname]))
    for sname in v.get('k8s_app_data_clients') or []:
        if sname not in names:
            errors.append('k8s_app_data_clients: "%s" is not a service' % sname)
    for index, rule in enumerate(v.get('k8s_app_data_egress') or []):
        if not isinstance(rule, dict) or not rule.get('cidr') or not isinstance(rule.get('ports'), list) \
                or not rule['ports']:
            errors.append('k8s_app_data_egress[%d]: needs cidr and a list of ports' % index)
            continue
        try:
            ipaddress.ip_network(str(rule['cidr']), strict=False)
        except ValueError:
            errors.append('k8s_app_data_egress[%d]: "%s" is not a CIDR' % (index, rule['cidr']))
        for port in rule['ports']:
            if whole_number(port) is None or not 1 <= whole_number(port) <= 65535:
                errors.append('k8s_app_data_egress[%d]: "%s" is not a port number' % (index, port))
    for index, item in enumerate(v.get('k8s_app_files') or []):
        if not isinstance(item, dict) or not str(item.get('path', '')).startswith('/') or 'content' not in item:
            errors.append('k8s_app_files[%d]: needs an absolute path and content' % index)
    if v.get('k8s_app_migrate') and v.get('k8s_app_migrate_service') not in names:
        errors.append('k8s_app_migrate_service: "%s" is not a service' % (v.get('k8s_app_migrate_service'),))
    return errors


# --------------------------------------------------------------------------
# Ledger: a ConfigMap holding _release's ledger as JSON
# --------------------------------------------------------------------------

def ledger_from_resources(resources, workload, namespace):
    """The ledger in the ConfigMap found by k8s_info (its `resources`), or a new one."""
    where = 'ConfigMap %s/%s' % (namespace, ledger_name(workload))
    if not resources:
        return _release.empty_ledger(workload)
    raw = ((resources[0] or {}).get('data') or {}).get(LEDGER_KEY)
    if not raw:
        raise K8sAppError('release ledger %s has no %s key; fix it or delete the ConfigMap (the next deploy then '
                          'starts a new ledger)' % (where, LEDGER_KEY))
    try:
        data = json.loads(raw)
        _release.check_ledger(data, where)
    except ValueError as exc:
        raise K8sAppError('release ledger %s is corrupt: not valid JSON (%s)' % (where, exc))
    except _release.LedgerError as exc:
        raise K8sAppError(str(exc))
    if data['workload'] != workload:
        raise K8sAppError('release ledger %s belongs to workload %r, not %r' % (where, data['workload'], workload))
    data.setdefault('colours', {})
    return data


def ledger_configmap(ledger, namespace):
    workload = ledger['workload']
    return {
        'apiVersion': 'v1', 'kind': 'ConfigMap',
        'metadata': {'name': ledger_name(workload), 'namespace': namespace, 'labels': labels(workload)},
        'data': {LEDGER_KEY: _release.serialize(ledger)},
    }


def ledger_update(ledger, namespace, state, release=None, images=None, reason=None, keep=None, now=None):
    """Apply a state to the ledger with _release's rules; the new ledger, its ConfigMap, the ids removed."""
    params = {'state': state, 'release': release, 'images': images, 'reason': reason, 'keep': keep,
              'path': 'ConfigMap %s/%s' % (namespace, ledger_name(ledger['workload']))}
    try:
        new, info = _release.transition(ledger, params, now=now)
    except _release.LedgerError as exc:
        raise K8sAppError(str(exc))
    workload = ledger['workload']
    removed_objects = []
    for rid in info['removed']:
        slug = release_slug(rid)
        removed_objects.extend([
            {'apiVersion': 'v1', 'kind': 'ConfigMap', 'name': release_config_name(workload, rid)},
            {'apiVersion': 'v1', 'kind': 'Secret', 'name': release_config_name(workload, rid)},
            {'apiVersion': 'v1', 'kind': 'ConfigMap', 'name': object_name(workload, slug, 'files')},
            {'apiVersion': 'batch/v1', 'kind': 'Job', 'name': object_name(workload, 'migrate', slug)},
        ])
    return {'ledger': new, 'configmap': ledger_configmap(new, namespace), 'removed': info['removed'],
            'removed_objects': removed_objects}


# --------------------------------------------------------------------------
# Plan: which colour, which traffic steps
# --------------------------------------------------------------------------

def plan(ledger, namespace, release, images, canary_new_weight, rollback_to=None, rollback=False, now=None):
    """Where a release goes.

    Deploy: release and images as given. Rollback: the named release, or the
    previous good one, with the images the ledger recorded for it; no
    migrations, no canary. The ledger that comes back already has the
    release as deploying on its colour (what the role writes before any
    other change), unless it is a no-op (the active release again, with the
    same images).
    """
    if rollback:
        target = _release.find(ledger, rollback_to) if rollback_to else _release.previous_good(ledger)
        if target is None:
            raise K8sAppError('no release to go back to: %s; %s'
                              % ('%s is not in the ledger' % rollback_to if rollback_to else
                                 'the ledger has no previous good release', _release.known_releases(ledger)))
        release, images = target['id'], dict(target['images'])
    old = _release.active_entry(ledger)
    idle = _release.idle_colour(ledger)
    # A rollback to the release whose Deployments are still on the idle colour
    # (kept at 0 replicas since it was retired): scale them up as they are.
    kept = bool(rollback) and ledger['colours'].get(idle) == release and \
        (_release.find(ledger, release) or {}).get('colour') == idle
    update = ledger_update(ledger, namespace, 'deploying', release=release, images=images, now=now,
                           reason='rollback' if rollback else None)
    noop = old is not None and old['id'] == release
    if noop:
        update = {'ledger': ledger, 'configmap': ledger_configmap(ledger, namespace)}
    entry = _release.find(update['ledger'], release)
    old_colour = old['colour'] if old is not None and not noop else None
    canary = 0 if (rollback or noop or old_colour is None) else int(canary_new_weight)
    return {
        'release': release,
        'images': images,
        'colour': entry['colour'],
        'noop': noop,
        'rollback': bool(rollback),
        'old_release': old['id'] if old is not None and not noop else None,
        'old_colour': old_colour,
        'canary_weight': canary,
        'migrate': not rollback and not noop,
        'kept': kept,
        'ledger': update['ledger'],
        'ledger_configmap': update['configmap'],
    }


# --------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------

def _probe_from_compose(service):
    """An exec probe from the compose healthcheck (CMD or CMD-SHELL), or None."""
    test = ((service.get('compose') or {}).get('healthcheck') or {}).get('test')
    if isinstance(test, list) and len(test) > 1 and test[0] == 'CMD':
        return {'exec': {'command': [str(arg) for arg in test[1:]]}}
    if isinstance(test, list) and len(test) == 2 and test[0] == 'CMD-SHELL':
        return {'exec': {'command': ['/bin/sh', '-c', str(test[1])]}}
    if isinstance(test, str) and test:
        return {'exec': {'command': ['/bin/sh', '-c', test]}}
    return None


def _probes(service, overrides):
    """Readiness and liveness of a container: the role's override, else HTTP on
    the port (health_path ready, /healthz alive), else the compose healthcheck."""
    override = overrides.get(service['name']) or {}
    timing_ready = {'periodSeconds': 5, 'timeoutSeconds': 3, 'failureThreshold': 3}
    timing_live = {'periodSeconds': 10, 'timeoutSeconds': 3, 'failureThreshold': 3, 'initialDelaySeconds': 10}
    if service.get('port'):
        ready = {'httpGet': {'path': service.get('health_path') or '/readyz', 'port': PORT_NAME}}
        live = {'httpGet': {'path': '/healthz', 'port': PORT_NAME}}
    else:
        ready = live = _probe_from_compose(service)
    if override.get('exec'):
        ready = live = {'exec': {'command': [str(arg) for arg in override['exec']]}}
    if override.get('readiness'):
        ready = copy.deepcopy(override['readiness'])
    if override.get('liveness'):
        live = copy.deepcopy(override['liveness'])
    result = {}
    if ready:
        result['readinessProbe'] = dict(timing_ready, **ready)
    if live:
        result['livenessProbe'] = dict(timing_live, **live)
    return result


def _container_security():
    return {
        'allowPrivilegeEscalation': False,
        'privileged': False,
        'readOnlyRootFilesystem': True,
        'runAsNonRoot': True,
        'runAsUser': RUN_AS,
        'runAsGroup': RUN_AS,
        'capabilities': {'drop': ['ALL']},
        'seccompProfile': {'type': 'RuntimeDefault'},
    }


def _pod_security():
    return {
        'runAsNonRoot': True,
        'runAsUser': RUN_AS,
        'runAsGroup': RUN_AS,
        'fsGroup': RUN_AS,
        'seccompProfile': {'type': 'RuntimeDefault'},
    }


class _Renderer:
    def __init__(self, v, release, images):
        self.v = v
        self.name = v['k8s_app_name']
        self.ns = v['k8s_app_namespace']
        self.release = release
        self.slug = release_slug(release)
        self.services = _services(v['k8s_app_services'])
        self.images = images
        self.config = release_config_name(self.name, release)
        self.files = v.get('k8s_app_files') or []
        self.files_name = object_name(self.name, self.slug, 'files')

    def meta(self, name, service=None, colour=None, annotations=None):
        meta = {'name': name, 'namespace': self.ns, 'labels': labels(self.name, service, colour)}
        if annotations:
            meta['annotations'] = annotations
        return meta

    def resources(self, service):
        return copy.deepcopy((self.v.get('k8s_app_service_resources') or {}).get(service['name'])
                             or self.v['k8s_app_resources'])

    def pod_spec(self, service, command=None, restart=None):
        image = self.images.get(service['name'], service['image'])
        container = {
            'name': service['name'],
            'image': image,
            # A digest never moves; a tag is checked at every start.
            'imagePullPolicy': 'IfNotPresent' if DIGEST_RE.search(image) else 'Always',
            'envFrom': [{'configMapRef': {'name': self.config}}, {'secretRef': {'name': self.config}}],
            'resources': self.resources(service),
            'securityContext': _container_security(),
            # A read-only root file system: scratch space in memory.
            'volumeMounts': [{'name': 'tmp', 'mountPath': '/tmp'}],
        }
        args = command if command is not None else service.get('command')
        if isinstance(args, str):
            args = ['/bin/sh', '-c', args]
        if args:
            container['args'] = [str(arg) for arg in args]
        env = service.get('environment') or {}
        if env:
            container['env'] = [{'name': str(key), 'value': str(env[key])} for key in sorted(env)]
        if command is None:
            if service.get('port'):
                container['ports'] = [{'name': PORT_NAME, 'containerPort': int(service['port']), 'protocol': 'TCP'}]
            container.update(_probes(service, self.v.get('k8s_app_probes') or {}))
        volumes = [{'name': 'tmp', 'emptyDir': {'medium': 'Memory', 'sizeLimit': '64Mi'}}]
        if self.files:
            volumes.append({'name': 'files', 'configMap': {'name': self.files_name}})
            for index, item in enumerate(self.files):
                container['volumeMounts'].append({'name': 'files', 'mountPath': item['path'],
                                                  'subPath': 'file-%d' % index, 'readOnly': True})
        spec = {
            'serviceAccountName': self.name,
            'automountServiceAccountToken': False,
            'enableServiceLinks': False,
            'securityContext': _pod_security(),
            'containers': [container],
            'volumes': volumes,
        }
        if restart:
            spec['restartPolicy'] = restart
        pull = self.v.get('k8s_app_image_pull_secret_names') or []
        if pull:
            spec['imagePullSecrets'] = [{'name': secret} for secret in pull]
        return spec

    # --- setup: what every release shares, and this release's configuration
    def namespace(self):
        objs = []
        if self.v.get('k8s_app_manage_namespace'):
            objs.append({'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': {
                'name': self.ns, 'labels': dict(labels(self.name), **{
                    'pod-security.kubernetes.io/enforce': 'restricted',
                    'pod-security.kubernetes.io/enforce-version': 'latest',
                    'pod-security.kubernetes.io/warn': 'restricted',
                    'pod-security.kubernetes.io/audit': 'restricted'})}})
        return objs

    def setup(self, colour):
        objs = []
        objs.append({'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': self.meta(self.name),
                     'automountServiceAccountToken': False})
        objs.extend(self.network_policies())
        objs.append({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': self.meta(
            self.config, annotations={'%s/release' % LABEL_PREFIX: self.release}),
            'data': dict((str(k), str(val)) for k, val in sorted((self.v.get('k8s_app_environment') or {}).items()))})
        if self.files:
            objs.append({'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': self.meta(self.files_name),
                         'data': dict(('file-%d' % index, str(item['content']))
                                      for index, item in enumerate(self.files))})
        objs.extend(self.colour_services(colour))
        return objs

    def secret(self, secrets):
        return {'apiVersion': 'v1', 'kind': 'Secret', 'type': 'Opaque', 'metadata': self.meta(
            self.config, annotations={'%s/release' % LABEL_PREFIX: self.release}),
            'stringData': dict((str(k), str(val)) for k, val in sorted(secrets.items()))}

    def colour_services(self, colour):
        return [self.service(object_name(self.name, s['name'], colour), s, colour) for s in with_port(self.services)]

    def service(self, name, service, colour):
        return {'apiVersion': 'v1', 'kind': 'Service', 'metadata': self.meta(name, service['name'], colour),
                'spec': {'type': 'ClusterIP', 'selector': selector(self.name, service['name'], colour),
                         'ports': [{'name': PORT_NAME, 'port': int(service['port']), 'targetPort': PORT_NAME,
                                    'protocol': 'TCP'}]}}

    def network_policies(self):
        pods = {'app.kubernetes.io/instance': self.name}
        objs = [{
            'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',
            'metadata': self.meta(object_name(self.name, 'default-deny')),
            'spec': {'podSelector': {}, 'policyTypes': ['Ingress', 'Egress']},
        }, {
            'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',
            'metadata': self.meta(object_name(self.name, 'dns')),
            'spec': {'podSelector': {'matchLabels': pods}, 'policyTypes': ['Egress'], 'egress': [{
                'to': [{'namespaceSelector': {'matchLabels': {'kubernetes.io/metadata.name': 'kube-system'}},
                        'podSelector': {'matchLabels': {'k8s-app': 'kube-dns'}}}],
                'ports': [{'protocol': 'UDP', 'port': 53}, {'protocol': 'TCP', 'port': 53}]}]},
        }]
        edge = {'namespaceSelector': {'matchLabels': {
            'kubernetes.io/metadata.name': self.v['k8s_app_ingress_namespace']}},
            'podSelector': {'matchLabels': dict(self.v['k8s_app_ingress_pod_labels'])}}
        for service in with_port(self.services):
            sources = []
            if service in exposed(self.services):
                sources.append(edge)
            clients = [s['name'] for s in self.services if service['name'] in (s.get('depends_on') or [])]
            for client in clients:
                sources.append({'podSelector': {'matchLabels': selector(self.name, client)}})
            if not sources:
                continue
            objs.append({
                'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',
                'metadata': self.meta(object_name(self.name, service['name'], 'ingress'), service['name']),
                'spec': {'podSelector': {'matchLabels': selector(self.name, service['name'])},
                         'policyTypes': ['Ingress'],
                         'ingress': [{'from': sources, 'ports': [{'protocol': 'TCP', 'port': int(service['port'])}]}]},
            })
        by_name = dict((s['name'], s) for s in self.services)
        for service in self.services:
            rules = []
            for dep in service.get('depends_on') or []:
                if by_name.get(dep, {}).get('port'):
                    rules.append({'to': [{'podSelector': {'matchLabels': selector(self.name, dep)}}],
                                  'ports': [{'protocol': 'TCP', 'port': int(by_name[dep]['port'])}]})
            if service['name'] in (self.v.get('k8s_app_data_clients') or []):
                for rule in self.v.get('k8s_app_data_egress') or []:
                    rules.append({'to': [{'ipBlock': {'cidr': rule['cidr']}}],
                                  'ports': [{'protocol': 'TCP', 'port': int(port)} for port in rule['ports']]})
            if not rules:
                continue
            objs.append({
                'apiVersion': 'networking.k8s.io/v1', 'kind': 'NetworkPolicy',
                'metadata': self.meta(object_name(self.name, service['name'], 'egress'), service['name']),
                'spec': {'podSelector': {'matchLabels': selector(self.name, service['name'])},
                         'policyTypes': ['Egress'], 'egress': rules},
            })
        return objs

    # --- migration Job
    def migration(self):
        service = next(s for s in self.services if s['name'] == self.v['k8s_app_migrate_service'])
        spec = self.pod_spec(service, command=list(self.v['k8s_app_migrate_command']), restart='Never')
        return {
            'apiVersion': 'batch/v1', 'kind': 'Job',
            'metadata': self.meta(object_name(self.name, 'migrate', self.slug), service['name'],
                                  annotations={'%s/release' % LABEL_PREFIX: self.release}),
            'spec': {
                'backoffLimit': 0,
                'activeDeadlineSeconds': int(self.v['k8s_app_migrate_timeout']),
                'template': {'metadata': {'labels': labels(self.name, service['name'])}, 'spec': spec},
            },
        }

    # --- workload: the Deployments of the colour, their PDBs and autoscalers
    def workload(self, colour):
        objs = []
        hpa_max = int(self.v.get('k8s_app_hpa_max_replicas') or 0)
        replicas = int(self.v['k8s_app_replicas'])
        for service in self.services:
            name = object_name(self.name, service['name'], colour)
            template_meta = {'labels': dict(labels(self.name, service['name'], colour)),
                             'annotations': {'%s/release' % LABEL_PREFIX: self.release}}
            spec = {
                'selector': {'matchLabels': selector(self.name, service['name'], colour)},
                'revisionHistoryLimit': 3,
                'strategy': {'type': 'RollingUpdate', 'rollingUpdate': {'maxSurge': 1, 'maxUnavailable': 0}},
                'template': {'metadata': template_meta, 'spec': self.pod_spec(service)},
            }
            if not hpa_max:
                # With an autoscaler the replicas belong to it: never reset them.
                spec['replicas'] = replicas
            objs.append({'apiVersion': 'apps/v1', 'kind': 'Deployment',
                         'metadata': self.meta(name, service['name'], colour,
                                               annotations={'%s/release' % LABEL_PREFIX: self.release}),
                         'spec': spec})
            objs.append({'apiVersion': 'policy/v1', 'kind': 'PodDisruptionBudget',
                         'metadata': self.meta(name, service['name'], colour),
                         'spec': {'maxUnavailable': 1,
                                  'selector': {'matchLabels': selector(self.name, service['name'], colour)}}})
            if hpa_max:
                objs.append(self.hpa(name, service, colour, replicas, hpa_max))
        return objs

    def hpa(self, name, service, colour, replicas, hpa_max):
        return {'apiVersion': 'autoscaling/v2', 'kind': 'HorizontalPodAutoscaler',
                'metadata': self.meta(name, service['name'], colour),
                'spec': {'scaleTargetRef': {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': name},
                         'minReplicas': replicas, 'maxReplicas': hpa_max,
                         'metrics': [{'type': 'Resource', 'resource': {'name': 'cpu', 'target': {
                             'type': 'Utilization',
                             'averageUtilization': int(self.v['k8s_app_hpa_cpu_percent'])}}}]}}

    # --- traffic
    def ingress(self, colour, weight=None):
        paths = self.v.get('k8s_app_ingress_paths') or {}
        rule_paths = []
        for service in exposed(self.services):
            if service['name'] not in paths:
                continue
            rule_paths.append({'path': paths[service['name']], 'pathType': 'Prefix', 'backend': {'service': {
                'name': object_name(self.name, service['name'], colour), 'port': {'name': PORT_NAME}}}})
        # Longest prefix first: the order ingress-nginx matches in anyway, stated.
        rule_paths.sort(key=lambda item: (-len(item['path']), item['path']))
        annotations = dict(self.v.get('k8s_app_ingress_annotations') or {})
        name = self.name
        if weight is not None:
            name = object_name(self.name, 'canary')
            annotations.update({'nginx.ingress.kubernetes.io/canary': 'true',
                                'nginx.ingress.kubernetes.io/canary-weight': str(int(weight)),
                                'nginx.ingress.kubernetes.io/canary-weight-total': '100'})
        annotations = dict((str(k), str(val)) for k, val in annotations.items())
        spec = {'ingressClassName': self.v['k8s_app_ingress_class'],
                'rules': [{'host': self.v['k8s_app_ingress_host'], 'http': {'paths': rule_paths}}]}
        if self.v.get('k8s_app_ingress_tls_secret_name'):
            spec['tls'] = [{'hosts': [self.v['k8s_app_ingress_host']],
                            'secretName': self.v['k8s_app_ingress_tls_secret_name']}]
        return {'apiVersion': 'networking.k8s.io/v1', 'kind': 'Ingress',
                'metadata': self.meta(name, colour=colour, annotations=annotations or None), 'spec': spec}

    def stable_services(self, colour):
        """Services under the bare service names (http://api:8080 as in Compose) on the colour in front."""
        return [self.service(s['name'], s, colour) for s in with_port(self.services)]


def manifests(v, plan_, secrets=None):
    """Every object of the planned release, by phase of the rollout.

    namespace: the Namespace when the role manages it (before the ledger
    is written into it); setup: service account, network policies, the release's ConfigMap and
    Services of the colour; secret: the release's Secret; migration: the Job (None without one);
    workload: the colour's Deployments, PodDisruptionBudgets and autoscalers;
    canary: the canary Ingress (None without a canary step); switch: the
    Ingress and the stable Services on the new colour; canary_ref: what to
    delete after the switch; retire: the old colour's Deployments and
    autoscalers, for scaling to 0 and deletion; gate: the Services whose
    endpoints the health gate reads.
    """
    renderer = _Renderer(v, plan_['release'], plan_['images'])
    colour = plan_['colour']
    old = plan_.get('old_colour')
    canary = None
    if plan_.get('canary_weight') and old and v.get('k8s_app_ingress_host'):
        canary = renderer.ingress(colour, weight=plan_['canary_weight'])
    switch = list(renderer.stable_services(colour))
    if v.get('k8s_app_ingress_host'):
        switch.append(renderer.ingress(colour))
    retire = []
    if old:
        retire = [{'kind': 'Deployment', 'name': object_name(renderer.name, s['name'], old)}
                  for s in renderer.services]
    workload = renderer.workload(colour)
    if plan_.get('kept'):
        # The kept Deployments are scaled up as they are, not re-applied.
        workload = [obj for obj in workload if obj['kind'] != 'Deployment']
    return {
        'namespace': renderer.namespace(),
        'setup': renderer.setup(colour),
        'secret': renderer.secret(secrets if secrets is not None else (v.get('k8s_app_secrets') or {})),
        'migration': renderer.migration() if plan_.get('migrate') and v.get('k8s_app_migrate') else None,
        'workload': workload,
        'canary': canary,
        'canary_ref': {'apiVersion': 'networking.k8s.io/v1', 'kind': 'Ingress',
                       'name': object_name(renderer.name, 'canary'), 'namespace': renderer.ns},
        'switch': switch,
        'retire': retire,
        'retire_hpa': [{'kind': 'HorizontalPodAutoscaler', 'name': item['name']} for item in retire]
        if int(v.get('k8s_app_hpa_max_replicas') or 0) else [],
        'gate': [object_name(renderer.name, s['name'], colour) for s in with_port(renderer.services)],
        'deployments': [object_name(renderer.name, s['name'], colour) for s in renderer.services],
        'undo': undo(v, plan_),
    }


def undo(v, plan_):
    """What a failed release leaves behind, to be put back.

    The new colour's Deployments go to 0 replicas (kept, as Compose keeps a
    stopped colour) and its autoscalers are deleted (they would scale it up
    again); the canary Ingress is deleted. With an old colour in front, the
    Ingress and the stable Services are put back on it (they may have moved
    already when the failure came after the switch); without one, nothing
    served users before and nothing is put back.
    """
    name = v['k8s_app_name']
    services = _services(v['k8s_app_services'])
    colour = plan_['colour']
    old = plan_.get('old_colour')
    result = {
        'scale_down': [object_name(name, s['name'], colour) for s in services],
        'delete_hpa': [object_name(name, s['name'], colour) for s in services]
        if int(v.get('k8s_app_hpa_max_replicas') or 0) else [],
        'restore': [],
        'scale_up': [],
    }
    if old and not plan_.get('noop'):
        renderer = _Renderer(v, plan_['old_release'] or plan_['release'], {})
        result['restore'] = renderer.stable_services(old)
        if v.get('k8s_app_ingress_host'):
            result['restore'].append(renderer.ingress(old))
        # The old colour may be scaled down already (a failure after retire).
        result['scale_up'] = [object_name(name, s['name'], old) for s in services]
    return result


# --------------------------------------------------------------------------
# Health gate
# --------------------------------------------------------------------------

def endpoints_ready(slices, want):
    """Ready endpoints behind a Service, from its EndpointSlices; ready when at least want."""
    count = 0
    for item in slices or []:
        for endpoint in item.get('endpoints') or []:
            conditions = endpoint.get('conditions') or {}
            if conditions.get('ready') is True and not conditions.get('terminating'):
                count += len(endpoint.get('addresses') or [])
    return {'ready': count >= int(want) and int(want) > 0, 'count': count, 'want': int(want)}


def pods_healthy(pods, before=None):
    """Canary verdict from the new colour's pods: none restarted since `before`
    (a map pod name -> restarts) and all ready."""
    restarts = {}
    problems = []
    for pod in pods or []:
        name = pod.get('metadata', {}).get('name')
        statuses = (pod.get('status') or {}).get('containerStatuses') or []
        count = sum(int(s.get('restartCount') or 0) for s in statuses)
        restarts[name] = count
        if not statuses or not all(s.get('ready') for s in statuses):
            problems.append('%s is not ready' % name)
        if before is not None and count > int(before.get(name, count)):
            problems.append('%s restarted %d time(s) during the canary' % (name, count - int(before.get(name, 0))))
    if not pods:
        problems.append('no pods of the new colour')
    return {'healthy': not problems, 'problems': problems, 'restarts': restarts}
