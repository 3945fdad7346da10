# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter redact: credentials masked in a program's output before it reaches a
message, a file or the audit trail. Its documentation is in redact.yml beside
this file; the masking itself is module_utils/_redact.py, shared with the
modules."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils import _redact


def redact(text, secrets=None, limit=None):
    """text with credentials masked; with limit, a one-paragraph summary of at most limit characters (its end)."""
    if secrets is None:
        values = ()
    elif isinstance(secrets, Mapping):
        values = list(secrets.values())
    elif isinstance(secrets, (list, tuple, set, frozenset)):
        values = list(secrets)
    else:
        values = [secrets]
    if limit is not None:
        try:
            limit = int(limit)
        except (TypeError, ValueError):
            raise AnsibleFilterError('redact: limit must be a whole number of characters, got %r' % (limit,))
        if limit < 1:
            raise AnsibleFilterError('redact: limit must be 1 or more, got %d' % limit)
        return _redact.summary(text, limit, values)
    return _redact.redact(text, values)


class FilterModule:

    def filters(self):
        return {'redact': redact}
