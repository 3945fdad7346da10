# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import grp
import json
import os
import pwd

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.modules import file_set

ME = pwd.getpwuid(os.getuid())[0]
MY_GROUP = grp.getgrgid(os.getgid())[0]


def call(capsys, check_mode=False, diff=False, **args):
    args.setdefault('owner', ME)
    args.setdefault('group', MY_GROUP)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            file_set.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def mode(path):
    return oct(os.stat(path).st_mode & 0o7777)


def test_new_files_are_written_with_their_modes_and_a_second_run_changes_nothing(capsys, tmp_path):
    files = [{'path': str(tmp_path / 'a.service'), 'content': '[Unit]\nDescription=a\n'},
             {'path': str(tmp_path / 'b.timer'), 'content': '[Timer]\nOnCalendar=daily\n', 'mode': '0600'}]
    code, result = call(capsys, files=files)
    assert code == 0 and result['changed'] is True
    assert result['changed_paths'] == [f['path'] for f in files]
    assert (tmp_path / 'a.service').read_text() == '[Unit]\nDescription=a\n'
    assert mode(tmp_path / 'a.service') == '0o644' and mode(tmp_path / 'b.timer') == '0o600'
    code, result = call(capsys, files=files)
    assert code == 0 and result['changed'] is False and result['changed_paths'] == []


def test_only_what_differs_is_rewritten_and_a_loosened_mode_is_put_back(capsys, tmp_path):
    same, edited, loosened = (tmp_path / 'same'), (tmp_path / 'edited'), (tmp_path / 'loosened')
    for path in (same, edited, loosened):
        path.write_text('x\n')
        path.chmod(0o644)
    edited.write_text('edited by hand\n')
    loosened.chmod(0o666)
    inode = same.stat().st_ino
    files = [{'path': str(p), 'content': 'x\n'} for p in (same, edited, loosened)]
    code, result = call(capsys, files=files, diff=True)
    assert code == 0 and result['changed_paths'] == [str(edited), str(loosened)]
    assert edited.read_text() == 'x\n' and mode(loosened) == '0o644'
    assert same.stat().st_ino == inode  # untouched, not rewritten
    content_diff = [d for d in result['diff'] if d.get('before') == 'edited by hand\n']
    assert content_diff and content_diff[0]['after'] == 'x\n'
    assert {'before': {'path': str(loosened), 'mode': '0666'}, 'after': {'path': str(loosened), 'mode': '0644'}} \
        in result['diff']


def test_check_mode_reports_the_changes_and_writes_nothing(capsys, tmp_path):
    old = tmp_path / 'old'
    old.write_text('before\n')
    files = [{'path': str(old), 'content': 'after\n'}, {'path': str(tmp_path / 'new'), 'content': 'new\n'}]
    code, result = call(capsys, check_mode=True, diff=True, files=files)
    assert code == 0 and result['changed'] is True
    assert result['changed_paths'] == [str(old), str(tmp_path / 'new')]
    assert old.read_text() == 'before\n' and not (tmp_path / 'new').exists()
    assert {'before_header': str(old), 'after_header': str(old), 'before': 'before\n', 'after': 'after\n'} \
        in result['diff']


def test_a_file_is_replaced_whole_never_written_in_place(capsys, tmp_path):
    # A reader holding the old file keeps reading the old content: the new one is moved into place.
    path = tmp_path / 'unit'
    path.write_text('old\n')
    with open(path, encoding='utf-8') as reader:
        call(capsys, files=[{'path': str(path), 'content': 'new\n'}])
        assert reader.read() == 'old\n'
    assert path.read_text() == 'new\n'
    assert [p.name for p in tmp_path.iterdir()] == ['unit']  # no temporary file left


@pytest.mark.parametrize('files, message', [
    ([{'path': 'relative/unit', 'content': ''}], "files[0].path must be absolute, got 'relative/unit'"),
    ([{'path': '/tmp/x', 'content': ''}, {'path': '/tmp/x', 'content': ''}], 'files[1].path /tmp/x is named twice'),
    ([{'path': '/tmp/x', 'content': '', 'mode': 'rw-r--r--'}], "files[0].mode must be an octal string"),
])
def test_bad_arguments_are_refused_naming_the_file(capsys, files, message):
    code, result = call(capsys, files=files)
    assert code == 1 and message in result['msg']


def test_a_missing_directory_is_named(capsys, tmp_path):
    code, result = call(capsys, files=[{'path': str(tmp_path / 'none' / 'unit'), 'content': ''}])
    assert code == 1 and result['msg'] == 'the directory of %s does not exist' % (tmp_path / 'none' / 'unit')
