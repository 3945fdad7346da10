#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: file_set
short_description: Write a set of files with their contents, owners and modes in one round trip
version_added: 0.1.0
description:
  - Makes each file of O(files) hold its content, owner, group and mode. A file whose content differs is written
    whole to a temporary file in the same directory and moved into place (readers never see half a file); a file
    whose owner, group or mode differs only has those set. Files that already match are not touched.
  - What this does that M(ansible.builtin.copy) or M(ansible.builtin.template) in a loop do not is one module call
    for the whole set instead of two or three per file (a remote stat, then the copy or the file module). The
    backup role writes its systemd units and the code its host script shares with the modules this way; a set of
    ten files costs one round trip instead of twenty or thirty.
  - Render templates on the controller (C(lookup('ansible.builtin.template', ...))) and pass their text as
    O(files[].content).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Says which files would change, and how, without writing.
  diff_mode:
    support: full
    details: A diff of each changed file's content, and one of its owner, group and mode when they change.
  platform:
    support: full
    platforms: posix
options:
  files:
    description: The files, each with its absolute path and content.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file. Its directory must exist.
        type: path
        required: true
      content:
        description: The whole text of the file.
        type: str
        required: true
      owner:
        description: Owner of the file; defaults to O(owner).
        type: str
      group:
        description: Group of the file; defaults to O(group).
        type: str
      mode:
        description: Mode of the file as an octal string (C('0644')); defaults to O(mode).
        type: str
  owner:
    description: Owner of every file that does not name its own.
    type: str
    default: root
  group:
    description: Group of every file that does not name its own.
    type: str
    default: root
  mode:
    description: Mode of every file that does not name its own, as an octal string.
    type: str
    default: '0644'
notes:
  - Not for secrets - the content travels in the task's arguments and shows in the diff; write a secret with
    M(ansible.builtin.copy) and C(no_log).
  - Files this module wrote once and that are no longer in O(files) are left in place; remove them with
    M(ansible.builtin.file).
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: The units of two jobs, in one task
  aiquiz.ops.file_set:
    files:
      - path: /etc/systemd/system/report.service
        content: "{{ lookup('ansible.builtin.template', 'report.service.j2') }}"
      - path: /etc/systemd/system/report.timer
        content: "{{ lookup('ansible.builtin.template', 'report.timer.j2') }}"
  notify: Reload systemd
"""

RETURN = r"""
changed_paths:
  description: The files written or whose owner, group or mode was set (would be, in check mode), in O(files) order.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/system/report.timer]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text


def argument_spec():
    return dict(
        files=dict(type='list', elements='dict', required=True, options=dict(
            path=dict(type='path', required=True),
            content=dict(type='str', required=True, no_log=False),
            owner=dict(type='str'),
            group=dict(type='str'),
            mode=dict(type='str'),
        )),
        owner=dict(type='str', default='root'),
        group=dict(type='str', default='root'),
        mode=dict(type='str', default='0644'),
    )


def check(params):
    """The errors of the parameters, each naming the file."""
    errors, seen = [], set()
    for index, entry in enumerate(params['files']):
        path = entry['path']
        if not os.path.isabs(path):
            errors.append('files[%d].path must be absolute, got %r' % (index, path))
        elif path in seen:
            errors.append('files[%d].path %s is named twice' % (index, path))
        seen.add(path)
        mode = entry['mode'] or params['mode']
        try:
            if not 0 <= int(mode, 8) <= 0o7777:
                raise ValueError(mode)
        except (TypeError, ValueError):
            errors.append('files[%d].mode must be an octal string such as 0644, got %r' % (index, mode))
    return errors


def read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write(module, path, data):
    directory = os.path.dirname(path)
    handle, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
    except Exception:
        os.unlink(temp)
        raise
    module.atomic_move(temp, path, unsafe_writes=False)


def run(module):
    params = module.params
    changed_paths, diffs = [], []
    for entry in params['files']:
        path = entry['path']
        if not os.path.isdir(os.path.dirname(path)):
            module.fail_json(msg='the directory of %s does not exist' % path, changed_paths=changed_paths)
        data = to_bytes(entry['content'], errors='surrogate_or_strict')
        before = read(path)
        if before != data:
            if not module.check_mode:
                write(module, path, data)
            diffs.append(dict(before_header=path, after_header=path,
                              before=to_text(before or b'', errors='surrogate_or_replace'), after=entry['content']))
        file_args = dict(path=path, owner=entry['owner'] or params['owner'], group=entry['group'] or params['group'],
                         mode=entry['mode'] or params['mode'], secontext=[None, None, None], attributes=None)
        # Sets (or, in check mode, compares) owner, group and mode; a file that check mode did not create has none.
        attributes = dict(before=dict(path=path), after=dict(path=path))
        attributes_changed = False
        if before is not None or not module.check_mode:
            attributes_changed = module.set_fs_attributes_if_different(file_args, False, diff=attributes)
        if attributes_changed and before is not None:
            diffs.append(attributes)
        if before != data or attributes_changed:
            changed_paths.append(path)
    return changed_paths, diffs


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    errors = check(module.params)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    changed_paths, diffs = run(module)
    result = dict(changed=bool(changed_paths), changed_paths=changed_paths)
    if module._diff:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
