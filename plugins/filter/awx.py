# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters awx_survey_spec and awx_workflow_nodes: the AWX objects of playbooks/vars/awx.yml as
the awx.awx modules take them, with the definitions checked first.

Their documentation is in awx_survey_spec.yml and awx_workflow_nodes.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

QUESTION_TYPES = ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')
QUESTION_KEYS = ('variable', 'question_name', 'question_description', 'type', 'required', 'default', 'choices',
                 'min', 'max')


def _question(template, question):
    where = 'job template %r, survey question %r' % (template, question.get('variable', '?'))
    unknown = sorted(set(question) - set(QUESTION_KEYS))
    if unknown:
        raise AnsibleFilterError('%s: unknown keys %s' % (where, ', '.join(unknown)))
    for key in ('variable', 'question_name', 'type'):
        if not question.get(key):
            raise AnsibleFilterError('%s: %s is required' % (where, key))
    kind = question['type']
    if kind not in QUESTION_TYPES:
        raise AnsibleFilterError('%s: type %r is not one of %s' % (where, kind, ', '.join(QUESTION_TYPES)))
    out = {'variable': question['variable'], 'question_name': question['question_name'],
           'question_description': question.get('question_description', ''), 'type': kind,
           'required': bool(question.get('required', False))}
    choices = question.get('choices')
    if kind in ('multiplechoice', 'multiselect'):
        if not choices or not isinstance(choices, list):
            raise AnsibleFilterError('%s: a %s question needs a list of choices' % (where, kind))
        out['choices'] = [str(c) for c in choices]
    elif choices:
        raise AnsibleFilterError('%s: choices are for multiplechoice and multiselect questions only' % where)
    if 'default' in question:
        default = question['default']
        if kind == 'multiselect':
            picked = [p for p in str(default).split('\n') if p]
            stray = [p for p in picked if p not in out['choices']]
            if stray:
                raise AnsibleFilterError('%s: default %s not among the choices' % (where, ', '.join(stray)))
            out['default'] = '\n'.join(picked)
        elif kind == 'multiplechoice':
            if str(default) not in out['choices']:
                raise AnsibleFilterError('%s: default %r is not one of the choices' % (where, default))
            out['default'] = str(default)
        elif kind in ('integer', 'float'):
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                raise AnsibleFilterError('%s: default %r is not a number' % (where, default))
            out['default'] = default
        else:
            out['default'] = '' if default is None else str(default)
    elif kind == 'password':
        out['default'] = ''
    for bound in ('min', 'max'):
        if bound in question:
            out[bound] = int(question[bound])
    return out


def awx_survey_spec(template):
    """{name, description, spec} for awx.awx.job_template's survey_spec, from a template definition."""
    if not isinstance(template, dict) or not template.get('name'):
        raise AnsibleFilterError('awx_survey_spec: expected a job template definition with a name')
    questions = template.get('survey') or []
    spec = [_question(template['name'], q) for q in questions]
    seen = set()
    for question in spec:
        if question['variable'] in seen:
            raise AnsibleFilterError('job template %r: variable %s is asked twice'
                                     % (template['name'], question['variable']))
        seen.add(question['variable'])
    return {'name': template['name'], 'description': template.get('description', ''), 'spec': spec}


def awx_workflow_nodes(workflow, templates, organization):
    """workflow_nodes for awx.awx.workflow_job_template, from the workflow definition; every
    job template named must be among `templates`, every link must name a node, no cycle."""
    nodes = workflow.get('nodes') if isinstance(workflow, dict) else None
    if not nodes:
        raise AnsibleFilterError('awx_workflow_nodes: the workflow has no nodes')
    names = {t.get('name') for t in templates or []}
    ids = [n.get('identifier') for n in nodes]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes or None in ids:
        raise AnsibleFilterError('workflow %r: node identifiers must be set and unique (%s)'
                                 % (workflow.get('name'), ', '.join(map(str, dupes)) or 'one is missing'))
    out = []
    for node in nodes:
        where = 'workflow %r, node %r' % (workflow.get('name'), node['identifier'])
        if bool(node.get('job_template')) == bool(node.get('approval')):
            raise AnsibleFilterError('%s: set job_template or approval, one of them' % where)
        related = {}
        for kind in ('success', 'failure', 'always'):
            targets = node.get(kind) or []
            missing = [t for t in targets if t not in ids]
            if missing:
                raise AnsibleFilterError('%s: %s leads to unknown nodes %s' % (where, kind, ', '.join(missing)))
            if targets:
                related['%s_nodes' % kind] = [{'identifier': t} for t in targets]
        item = {'identifier': node['identifier'], 'related': related}
        if node.get('approval'):
            item['unified_job_template'] = {'name': node['approval'], 'type': 'workflow_approval',
                                            'description': node.get('description', node['approval']),
                                            'timeout': int(node.get('timeout', 0))}
        else:
            if node['job_template'] not in names:
                raise AnsibleFilterError('%s: job template %r is not defined' % (where, node['job_template']))
            item['unified_job_template'] = {'name': node['job_template'], 'type': 'job_template',
                                            'organization': {'name': organization}}
            if node.get('limit'):
                item['limit'] = node['limit']
        out.append(item)
    _refuse_cycles(workflow.get('name'), nodes)
    return out


def _refuse_cycles(name, nodes):
    edges = {n['identifier']: [t for k in ('success', 'failure', 'always') for t in n.get(k) or []] for n in nodes}
    state = {}

    def visit(node, path):
        if state.get(node) == 'done':
            return
        if state.get(node) == 'open':
            raise AnsibleFilterError('workflow %r: the nodes form a cycle (%s)' % (name, ' -> '.join(path + [node])))
        state[node] = 'open'
        for nxt in edges[node]:
            visit(nxt, path + [node])
        state[node] = 'done'

    for node in edges:
        visit(node, [])


class FilterModule:

    def filters(self):
        return {'awx_survey_spec': awx_survey_spec, 'awx_workflow_nodes': awx_workflow_nodes}
