# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters prometheus_scrape_configs and prometheus_host_address: Prometheus'
scrape jobs derived from the inventory's groups, so that no target list is kept
by hand, and the one private address that both a target and its scraper use;
and blackbox_probes: the blackbox exporter's modules and Prometheus' probe job
from one list of probes, so that the two never disagree.

Their documentation is in the .yml file of the same name beside this file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _netnames

NAME = 'prometheus_scrape_configs'
JOB_RE = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
PATH_RE = re.compile(r'/[^\s]*')
JOB_KEYS = {'name', 'groups', 'port', 'host_var', 'metrics_path', 'scheme', 'scrape_interval', 'scrape_timeout',
            'tls_config', 'basic_auth'}
# What a job may say about its targets' TLS and basic auth: files only, never a password.
ACCESS_KEYS = {'tls_config': {'ca_file', 'server_name'}, 'basic_auth': {'username', 'password_file'}}
DURATION_RE = re.compile(r'([0-9]+(ms|s|m|h))+')
# Addresses of a host that never identify it to another.
LOCAL_RE = re.compile(r'127\.|::1$|fe80:')


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


def _first_address(value):
    """The first entry of a variable holding an address or a list of them (firewall_host_address)."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ''
    return value if isinstance(value, str) else ''


def target_address(host, host_vars, address_vars):
    """How Prometheus reaches a host: the first of address_vars set on it (an IP address or a
    DNS name), then ansible_host when it is an IP address, then the IPv4 address of its default
    route (network facts), then its inventory name."""
    for var in address_vars:
        address = _first_address(host_vars.get(var))
        if address and (_netnames.is_ip_address(address) or _netnames.is_dns_name(address)):
            return address
    ansible_host = host_vars.get('ansible_host', '')
    if isinstance(ansible_host, str) and _netnames.is_ip_address(ansible_host) and not LOCAL_RE.match(ansible_host):
        return ansible_host
    default = (host_vars.get('ansible_default_ipv4') or {}).get('address') or ''
    if default:
        return default
    return host


def _hostport(address, port):
    if _netnames.is_ip_address(address) and _netnames.ip_version(address) == 6:
        return '[%s]:%d' % (address, port)
    return '%s:%d' % (address, port)


def _check_job(index, job, errors):
    where = 'prometheus_scrape_jobs[%d]' % index
    if not isinstance(job, Mapping):
        errors.append('%s: must be a dictionary, got %r' % (where, job))
        return False
    name = job.get('name')
    if not isinstance(name, str) or not JOB_RE.fullmatch(name):
        errors.append('%s: name must be a job name (letters, digits and _), got %r' % (where, name))
        return False
    where = '%s (%s)' % (where, name)
    ok = True
    unknown = sorted(set(job) - JOB_KEYS)
    if unknown:
        errors.append('%s: unknown keys %s' % (where, ', '.join(unknown)))
        ok = False
    port = job.get('port')
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append('%s: port must be an integer from 1 to 65535, got %r' % (where, port))
        ok = False
    groups = job.get('groups')
    if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g for g in groups):
        errors.append('%s: groups must be a non-empty list of inventory group names, got %r' % (where, groups))
        ok = False
    if 'metrics_path' in job and not (isinstance(job['metrics_path'], str) and PATH_RE.fullmatch(job['metrics_path'])):
        errors.append('%s: metrics_path must be an absolute URL path, got %r' % (where, job['metrics_path']))
        ok = False
    if job.get('scheme', 'http') not in ('http', 'https'):
        errors.append('%s: scheme must be http or https, got %r' % (where, job['scheme']))
        ok = False
    for key in ('scrape_interval', 'scrape_timeout'):
        if key in job and not (isinstance(job[key], str) and DURATION_RE.fullmatch(job[key])):
            errors.append('%s: %s must be a Prometheus duration such as 15s, got %r' % (where, key, job[key]))
            ok = False
    if 'host_var' in job and not (isinstance(job['host_var'], str) and job['host_var']):
        errors.append('%s: host_var must be the name of a host variable, got %r' % (where, job['host_var']))
        ok = False
    for key, allowed in ACCESS_KEYS.items():
        if key not in job:
            continue
        value = job[key]
        if not isinstance(value, Mapping) or set(value) - allowed or not all(
                isinstance(item, str) and item for item in value.values()):
            errors.append('%s: %s must be a dictionary of %s (non-empty strings; a password only by file), got keys %s'
                          % (where, key, ', '.join(sorted(allowed)),
                             ', '.join(sorted(value)) if isinstance(value, Mapping) else repr(value)))
            ok = False
        elif not all(value[name].startswith('/') for name in ('ca_file', 'password_file') if name in value):
            errors.append('%s: %s files must be absolute paths' % (where, key))
            ok = False
        elif key == 'basic_auth' and set(value) != allowed:
            errors.append('%s: basic_auth needs both username and password_file' % where)
            ok = False
    return ok


def prometheus_scrape_configs(jobs, groups, hostvars, address_vars=None, access=None):
    """{errors, scrape_configs, targets}: one scrape config per job whose groups hold hosts.

    access ({job name: {scheme, tls_config, basic_auth}}) is laid over the jobs of those names: how
    the role reaches the web endpoints it protects itself (Prometheus, Alertmanager).

    Each host is one static target labelled instance=<inventory name> and group=<the job's first
    group it is in>, so that alerts name hosts as the inventory does and a host's alerts share
    the instance label (Alertmanager's inhibition matches on it)."""
    if not isinstance(jobs, list):
        raise AnsibleFilterError('%s: expects a list of jobs, got %r' % (NAME, jobs))
    if not isinstance(groups, Mapping) or not isinstance(hostvars, Mapping):
        raise AnsibleFilterError('%s: groups and hostvars must be dictionaries' % NAME)
    address_vars = list(address_vars or [])
    if access is not None and not isinstance(access, Mapping):
        raise AnsibleFilterError('%s: access must be a dictionary of job names, got %r' % (NAME, access))
    errors, configs, targets = [], [], {}
    seen = set()
    for index, job in enumerate(jobs):
        if isinstance(job, Mapping) and (access or {}).get(job.get('name')):
            job = dict(job, **{key: value for key, value in access[job['name']].items() if value})
        if not _check_job(index, job, errors):
            continue
        if job['name'] in seen:
            errors.append('prometheus_scrape_jobs[%d] (%s): a job of this name comes earlier' % (index, job['name']))
            continue
        seen.add(job['name'])
        hosts, group_of = [], {}
        for group in job['groups']:
            for host in groups.get(group) or []:
                if host not in group_of:
                    group_of[host] = group
                    hosts.append(host)
        if 'host_var' in job:
            hosts = [host for host in hosts if _truthy((hostvars.get(host) or {}).get(job['host_var']))]
        if not hosts:
            continue
        static = []
        for host in sorted(hosts):
            address = target_address(host, hostvars.get(host) or {}, address_vars)
            target = _hostport(address, job['port'])
            static.append({'targets': [target], 'labels': {'instance': host, 'group': group_of[host]}})
            targets.setdefault(job['name'], []).append(target)
        config = {'job_name': job['name']}
        for key in ('scrape_interval', 'scrape_timeout', 'metrics_path', 'scheme', 'tls_config', 'basic_auth'):
            if key in job:
                config[key] = job[key]
        config['static_configs'] = static
        configs.append(config)
    return {'errors': errors, 'scrape_configs': configs, 'targets': targets}


def prometheus_host_address(host, hostvars, address_vars=None):
    """The address a host is scraped at (target_address), for its services to listen on."""
    if not isinstance(hostvars, Mapping) or not isinstance(host, str):
        raise AnsibleFilterError('prometheus_host_address: expects a host name and hostvars')
    return target_address(host, hostvars.get(host) or {}, list(address_vars or []))


PROBE_NAME_RE = re.compile(r'[a-z][a-z0-9_]*')
PROBE_KEYS = {'name', 'url', 'address', 'ca_file', 'insecure', 'status', 'timeout', 'service'}
LABEL_VALUE_RE = re.compile(r'[a-z0-9][a-z0-9_-]*')


def _check_probe(index, probe, errors, variable):
    where = '%s[%d]' % (variable, index)
    if not isinstance(probe, Mapping):
        errors.append('%s: must be a dictionary, got %r' % (where, probe))
        return None
    name = probe.get('name')
    if not isinstance(name, str) or not PROBE_NAME_RE.fullmatch(name):
        errors.append('%s: name must be lower-case letters, digits and _, starting with a letter, got %r'
                      % (where, name))
        return None
    where = '%s (%s)' % (where, name)
    before = len(errors)
    unknown = sorted(set(probe) - PROBE_KEYS)
    if unknown:
        errors.append('%s: unknown keys %s' % (where, ', '.join(unknown)))
    url = probe.get('url')
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ('http', 'https') or not parts.hostname:
        errors.append('%s: url must be an http:// or https:// URL, got %r' % (where, url))
    address = probe.get('address', '')
    if address and not (isinstance(address, str)
                        and (_netnames.is_ip_address(address) or _netnames.is_dns_name(address))):
        errors.append('%s: address must be an IP address or a DNS name, got %r' % (where, address))
    ca_file = probe.get('ca_file', '')
    if ca_file and not (isinstance(ca_file, str) and ca_file.startswith('/')):
        errors.append('%s: ca_file must be an absolute path on the monitoring host, got %r' % (where, ca_file))
    if not isinstance(probe.get('insecure', False), bool):
        errors.append('%s: insecure must be true or false, got %r' % (where, probe['insecure']))
    status = probe.get('status', [])
    if not isinstance(status, list) or not all(isinstance(code, int) and not isinstance(code, bool)
                                               and 100 <= code <= 599 for code in status):
        errors.append('%s: status must be a list of HTTP status codes, got %r' % (where, status))
    timeout = probe.get('timeout', '5s')
    if not (isinstance(timeout, str) and DURATION_RE.fullmatch(timeout)):
        errors.append('%s: timeout must be a Prometheus duration such as 5s, got %r' % (where, timeout))
    service = probe.get('service', name)
    if not (isinstance(service, str) and LABEL_VALUE_RE.fullmatch(service)):
        errors.append('%s: service must be a label value (lower-case letters, digits, _ and -), got %r'
                      % (where, service))
    return parts if len(errors) == before else None


def _probe_module(probe, parts):
    http = {'method': 'GET', 'preferred_ip_protocol': 'ip4', 'ip_protocol_fallback': True,
            'no_follow_redirects': True}
    if probe.get('status'):
        http['valid_status_codes'] = list(probe['status'])
    if parts.scheme == 'https':
        http['fail_if_not_ssl'] = True
    tls = {}
    if probe.get('address'):
        # Connected to the address, the request still names the URL's host (Host and SNI).
        http['headers'] = {'Host': parts.netloc}
        tls['server_name'] = parts.hostname
    if probe.get('ca_file'):
        tls['ca_file'] = probe['ca_file']
    if probe.get('insecure'):
        tls['insecure_skip_verify'] = True
    if tls:
        http['tls_config'] = tls
    return {'prober': 'http', 'timeout': probe.get('timeout', '5s'), 'http': http}


def _probe_target(probe, parts):
    address = probe.get('address')
    if not address:
        return probe['url']
    host = '[%s]' % address if _netnames.is_ip_address(address) and _netnames.ip_version(address) == 6 else address
    netloc = host + (':%d' % parts.port if parts.port else '')
    return urlunsplit((parts.scheme, netloc, parts.path or '/', parts.query, ''))


def blackbox_probes(probes, exporter='127.0.0.1:9115', variable='exporters_blackbox_probes'):
    """{errors, modules, scrape_configs}: the blackbox exporter's modules (one per probe) and the one
    Prometheus job (blackbox) whose targets are the probes, each labelled instance=<name> and service."""
    if not isinstance(probes, list):
        raise AnsibleFilterError('blackbox_probes: expects a list of probes, got %r' % (probes,))
    errors, modules, static, seen = [], {}, [], set()
    for index, probe in enumerate(probes):
        parts = _check_probe(index, probe, errors, variable)
        if parts is None:
            continue
        if probe['name'] in seen:
            errors.append('%s[%d] (%s): a probe of this name comes earlier' % (variable, index, probe['name']))
            continue
        seen.add(probe['name'])
        module = 'probe_' + probe['name']
        modules[module] = _probe_module(probe, parts)
        static.append({'targets': [_probe_target(probe, parts)],
                       'labels': {'instance': probe['name'], 'service': probe.get('service', probe['name']),
                                  '__param_module': module}})
    configs = []
    if static:
        configs.append({'job_name': 'blackbox', 'metrics_path': '/probe', 'static_configs': static,
                        'relabel_configs': [
                            {'source_labels': ['__address__'], 'target_label': '__param_target'},
                            {'target_label': '__address__', 'replacement': exporter}]})
    return {'errors': errors, 'modules': modules, 'scrape_configs': configs}


class FilterModule:

    def filters(self):
        return {NAME: prometheus_scrape_configs, 'prometheus_host_address': prometheus_host_address,
                'blackbox_probes': blackbox_probes}
