# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: module_utils_source
short_description: The source of the collection's own module_utils files, for scripts that run on hosts
version_added: 0.2.0
author:
  - aiquiz.ops maintainers (!UNKNOWN)
description:
  - Returns the text of each named file of this collection's C(plugins/module_utils/), so that a role can install a
    host-side script together with the code it shares with the modules (the backup catalogue, retention and file
    helpers run by C(aiquiz-backup) and C(aiquiz-restore)) from the one copy the modules use.
  - Unlike M(ansible.builtin.file), it finds the file wherever the collection is installed, with no path that climbs
    out of a role (C(role_path/../../plugins)), which breaks when a role is used outside its collection.
  - Only this collection's files are served; a name with a path separator or a dot is refused.
options:
  _terms:
    description: Names of module_utils files, without C(.py) (C(_files), C(_backup_gfs)).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The catalogue code the host script imports
  ansible.builtin.copy:
    content: "{{ lookup('aiquiz.ops.module_utils_source', '_backup_catalogue') }}"
    dest: /usr/local/lib/aiquiz-backup/_backup_catalogue.py
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: The text of each file, in the order of the names.
  type: list
  elements: str
"""

import os
import re

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

NAME = re.compile(r'^_?[a-z][a-z0-9_]*$')
MODULE_UTILS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'module_utils')


def source(name):
    """Text of plugins/module_utils/<name>.py of this collection."""
    if not isinstance(name, str) or not NAME.match(name):
        raise AnsibleLookupError('module_utils_source: %r is not the name of a module_utils file (like _files)' % (name,))
    path = os.path.join(MODULE_UTILS, name + '.py')
    try:
        with open(path, encoding='utf-8') as handle:
            return handle.read()
    except OSError as exc:
        raise AnsibleLookupError('module_utils_source: cannot read %s: %s' % (path, exc.strerror))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [source(term) for term in terms]
