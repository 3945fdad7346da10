# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests release_id and compose_name: the rules of the release ledger
(module_utils/_release.py), for roles to check their variables before any
change with the very rules the aiquiz.ops.release module applies. Their
documentation is in release_id.yml and compose_name.yml beside this file."""

from __future__ import annotations

from ansible_collections.aiquiz.ops.plugins.module_utils._release import COMPOSE_NAME_RE, NAME_RE


def release_id(value):
    """True for a release id (or workload name) the release ledger accepts."""
    return isinstance(value, str) and NAME_RE.match(value) is not None


def compose_name(value):
    """True for a workload name that can head a Compose project name."""
    return isinstance(value, str) and COMPOSE_NAME_RE.match(value) is not None


class TestModule:

    def tests(self):
        return {'release_id': release_id, 'compose_name': compose_name}
