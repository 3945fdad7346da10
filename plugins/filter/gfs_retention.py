# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter gfs_retention: which backups a grandfather-father-son policy keeps.

Its documentation is in gfs_retention.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.module_utils._backup_gfs import RetentionError, plan


def gfs_retention(backups, daily=7, weekly=4, monthly=12, yearly=1, time_key='ended', id_key='id'):
    """{keep, delete, reasons} of the backups under the policy."""
    try:
        return plan(backups, daily, weekly, monthly, yearly, time_key=time_key, id_key=id_key)
    except RetentionError as exc:
        raise AnsibleFilterError('gfs_retention: %s' % exc)


class FilterModule:

    def filters(self):
        return {'gfs_retention': gfs_retention}
