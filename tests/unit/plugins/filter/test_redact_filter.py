# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.redact import FilterModule, redact
from ansible_collections.aiquiz.ops.plugins.module_utils._release import NAME_RE
from ansible_collections.aiquiz.ops.plugins.test import release as release_tests
from ansible_collections.aiquiz.ops.plugins.test.release import compose_name, release_id


def test_filter_masks_urls_and_the_secrets_it_is_given():
    secrets = {'QUIZ_DATABASE_URL': 'postgresql://quiz:pw-1234@db/quiz', 'TOKEN': 'tok-5678'}
    text = 'connecting to postgresql://quiz:pw-1234@db/quiz with tok-5678'
    assert redact(text) == 'connecting to postgresql://quiz:<redacted:url-password>@db/quiz with tok-5678'
    assert redact(text, secrets) == 'connecting to postgresql://quiz:<redacted:url-password>@db/quiz with <redacted:secret>'
    assert redact(text, ['tok-5678']) == 'connecting to postgresql://quiz:<redacted:url-password>@db/quiz with <redacted:secret>'
    assert redact(text, 'tok-5678', 29) == '... iz with <redacted:secret>'
    assert FilterModule().filters() == {'redact': redact}


@pytest.mark.parametrize('limit', [0, -1, 'many'])
def test_filter_refuses_a_bad_limit(limit):
    with pytest.raises(AnsibleFilterError, match='redact: limit must be'):
        redact('x', None, limit)


@pytest.mark.parametrize('value, expected', [
    ('1.1.0', True), ('1.1.0+build.7', True), ('v1_2-rc1', True), ('A' * 128, True),
    ('A' * 129, False), ('.1', False), ('-1', False), ('1 1', False), ('1/1', False), ('', False), (110, False),
])
def test_release_id_is_the_ledger_rule(value, expected):
    assert release_id(value) is expected
    if isinstance(value, str):
        assert bool(NAME_RE.match(value)) is expected


@pytest.mark.parametrize('value, expected', [
    ('quiz', True), ('admin-quiz', True), ('quiz_1', True), ('Quiz', False), ('quiz.app', False), ('_quiz', False),
])
def test_compose_name(value, expected):
    assert compose_name(value) is expected
    assert release_tests.TestModule().tests()['compose_name'] is compose_name
