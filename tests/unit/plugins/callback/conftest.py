# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the callback tests."""

from __future__ import annotations

import pytest

from audit_driver import Trail


@pytest.fixture
def trail(tmp_path):
    """A factory of in-process runs of the callback, writing under tmp_path/audit."""
    def make(**kwargs):
        return Trail(tmp_path / 'audit', **kwargs)
    return make
