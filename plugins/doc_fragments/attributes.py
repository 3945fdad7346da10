# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:

    # Attributes every aiquiz.ops module documents. Each module sets
    # `support` (and `details` where useful) for them in its own DOCUMENTATION.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Runs in check mode (C(--check)) and reports what it would change without changing the target.
  diff_mode:
    description: Returns a before/after diff of what it changes (or would change in check mode) when run with C(--diff).
  platform:
    description: The target operating systems it can run against.
    support: N/A
"""
