# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The edge role's candidate test (roles/edge/files/aiquiz_nginx_test_candidate.py),
run against a live tree in a temporary directory and a stand-in for nginx that
follows includes as nginx does and refuses two kinds of values: one with a
file:line (a bad time), one without (a bad group list, as OpenSSL reports it).
molecule/edge runs it with the real nginx."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import stat
import sys
import tempfile
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
SCRIPT = os.path.join(ROOT, 'roles', 'edge', 'files', 'aiquiz_nginx_test_candidate.py')

FAKE_NGINX = textwrap.dedent('''\
    #!%s
    import glob, os, re, sys
    conf = sys.argv[sys.argv.index('-c') + 1]
    prefix = os.path.dirname(conf)
    read = []
    def parse(path):
        read.append(path)
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                words = line.split('#')[0].strip().rstrip(';').split()
                if not words:
                    continue
                if words[0] == 'include':
                    pattern = words[1] if words[1].startswith('/') else os.path.join(prefix, words[1])
                    for name in sorted(glob.glob(pattern)):
                        parse(name)
                elif words[0] == 'proxy_read_timeout' and not re.match(r'^[0-9]+[smh]?$', words[1]):
                    print('nginx: [emerg] "proxy_read_timeout" directive invalid value in %%s:%%d' %% (path, number))
                    sys.exit(1)
                elif words[0] == 'ssl_ecdh_curve' and set(words[1].split(':')) - {'X25519', 'prime256v1'}:
                    print('nginx: [emerg] SSL_CTX_set1_curves_list("%%s") failed (SSL:)' %% words[1])
                    sys.exit(1)
    parse(conf)
    with open(os.environ['FAKE_NGINX_LOG'], 'w') as log:
        log.write('\\n'.join(os.path.realpath(p) for p in read))
    print('nginx: configuration file %%s test is successful' %% conf)
''') % sys.executable


def load():
    loader = importlib.machinery.SourceFileLoader('aiquiz_nginx_test_candidate', SCRIPT)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def tool():
    return load()


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A live tree like Debian's: nginx.conf including conf.d and sites-enabled."""
    etc = tmp_path / 'etc-nginx'
    (etc / 'conf.d').mkdir(parents=True)
    (etc / 'sites-enabled').mkdir()
    (etc / 'mime.types').write_text('types {}\n')
    (etc / 'nginx.conf').write_text(
        'include mime.types;\n'
        'http {\n'
        '    include %s/conf.d/*.conf;\n'
        '    include %s/sites-enabled/*;\n'
        '}\n' % (etc, etc))
    live = etc / 'conf.d' / 'aiquiz-edge.conf'
    live.write_text('proxy_read_timeout 60s;  # edge_proxy_read_timeout\n')
    (etc / 'conf.d' / 'other.conf').write_text('# another role\n')
    (etc / 'sites-enabled' / 'site').write_text('# a site\n')
    nginx = tmp_path / 'nginx'
    nginx.write_text(FAKE_NGINX)
    nginx.chmod(nginx.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / 'nginx-read.log'
    monkeypatch.setenv('FAKE_NGINX_LOG', str(log))
    (tmp_path / 'tmp').mkdir()
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path / 'tmp'))
    return {'etc': etc, 'live': live, 'nginx': str(nginx), 'log': log, 'tmp': tmp_path / 'tmp',
            'candidate': tmp_path / 'candidate.tmp'}


def snapshot(directory):
    return sorted((str(path), path.read_bytes() if path.is_file() else None) for path in directory.rglob('*'))


def run(tool, tree, text, capsys, extra=()):
    tree['candidate'].write_text(text)
    before = snapshot(tree['etc'])
    rc = tool.main([str(tree['live']), str(tree['candidate']), '--main', str(tree['etc'] / 'nginx.conf'),
                    '--nginx', tree['nginx']] + list(extra))
    # The live tree is never touched, and the temporary one is gone.
    assert snapshot(tree['etc']) == before
    assert list(tree['tmp'].iterdir()) == []
    return rc, capsys.readouterr().err


def test_candidate_is_tested_in_place_of_the_live_file_with_the_rest_of_the_tree(tool, tree, capsys):
    rc, err = run(tool, tree, 'proxy_read_timeout 30s;  # edge_proxy_read_timeout\n', capsys)
    assert (rc, err) == (0, '')
    read = tree['log'].read_text().split('\n')
    # The main file and the candidate are the temporary copies; every other
    # file is the live one, through a link.
    workdir = str(tree['tmp'] / 'aiquiz-nginx-test-')
    assert read[0].startswith(workdir) and read[0].endswith('/nginx.conf')
    assert read[1] == str(tree['etc'] / 'mime.types')
    assert read[2].startswith(workdir) and read[2].endswith('/conf.d/aiquiz-edge.conf')
    assert read[3:] == [str(tree['etc'] / 'conf.d' / 'other.conf'), str(tree['etc'] / 'sites-enabled' / 'site')]


def test_refused_line_names_its_variable_and_shows_the_live_path(tool, tree, capsys):
    rc, err = run(tool, tree, '# head\nproxy_read_timeout 10x;  # edge_proxy_read_timeout\n', capsys)
    assert rc == 1
    live = str(tree['live'])
    assert err.splitlines() == [
        'line 2 of %s ("proxy_read_timeout 10x;") set by edge_proxy_read_timeout' % live,
        'nginx: [emerg] "proxy_read_timeout" directive invalid value in %s:2' % live]


def test_error_without_a_line_names_the_variable_whose_value_nginx_quotes(tool, tree, capsys):
    text = ('ssl_ecdh_curve X25519:X448x;  # edge_tls_curves\n'
            'proxy_read_timeout 60s;  # edge_proxy_read_timeout\n'
            'ssl_ecdh_curve X25519:X448x;  # edge_tls_curves\n')
    rc, err = run(tool, tree, text, capsys)
    assert rc == 1
    assert err.splitlines()[0] == 'line 1 of %s ("ssl_ecdh_curve X25519:X448x;") set by edge_tls_curves' % tree['live']
    assert 'SSL_CTX_set1_curves_list("X25519:X448x") failed' in err


def test_refused_line_without_a_marker_still_shows_nginx_message(tool, tree, capsys):
    rc, err = run(tool, tree, 'server_tokens off;  # edge_x\nproxy_read_timeout 10x;\n', capsys)
    assert rc == 1
    assert err.splitlines() == ['no variable marks the refused line',
                                'nginx: [emerg] "proxy_read_timeout" directive invalid value in %s:2' % tree['live']]
    # A file with no markers at all: nginx's message alone.
    rc, err = run(tool, tree, 'proxy_read_timeout 10x;\n', capsys)
    assert err.splitlines() == ['nginx: [emerg] "proxy_read_timeout" directive invalid value in %s:1' % tree['live']]


def test_several_candidates_new_files_and_removals_in_one_test(tool, tree, tmp_path, capsys):
    upstreams = tree['etc'] / 'aiquiz' / 'upstreams'
    (upstreams / 'quiz_web').mkdir(parents=True)
    (upstreams / 'quiz_api').mkdir()
    (upstreams / 'quiz_web' / 'app2.conf').write_text('# app2 web\n')
    (upstreams / 'quiz_api' / 'app1.conf').write_text('# app1 api, removed\n')
    (tree['etc'] / 'conf.d' / 'upstreams.conf').write_text('include %s/*/*.conf;\n' % upstreams)
    web = tmp_path / 'web.candidate'
    web.write_text('# app1 web, new\n')
    rc, err = run(tool, tree, 'proxy_read_timeout 30s;\n', capsys, extra=[
        str(upstreams / 'quiz_web' / 'app1.conf'), str(web), '--remove', str(upstreams / 'quiz_api' / 'app1.conf')])
    assert (rc, err) == (0, '')
    read = tree['log'].read_text().split('\n')
    assert str(upstreams / 'quiz_web' / 'app2.conf') in read
    assert str(upstreams / 'quiz_api' / 'app1.conf') not in read
    assert [path for path in read if path.endswith('/quiz_web/app1.conf')] == [
        path for path in read if path.startswith(str(tree['tmp'])) and path.endswith('/quiz_web/app1.conf')]
    # A refusal in one of them names its live path.
    web.write_text('proxy_read_timeout 10x;\n')
    rc, err = run(tool, tree, 'proxy_read_timeout 30s;  # edge_proxy_read_timeout\n', capsys, extra=[
        str(upstreams / 'quiz_web' / 'app1.conf'), str(web)])
    assert rc == 1
    assert err.splitlines() == [
        'no variable marks the refused line',
        'nginx: [emerg] "proxy_read_timeout" directive invalid value in %s:1' % (upstreams / 'quiz_web' / 'app1.conf')]


def test_linked_site_private_keys_and_foreign_paths(tool, tree, tmp_path, capsys, monkeypatch):
    etc = tree['etc']
    (etc / 'sites-available').mkdir()
    (etc / 'sites-available' / 'site').write_text('proxy_read_timeout 5s;\n')
    (etc / 'sites-enabled' / 'site').unlink()
    (etc / 'sites-enabled' / 'site').symlink_to(etc / 'sites-available' / 'site')
    (etc / 'keys').mkdir()
    (etc / 'keys' / 'edge.key').write_text('PRIVATE\n')
    (etc / 'conf.d' / 'foreign.conf').write_text('# /opt%s/x stays as it is\n' % etc)
    seen = {}
    real_place = tool.build_tree

    def spy(main, candidates, workdir):
        test_main = real_place(main, candidates, workdir)
        seen['key'] = os.path.islink(os.path.join(workdir, 'keys', 'edge.key'))
        with open(os.path.join(workdir, 'conf.d', 'foreign.conf')) as handle:
            seen['foreign'] = handle.read()
        return test_main
    monkeypatch.setattr(tool, 'build_tree', spy)
    # The site, through its link, is the candidate: refused.
    site = tmp_path / 'site.candidate'
    site.write_text('proxy_read_timeout 10x;\n')
    rc = tool.main([str(etc / 'sites-available' / 'site'), str(site), '--main', str(etc / 'nginx.conf'),
                    '--nginx', tree['nginx']])
    assert rc == 1
    assert 'invalid value in %s/sites-enabled/site:1' % etc in capsys.readouterr().err
    # Keys are linked, never copied; another tree's path is not rewritten.
    assert seen == {'key': True, 'foreign': '# /opt%s/x stays as it is\n' % etc}


def test_first_run_without_a_live_file(tool, tree, capsys):
    tree['live'].unlink()
    rc, err = run(tool, tree, 'proxy_read_timeout 30s;\n', capsys)
    assert (rc, err) == (0, '')


def test_live_file_outside_the_main_directory_is_a_setup_error(tool, tree, tmp_path, capsys):
    tree['candidate'].write_text('x;\n')
    rc = tool.main([str(tmp_path / 'elsewhere.conf'), str(tree['candidate']), '--main',
                    str(tree['etc'] / 'nginx.conf'), '--nginx', tree['nginx']])
    assert rc == 2
    assert 'is not a file under' in capsys.readouterr().err


def test_markers_and_blame_are_pure(tool):
    text = ('location /api/ {  # edge_routes[0].path\n'
            '    proxy_pass http://quiz_api;  # edge_routes[0].upstream\n'
            'limit_req_zone $k zone=z:10m rate=5r/s;  # edge_rate_limit_zone_size, edge_rate_limit\n'
            'server_tokens off;\n')
    assert tool.markers(text) == {
        1: (['edge_routes[0].path'], 'location /api/ {'),
        2: (['edge_routes[0].upstream'], 'proxy_pass http://quiz_api;'),
        3: (['edge_rate_limit_zone_size', 'edge_rate_limit'], 'limit_req_zone $k zone=z:10m rate=5r/s;')}
    assert tool.blame('x in /l.conf:3', '/l.conf', text) == [
        (['edge_rate_limit_zone_size', 'edge_rate_limit'], 3, 'limit_req_zone $k zone=z:10m rate=5r/s;')]
    assert tool.blame('cannot load "http://quiz_api"', '/l.conf', text) == [
        (['edge_routes[0].upstream'], 2, 'proxy_pass http://quiz_api;')]
    assert tool.blame('x in /other.conf:3', '/l.conf', text) == []
