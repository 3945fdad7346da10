# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: lab
short_description: Inventory of the aiquiz lab's Docker container hosts
version_added: 0.1.0
description:
  - Builds an inventory from the systemd Docker containers of the aiquiz lab, as created by C(tests/lab/labctl.py up).
  - Asks the Docker Engine API directly (Unix socket or plain TCP/HTTP) for the containers labelled
    C(<label_prefix>.lab=<lab>); neither the Docker CLI nor the Docker SDK for Python is needed.
  - Each container becomes the host named by its C(<label_prefix>.host) label (the container name when the label is missing),
    in the group C(lab) and in every group listed, comma-separated, in its C(<label_prefix>.groups) label.
  - 'Each host gets the variables C(ansible_connection), C(ansible_host) (the container name), C(ansible_python_interpreter),
    C(lab_container_id), C(lab_container_name), C(lab_container_image), C(lab_container_state) and C(lab_networks)
    (a dictionary of network name to IPv4 address, empty when the container has none).'
  - When O(docker_host) is not the default, the hosts also get the variable that points their connection at the same
    engine, C(ansible_docker_extra_args) (C(-H <docker_host>)) for P(community.docker.docker#connection) or
    C(ansible_docker_docker_host) for P(community.docker.docker_api#connection).
  - With an SSH O(connection) (the default), C(ansible_host) is the container's address on O(ssh_network) and the
    hosts also get C(ansible_user), C(ansible_become), C(ansible_ssh_private_key_file) and C(ansible_ssh_common_args)
    (strict host key checking against O(ssh_known_hosts_file)). The hosts must run sshd and know the user and key
    first, as a cloud image's first boot gives them; C(labctl up) does that for the lab.
  - Uses a YAML configuration file whose name ends with C(aiquiz_lab.yml) or C(aiquiz_lab.yaml).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description:
      - Token that ensures this is a source file for this plugin.
    type: str
    required: true
    choices: [aiquiz.ops.lab]
  docker_host:
    description:
      - Where the Docker Engine API listens.
      - V(unix:///path/to/socket) for a Unix socket, V(tcp://host:port) or V(http://host:port) for plain HTTP.
        The port defaults to V(2375). TLS is not supported.
    type: str
    default: unix:///var/run/docker.sock
    env:
      - name: DOCKER_HOST
  lab:
    description:
      - Name of the lab; only containers whose C(<label_prefix>.lab) label has this value are used.
    type: str
    default: aiquiz
  label_prefix:
    description:
      - Prefix of the container labels that describe the lab hosts.
    type: str
    default: ops.aiquiz.lab
  connection:
    description:
      - Value of C(ansible_connection) for every host.
      - V(ssh) (or V(ansible.builtin.ssh)) reaches each host as production does, at its address on O(ssh_network),
        as O(ssh_user) with O(ssh_private_key_file), becoming root with sudo; the host keys are checked against
        O(ssh_known_hosts_file) when it is set. C(labctl up) gives every lab host sshd, the user and the key.
      - V(community.docker.docker) reaches each container with C(docker exec) instead.
    type: str
    default: ssh
    env:
      - name: AIQUIZ_LAB_CONNECTION
  ssh_network:
    description:
      - With an SSH O(connection), the Docker network whose address becomes C(ansible_host); empty means the
        container's first network by name.
    type: str
    default: ''
  ssh_user:
    description:
      - With an SSH O(connection), the login user (C(ansible_user)).
    type: str
    default: deploy
  ssh_private_key_file:
    description:
      - With an SSH O(connection), the private key (C(ansible_ssh_private_key_file)); a relative path is relative to
        the directory of this configuration file. Empty means SSH's own default keys.
    type: str
    default: ''
  ssh_known_hosts_file:
    description:
      - With an SSH O(connection), the known hosts file that holds the hosts' keys (strict checking); a relative
        path is relative to the directory of this configuration file. Empty leaves host key checking to SSH's
        configuration.
    type: str
    default: ''
  exclude_groups:
    description:
      - Containers in any of these groups (their C(<label_prefix>.groups) label) are left out of the inventory.
      - The lab's own helpers (its image registry, ACME and S3 stand-ins) are in group V(lab_helpers); leaving them
        out keeps plays that target all hosts to the platform's hosts.
    type: list
    elements: str
    default: []
  include_stopped:
    description:
      - Whether containers that are not running are added too.
      - By default, only running containers become hosts.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for the Docker Engine API.
    type: int
    default: 10
"""

EXAMPLES = r"""
---
# aiquiz_lab.yml: the lab started by `make lab-up`, on the local Docker engine,
# without the lab's helper hosts, reached with docker exec
plugin: aiquiz.ops.lab
exclude_groups: [lab_helpers]
connection: community.docker.docker

---
# The same lab over SSH, as the lab's own inventory does
# (AIQUIZ_LAB_CONNECTION=community.docker.docker switches it to docker exec)
plugin: aiquiz.ops.lab
exclude_groups: [lab_helpers]
ssh_network: aiquiz-lab
ssh_user: deploy
ssh_private_key_file: ../../.cache/lab-ssh/id_ed25519
ssh_known_hosts_file: ../../.cache/lab-ssh/known_hosts

---
# A lab on another engine, stopped hosts included, with extra groups
plugin: aiquiz.ops.lab
docker_host: tcp://192.0.2.10:2375
lab: aiquiz
include_stopped: true
compose:
  lab_ip: lab_networks['aiquiz-lab'] | default(omit)
groups:
  debian13: "'debian:13' in lab_container_image"
keyed_groups:
  - key: lab_container_state
    prefix: state
"""

import errno
import http.client
import json
import os
import socket
import urllib.parse

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable, to_safe_group_name

DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'
DEFAULT_TCP_PORT = 2375
LAB_GROUP = 'lab'
PYTHON_INTERPRETER = '/usr/bin/python3'


class DockerEngineError(Exception):
    """The Docker Engine API could not be reached or refused a request."""

    def __init__(self, reason, unreachable=True, denied=False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.denied = denied


def parse_docker_host(docker_host):
    """Split a docker_host URL into ('unix', socket_path, None) or ('tcp', host, port).

    Raises ValueError for anything else (https, ssh, npipe, missing parts).
    """
    url = (docker_host or '').strip()
    if url.startswith('/'):
        return ('unix', url, None)
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme == 'unix':
        path = parsed.netloc + parsed.path
        if not path:
            raise ValueError('no socket path in %r' % url)
        return ('unix', path, None)
    if scheme in ('tcp', 'http'):
        if parsed.path not in ('', '/') or parsed.query or parsed.fragment:
            raise ValueError('unexpected path in %r' % url)
        try:
            host = parsed.hostname
            port = parsed.port
        except ValueError as exc:
            raise ValueError('bad address in %r: %s' % (url, exc)) from exc
        if not host:
            raise ValueError('no host in %r' % url)
        return ('tcp', host, port or DEFAULT_TCP_PORT)
    raise ValueError('unsupported scheme in %r: use unix://, tcp:// or http://' % url)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over an AF_UNIX stream socket."""

    def __init__(self, socket_path, timeout=None):
        super().__init__('localhost', timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _os_reason(exc):
    if isinstance(exc, socket.timeout):
        return 'timed out'
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def engine_get(docker_host, path, timeout=10):
    """GET path from the Docker Engine API and return the decoded JSON.

    Raises ValueError for a bad docker_host, DockerEngineError otherwise.
    """
    kind, address, port = parse_docker_host(docker_host)
    if kind == 'unix':
        conn = UnixHTTPConnection(address, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        try:
            conn.request('GET', path, headers={'Accept': 'application/json'})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            denied = isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)
            raise DockerEngineError(_os_reason(exc), denied=denied) from exc
    finally:
        conn.close()
    try:
        data = json.loads(body.decode('utf-8')) if body else None
    except ValueError:
        data = None
        if response.status < 400:
            raise DockerEngineError('GET %s returned something that is not JSON' % path.split('?')[0], unreachable=False) from None
    if response.status >= 400:
        message = data.get('message') if isinstance(data, dict) else None
        raise DockerEngineError('GET %s: HTTP %d %s' % (path.split('?')[0], response.status, message or response.reason), unreachable=False)
    return data


def containers_path(label_prefix, lab, include_stopped=True):
    """The /containers/json request for the containers of one lab."""
    query = urllib.parse.urlencode({
        'all': '1' if include_stopped else '0',
        'filters': json.dumps({'label': ['%s.lab=%s' % (label_prefix, lab)]}),
    })
    return '/containers/json?' + query


def split_groups(value, sanitize=to_safe_group_name):
    """Group names from a comma-separated label value: stripped, sanitised, empty ones and repeats dropped."""
    groups = []
    for item in (value or '').split(','):
        item = item.strip()
        if not item:
            continue
        name = sanitize(item)
        if name and name not in groups:
            groups.append(name)
    return groups


def container_name(container):
    """The container's primary name without the leading slash."""
    names = container.get('Names') or []
    name = names[0] if names else (container.get('Id') or '')[:12]
    return name.lstrip('/')


def container_networks(container):
    """Network name -> IPv4 address ('' when there is none) from a /containers/json entry."""
    networks = ((container.get('NetworkSettings') or {}).get('Networks')) or {}
    return dict((name, (net or {}).get('IPAddress') or '') for name, net in sorted(networks.items()))


SSH_CONNECTIONS = ('ssh', 'ansible.builtin.ssh', 'paramiko', 'ansible.builtin.paramiko_ssh')


def ssh_vars(networks, ssh):
    """Variables of an SSH connection to a container with these networks (name -> address)."""
    network = ssh.get('network') or (sorted(networks)[0] if networks else '')
    address = networks.get(network, '')
    hostvars = {'ansible_host': address, 'ansible_user': ssh.get('user') or 'deploy', 'ansible_become': True}
    if ssh.get('private_key_file'):
        hostvars['ansible_ssh_private_key_file'] = ssh['private_key_file']
    if ssh.get('known_hosts_file'):
        hostvars['ansible_ssh_common_args'] = '-o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s' % ssh['known_hosts_file']
    return hostvars


def connection_vars(name, connection='community.docker.docker', docker_host=DEFAULT_DOCKER_HOST, networks=None, ssh=None):
    """Variables that let Ansible reach the container called name."""
    hostvars = {
        'ansible_connection': connection,
        'ansible_host': name,
        'ansible_python_interpreter': PYTHON_INTERPRETER,
    }
    if connection in SSH_CONNECTIONS:
        hostvars.update(ssh_vars(networks or {}, ssh or {}))
        return hostvars
    if docker_host and docker_host != DEFAULT_DOCKER_HOST:
        if connection.endswith('docker_api'):
            # The variable community.docker.docker_api reads its docker_host option from.
            hostvars['ansible_docker_docker_host'] = docker_host
        else:
            # The Docker CLI connection passes these before `exec`.
            hostvars['ansible_docker_extra_args'] = '-H %s' % docker_host
    return hostvars


def hosts_from_containers(containers, label_prefix='ops.aiquiz.lab', include_stopped=False,
                          connection='community.docker.docker', docker_host=DEFAULT_DOCKER_HOST, sanitize=to_safe_group_name,
                          ssh=None):
    """Map /containers/json entries to a list of (hostname, groups, hostvars).

    Containers that are not running are skipped unless include_stopped. The
    list is sorted by hostname, then container name; every host's groups
    start with 'lab'.
    """
    hosts = []
    for container in containers or []:
        state = container.get('State') or ''
        if state != 'running' and not include_stopped:
            continue
        labels = container.get('Labels') or {}
        name = container_name(container)
        hostname = (labels.get('%s.host' % label_prefix) or '').strip() or name
        groups = [LAB_GROUP] + [g for g in split_groups(labels.get('%s.groups' % label_prefix), sanitize) if g != LAB_GROUP]
        networks = container_networks(container)
        hostvars = connection_vars(name, connection, docker_host, networks, ssh)
        hostvars.update({
            'lab_container_id': container.get('Id') or '',
            'lab_container_name': name,
            'lab_container_image': container.get('Image') or '',
            'lab_container_state': state,
            'lab_networks': networks,
        })
        hosts.append((hostname, groups, hostvars))
    hosts.sort(key=lambda item: (item[0], item[2]['lab_container_name']))
    return hosts


def engine_error_message(docker_host, error):
    """One line for the operator: what failed, where, and what to do."""
    if error.denied:
        return ('aiquiz.ops.lab: cannot use the Docker engine at %s (%s); run as a member of the `docker` group '
                'or set docker_host to an engine you may use' % (docker_host, error.reason))
    if error.unreachable:
        return ('aiquiz.ops.lab: cannot reach the Docker engine at %s (%s); start it with `make setup`, then `make lab-up`'
                % (docker_host, error.reason))
    return ('aiquiz.ops.lab: the Docker engine at %s failed a request (%s); check it with `docker info`, '
            'or restart it with `make setup`' % (docker_host, error.reason))


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Hosts of the aiquiz lab, from the Docker Engine API."""

    NAME = 'aiquiz.ops.lab'

    def verify_file(self, path):
        if super().verify_file(path):
            return path.endswith(('aiquiz_lab.yml', 'aiquiz_lab.yaml'))
        return False

    def _fetch_containers(self, docker_host, label_prefix, lab):
        try:
            return engine_get(docker_host, containers_path(label_prefix, lab), timeout=self.get_option('timeout'))
        except ValueError as exc:
            raise AnsibleParserError('aiquiz.ops.lab: docker_host %s is not usable (%s); set docker_host or DOCKER_HOST to a unix:// or tcp:// URL'
                                     % (docker_host, exc)) from None
        except DockerEngineError as exc:
            raise AnsibleParserError(engine_error_message(docker_host, exc)) from None

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)

        docker_host = str(self.get_option('docker_host') or DEFAULT_DOCKER_HOST)
        label_prefix = str(self.get_option('label_prefix'))
        lab = str(self.get_option('lab'))

        cache_key = self.get_cache_key(path)
        use_cache = self.get_option('cache')
        cache_needs_update = use_cache and not cache
        containers = None
        if use_cache and cache:
            try:
                containers = self._cache[cache_key]
            except KeyError:
                cache_needs_update = True
        if containers is None:
            containers = self._fetch_containers(docker_host, label_prefix, lab)
            if not isinstance(containers, list):
                raise AnsibleParserError('aiquiz.ops.lab: the Docker engine at %s answered /containers/json with %s, not a list; '
                                         'check it with `docker info`' % (docker_host, type(containers).__name__))
        if cache_needs_update:
            self._cache[cache_key] = containers

        self._populate(containers, docker_host, label_prefix, lab, os.path.dirname(os.path.abspath(path)))

    def _ssh_options(self, base_dir):
        def resolved(option):
            value = self.get_option(option) or ''
            return os.path.join(base_dir, os.path.expanduser(value)) if value else ''
        return {'network': self.get_option('ssh_network'), 'user': self.get_option('ssh_user'),
                'private_key_file': resolved('ssh_private_key_file'), 'known_hosts_file': resolved('ssh_known_hosts_file')}

    def _populate(self, containers, docker_host, label_prefix, lab, base_dir='.'):
        selector = '%s.lab=%s' % (label_prefix, lab)
        hosts = hosts_from_containers(containers, label_prefix, self.get_option('include_stopped'),
                                      connection=self.get_option('connection'), docker_host=docker_host, sanitize=self._sanitize_group_name,
                                      ssh=self._ssh_options(base_dir))
        if not containers:
            self.display.warning('aiquiz.ops.lab: no lab containers labelled %s; run `make lab-up`' % selector)
            return
        if not hosts:
            self.display.warning('aiquiz.ops.lab: %d lab containers labelled %s, none running; run `make lab-up` '
                                 '(or set include_stopped)' % (len(containers), selector))
            return

        strict = self.get_option('strict')
        excluded = set(self.get_option('exclude_groups') or [])
        seen = {}
        for hostname, groups, hostvars in hosts:
            if excluded.intersection(groups):
                continue
            if hostname in seen:
                self.display.warning('aiquiz.ops.lab: containers %s and %s both claim host %s; using %s'
                                     % (seen[hostname], hostvars['lab_container_name'], hostname, seen[hostname]))
                continue
            seen[hostname] = hostvars['lab_container_name']

            for group in groups:
                self.inventory.add_group(group)
            self.inventory.add_host(hostname, group=groups[0])
            for group in groups[1:]:
                self.inventory.add_child(group, hostname)
            for key, value in hostvars.items():
                self.inventory.set_variable(hostname, key, value)

            self._set_composite_vars(self.get_option('compose'), hostvars, hostname, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), hostvars, hostname, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, hostname, strict=strict)
