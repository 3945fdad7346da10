# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab inventory (inventories/lab) as Ansible reads it: community.docker's
docker_containers plugin with the lab's own configuration, then the lab-only
lab_hostnames plugin (tests/lab/inventory_plugins).

docker_containers talks to a small fake Docker Engine API on a Unix socket, so
no Docker engine and no lab are needed.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socketserver
import sys
import threading

import pytest

from ansible import constants as C
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
LAB_INVENTORY = os.path.join(ROOT, 'inventories', 'lab')
LAB_PLUGINS = os.path.join(ROOT, 'tests', 'lab', 'inventory_plugins')
DOCKER_CONFIG = 'aiquiz_lab.docker.yml'
HOSTNAMES_CONFIG = 'lab_hostnames.yml'
PLATFORM = {'edge1': '192.0.2.6', 'app1': '192.0.2.4', 'app2': '192.0.2.2', 'data1': '192.0.2.3', 'mon1': '192.0.2.7'}


def container(host, groups, ip, running=True, lab='aiquiz', image='aiquiz-lab/debian:12', name=None):
    """A /containers/{id}/json answer for a host as `labctl up` starts it."""
    name = name or 'aiquiz-lab-' + host
    labels = {'ops.aiquiz.lab.lab': lab, 'ops.aiquiz.lab.host': host, 'ops.aiquiz.lab.groups': groups,
              'ops.aiquiz.lab.spec': '3b9b203c1b87'}
    return {
        'Id': (name.replace('-', '') + '0' * 64)[:64],
        'Name': '/' + name,
        'State': {'Status': 'running' if running else 'exited', 'Running': running},
        'Config': {'Image': image, 'Labels': labels},
        'HostConfig': {'NetworkMode': 'aiquiz-lab'},
        'NetworkSettings': {'Ports': {}, 'Networks': {'aiquiz-lab': {'IPAddress': ip if running else ''}}},
    }


def lab_containers():
    return [
        container('edge1', 'edge', PLATFORM['edge1']),
        container('app1', 'app,canary', PLATFORM['app1'], image='aiquiz-lab/debian:13'),
        container('app2', 'app', PLATFORM['app2'], image='aiquiz-lab/debian:13'),
        container('data1', 'data', PLATFORM['data1']),
        container('mon1', 'monitoring', PLATFORM['mon1']),
        # The lab's helpers, a stopped host and another lab's container stay out.
        container('registry1', 'registry,lab_helpers', '192.0.2.5'),
        container('spare1', 'app', '', running=False),
        container('app1', 'app', '198.51.100.2', lab='other', name='other-lab-app1'),
    ]


class _Handler(http.server.BaseHTTPRequestHandler):
    def address_string(self):
        return 'unix'

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 (http.server's name)
        containers = self.server.containers
        path = re.sub(r'^/v[0-9.]+', '', self.path.split('?')[0])
        if path == '/version':
            body = {'ApiVersion': '1.45', 'MinAPIVersion': '1.24', 'Version': '26.1.5', 'Os': 'linux', 'Arch': 'amd64'}
        elif path == '/_ping':
            body = 'OK'
        elif path == '/containers/json':
            body = [{'Id': c['Id'], 'Names': [c['Name']], 'Image': c['Config']['Image'], 'Labels': c['Config']['Labels'],
                     'State': c['State']['Status']} for c in containers]
        else:
            match = re.match(r'^/containers/([0-9a-z]+)/json$', path)
            found = [c for c in containers if match and c['Id'] == match.group(1)]
            if not found:
                self.send_error(404)
                return
            body = found[0]
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain' if isinstance(body, str) else 'application/json')
        self.send_header('Api-Version', '1.45')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine(tmp_path_factory):
    # AF_UNIX paths are limited to about 107 bytes: keep it short.
    path = str(tmp_path_factory.mktemp('eng') / 'docker.sock')
    server = _UnixServer(path, _Handler)
    server.containers = lab_containers()
    thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def lab_inventory(tmp_path, engine, monkeypatch):
    """A copy of inventories/lab (its two plugin configurations) pointed at the fake engine, as ansible.cfg enables it."""
    monkeypatch.setattr(C, 'INVENTORY_ENABLED', ['community.docker.docker_containers', 'lab_hostnames', 'ansible.builtin.yaml'])
    inventory_loader.add_directory(LAB_PLUGINS)
    monkeypatch.delenv('AIQUIZ_LAB_CONNECTION', raising=False)
    directory = tmp_path / 'lab'
    directory.mkdir()
    with open(os.path.join(LAB_INVENTORY, DOCKER_CONFIG), encoding='utf-8') as handle:
        config = handle.read()
    assert '\nplugin: community.docker.docker_containers\n' in config
    # The only change: the engine's address.
    (directory / DOCKER_CONFIG).write_text(config + 'docker_host: unix://%s\n' % engine.server_address, encoding='utf-8')
    shutil.copy(os.path.join(LAB_INVENTORY, HOSTNAMES_CONFIG), directory / HOSTNAMES_CONFIG)
    return str(directory)


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(Display, 'warning', lambda self, msg, *args, **kwargs: seen.append(msg))
    return seen


def load(source):
    return InventoryManager(loader=DataLoader(), sources=[source])


def members(manager, group):
    return sorted(host.name for host in manager.groups[group].get_hosts())


def hostvars(manager, name):
    return manager.get_host(name).get_vars()


def test_lab_hosts_are_named_after_their_label_and_grouped_by_theirs(lab_inventory, warnings):
    manager = load(lab_inventory)
    assert sorted(manager.hosts) == sorted(PLATFORM)
    assert members(manager, 'lab') == sorted(PLATFORM)
    assert members(manager, 'app') == ['app1', 'app2']
    assert members(manager, 'canary') == ['app1']
    assert members(manager, 'edge') == ['edge1']
    assert members(manager, 'data') == ['data1']
    assert members(manager, 'monitoring') == ['mon1']
    assert 'lab_helpers' not in manager.groups and 'registry' not in manager.groups
    assert not [w for w in warnings if 'Failed to parse' in w or 'Unable to parse' in w], warnings


def test_over_ssh_by_default_at_the_lab_network_address(lab_inventory):
    manager = load(lab_inventory)
    for host, address in PLATFORM.items():
        hv = hostvars(manager, host)
        assert hv['ansible_connection'] == 'ssh'
        assert hv['ansible_host'] == address
        assert hv['ansible_user'] == 'deploy'
        assert hv['ansible_become'] is True
        assert hv['ansible_python_interpreter'] == '/usr/bin/python3'
        assert hv['lab_networks'] == {'aiquiz-lab': address}
        assert hv['lab_container_name'] == 'aiquiz-lab-' + host
        assert hv['lab_container_state'] == 'running'
        assert hv['lab_host'] == host
        assert hv['inventory_dir'] == lab_inventory
    assert hostvars(manager, 'app1')['lab_container_image'] == 'aiquiz-lab/debian:13'


def test_an_empty_connection_variable_means_ssh(lab_inventory, monkeypatch):
    monkeypatch.setenv('AIQUIZ_LAB_CONNECTION', '')
    hv = hostvars(load(lab_inventory), 'data1')
    assert (hv['ansible_connection'], hv['ansible_host'], hv['ansible_user']) == ('ssh', PLATFORM['data1'], 'deploy')


@pytest.mark.parametrize('connection', ['community.docker.docker', 'community.docker.docker_api'])
def test_docker_connection_by_container_name_without_user_or_sudo(lab_inventory, monkeypatch, connection):
    monkeypatch.setenv('AIQUIZ_LAB_CONNECTION', connection)
    manager = load(lab_inventory)
    assert sorted(manager.hosts) == sorted(PLATFORM)
    for host in PLATFORM:
        hv = hostvars(manager, host)
        assert hv['ansible_connection'] == connection
        assert hv['ansible_host'] == 'aiquiz-lab-' + host
        assert 'ansible_user' not in hv and 'ansible_become' not in hv
        assert hv['lab_networks'] == {'aiquiz-lab': PLATFORM[host]}
    assert members(manager, 'canary') == ['app1']


def test_a_host_whose_label_name_is_taken_keeps_its_container_name(lab_inventory, engine, warnings):
    engine.containers.append(container('app2', 'app', '192.0.2.9', name='aiquiz-lab-app2b'))
    manager = load(lab_inventory)
    assert hostvars(manager, 'app2')['lab_container_name'] == 'aiquiz-lab-app2'
    assert 'aiquiz-lab-app2b' in manager.hosts
    assert 'lab_hostnames: host aiquiz-lab-app2b keeps its name (the name app2 is taken)' in warnings


def test_lab_hostnames_keeps_variables_and_groups_and_leaves_other_hosts():
    inventory_loader.add_directory(LAB_PLUGINS)
    plugin = inventory_loader.get('lab_hostnames')
    inventory = InventoryData()
    for group in ('app', 'canary'):
        inventory.add_group(group)
    inventory.add_host('aiquiz-lab-app1', group='app')
    inventory.add_child('canary', 'aiquiz-lab-app1')
    inventory.set_variable('aiquiz-lab-app1', 'lab_host', 'app1')
    inventory.set_variable('aiquiz-lab-app1', 'ansible_host', '192.0.2.4')
    inventory.add_host('static1', group='app')
    config = os.path.join(LAB_INVENTORY, HOSTNAMES_CONFIG)
    plugin.parse(inventory, DataLoader(), config)
    assert sorted(inventory.hosts) == ['app1', 'static1']
    assert sorted(h.name for h in inventory.groups['app'].get_hosts()) == ['app1', 'static1']
    assert [h.name for h in inventory.groups['canary'].get_hosts()] == ['app1']
    assert inventory.get_host('app1').vars['ansible_host'] == '192.0.2.4'


@pytest.mark.parametrize('hosts, moves, skipped', [
    ({'a-x': {'lab_host': 'x'}, 'y': {}}, [('a-x', 'x')], []),
    ({'x': {'lab_host': 'x'}}, [], []),
    ({'a-x': {'lab_host': ' '}, 'b': {'lab_host': None}}, [], []),
    ({'a-x': {'lab_host': 'x'}, 'x': {}}, [], [('a-x', 'x', 'the name x is taken')]),
    ({'a-x': {'lab_host': 'x'}, 'b-x': {'lab_host': 'x'}}, [('a-x', 'x')], [('b-x', 'x', 'the name x is taken')]),
    # Names are checked against the inventory as it was: no chains of renames.
    ({'a': {'lab_host': 'b'}, 'b': {'lab_host': 'c'}}, [('b', 'c')], [('a', 'b', 'the name b is taken')]),
])
def test_renames(hosts, moves, skipped):
    inventory_loader.add_directory(LAB_PLUGINS)
    module = sys.modules[type(inventory_loader.get('lab_hostnames')).__module__]
    assert module.renames(hosts, 'lab_host') == (moves, skipped)
