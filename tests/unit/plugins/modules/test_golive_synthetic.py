# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""aiquiz.ops.golive_synthetic against a real HTTPS server on 127.0.0.1 that
serves the quiz API's create and read endpoints, reached by the name of its
certificate pinned to the address (SNI and Host), verified against its CA."""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.modules import golive_synthetic

sys.path.insert(0, os.path.dirname(__file__))
import golive_servers as servers  # noqa: E402 (beside this file)


def run_module(capsys, args, check=False):
    args = dict(args)
    if check:
        args['_ansible_check_mode'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            golive_synthetic.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return servers.make_pki(tmp_path_factory.mktemp('pki'))


def args_for(port, pki, **extra):
    return dict(dict(url='https://%s:%d/' % (servers.NAME, port), address='127.0.0.1', ca_file=pki['ca'],
                     title='go-live synthetic 2026-12-05T01:00:00Z', timeout=5), **extra)


def test_creates_a_quiz_and_reads_it_back(capsys, pki):
    quizzes = []
    with servers.https_server(pki, quizzes=quizzes) as (port, requests):
        code, result = run_module(capsys, args_for(port, pki))
    assert code == 0, result
    assert result['passed'] is True and result['findings'] == [] and result['changed'] is True
    assert quizzes == [{'id': 1, 'title': 'go-live synthetic 2026-12-05T01:00:00Z'}]
    create, read = result['steps']
    assert (create['method'], create['status'], create['location'], create['ok']) == ('POST', 201, '/api/quizzes/1', True)
    assert (read['method'], read['status'], read['ok']) == ('GET', 200, True)
    assert read['url'] == 'https://%s:%d/api/quizzes/1' % (servers.NAME, port)
    assert create['elapsed_ms'] > 0 and read['elapsed_ms'] > 0
    # Pinned to 127.0.0.1, the name in Host (and SNI: the server's certificate verified for it).
    assert [(r.get('method', 'GET'), r['path'], r['host']) for r in requests] == [
        ('POST', '/api/quizzes', '%s:%d' % (servers.NAME, port)), ('GET', '/api/quizzes/1', '%s:%d' % (servers.NAME, port))]
    assert requests[0]['body'] == {'title': 'go-live synthetic 2026-12-05T01:00:00Z'}


def test_check_mode_sends_nothing(capsys, pki):
    quizzes = []
    with servers.https_server(pki, quizzes=quizzes) as (port, requests):
        code, result = run_module(capsys, args_for(port, pki), check=True)
    assert code == 0 and result['changed'] is False
    assert requests == [] and quizzes == []
    assert result['check_mode'] is True and result['sent'] is False and result['steps'] == []
    assert result['findings'] == ['skipped in check mode: the POST would create a quiz']


def test_no_api_fails_the_create_step(capsys, pki):
    with servers.https_server(pki) as (port, _requests):
        code, result = run_module(capsys, args_for(port, pki))
    assert code == 0 and result['passed'] is False and result['changed'] is False
    [create] = result['steps']
    assert create['status'] == 404 and create['ok'] is False
    assert result['findings'] == ['create: answered 404, expected 201']


def test_a_chain_from_another_ca_is_refused(capsys, pki, tmp_path):
    other = servers.make_pki(tmp_path)
    quizzes = []
    with servers.https_server(pki, quizzes=quizzes) as (port, requests):
        code, result = run_module(capsys, args_for(port, pki, ca_file=other['ca']))
    assert code == 0 and result['passed'] is False
    assert quizzes == [] and requests == []
    assert result['findings'][0].startswith('create: the chain does not verify for %s' % servers.NAME)


def test_bad_path_fails(capsys, pki):
    code, result = run_module(capsys, args_for(443, pki, path='api/quizzes'))
    assert code == 1 and result['msg'] == "path must begin with /, got 'api/quizzes'"
