# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import stat
import threading
import time

import pytest

from ansible_collections.aiquiz.ops.plugins.module_utils import _release as rl

V1 = {'api': 'reg/aiquiz/quiz-api:1.0.0', 'web': 'reg/aiquiz/quiz-web:1.0.0'}
V2 = {'api': 'reg/aiquiz/quiz-api:1.1.0', 'web': 'reg/aiquiz/quiz-web:1.1.0'}
V3 = {'api': 'reg/aiquiz/quiz-api:1.2.0', 'web': 'reg/aiquiz/quiz-web:1.2.0'}


THREE = ['blue', 'green', 'amber']


def step(ledger, state, release=None, images=None, reason=None, keep=None, now='2026-11-27T10:00:00Z',
         colours=None):
    params = dict(state=state, release=release, images=images, reason=reason, keep=keep, path='/l.json',
                  colours=colours)
    return rl.transition(ledger, params, now=now)


def deploy_and_activate(ledger, release, images, now, colours=None):
    ledger = step(ledger, 'deploying', release, images, now=now, colours=colours)[0]
    ledger = step(ledger, 'active', release, now=now, colours=colours)[0]
    return ledger


def entry(ledger, release):
    return rl.find(ledger, release)


def test_first_deploy_is_blue_and_recorded():
    ledger, info = step(rl.empty_ledger('quiz'), 'deploying', '1.0.0', V1, now='2026-11-27T10:00:00Z')
    assert info == {'noop': False, 'removed': []}
    assert ledger['releases'] == [{
        'id': '1.0.0', 'colour': 'blue', 'state': 'deploying', 'images': V1,
        'created': '2026-11-27T10:00:00Z', 'updated': '2026-11-27T10:00:00Z', 'activated': None, 'reason': None,
        'history': [{'state': 'deploying', 'at': '2026-11-27T10:00:00Z'}],
    }]
    assert ledger['colours'] == {'blue': '1.0.0'}
    assert rl.idle_colour(ledger) == 'blue'
    assert rl.active_entry(ledger) is None


def test_colours_alternate_and_previous_good_follows():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    assert entry(ledger, '1.0.0')['activated'] == '2026-11-27T10:00:00Z'
    assert rl.idle_colour(ledger) == 'green'
    ledger = step(ledger, 'deploying', '1.1.0', V2, now='2026-11-27T10:01:00Z')[0]
    assert entry(ledger, '1.1.0')['colour'] == 'green'
    assert rl.active_entry(ledger)['id'] == '1.0.0'
    assert rl.previous_good(ledger) is None
    ledger = step(ledger, 'active', '1.1.0', now='2026-11-27T10:02:00Z')[0]
    assert rl.active_entry(ledger)['id'] == '1.1.0'
    old = entry(ledger, '1.0.0')
    assert old['state'] == 'standby'
    assert old['reason'] == 'replaced by release 1.1.0'
    assert [event['state'] for event in old['history']] == ['deploying', 'active', 'standby']
    assert rl.previous_good(ledger)['id'] == '1.0.0'
    assert rl.idle_colour(ledger) == 'blue'
    ledger = deploy_and_activate(ledger, '1.2.0', V3, '2026-11-27T10:03:00Z')
    assert entry(ledger, '1.2.0')['colour'] == 'blue'
    assert rl.previous_good(ledger)['id'] == '1.1.0'
    assert rl.release_ids(ledger) == ['1.2.0', '1.1.0', '1.0.0']
    assert ledger['colours'] == {'blue': '1.2.0', 'green': '1.1.0'}


def test_deploying_the_active_release_again_is_a_noop():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    again, info = step(ledger, 'deploying', '1.0.0', dict(V1), now='2026-11-27T11:00:00Z')
    assert info['noop'] is True
    assert again == ledger


def test_active_release_with_other_images_is_refused():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    with pytest.raises(rl.LedgerError, match='release 1.0.0 was deployed with images .* a release id names one set'):
        step(ledger, 'deploying', '1.0.0', V2)


def test_every_transition_is_idempotent():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = step(ledger, 'deploying', '1.1.0', V2, now='2026-11-27T10:01:00Z')[0]
    for state, reason in (('deploying', None), ('failed', 'readyz 503'), ('standby', None), ('absent', None)):
        images = V2 if state == 'deploying' else None
        once = step(ledger, state, '1.1.0', images, reason=reason, now='2026-11-27T10:05:00Z')[0]
        twice = step(once, state, '1.1.0', images, reason=reason, now='2026-11-27T10:06:00Z')[0]
        assert twice == once, state
    once = step(ledger, 'active', '1.1.0', now='2026-11-27T10:05:00Z')[0]
    assert step(once, 'active', '1.1.0', now='2026-11-27T10:06:00Z')[0] == once


def test_failed_release_is_redeployed_in_its_entry_on_the_idle_colour():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = step(ledger, 'deploying', '1.2.0', V3, now='2026-11-27T10:01:00Z')[0]
    ledger = step(ledger, 'failed', '1.2.0', reason='/readyz 503', now='2026-11-27T10:02:00Z')[0]
    failed = entry(ledger, '1.2.0')
    assert (failed['state'], failed['reason']) == ('failed', '/readyz 503')
    with pytest.raises(rl.LedgerError, match='release 1.2.0 is marked failed \\(/readyz 503\\); deploy it again'):
        step(ledger, 'active', '1.2.0')
    ledger = step(ledger, 'deploying', '1.2.0', V3, now='2026-11-27T10:03:00Z')[0]
    again = entry(ledger, '1.2.0')
    assert (again['state'], again['colour'], again['reason']) == ('deploying', 'green', None)
    assert (again['created'], again['updated']) == ('2026-11-27T10:01:00Z', '2026-11-27T10:03:00Z')
    assert [event['state'] for event in again['history']] == ['deploying', 'failed', 'deploying']
    assert len(ledger['releases']) == 2


def test_old_release_moves_to_the_front_and_gets_a_new_colour():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = deploy_and_activate(ledger, '1.1.0', V2, '2026-11-27T10:01:00Z')
    ledger = deploy_and_activate(ledger, '1.2.0', V3, '2026-11-27T10:02:00Z')
    assert entry(ledger, '1.0.0')['colour'] == 'blue'
    # 1.2.0 runs on blue now, so 1.0.0 comes back on green, replacing 1.1.0's containers.
    ledger = step(ledger, 'deploying', '1.0.0', V1, now='2026-11-27T10:03:00Z')[0]
    assert entry(ledger, '1.0.0')['colour'] == 'green'
    assert rl.release_ids(ledger) == ['1.0.0', '1.2.0', '1.1.0']
    assert ledger['colours'] == {'blue': '1.2.0', 'green': '1.0.0'}
    # 1.1.0 was good but its containers are gone: no instant activation.
    with pytest.raises(rl.LedgerError, match='release 1.1.0 last ran on green, where release 1.0.0 has been deployed'):
        step(ledger, 'active', '1.1.0')


def test_standby_release_can_be_activated_again_for_a_rollback():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = deploy_and_activate(ledger, '1.1.0', V2, '2026-11-27T10:01:00Z')
    ledger = step(ledger, 'active', '1.0.0', reason='rollback', now='2026-11-27T10:02:00Z')[0]
    assert rl.active_entry(ledger)['id'] == '1.0.0'
    assert rl.active_entry(ledger)['reason'] == 'rollback'
    assert entry(ledger, '1.1.0')['state'] == 'standby'
    assert rl.previous_good(ledger)['id'] == '1.1.0'
    ledger = step(ledger, 'failed', '1.1.0', reason='errors after the switch', now='2026-11-27T10:03:00Z')[0]
    assert rl.previous_good(ledger) is None


def test_superseded_deploy_is_marked_failed():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = step(ledger, 'deploying', '1.1.0', V2, now='2026-11-27T10:01:00Z')[0]
    ledger = step(ledger, 'deploying', '1.2.0', V3, now='2026-11-27T10:02:00Z')[0]
    assert entry(ledger, '1.1.0')['state'] == 'failed'
    assert entry(ledger, '1.1.0')['reason'] == 'superseded by release 1.2.0 before it was activated'
    assert entry(ledger, '1.2.0')['colour'] == 'green'


@pytest.mark.parametrize('state', ['failed', 'standby', 'absent'])
def test_active_release_cannot_be_failed_parked_or_removed(state):
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    with pytest.raises(rl.LedgerError, match='release 1.0.0 is the active release of workload quiz'):
        step(ledger, state, '1.0.0', reason='x')


@pytest.mark.parametrize('state', ['active', 'failed', 'standby'])
def test_unknown_release_is_refused_naming_the_known_ones(state):
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    with pytest.raises(rl.LedgerError) as error:
        step(ledger, state, '0.9.0', reason='x')
    assert str(error.value) == ('release 0.9.0 is not in the ledger /l.json of workload quiz, cannot mark it %s; '
                                'releases in the ledger, newest first: 1.0.0 (active)' % state)


def test_query_of_an_unknown_release_names_the_known_ones():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = step(ledger, 'deploying', '1.1.0', V2)[0]
    with pytest.raises(rl.LedgerError) as error:
        step(ledger, 'query', '0.9.0')
    assert str(error.value) == ('release 0.9.0 is not in the ledger /l.json of workload quiz; releases in the ledger, '
                                'newest first: 1.1.0 (deploying), 1.0.0 (active)')
    with pytest.raises(rl.LedgerError, match='the ledger has no releases yet'):
        step(rl.empty_ledger('quiz'), 'query', '0.9.0')


def test_absent_of_a_missing_release_changes_nothing():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    after, info = step(ledger, 'absent', '0.9.0')
    assert after == ledger
    assert info['removed'] == []


def build_history(count):
    ledger = rl.empty_ledger('quiz')
    for number in range(count):
        ledger = deploy_and_activate(ledger, '1.%d.0' % number, {'api': 'api:1.%d.0' % number},
                                     '2026-11-27T10:%02d:00Z' % number)
    return ledger


def test_prunable_keeps_the_newest_and_never_active_nor_previous_good():
    ledger = build_history(5)
    assert rl.release_ids(ledger) == ['1.4.0', '1.3.0', '1.2.0', '1.1.0', '1.0.0']
    assert rl.prunable(ledger, 2) == ['1.2.0', '1.1.0', '1.0.0']
    assert rl.prunable(ledger, 5) == []
    # Roll back to 1.3.0, then deploy a new release that fails: the active and
    # the previous good releases stay protected even beyond keep.
    ledger = step(ledger, 'active', '1.3.0', now='2026-11-27T11:00:00Z')[0]
    for number in range(5, 8):
        ledger = step(ledger, 'deploying', '1.%d.0' % number, {'api': 'x'}, now='2026-11-27T11:0%d:00Z' % number)[0]
        ledger = step(ledger, 'failed', '1.%d.0' % number, reason='gate', now='2026-11-27T11:0%d:30Z' % number)[0]
    assert rl.active_entry(ledger)['id'] == '1.3.0'
    assert rl.previous_good(ledger)['id'] == '1.4.0'
    assert rl.release_ids(ledger)[:3] == ['1.7.0', '1.6.0', '1.5.0']
    assert rl.prunable(ledger, 1) == ['1.6.0', '1.5.0', '1.2.0', '1.1.0', '1.0.0']
    pruned, info = step(ledger, 'absent', keep=1)
    assert info['removed'] == ['1.6.0', '1.5.0', '1.2.0', '1.1.0', '1.0.0']
    assert rl.release_ids(pruned) == ['1.7.0', '1.4.0', '1.3.0']
    assert rl.prunable(pruned, 1) == []
    assert set(pruned['colours'].values()) <= set(rl.release_ids(pruned))


def test_previous_good_breaks_timestamp_ties_by_deploy_order():
    ledger = rl.empty_ledger('quiz')
    for release in ('a', 'b', 'c'):
        ledger = deploy_and_activate(ledger, release, {'api': release}, '2026-11-27T10:00:00Z')
    assert rl.previous_good(ledger)['id'] == 'b'


def test_facts():
    ledger = build_history(3)
    facts = rl.facts(ledger, '1.1.0', keep=1)
    assert facts['active']['id'] == '1.2.0'
    assert facts['previous_good']['id'] == '1.1.0'
    assert facts['colour'] == 'green'
    assert facts['idle_colour'] == 'green'
    assert facts['releases'] == ['1.2.0', '1.1.0', '1.0.0']
    assert facts['prunable'] == ['1.0.0']
    assert rl.facts(ledger)['prunable'] == []
    assert rl.facts(ledger)['colour'] is None
    empty = rl.facts(rl.empty_ledger('quiz'))
    assert (empty['active'], empty['previous_good'], empty['idle_colour'], empty['releases']) == (None, None, 'blue', [])


def test_facts_name_the_compose_project_of_each_release():
    ledger = build_history(3)
    facts = rl.facts(ledger, '1.1.0')
    assert facts['project'] == 'quiz_1-1-0_green'
    assert facts['projects'] == {'1.2.0': 'quiz_1-2-0_blue', '1.1.0': 'quiz_1-1-0_green', '1.0.0': 'quiz_1-0-0_blue'}
    assert rl.facts(ledger)['project'] is None


@pytest.mark.parametrize('release, expected', [
    ('1.1.0', '1-1-0'), ('1-1-0', '1-1-0'), ('1_1_0', '1-1-0'), ('1.1.0+Build.7', '1-1-0-build-7'), ('RC1', 'rc1'),
])
def test_slug_keeps_lowercase_letters_digits_and_dashes_only(release, expected):
    assert rl.slug(release) == expected
    assert '_' not in rl.slug(release)


def test_project_names_split_back_into_workload_release_and_colour():
    # The bug this guards against: quiz + release 1_0-0 and quiz_1 + release 0-0
    # gave one name, quiz_1_0-0_blue, when slugs could hold '_'.
    names = {}
    for workload in ('quiz', 'quiz_1', 'admin-quiz', 'quiz-admin', 'a_b_c'):
        for release in ('1.0.0', '1_0-0', '0-0', '0.0', '2026_01_15', 'v1'):
            for colour in rl.COLOURS:
                name = rl.project_name(workload, release, colour)
                assert name.rsplit('_', 2) == [workload, rl.slug(release), colour]
                key = (workload, rl.slug(release), colour)
                assert names.setdefault(name, key) == key, (name, key)
    assert rl.project_name('Quiz.app', '1.0.0', 'blue') is None


def test_a_release_whose_project_names_another_release_has_is_refused():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.1.0', V1, '2026-11-27T10:00:00Z')
    for clash in ('1-1-0', '1_1_0', '1+1+0', '1.1-0'):
        with pytest.raises(rl.LedgerError) as info:
            step(ledger, 'deploying', clash, V2)
        message = str(info.value)
        assert 'release %s would share its Compose project names (quiz_1-1-0_<colour>) with release 1.1.0' % clash \
            in message
        assert 'Deploy it under another id, or remove 1.1.0 from the ledger first' in message
    # The release itself, again, is no clash; nor is a distinct id.
    assert step(ledger, 'deploying', '1.1.0', V1)[1]['noop'] is True
    assert step(ledger, 'deploying', '1.1.1', V2)[0]['colours'] == {'blue': '1.1.0', 'green': '1.1.1'}
    # Once 1.1.0 is gone from the ledger (pruned with its projects), the id is free.
    ledger = step(step(ledger, 'deploying', '1.2.0', V2)[0], 'active', '1.2.0')[0]
    ledger = step(ledger, 'absent', '1.1.0')[0]
    assert rl.find(step(ledger, 'deploying', '1-1-0', V1)[0], '1-1-0')['state'] == 'deploying'


def test_reason_is_stored_masked_and_bounded():
    ledger = step(rl.empty_ledger('quiz'), 'deploying', '1.0.0', V1)[0]
    output = 'connecting\n' + 'x' * 3000 + '\nFATAL: could not connect to postgresql://quiz:s3cret-pw@db:5432/quiz\n'
    new = step(ledger, 'failed', '1.0.0', reason='Run the migrations: exit 3 ... ' + output)[0]
    reason = entry(new, '1.0.0')['reason']
    assert 's3cret-pw' not in reason
    assert reason.endswith('could not connect to postgresql://quiz:<redacted:url-password>@db:5432/quiz')
    assert len(reason) <= rl.REASON_MAX and reason.startswith('... ')
    # The same reason again is no change: it is compared once cleaned.
    again, _info = step(new, 'failed', '1.0.0', reason='Run the migrations: exit 3 ... ' + output)
    assert again == new


# --------------------------------------------------------------------------
# File side
# --------------------------------------------------------------------------

def test_write_creates_parents_and_modes_and_load_reads_back(tmp_path):
    path = str(tmp_path / 'var' / 'lib' / 'releases' / 'quiz.json')
    old = os.umask(0o077)
    try:
        ledger = build_history(2)
        rl.write_atomic(path, ledger)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for directory in ('var', 'var/lib', 'var/lib/releases'):
        assert stat.S_IMODE(os.stat(str(tmp_path / directory)).st_mode) == 0o755
    assert os.listdir(os.path.dirname(path)) == ['quiz.json']
    loaded, existed = rl.load(path, 'quiz')
    assert existed is True
    assert loaded == ledger
    with open(path) as handle:
        assert json.load(handle) == ledger


def test_missing_file_is_an_empty_ledger(tmp_path):
    assert rl.load(str(tmp_path / 'none.json'), 'quiz') == (rl.empty_ledger('quiz'), False)


@pytest.mark.parametrize('content, message', [
    ('', 'the file is empty'),
    ('{"version": 1, "workload": "quiz", "releases": [', 'not valid JSON'),
    (b'\xff\xfe', 'not UTF-8 text'),
    ('[]', 'the top level is a list, not an object'),
    ('{"version": "1", "workload": "quiz", "releases": []}', '"version" is \'1\', expected 1'),
    ('{"version": 1, "releases": []}', '"workload" is missing or not a string'),
    ('{"version": 1, "workload": "quiz", "releases": {}}', '"releases" is missing or not a list'),
    ('{"version": 1, "workload": "quiz", "releases": [{"id": "a", "colour": "red"}]}',
     'releases[0] (a): "colour" is \'red\', expected one of the configured colours blue, green'),
    ('{"version": 1, "workload": "quiz", "releases": [{"id": "a", "colour": "blue", "state": "gone"}]}',
     'releases[0] (a): "state" is \'gone\''),
])
def test_corrupt_ledger_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / 'quiz.json'
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(rl.LedgerError) as error:
        rl.load(str(path), 'quiz')
    text = str(error.value)
    assert text.startswith('release ledger %s is corrupt: ' % path)
    assert message in text
    assert 'never overwrites a ledger it cannot read' in text


def test_duplicate_ids_and_two_active_releases_are_corrupt(tmp_path):
    ledger = build_history(2)
    twice = json.loads(json.dumps(ledger))
    twice['releases'].append(dict(twice['releases'][0]))
    path = tmp_path / 'quiz.json'
    path.write_text(json.dumps(twice))
    with pytest.raises(rl.LedgerError, match='release id 1.1.0 appears twice'):
        rl.load(str(path), 'quiz')
    ledger['releases'][1]['state'] = 'active'
    path.write_text(json.dumps(ledger))
    with pytest.raises(rl.LedgerError, match=r'more than one release is active \(1.1.0, 1.0.0\)'):
        rl.load(str(path), 'quiz')


def test_newer_format_and_other_workload_are_refused(tmp_path):
    path = tmp_path / 'quiz.json'
    path.write_text('{"version": 2, "workload": "quiz", "releases": []}')
    with pytest.raises(rl.LedgerError, match='has format version 2; this aiquiz.ops reads version 1 only'):
        rl.load(str(path), 'quiz')
    path.write_text('{"version": 1, "workload": "shop", "releases": []}')
    with pytest.raises(rl.LedgerError, match="belongs to workload 'shop', not 'quiz'"):
        rl.load(str(path), 'quiz')


def test_lock_is_exclusive_and_times_out(tmp_path):
    path = str(tmp_path / 'quiz.json')
    with rl.locked(path, timeout=1):
        assert stat.S_IMODE(os.stat(path + '.lock').st_mode) == 0o600
        start = time.monotonic()
        with pytest.raises(rl.LedgerError, match='is locked by another process .* stayed locked for 0.3 s'):
            with rl.locked(path, timeout=0.3):
                pass
        assert time.monotonic() - start >= 0.3
    with rl.locked(path, timeout=0):
        pass


def test_lock_waits_for_the_holder(tmp_path):
    path = str(tmp_path / 'quiz.json')
    order = []
    held = threading.Event()

    def holder():
        with rl.locked(path, timeout=1):
            order.append('holder in')
            held.set()
            time.sleep(0.3)
            order.append('holder out')

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with rl.locked(path, timeout=5):
        order.append('waiter in')
    thread.join()
    assert order == ['holder in', 'holder out', 'waiter in']


@pytest.mark.parametrize('params, message', [
    ({'workload': 'quiz app'}, "workload must be 1-128 letters"),
    ({'release': '../x'}, "release must be 1-128 letters"),
    ({'keep': 0}, 'keep must be >= 1, got 0'),
    ({'state': 'deploying', 'images': {}}, 'images must name at least one service when state=deploying'),
    ({'images': {'api': ''}}, "images.api must be a non-empty image reference"),
    ({'path': 'quiz.json'}, "path must be an absolute path, got 'quiz.json'"),
    ({'lock_timeout': -1}, 'lock_timeout must be >= 0'),
    ({'colours': ['blue']}, 'colours must name at least two colours, got blue'),
    ({'colours': ['blue', 'blue', 'green']}, 'colours must be distinct, got blue, blue, green'),
    ({'colours': ['blue', 'Dark_Green']}, "colour 'Dark_Green' must be 1-32 lowercase letters"),
])
def test_validate_params(params, message):
    base = dict(path='/l.json', workload='quiz', release='1.0.0', images=None, state='query', keep=None,
                lock_timeout=30)
    base.update(params)
    errors = rl.validate_params(base)
    assert len(errors) == 1
    assert errors[0].startswith(message)


# --------------------------------------------------------------------------
# Three colours: a deploy never takes the previous good release's colour


def test_three_deploys_in_a_row_cycle_the_colours():
    ledger = rl.empty_ledger('quiz')
    colours = []
    for minute, (release, images) in enumerate((('1.0.0', V1), ('1.1.0', V2), ('1.2.0', V3),
                                                ('1.3.0', V1), ('1.4.0', V2))):
        ledger = deploy_and_activate(ledger, release, images, '2026-11-27T10:0%d:00Z' % minute, THREE)
        colours.append(entry(ledger, release)['colour'])
    assert colours == ['blue', 'green', 'amber', 'blue', 'green']
    assert ledger['colours'] == {'blue': '1.3.0', 'green': '1.4.0', 'amber': '1.2.0'}
    assert rl.previous_good(ledger)['id'] == '1.3.0'
    assert rl.idle_colour(ledger, THREE) == 'amber'


def test_deploy_after_a_failed_deploy_keeps_the_previous_good_colour():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z', THREE)
    ledger = deploy_and_activate(ledger, '1.1.0', V2, '2026-11-27T10:01:00Z', THREE)
    assert (rl.active_entry(ledger)['colour'], rl.previous_good(ledger)['colour']) == ('green', 'blue')
    # The failing release goes to the third colour, not onto 1.0.0's kept containers.
    ledger = step(ledger, 'deploying', '1.2.0', V3, now='2026-11-27T10:02:00Z', colours=THREE)[0]
    assert entry(ledger, '1.2.0')['colour'] == 'amber'
    ledger = step(ledger, 'failed', '1.2.0', reason='/readyz 503', now='2026-11-27T10:03:00Z', colours=THREE)[0]
    assert ledger['colours'] == {'blue': '1.0.0', 'green': '1.1.0', 'amber': '1.2.0'}
    # The next one too, failed or not: blue stays 1.0.0's.
    ledger = step(ledger, 'deploying', '1.3.0', V1, now='2026-11-27T10:04:00Z', colours=THREE)[0]
    assert entry(ledger, '1.3.0')['colour'] == 'amber'
    ledger = step(ledger, 'failed', '1.3.0', reason='canary', now='2026-11-27T10:05:00Z', colours=THREE)[0]
    assert ledger['colours']['blue'] == '1.0.0'
    # So the rollback to the previous good one can start its kept containers.
    good = rl.previous_good(ledger)
    assert (good['id'], good['colour']) == ('1.0.0', 'blue')
    ledger = step(ledger, 'active', '1.0.0', reason='rollback', now='2026-11-27T10:06:00Z', colours=THREE)[0]
    assert rl.active_entry(ledger)['id'] == '1.0.0'
    assert rl.previous_good(ledger)['id'] == '1.1.0'


def test_with_two_colours_a_deploy_after_a_failed_one_takes_the_previous_good_colour():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    ledger = deploy_and_activate(ledger, '1.1.0', V2, '2026-11-27T10:01:00Z')
    ledger = step(ledger, 'deploying', '1.2.0', V3, now='2026-11-27T10:02:00Z')[0]
    assert entry(ledger, '1.2.0')['colour'] == 'blue'
    assert ledger['colours'] == {'blue': '1.2.0', 'green': '1.1.0'}
    with pytest.raises(rl.LedgerError, match='release 1.0.0 last ran on blue, where release 1.2.0'):
        step(ledger, 'active', '1.0.0')


def test_a_release_kept_on_its_colour_is_deployed_again_there():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z', THREE)
    ledger = deploy_and_activate(ledger, '1.1.0', V2, '2026-11-27T10:01:00Z', THREE)
    # 1.0.0 is the previous good one, its containers on blue: it goes back there, not to amber.
    ledger = step(ledger, 'deploying', '1.0.0', V1, now='2026-11-27T10:02:00Z', colours=THREE)[0]
    assert entry(ledger, '1.0.0')['colour'] == 'blue'
    assert ledger['colours'] == {'blue': '1.0.0', 'green': '1.1.0'}
    # A failed release kept on amber also goes back to amber.
    ledger = step(ledger, 'standby', '1.0.0', now='2026-11-27T10:03:00Z', colours=THREE)[0]
    ledger = step(ledger, 'deploying', '1.2.0', V3, now='2026-11-27T10:04:00Z', colours=THREE)[0]
    ledger = step(ledger, 'failed', '1.2.0', reason='gate', now='2026-11-27T10:05:00Z', colours=THREE)[0]
    assert step(ledger, 'deploying', '1.2.0', V3, colours=THREE)[0]['colours']['amber'] == '1.2.0'


def test_a_release_whose_containers_are_gone_takes_a_free_colour():
    ledger = rl.empty_ledger('quiz')
    for minute, (release, images) in enumerate((('1.0.0', V1), ('1.1.0', V2), ('1.2.0', V3), ('1.3.0', V1))):
        ledger = deploy_and_activate(ledger, release, images, '2026-11-27T10:0%d:00Z' % minute, THREE)
    # 1.3.0 took blue from 1.0.0; 1.2.0 (amber) is the previous good one.
    ledger = step(ledger, 'deploying', '1.0.0', V1, now='2026-11-27T10:09:00Z', colours=THREE)[0]
    assert entry(ledger, '1.0.0')['colour'] == 'green'


def test_four_colours_take_turns():
    colours = ['blue', 'green', 'amber', 'violet']
    ledger = rl.empty_ledger('quiz')
    seen = []
    for minute in range(6):
        release = '1.%d.0' % minute
        ledger = deploy_and_activate(ledger, release, V1, '2026-11-27T10:0%d:00Z' % minute, colours)
        seen.append(entry(ledger, release)['colour'])
    assert seen == ['blue', 'green', 'amber', 'violet', 'blue', 'green']


def test_a_two_colour_ledger_loads_with_three_colours_and_goes_on(tmp_path):
    path = str(tmp_path / 'quiz.json')
    old = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z')
    old = deploy_and_activate(old, '1.1.0', V2, '2026-11-27T10:01:00Z')
    rl.write_atomic(path, old)
    ledger, existed = rl.load(path, 'quiz', THREE)
    assert existed and ledger == old
    assert rl.idle_colour(ledger, THREE) == 'amber'
    ledger = deploy_and_activate(ledger, '1.2.0', V3, '2026-11-27T10:02:00Z', THREE)
    assert entry(ledger, '1.2.0')['colour'] == 'amber'
    assert ledger['colours'] == {'blue': '1.0.0', 'green': '1.1.0', 'amber': '1.2.0'}
    rl.write_atomic(path, ledger)
    assert rl.load(path, 'quiz', THREE)[0] == ledger


def test_a_colour_taken_out_of_the_configuration_is_named(tmp_path):
    path = str(tmp_path / 'quiz.json')
    ledger = rl.empty_ledger('quiz')
    for minute, release in enumerate(('1.0.0', '1.1.0', '1.2.0')):
        ledger = deploy_and_activate(ledger, release, V1, '2026-11-27T10:0%d:00Z' % minute, THREE)
    rl.write_atomic(path, ledger)
    with pytest.raises(rl.LedgerError, match=r'"colour" is .amber., expected one of the configured colours blue, '
                                             r'green \(a colour taken out'):
        rl.load(path, 'quiz')
    assert rl.load(path, 'quiz', ['blue', 'green', 'amber', 'violet'])[0] == ledger


def test_facts_name_the_next_colour_with_three_colours():
    ledger = deploy_and_activate(rl.empty_ledger('quiz'), '1.0.0', V1, '2026-11-27T10:00:00Z', THREE)
    ledger = deploy_and_activate(ledger, '1.1.0', V2, '2026-11-27T10:01:00Z', THREE)
    assert rl.facts(ledger, colours=THREE)['idle_colour'] == 'amber'
    assert rl.facts(ledger)['idle_colour'] == 'blue'
