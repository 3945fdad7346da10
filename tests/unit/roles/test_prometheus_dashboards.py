# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Grafana dashboards of roles/prometheus/files/dashboards/: each a Grafana JSON model with
what Grafana needs to import it, every query valid PromQL for the real promtool (written as
recording rules and checked by `promtool check rules`), and every metric name a query reads one
the platform exposes.

The names the platform exposes: tests/unit/fixtures/prometheus_metric_names.txt (recorded from
the molecule/monitoring scenario's Prometheus: node, redis, blackbox, mtail, Prometheus and
Alertmanager), the names the collection's rule files read and record, the textfile metrics the
collection's own code writes (backup catalogue, certificate inventory), and the few exporter
metrics of EXPORTED below, each with where it comes from.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.aiquiz.ops.plugins.module_utils import _backup_catalogue, _certs
from conftest import run_local_play

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
DASHBOARDS_DIR = os.path.join(ROOT, 'roles', 'prometheus', 'files', 'dashboards')
DASHBOARDS = sorted(glob.glob(os.path.join(DASHBOARDS_DIR, '*.json')))
RULES_DIR = os.path.join(ROOT, 'roles', 'prometheus', 'files', 'rules')
NAMES_FIXTURE = os.path.join(ROOT, 'tests', 'unit', 'fixtures', 'prometheus_metric_names.txt')
DATASOURCE = {'type': 'prometheus', 'uid': '${datasource}'}
# The schema Grafana 12 writes.
MIN_SCHEMA_VERSION = 41

# Exporter metrics the lab's molecule/monitoring scenario does not run (PostgreSQL, RabbitMQ),
# beyond those the rule files already read.
EXPORTED = {
    # prometheus-postgres-exporter (0.11.1 on Debian 12, 0.17 on Debian 13): the pg_stat_database
    # view's counters, one series per database.
    'pg_stat_database_xact_commit': 'postgres exporter, pg_stat_database',
    'pg_stat_database_xact_rollback': 'postgres exporter, pg_stat_database',
    # RabbitMQ's rabbitmq_prometheus plugin (3.10 on Debian 12, 4.0 on Debian 13), core metrics of
    # the node (aggregated, the plugin's default).
    'rabbitmq_connections': 'rabbitmq_prometheus, connections open',
    'rabbitmq_channels': 'rabbitmq_prometheus, channels open',
    'rabbitmq_consumers': 'rabbitmq_prometheus, consumers',
    'rabbitmq_process_resident_memory_bytes': 'rabbitmq_prometheus, memory used',
    'rabbitmq_resident_memory_limit_bytes': 'rabbitmq_prometheus, memory high watermark',
    # Prometheus' own series of its alerts (pending and firing).
    'ALERTS': 'Prometheus',
}

# Values a query's template variables take for promtool: what Grafana would substitute.
VARIABLES = {'$__rate_interval': '1m', '$__interval': '1m', '$__range': '1h', '$instance': '.*'}

KEYWORDS = {'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless',
            'offset', 'inf', 'nan'}


def load(path):
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def substitute(expr):
    """expr with the dashboard's template variables replaced by concrete values."""
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def metric_names(expr):
    """The metric names a PromQL expression selects (not functions, keywords or label names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r'\{[^}]*\}', ' ', text)
    text = re.sub(r'\[[^\]]*\]', ' ', text)
    text = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', ' ', text)
    names = set()
    for match in re.finditer(r'(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?', text):
        if not match.group(2) and match.group(1).lower() not in KEYWORDS:
            names.add(match.group(1))
    return names


def panels(board):
    """Every panel of a dashboard, those inside collapsed rows too."""
    for panel in board.get('panels', []):
        yield panel
        yield from panel.get('panels', [])


def queries():
    """(id, expr) of every query: panel targets and the query variables' label_values() selectors."""
    found = []
    for path in DASHBOARDS:
        board = load(path)
        for panel in panels(board):
            for target in panel.get('targets', []):
                found.append(('%s/%s/%s' % (board['uid'], panel['id'], target['refId']), target['expr']))
        for variable in board['templating']['list']:
            if variable['type'] == 'query':
                match = re.fullmatch(r'label_values\((.+),\s*(\w+)\)', variable['definition'])
                assert match, '%s: variable %s is not label_values(selector, label)' % (path, variable['name'])
                found.append(('%s/$%s' % (board['uid'], variable['name']), match.group(1)))
    return found


def known_names():
    """{name: where it comes from} of every metric name the platform exposes."""
    known = dict(EXPORTED)
    with open(NAMES_FIXTURE, encoding='utf-8') as handle:
        for line in handle:
            if line.strip() and not line.startswith('#'):
                known.setdefault(line.strip(), 'recorded scrape')
    for path in sorted(glob.glob(os.path.join(RULES_DIR, '*.yml'))):
        with open(path, encoding='utf-8') as handle:
            for group in yaml.safe_load(handle)['groups']:
                for rule in group['rules']:
                    if 'record' in rule:
                        known.setdefault(rule['record'], os.path.basename(path))
                    for name in metric_names(rule['expr']):
                        known.setdefault(name, os.path.basename(path))
    for name, _help in _backup_catalogue.METRICS:
        known.setdefault(name, 'backup catalogue textfile')
    for name, _help in _certs.METRICS:
        known.setdefault(_certs.METRIC_PREFIX + name, 'certificate inventory textfile')
    return known


def test_there_are_four_dashboards():
    assert [os.path.basename(path) for path in DASHBOARDS] == [
        'certificates-backups.json', 'data.json', 'hosts.json', 'platform.json']


@pytest.mark.parametrize('path', DASHBOARDS, ids=os.path.basename)
def test_dashboard_has_what_grafana_needs(path):
    board = load(path)
    assert 'id' not in board or board['id'] is None, 'a provisioned dashboard carries no database id'
    assert re.fullmatch(r'aiquiz-[a-z0-9-]{1,33}', board['uid']), board['uid']
    assert board['title'].startswith('AI Quiz / ')
    assert board['schemaVersion'] >= MIN_SCHEMA_VERSION
    assert 'aiquiz' in board['tags']
    variables = {variable['name']: variable for variable in board['templating']['list']}
    assert variables['datasource']['type'] == 'datasource'
    assert variables['datasource']['query'] == 'prometheus'
    for variable in variables.values():
        if variable['type'] == 'query':
            assert variable['datasource'] == DATASOURCE, variable['name']
    ids = [panel['id'] for panel in panels(board)]
    assert len(ids) == len(set(ids)), 'panel ids repeat'
    assert any(panel.get('targets') for panel in panels(board))


@pytest.mark.parametrize('path', DASHBOARDS, ids=os.path.basename)
def test_every_panel_is_placed_and_queries_the_datasource_variable(path):
    board = load(path)
    placed = []
    for panel in panels(board):
        where = '%s panel %s (%s)' % (board['uid'], panel['id'], panel.get('title'))
        grid = panel['gridPos']
        assert set(grid) >= {'h', 'w', 'x', 'y'}, where
        assert grid['w'] >= 1 and grid['h'] >= 1 and grid['x'] >= 0 and grid['x'] + grid['w'] <= 24, where
        cells = {(x, y) for x in range(grid['x'], grid['x'] + grid['w'])
                 for y in range(grid['y'], grid['y'] + grid['h'])}
        assert not any(cells & other for other in placed), '%s overlaps another panel' % where
        placed.append(cells)
        assert panel['title'], where
        if panel['type'] == 'row':
            assert not panel.get('targets'), where
            continue
        assert panel.get('description'), where
        assert panel['datasource'] == DATASOURCE, where
        targets = panel['targets']
        assert targets, where
        refs = [target['refId'] for target in targets]
        assert len(refs) == len(set(refs)), '%s: refId repeats' % where
        for target in targets:
            assert target['expr'].strip(), where
            assert target.get('datasource', DATASOURCE) == DATASOURCE, where


def test_dashboard_uids_and_titles_are_unique():
    boards = [load(path) for path in DASHBOARDS]
    assert len({board['uid'] for board in boards}) == len(boards)
    assert len({board['title'] for board in boards}) == len(boards)


def test_every_variable_a_query_uses_is_defined_or_grafanas():
    for path in DASHBOARDS:
        board = load(path)
        defined = {'$' + variable['name'] for variable in board['templating']['list']}
        for panel in panels(board):
            for target in panel.get('targets', []):
                used = set(re.findall(r'\$\{?(\w+)', target['expr']))
                unknown = {'$' + name for name in used} - defined - set(VARIABLES)
                assert not unknown, '%s panel %s: %s' % (board['uid'], panel['id'], unknown)


def test_every_query_is_valid_promql(tmp_path):
    """Every query, its variables substituted, as a recording rule for `promtool check rules`."""
    promtool = shutil.which('promtool')
    assert promtool, 'promtool is missing: apt-get install prometheus (tests/lab/setup.sh installs it)'
    rules = []
    for where, expr in queries():
        concrete = substitute(expr)
        assert '$' not in concrete, '%s: a variable is left in %s' % (where, concrete)
        rules.append({'record': 'dashboard:q%d' % len(rules), 'expr': concrete})
    path = tmp_path / 'dashboards.rules.yml'
    path.write_text(yaml.safe_dump({'groups': [{'name': 'dashboards', 'rules': rules}]}))
    proc = subprocess.run([promtool, 'check', 'rules', str(path)], capture_output=True, text=True, check=False)
    index = '\n'.join('q%d %s' % (number, where) for number, (where, _expr) in enumerate(queries()))
    assert proc.returncode == 0, proc.stdout + proc.stderr + '\nqueries:\n' + index
    assert 'SUCCESS: %d rules found' % len(rules) in proc.stdout


def test_promtool_refuses_a_broken_query(tmp_path):
    """The check above would catch a broken query (promtool reads every rule's expression)."""
    path = tmp_path / 'broken.rules.yml'
    path.write_text(yaml.safe_dump({'groups': [{'name': 'broken', 'rules': [
        {'record': 'dashboard:q0', 'expr': substitute('sum by (instance) (rate(up[$__rate_interval])')}]}]}))
    proc = subprocess.run([shutil.which('promtool') or 'promtool', 'check', 'rules', str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0


def test_every_metric_name_is_one_the_platform_exposes():
    known = known_names()
    unknown = {}
    for where, expr in queries():
        for name in sorted(metric_names(substitute(expr)) - set(known)):
            unknown.setdefault(name, []).append(where)
    assert not unknown, unknown


def test_metric_names_reads_names_not_functions_labels_or_numbers():
    expr = ('sum by (instance, job) (increase(pg_stat_database_tup_inserted{datname!~"template.*"}[15m])) '
            '/ on(instance) group_left max by (instance) (pg_settings_max_connections) > 0.8 * 1e3 '
            'and aiquiz:api_errors:ratio_rate1h offset 5m or label_replace(up == 1, "a", "b", "", "") '
            'or vector(0) unless time() - node_boot_time_seconds < bool 3600')
    assert metric_names(expr) == {'pg_stat_database_tup_inserted', 'pg_settings_max_connections',
                                  'aiquiz:api_errors:ratio_rate1h', 'up', 'node_boot_time_seconds'}


# Words of the panels' descriptions that look like alert names but are not.
NOT_ALERTS = {'MemAvailable', 'MemTotal', 'MiB', 'PostgreSQL', 'RabbitMQ'}


def test_panels_name_real_alerts_and_every_alert_has_a_panel():
    """A panel's description names the alerts it relates to: each is an alert of the rule files, and
    every alert of the rule files has a panel."""
    alerts = set()
    for path in sorted(glob.glob(os.path.join(RULES_DIR, '*.yml'))):
        with open(path, encoding='utf-8') as handle:
            for group in yaml.safe_load(handle)['groups']:
                alerts.update(rule['alert'] for rule in group['rules'] if 'alert' in rule)
    named = set()
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            named.update(re.findall(r'\b[A-Z][A-Za-z0-9]*[a-z0-9][A-Z][A-Za-z0-9]*\b', panel.get('description', '')))
    named -= NOT_ALERTS
    assert named <= alerts, named - alerts
    assert alerts <= named, alerts - named


def test_every_runbook_a_panel_names_exists():
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for runbook in re.findall(r'docs/admin/runbooks/[a-z0-9-]+\.md', panel.get('description', '')):
                assert os.path.isfile(os.path.join(ROOT, runbook)), runbook


def test_metric_names_fixture_says_how_it_was_made():
    with open(NAMES_FIXTURE, encoding='utf-8') as handle:
        text = handle.read()
    assert 'molecule/monitoring' in text and '/api/v1/label/__name__/values' in text
    names = [line for line in text.splitlines() if line and not line.startswith('#')]
    assert names == sorted(set(names)) and len(names) > 100


INSTALL = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: aiquiz.ops.prometheus
        tasks_from: dashboards
"""


def install(tmp_path, check=False, **variables):
    play_dir = tmp_path / ('play-%d' % len(list(tmp_path.glob('play-*'))))
    play_dir.mkdir()
    rc, out = run_local_play(play_dir, INSTALL.replace('gather_facts: false', 'gather_facts: false\n  check_mode: true')
                             if check else INSTALL, dict({'ansible_become': False}, **variables))
    assert rc == 0, out
    return re.search(r'changed=(\d+)', out).group(1)


def test_role_installs_the_dashboards_and_their_provider_then_changes_nothing(tmp_path):
    where = tmp_path / 'usr' / 'share' / 'aiquiz' / 'dashboards'
    assert install(tmp_path, check=True, prometheus_dashboards_dir=str(where)) != '0'
    assert not where.exists()
    assert install(tmp_path, prometheus_dashboards_dir=str(where)) != '0'
    names = sorted(os.path.basename(path) for path in DASHBOARDS)
    assert sorted(path.name for path in where.iterdir()) == sorted(names + ['grafana-provisioning.yaml'])
    for name in names:
        installed = where / name
        assert installed.read_bytes() == open(os.path.join(DASHBOARDS_DIR, name), 'rb').read()
        assert (installed.stat().st_mode & 0o777, installed.stat().st_uid) == (0o644, os.getuid())
    provider = yaml.safe_load((where / 'grafana-provisioning.yaml').read_text())
    assert provider['apiVersion'] == 1
    assert [(p['type'], p['options']['path']) for p in provider['providers']] == [('file', str(where))]
    assert install(tmp_path, prometheus_dashboards_dir=str(where)) == '0'


def test_role_removes_only_its_own_files_when_disabled(tmp_path):
    where = tmp_path / 'dashboards'
    install(tmp_path, prometheus_dashboards_dir=str(where))
    (where / 'mine.json').write_text('{}')
    assert install(tmp_path, prometheus_dashboards_dir=str(where), prometheus_dashboards_enabled=False) != '0'
    assert [path.name for path in where.iterdir()] == ['mine.json']
    assert install(tmp_path, prometheus_dashboards_dir=str(where), prometheus_dashboards_enabled=False) == '0'
