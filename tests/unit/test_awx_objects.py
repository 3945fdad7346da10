# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX objects as code (playbooks/vars/awx.yml, playbooks/awx.yml) agree with the
collection and with the awx.awx modules that create them.

- every survey question asks a variable of its playbook or of a role that playbook runs, and
  where a role's argument spec declares it, the question's type and choices agree with it;
- every job template's playbook exists, and the workflow names only defined templates;
- what playbooks/awx.yml passes to awx.awx.job_template and workflow_job_template (the filters'
  output included) are options those modules document;
- the filters refuse bad definitions, naming what is wrong.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.awx import awx_survey_spec, awx_workflow_nodes

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DEFS = yaml.safe_load(open(os.path.join(ROOT, 'playbooks', 'vars', 'awx.yml'), encoding='utf-8'))
TEMPLATES = DEFS['awx_job_templates']
TYPES = {'text': ('str',), 'textarea': ('str',), 'password': ('str',), 'integer': ('int',), 'float': ('float', 'int'),
         'multiplechoice': ('str', 'bool'), 'multiselect': ('list',)}


def playbook_text_and_roles(path, seen=None):
    """The text of a playbook and of those it imports, and the roles they run."""
    seen = set() if seen is None else seen
    if path in seen:
        return '', set()
    seen.add(path)
    with open(path, encoding='utf-8') as fh:
        text = fh.read()
    roles = set(re.findall(r'aiquiz\.ops\.([a-z_]+)', text))
    for imported in re.findall(r'import_playbook:\s*(\S+)', text):
        more_text, more_roles = playbook_text_and_roles(os.path.join(os.path.dirname(path), imported), seen)
        text += more_text
        roles |= more_roles
    return text, {r for r in roles if os.path.isdir(os.path.join(ROOT, 'roles', r))}


def role_options(role):
    """Every option of every entry point of a role's argument spec: name -> spec."""
    path = os.path.join(ROOT, 'roles', role, 'meta', 'argument_specs.yml')
    with open(path, encoding='utf-8') as fh:
        specs = yaml.safe_load(fh)['argument_specs']
    options = {}
    for entry in specs.values():
        options.update(entry.get('options') or {})
    return options


def module_doc(name):
    """DOCUMENTATION of an awx.awx module, from the installed collection."""
    from ansible_collections.awx.awx.plugins import modules  # pylint: disable=import-outside-toplevel
    path = os.path.join(os.path.dirname(modules.__file__), name + '.py')
    with open(path, encoding='utf-8') as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'DOCUMENTATION':
            return yaml.safe_load(node.value.value)
    raise AssertionError('no DOCUMENTATION in awx.awx.%s' % name)


QUESTIONS = [(t['name'], q) for t in TEMPLATES for q in t.get('survey') or []]


@pytest.mark.parametrize('template', TEMPLATES, ids=[t['name'] for t in TEMPLATES])
def test_every_job_template_runs_a_playbook_of_the_collection_and_its_survey_is_valid(template):
    assert os.path.isfile(os.path.join(ROOT, template['playbook'])), template['playbook']
    spec = awx_survey_spec(template)
    assert [q['variable'] for q in spec['spec']] == [q['variable'] for q in template.get('survey') or []]


@pytest.mark.parametrize('template_name, question', QUESTIONS, ids=['%s:%s' % (t, q['variable']) for t, q in QUESTIONS])
def test_every_survey_variable_belongs_to_its_playbook_with_an_agreeing_type(template_name, question):
    template = next(t for t in TEMPLATES if t['name'] == template_name)
    text, roles = playbook_text_and_roles(os.path.join(ROOT, template['playbook']))
    variable = question['variable']
    declared = {role: role_options(role)[variable] for role in roles if variable in role_options(role)}
    if not declared:
        # A variable of the playbook itself: documented in its header and used in it.
        header = ''.join(line for line in text.splitlines(True) if line.startswith('#'))
        body = ''.join(line for line in text.splitlines(True) if not line.lstrip().startswith('#'))
        assert variable in header, '%s: %s is not documented in %s' % (template_name, variable, template['playbook'])
        assert re.search(r'\b%s\b' % re.escape(variable), body), '%s: %s is not used' % (template_name, variable)
        return
    for role, spec in declared.items():
        assert spec.get('type', 'str') in TYPES[question['type']], (role, variable, spec.get('type'), question['type'])
        if spec.get('choices'):
            assert question['type'] in ('multiplechoice', 'multiselect'), (role, variable)
            assert set(map(str, question['choices'])) <= set(map(str, spec['choices'])), (role, variable)
        if spec.get('required') and 'default' not in spec:
            assert question.get('required'), '%s: %s is required by %s' % (template_name, variable, role)


def test_survey_types_are_those_the_playbooks_read():
    """Values a survey hands over as text are read with the filters that accept text."""
    rotate = open(os.path.join(ROOT, 'playbooks', 'rotate-certs.yml'), encoding='utf-8').read()
    assert re.search(r'rotate_certs_force[^\n]*\|\s*bool', rotate), 'rotate_certs_force must be read with | bool'


def test_the_workflow_names_defined_templates_and_has_its_approvals():
    nodes = awx_workflow_nodes(DEFS['awx_workflow'], TEMPLATES, DEFS['awx_organization'])
    by_id = {n['identifier']: n for n in nodes}
    approvals = [n for n in nodes if n['unified_job_template']['type'] == 'workflow_approval']
    assert len(approvals) == 2
    assert by_id['preflight']['related']['success_nodes'] == [{'identifier': 'sign-off'}]
    assert by_id['canary']['limit'] == 'canary'
    assert by_id['canary']['related']['failure_nodes'] == [{'identifier': 'rollback'}]
    assert by_id['app']['limit'] == 'app:!canary'


def test_what_playbooks_awx_passes_is_documented_by_the_awx_modules():
    with open(os.path.join(ROOT, 'playbooks', 'awx.yml'), encoding='utf-8') as fh:
        plays = yaml.safe_load(fh)
    used = {}
    for task in plays[0]['tasks']:
        for key, args in task.items():
            if key.startswith('awx.awx.'):
                used[key.split('.')[-1]] = set(args)
    assert set(used) >= {'organization', 'project', 'inventory', 'inventory_source', 'credential', 'job_template',
                         'workflow_job_template', 'execution_environment'}
    for module, args in used.items():
        options = module_doc(module)['options']
        names = set(options) | {a for o in options.values() for a in o.get('aliases', [])}
        assert args <= names, (module, sorted(args - names))
    nodes_doc = module_doc('workflow_job_template')['options']['workflow_nodes']['suboptions']
    for node in awx_workflow_nodes(DEFS['awx_workflow'], TEMPLATES, DEFS['awx_organization']):
        assert set(node) <= set(nodes_doc), sorted(set(node) - set(nodes_doc))
        assert set(node['unified_job_template']) <= set(nodes_doc['unified_job_template']['suboptions'])
        assert set(node['related']) <= set(nodes_doc['related']['suboptions'])


def test_playbooks_awx_passes_a_syntax_check():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '--syntax-check',
                           '-i', 'localhost,', 'playbooks/awx.yml'], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize('question, message', [
    ({'variable': 'x', 'question_name': 'X', 'type': 'radio'}, "type 'radio' is not one of"),
    ({'variable': 'x', 'question_name': 'X', 'type': 'multiplechoice'}, 'needs a list of choices'),
    ({'variable': 'x', 'question_name': 'X', 'type': 'multiplechoice', 'choices': ['a'], 'default': 'b'},
     "default 'b' is not one of the choices"),
    ({'variable': 'x', 'question_name': 'X', 'type': 'multiselect', 'choices': ['a'], 'default': 'a\nz'},
     'default z not among the choices'),
    ({'variable': 'x', 'question_name': 'X', 'type': 'integer', 'default': 'ten'}, "default 'ten' is not a number"),
    ({'variable': 'x', 'question_name': 'X', 'type': 'text', 'choices': ['a']}, 'choices are for'),
    ({'question_name': 'X', 'type': 'text'}, 'variable is required'),
    ({'variable': 'x', 'question_name': 'X', 'type': 'text', 'colour': 'red'}, 'unknown keys colour'),
])
def test_a_bad_survey_question_is_refused_naming_template_and_variable(question, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)) as err:
        awx_survey_spec({'name': 'jt', 'survey': [question]})
    assert "job template 'jt'" in str(err.value)


def test_a_variable_asked_twice_is_refused():
    question = {'variable': 'x', 'question_name': 'X', 'type': 'text'}
    with pytest.raises(AnsibleFilterError, match='variable x is asked twice'):
        awx_survey_spec({'name': 'jt', 'survey': [question, dict(question)]})


def test_a_survey_spec_as_awx_takes_it():
    spec = awx_survey_spec({'name': 'jt', 'description': 'd', 'survey': [
        {'variable': 's', 'question_name': 'S', 'type': 'multiselect', 'choices': ['a', 'b', 'c'], 'default': 'a\nc'},
        {'variable': 'n', 'question_name': 'N', 'type': 'integer', 'default': 3, 'min': 0, 'max': 9, 'required': True},
        {'variable': 'p', 'question_name': 'P', 'type': 'password'}]})
    assert spec == {'name': 'jt', 'description': 'd', 'spec': [
        {'variable': 's', 'question_name': 'S', 'question_description': '', 'type': 'multiselect', 'required': False,
         'choices': ['a', 'b', 'c'], 'default': 'a\nc'},
        {'variable': 'n', 'question_name': 'N', 'question_description': '', 'type': 'integer', 'required': True,
         'default': 3, 'min': 0, 'max': 9},
        {'variable': 'p', 'question_name': 'P', 'question_description': '', 'type': 'password', 'required': False,
         'default': ''}]}


@pytest.mark.parametrize('nodes, message', [
    ([{'identifier': 'a', 'job_template': 'jt', 'success': ['b']}], 'success leads to unknown nodes b'),
    ([{'identifier': 'a', 'job_template': 'nope'}], "job template 'nope' is not defined"),
    ([{'identifier': 'a', 'job_template': 'jt', 'approval': 'ok?'}], 'set job_template or approval, one of them'),
    ([{'identifier': 'a', 'job_template': 'jt'}, {'identifier': 'a', 'job_template': 'jt'}], 'unique (a)'),
    ([{'identifier': 'a', 'job_template': 'jt', 'success': ['b']},
      {'identifier': 'b', 'approval': 'ok?', 'failure': ['a']}], 'the nodes form a cycle (a -> b -> a)'),
])
def test_a_bad_workflow_is_refused(nodes, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        awx_workflow_nodes({'name': 'wf', 'nodes': nodes}, [{'name': 'jt'}], 'org')
