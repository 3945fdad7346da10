# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests for the aiquiz.ops.lab inventory plugin.

The plugin-level tests talk to a small fake Docker Engine API served over a
Unix socket, so no Docker engine is needed.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import socketserver
import textwrap
import threading
import urllib.parse

import pytest

from ansible import constants as C
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, inventory_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.display import Display

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'collections'))
if AnsibleCollectionConfig.collection_finder is None:
    # Before the first import from the collection (tests/unit/conftest.py normally did it already).
    init_plugin_loader([COLLECTIONS])

from ansible_collections.aiquiz.ops.plugins.inventory import lab  # noqa: E402 pylint: disable=wrong-import-position

PREFIX = 'ops.aiquiz.lab'


def container(host, groups, state='running', image='aiquiz-lab/debian:12', ip='172.18.0.2', lab_name='aiquiz', labels=None, name=None):
    """A /containers/json entry as the Engine API returns it for a lab host."""
    all_labels = {
        '%s.lab' % PREFIX: lab_name,
        '%s.host' % PREFIX: host,
        '%s.groups' % PREFIX: groups,
        '%s.recipe' % PREFIX: '522a0bc2931a',
    }
    if labels is not None:
        all_labels = labels
    cname = name or 'aiquiz-lab-%s' % host
    return {
        'Id': ('%s-%s' % (cname, 'f' * 64))[:64],
        'Names': ['/' + cname],
        'Image': image,
        'ImageID': 'sha256:' + 'a' * 64,
        'Command': '/lib/systemd/systemd',
        'Labels': all_labels,
        'State': state,
        'Status': 'Up 5 minutes' if state == 'running' else 'Exited (0) 1 minute ago',
        'NetworkSettings': {'Networks': {'aiquiz-lab': {'IPAddress': ip if state == 'running' else '', 'NetworkID': 'n' * 64}}},
    }


LAB = [
    container('edge1', 'edge', ip='172.18.0.2'),
    container('app1', 'app,canary', image='aiquiz-lab/debian:13', ip='172.18.0.3'),
    container('app2', 'app', image='aiquiz-lab/debian:13', ip='172.18.0.4'),
    container('data1', 'data', ip='172.18.0.5'),
    container('mon1', 'monitoring', ip='172.18.0.6'),
]


# --- pure functions ---------------------------------------------------------

@pytest.mark.parametrize('url, expected', [
    ('unix:///var/run/docker.sock', ('unix', '/var/run/docker.sock', None)),
    ('unix:///tmp/x y/docker.sock', ('unix', '/tmp/x y/docker.sock', None)),
    ('unix://relative.sock', ('unix', 'relative.sock', None)),
    ('/run/docker.sock', ('unix', '/run/docker.sock', None)),
    ('tcp://192.0.2.10:2375', ('tcp', '192.0.2.10', 2375)),
    ('tcp://docker.example:12375/', ('tcp', 'docker.example', 12375)),
    ('TCP://docker.example', ('tcp', 'docker.example', 2375)),
    ('http://127.0.0.1:8080', ('tcp', '127.0.0.1', 8080)),
    ('http://[::1]:2375', ('tcp', '::1', 2375)),
])
def test_parse_docker_host(url, expected):
    assert lab.parse_docker_host(url) == expected


@pytest.mark.parametrize('url', [
    'https://192.0.2.10:2376', 'ssh://user@host', 'npipe:////./pipe/docker_engine', 'docker.sock',
    '', None, 'unix://', 'tcp://', 'tcp://host:notaport', 'tcp://host:2375/v1.41',
])
def test_parse_docker_host_rejects(url):
    with pytest.raises(ValueError):
        lab.parse_docker_host(url)


def test_containers_path_filters_by_lab_label():
    path = lab.containers_path('ops.aiquiz.lab', 'aiquiz')
    base, query = path.split('?', 1)
    params = urllib.parse.parse_qs(query)
    assert base == '/containers/json'
    assert params['all'] == ['1']
    assert json.loads(params['filters'][0]) == {'label': ['ops.aiquiz.lab.lab=aiquiz']}
    assert urllib.parse.parse_qs(lab.containers_path('p', 'l', include_stopped=False).split('?', 1)[1])['all'] == ['0']


@pytest.mark.parametrize('value, expected', [
    ('app,canary', ['app', 'canary']),
    (' app , ,canary,', ['app', 'canary']),
    ('app,app', ['app']),
    ('web-tier,db.primary', ['web_tier', 'db_primary']),
    ('', []),
    (None, []),
])
def test_split_groups(value, expected):
    assert lab.split_groups(value) == expected


def test_hosts_from_containers_maps_the_lab():
    hosts = lab.hosts_from_containers(LAB, PREFIX)
    assert [h[0] for h in hosts] == ['app1', 'app2', 'data1', 'edge1', 'mon1']
    by_name = dict((h[0], h) for h in hosts)
    assert by_name['app1'][1] == ['lab', 'app', 'canary']
    assert by_name['mon1'][1] == ['lab', 'monitoring']
    assert by_name['app1'][2] == {
        'ansible_connection': 'community.docker.docker',
        'ansible_host': 'aiquiz-lab-app1',
        'ansible_python_interpreter': '/usr/bin/python3',
        'lab_container_id': LAB[1]['Id'],
        'lab_container_name': 'aiquiz-lab-app1',
        'lab_container_image': 'aiquiz-lab/debian:13',
        'lab_container_state': 'running',
        'lab_networks': {'aiquiz-lab': '172.18.0.3'},
    }


def test_hosts_from_containers_stopped():
    containers = [container('app1', 'app'), container('app2', 'app', state='exited'), container('app3', 'app', state='created')]
    assert [h[0] for h in lab.hosts_from_containers(containers, PREFIX)] == ['app1']
    hosts = lab.hosts_from_containers(containers, PREFIX, include_stopped=True)
    assert [(h[0], h[2]['lab_container_state']) for h in hosts] == [('app1', 'running'), ('app2', 'exited'), ('app3', 'created')]
    assert hosts[1][2]['lab_networks'] == {'aiquiz-lab': ''}


def test_hosts_from_containers_missing_labels_fall_back():
    bare = container('x', '', labels={'ops.aiquiz.lab.lab': 'aiquiz'}, name='aiquiz-lab-odd')
    bare['NetworkSettings'] = {}
    no_labels = container('y', '', labels={}, name='other')
    no_labels['Labels'] = None
    hosts = lab.hosts_from_containers([bare, no_labels], PREFIX)
    assert [(h[0], h[1]) for h in hosts] == [('aiquiz-lab-odd', ['lab']), ('other', ['lab'])]
    assert hosts[0][2]['lab_networks'] == {}
    assert hosts[0][2]['ansible_host'] == 'aiquiz-lab-odd'


def test_hosts_from_containers_groups_sanitised_and_lab_not_repeated():
    c = container('app1', 'lab, app-blue ,,canary.eu')
    assert lab.hosts_from_containers([c], PREFIX)[0][1] == ['lab', 'app_blue', 'canary_eu']


def test_hosts_from_containers_other_prefix_and_several_networks():
    c = container('z', '', labels={'acme.lab.host': 'zeta', 'acme.lab.groups': 'web'})
    c['NetworkSettings']['Networks']['bridge'] = {'IPAddress': '172.17.0.9'}
    hosts = lab.hosts_from_containers([c], 'acme.lab')
    assert hosts[0][0] == 'zeta'
    assert hosts[0][1] == ['lab', 'web']
    assert hosts[0][2]['lab_networks'] == {'aiquiz-lab': '172.18.0.2', 'bridge': '172.17.0.9'}


def test_hosts_from_containers_connection_and_docker_host():
    hosts = lab.hosts_from_containers([LAB[0]], PREFIX, connection='community.docker.docker_api', docker_host='tcp://192.0.2.1:2375')
    hostvars = hosts[0][2]
    assert hostvars['ansible_connection'] == 'community.docker.docker_api'
    assert hostvars['ansible_docker_docker_host'] == 'tcp://192.0.2.1:2375'
    assert 'ansible_docker_extra_args' not in hostvars
    cli = lab.hosts_from_containers([LAB[0]], PREFIX, docker_host='tcp://192.0.2.1:2375')[0][2]
    assert cli['ansible_connection'] == 'community.docker.docker'
    assert cli['ansible_docker_extra_args'] == '-H tcp://192.0.2.1:2375'
    assert 'ansible_docker_docker_host' not in cli
    default = lab.hosts_from_containers([LAB[0]], PREFIX)[0][2]
    assert 'ansible_docker_docker_host' not in default and 'ansible_docker_extra_args' not in default


def test_hosts_from_containers_empty():
    assert lab.hosts_from_containers([], PREFIX) == []
    assert lab.hosts_from_containers(None, PREFIX) == []


def test_engine_error_messages_are_one_line_and_name_the_host():
    for error in (lab.DockerEngineError('No such file or directory'),
                  lab.DockerEngineError('Permission denied', denied=True),
                  lab.DockerEngineError('GET /containers/json: HTTP 500 boom', unreachable=False)):
        message = lab.engine_error_message('unix:///x.sock', error)
        assert '\n' not in message
        assert 'unix:///x.sock' in message
        assert error.reason in message
    assert lab.engine_error_message('unix:///x.sock', lab.DockerEngineError('No such file or directory')) == (
        'aiquiz.ops.lab: cannot reach the Docker engine at unix:///x.sock (No such file or directory); '
        'start it with `make setup`, then `make lab-up`')


# --- a fake Docker Engine API on a Unix socket ------------------------------

class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


class _EngineHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _send(self, status, payload):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        engine = self.server.engine
        engine.requests.append(self.path)
        if engine.error:
            self._send(engine.error[0], engine.error[1])
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path != '/containers/json':
            self._send(404, {'message': 'page not found'})
            return
        query = urllib.parse.parse_qs(url.query)
        show_all = query.get('all', ['0'])[0] in ('1', 'true', 'True')
        wanted = json.loads(query.get('filters', ['{}'])[0]).get('label', [])
        found = []
        for item in engine.containers:
            labels = item.get('Labels') or {}
            if not show_all and item['State'] != 'running':
                continue
            if all(labels.get(w.split('=', 1)[0]) == w.split('=', 1)[1] for w in wanted):
                found.append(item)
        self._send(200, found)


class FakeEngine:
    def __init__(self, path):
        self.path = path
        self.url = 'unix://' + path
        self.containers = copy.deepcopy(LAB)
        self.requests = []
        self.error = None
        self.server = _UnixServer(path, _EngineHandler)
        self.server.engine = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(tmp_path_factory):
    # AF_UNIX paths are limited to ~107 bytes: keep it short.
    directory = tmp_path_factory.mktemp('eng')
    fake = FakeEngine(str(directory / 'docker.sock'))
    yield fake
    fake.close()


@pytest.fixture
def enabled(monkeypatch):
    monkeypatch.setattr(C, 'INVENTORY_ENABLED', ['aiquiz.ops.lab'])


@pytest.fixture
def warnings(monkeypatch):
    seen = []

    def warning(self, msg, *args, **kwargs):
        seen.append(msg)

    monkeypatch.setattr(Display, 'warning', warning)
    return seen


def write_config(directory, body, name='test.aiquiz_lab.yml'):
    path = directory / name
    path.write_text('---\nplugin: aiquiz.ops.lab\n' + textwrap.dedent(body))
    return str(path)


def load(config):
    return InventoryManager(loader=DataLoader(), sources=[config])


def parse_directly(config, cache=False):
    plugin = inventory_loader.get('aiquiz.ops.lab')
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), config, cache=cache)
    return inventory


def group_hosts(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts())


def test_plugin_loads_by_fqcn():
    plugin = inventory_loader.get('aiquiz.ops.lab')
    assert plugin is not None
    assert plugin.NAME == 'aiquiz.ops.lab'


@pytest.mark.parametrize('name, accepted', [
    ('aiquiz_lab.yml', True), ('aiquiz_lab.yaml', True), ('staging.aiquiz_lab.yml', True),
    ('lab.yml', False), ('aiquiz_lab.json', False), ('inventory.ini', False),
])
def test_verify_file(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text('plugin: aiquiz.ops.lab\n')
    assert inventory_loader.get('aiquiz.ops.lab').verify_file(str(path)) is accepted


def test_verify_file_missing(tmp_path):
    assert not inventory_loader.get('aiquiz.ops.lab').verify_file(str(tmp_path / 'aiquiz_lab.yml'))


def test_inventory_from_engine(engine, enabled, tmp_path):
    config = write_config(tmp_path, 'docker_host: %s\nlab: aiquiz\nconnection: community.docker.docker\n' % engine.url)
    manager = load(config)
    inventory = manager._inventory  # pylint: disable=protected-access
    assert sorted(manager.hosts) == ['app1', 'app2', 'data1', 'edge1', 'mon1']
    assert group_hosts(inventory, 'lab') == ['app1', 'app2', 'data1', 'edge1', 'mon1']
    assert group_hosts(inventory, 'app') == ['app1', 'app2']
    assert group_hosts(inventory, 'canary') == ['app1']
    assert group_hosts(inventory, 'edge') == ['edge1']
    assert group_hosts(inventory, 'data') == ['data1']
    assert group_hosts(inventory, 'monitoring') == ['mon1']

    hostvars = manager.get_host('app1').get_vars()
    assert hostvars['ansible_connection'] == 'community.docker.docker'
    assert hostvars['ansible_host'] == 'aiquiz-lab-app1'
    assert hostvars['ansible_python_interpreter'] == '/usr/bin/python3'
    assert hostvars['ansible_docker_extra_args'] == '-H ' + engine.url
    assert hostvars['lab_container_name'] == 'aiquiz-lab-app1'
    assert hostvars['lab_container_id'] == LAB[1]['Id']
    assert hostvars['lab_container_image'] == 'aiquiz-lab/debian:13'
    assert hostvars['lab_container_state'] == 'running'
    assert hostvars['lab_networks'] == {'aiquiz-lab': '172.18.0.3'}

    assert len(engine.requests) == 1
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(engine.requests[0]).query)
    assert json.loads(query['filters'][0]) == {'label': ['ops.aiquiz.lab.lab=aiquiz']}


def test_only_the_configured_lab(engine, enabled, tmp_path):
    engine.containers.append(container('other1', 'app', lab_name='elsewhere'))
    manager = load(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert 'other1' not in manager.hosts
    manager = load(write_config(tmp_path, 'docker_host: %s\nlab: elsewhere\n' % engine.url, name='other.aiquiz_lab.yml'))
    assert sorted(manager.hosts) == ['other1']


def test_excluded_groups_leave_their_hosts_out(engine, enabled, tmp_path):
    engine.containers.append(container('registry1', 'registry,lab_helpers'))
    manager = load(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert 'registry1' in manager.hosts
    manager = load(write_config(tmp_path, 'docker_host: %s\nexclude_groups: [lab_helpers]\n' % engine.url,
                                name='helpers.aiquiz_lab.yml'))
    assert 'registry1' not in manager.hosts
    assert 'lab_helpers' not in manager.groups
    assert manager.hosts


def test_stopped_containers(engine, enabled, tmp_path):
    engine.containers[4]['State'] = 'exited'
    manager = load(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert 'mon1' not in manager.hosts
    assert len(manager.hosts) == 4
    manager = load(write_config(tmp_path, 'docker_host: %s\ninclude_stopped: true\n' % engine.url, name='all.aiquiz_lab.yml'))
    assert manager.get_host('mon1').get_vars()['lab_container_state'] == 'exited'


def test_connection_option(engine, enabled, tmp_path):
    manager = load(write_config(tmp_path, 'docker_host: %s\nconnection: community.docker.docker\n' % engine.url))
    assert manager.get_host('edge1').get_vars()['ansible_connection'] == 'community.docker.docker'


def test_docker_host_from_environment(engine, enabled, tmp_path, monkeypatch):
    monkeypatch.setenv('DOCKER_HOST', engine.url)
    manager = load(write_config(tmp_path, ''))
    assert len(manager.hosts) == 5


def test_compose_groups_and_keyed_groups(engine, enabled, tmp_path):
    config = write_config(tmp_path, """\
        docker_host: %s
        compose:
          lab_ip: lab_networks['aiquiz-lab']
          debian: lab_container_image.split(':')[-1]
        groups:
          trixie: "lab_container_image.endswith(':13')"
        keyed_groups:
          - key: lab_container_image.split(':')[-1]
            prefix: debian
          - key: lab_container_state
            prefix: state
        """ % engine.url)
    manager = load(config)
    inventory = manager._inventory  # pylint: disable=protected-access
    assert manager.get_host('app2').get_vars()['lab_ip'] == '172.18.0.4'
    assert manager.get_host('edge1').get_vars()['debian'] == '12'
    assert group_hosts(inventory, 'trixie') == ['app1', 'app2']
    assert group_hosts(inventory, 'debian_13') == ['app1', 'app2']
    assert group_hosts(inventory, 'debian_12') == ['data1', 'edge1', 'mon1']
    assert group_hosts(inventory, 'state_running') == ['app1', 'app2', 'data1', 'edge1', 'mon1']


def test_strict_compose_error(engine, tmp_path):
    config = write_config(tmp_path, 'docker_host: %s\nstrict: true\ncompose:\n  x: no_such_variable.attr\n' % engine.url)
    with pytest.raises(Exception, match='Could not set x'):
        parse_directly(config)


def test_cache(engine, enabled, tmp_path):
    config = write_config(tmp_path, """\
        docker_host: %s
        cache: true
        cache_plugin: ansible.builtin.jsonfile
        cache_connection: %s
        """ % (engine.url, tmp_path / 'cache'))
    assert len(load(config).hosts) == 5
    assert len(engine.requests) == 1
    engine.containers = []
    # Served from the cache: the engine is not asked again.
    assert len(load(config).hosts) == 5
    assert len(engine.requests) == 1


def test_no_containers_warns(engine, warnings, tmp_path):
    engine.containers = []
    inventory = parse_directly(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert set(inventory.hosts) == set()
    assert warnings == ['aiquiz.ops.lab: no lab containers labelled ops.aiquiz.lab.lab=aiquiz; run `make lab-up`']


def test_all_stopped_warns(engine, warnings, tmp_path):
    for item in engine.containers:
        item['State'] = 'exited'
    inventory = parse_directly(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert set(inventory.hosts) == set()
    assert len(warnings) == 1
    assert 'none running' in warnings[0] and 'make lab-up' in warnings[0]


def test_duplicate_host_label_warns(engine, warnings, tmp_path):
    engine.containers.append(container('app1', 'app', name='aiquiz-lab-app1-copy'))
    inventory = parse_directly(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert inventory.get_host('app1').vars['lab_container_name'] == 'aiquiz-lab-app1'
    assert len(warnings) == 1 and 'both claim host app1' in warnings[0]


def test_missing_socket_is_a_parser_error(tmp_path):
    docker_host = 'unix://%s' % (tmp_path / 'nowhere' / 'docker.sock')
    with pytest.raises(AnsibleParserError) as raised:
        parse_directly(write_config(tmp_path, 'docker_host: %s\n' % docker_host))
    message = raised.value.message
    assert docker_host in message
    assert 'No such file or directory' in message
    assert 'make lab-up' in message
    assert '\n' not in message


def test_refused_tcp_is_a_parser_error(tmp_path):
    with pytest.raises(AnsibleParserError, match=r'cannot reach the Docker engine at tcp://127\.0\.0\.1:1 '):
        parse_directly(write_config(tmp_path, 'docker_host: tcp://127.0.0.1:1\ntimeout: 2\n'))


def test_bad_docker_host_is_a_parser_error(tmp_path):
    with pytest.raises(AnsibleParserError, match='docker_host ssh://host is not usable'):
        parse_directly(write_config(tmp_path, 'docker_host: ssh://host\n'))


def test_api_error_is_a_parser_error(engine, tmp_path):
    engine.error = (500, {'message': 'engine on fire'})
    with pytest.raises(AnsibleParserError) as raised:
        parse_directly(write_config(tmp_path, 'docker_host: %s\n' % engine.url))
    assert engine.url in raised.value.message
    assert 'HTTP 500 engine on fire' in raised.value.message


def test_non_json_answer_is_a_parser_error(engine, tmp_path):
    engine.error = (200, b'<html>not docker</html>')
    with pytest.raises(AnsibleParserError, match='not JSON'):
        parse_directly(write_config(tmp_path, 'docker_host: %s\n' % engine.url))


def test_engine_get_over_unix_socket(engine):
    assert len(lab.engine_get(engine.url, lab.containers_path(PREFIX, 'aiquiz'))) == 5
    assert lab.engine_get(engine.url, lab.containers_path(PREFIX, 'nolab')) == []


def test_an_ssh_connection_reaches_the_address_on_the_named_network_as_the_lab_user():
    ssh = {'network': 'aiquiz-lab', 'user': 'deploy', 'private_key_file': '/k/id_ed25519',
           'known_hosts_file': '/k/known_hosts'}
    for connection in ('ssh', 'ansible.builtin.ssh'):
        hosts = lab.hosts_from_containers([LAB[0]], PREFIX, connection=connection, ssh=ssh)
        hostvars = hosts[0][2]
        address = hostvars['lab_networks']['aiquiz-lab']
        assert address
        assert hostvars['ansible_host'] == address
        assert hostvars['ansible_connection'] == connection
        assert hostvars['ansible_user'] == 'deploy' and hostvars['ansible_become'] is True
        assert hostvars['ansible_ssh_private_key_file'] == '/k/id_ed25519'
        assert hostvars['ansible_ssh_common_args'] == '-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/k/known_hosts'
        assert 'ansible_docker_extra_args' not in hostvars


def test_an_ssh_connection_without_files_leaves_keys_and_host_checking_to_ssh():
    hostvars = lab.hosts_from_containers([LAB[0]], PREFIX, connection='ssh', ssh={})[0][2]
    assert hostvars['ansible_user'] == 'deploy'
    assert hostvars['ansible_host'] == sorted(hostvars['lab_networks'].items())[0][1]
    assert 'ansible_ssh_private_key_file' not in hostvars and 'ansible_ssh_common_args' not in hostvars


def test_the_connection_comes_from_the_environment_and_ssh_paths_from_the_config_file(
        engine, enabled, tmp_path, monkeypatch):
    monkeypatch.delenv('AIQUIZ_LAB_CONNECTION', raising=False)
    config = write_config(tmp_path, 'docker_host: %s\nssh_private_key_file: keys/id\n'
                          'ssh_known_hosts_file: keys/known_hosts\n' % engine.url)
    hostvars = load(config).get_host('edge1').get_vars()
    # SSH unless the environment says otherwise, as production hosts are reached.
    assert hostvars['ansible_connection'] == 'ssh'
    assert hostvars['ansible_ssh_private_key_file'] == str(tmp_path / 'keys' / 'id')
    assert str(tmp_path / 'keys' / 'known_hosts') in hostvars['ansible_ssh_common_args']
    monkeypatch.setenv('AIQUIZ_LAB_CONNECTION', 'community.docker.docker')
    hostvars = load(config).get_host('edge1').get_vars()
    assert hostvars['ansible_connection'] == 'community.docker.docker'
    assert hostvars['ansible_host'] == 'aiquiz-lab-edge1'
    assert 'ansible_ssh_common_args' not in hostvars
