# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role's meta/argument_specs.yml and defaults/main.yml say the same thing.

For each roles/<role>/ (one test case per role, its id the role's name):
- meta/argument_specs.yml has a `main` entry point with short_description and options;
- every variable in defaults/main.yml is an option of `main`, and every option of
  `main` with a `default:` is in defaults/main.yml with an equal value; an option
  without a default is `required: true` or absent from defaults/main.yml;
- every variable and top-level option is named `<role>_...`;
- every option, suboptions included, has a description and a type.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
ROLES_DIR = os.path.join(ROOT, 'roles')
ROLES = sorted(
    name for name in (os.listdir(ROLES_DIR) if os.path.isdir(ROLES_DIR) else [])
    if not name.startswith(('.', '_')) and os.path.isdir(os.path.join(ROLES_DIR, name))
)


def first_file(*paths):
    """The first of paths that exists, else None."""
    return next((path for path in paths if os.path.isfile(path)), None)


def load(path):
    """A YAML file's data ({} for an empty file)."""
    with open(path, encoding='utf-8') as fh:
        data = yaml.safe_load(fh)
    return {} if data is None else data


def same_value(left, right):
    """Equal parsed YAML values: a string is never a number, a boolean never an integer."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_value(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same_value(a, b) for a, b in zip(left, right))
    return type(left) is type(right) and left == right


def option_problems(options, where):
    """Options (and their suboptions) without a description or a type."""
    problems = []
    for name, spec in sorted((options or {}).items()):
        spec = spec or {}
        if not spec.get('description'):
            problems.append('%s.%s has no description' % (where, name))
        if not spec.get('type'):
            problems.append('%s.%s has no type' % (where, name))
        problems.extend(option_problems(spec.get('options'), '%s.%s' % (where, name)))
    return problems


def role_problems(role):
    """Every way the role's argument specs and defaults disagree, as readable lines."""
    role_dir = os.path.join(ROLES_DIR, role)
    specs_path = first_file(os.path.join(role_dir, 'meta', 'argument_specs.yml'),
                            os.path.join(role_dir, 'meta', 'argument_specs.yaml'))
    if specs_path is None:
        return ['roles/%s/meta/argument_specs.yml is missing' % role]
    specs = load(specs_path).get('argument_specs') or {}
    main = specs.get('main')
    if not isinstance(main, dict):
        return ['roles/%s/meta/argument_specs.yml has no `main` entry point' % role]
    problems = []
    if not main.get('short_description'):
        problems.append('argument_specs main has no short_description')
    options = main.get('options') or {}
    if not options:
        problems.append('argument_specs main has no options')

    defaults_path = first_file(os.path.join(role_dir, 'defaults', 'main.yml'),
                               os.path.join(role_dir, 'defaults', 'main.yaml'))
    defaults = load(defaults_path) if defaults_path else {}
    if not isinstance(defaults, dict):
        problems.append('defaults/main.yml is not a mapping')
        defaults = {}

    # A default belongs to main or to the entry point that reads it (tasks_from), and is
    # documented there with the same value.
    entry_options = {entry: ((spec or {}).get('options') or {}) for entry, spec in specs.items()}
    for name in sorted(defaults):
        if not any(name in opts for opts in entry_options.values()):
            problems.append('defaults/main.yml sets %s, which is not an option of any entry point in argument_specs'
                            % name)
    for entry, opts in sorted(entry_options.items()):
        for name, spec in sorted(opts.items()):
            spec = spec or {}
            if 'default' in spec:
                if name not in defaults:
                    if entry == 'main':
                        problems.append('argument_specs main option %s has default %r, but defaults/main.yml does'
                                        ' not set it' % (name, spec['default']))
                elif not same_value(spec['default'], defaults[name]):
                    problems.append('%s: argument_specs %s default %r != defaults/main.yml %r'
                                    % (name, entry, spec['default'], defaults[name]))
            elif name in defaults and not spec.get('required') and entry == 'main':
                problems.append('%s: defaults/main.yml sets it to %r, but argument_specs main has no default (and it'
                                ' is not required)' % (name, defaults[name]))

    prefix = role + '_'
    for name in sorted(set(defaults) | set(options)):
        if not str(name).startswith(prefix):
            problems.append('%s does not start with the role prefix %s' % (name, prefix))
    for entry_point, spec in sorted(specs.items()):
        problems.extend(option_problems((spec or {}).get('options'), entry_point))
    return problems


if ROLES:
    @pytest.mark.parametrize('role', ROLES, ids=ROLES)
    def test_role_specs(role):
        """argument_specs and defaults of one role agree, with prefixed, described, typed options."""
        problems = role_problems(role)
        assert not problems, 'roles/%s:\n  %s' % (role, '\n  '.join(problems))
else:
    def test_roles_dir_exists():
        """No roles to check yet: at least the roles directory is there."""
        assert os.path.isdir(ROLES_DIR), 'roles/ is missing'


# Option names that hold a secret (suboptions included: postgresql_users[].password).
SECRET_NAME = re.compile(r'(^|_)(password|passphrase|secret|secrets|token|cookie|credentials|private_key)$')


def secret_problems(options, where):
    """Secret options that are not no_log, or that carry choices: ansible-core 2.19
    honours no_log in a role's argument specs nowhere it matters, and a choices
    error prints the value given (test_core_prints_a_no_log_role_option_in_a_choices_error)."""
    problems = []
    for name, spec in sorted((options or {}).items()):
        spec = spec or {}
        if SECRET_NAME.search(name):
            if spec.get('no_log') is not True:
                problems.append('%s.%s holds a secret but is not no_log: true' % (where, name))
            if 'choices' in spec:
                problems.append('%s.%s holds a secret but has choices, which ansible-core prints back' % (where, name))
        problems.extend(secret_problems(spec.get('options'), '%s.%s' % (where, name)))
    return problems


if ROLES:
    @pytest.mark.parametrize('role', ROLES, ids=ROLES)
    def test_secret_options_are_marked_and_never_printed_back(role):
        path = first_file(os.path.join(ROLES_DIR, role, 'meta', 'argument_specs.yml'))
        specs = load(path).get('argument_specs') or {} if path else {}
        problems = []
        for entry_point, spec in sorted(specs.items()):
            problems.extend(secret_problems((spec or {}).get('options'), entry_point))
        assert not problems, 'roles/%s:\n  %s' % (role, '\n  '.join(problems))


def test_core_prints_a_no_log_role_option_in_a_choices_error(tmp_path):
    """What ansible-core does with no_log in a role's argument specs: a value
    that fails validation is printed whatever no_log says, so secret options
    carry no choices (above) and roles check secrets in no_log tasks of their
    own. The day this fails, core honours no_log there."""
    role = tmp_path / 'roles' / 'r'
    (role / 'meta').mkdir(parents=True)
    (role / 'tasks').mkdir()
    (role / 'meta' / 'argument_specs.yml').write_text(
        'argument_specs:\n  main:\n    options:\n      r_password:\n        type: str\n        no_log: true\n'
        '        choices: [a, b]\n')
    (role / 'tasks' / 'main.yml').write_text('- ansible.builtin.debug:\n    msg: hi\n')
    (tmp_path / 'play.yml').write_text('- hosts: localhost\n  gather_facts: false\n  roles:\n'
                                       '    - role: r\n      r_password: canary-5f2c\n')
    (tmp_path / 'ansible.cfg').write_text('[defaults]\nroles_path = roles\n')
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                           '-c', 'local', '-e', 'ansible_python_interpreter=' + sys.executable, 'play.yml'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert 'got: canary-5f2c' in proc.stdout + proc.stderr


def _validation_spec(options):
    """An argument spec ArgumentSpecValidator takes, from a role's options (docs keys dropped)."""
    spec = {}
    for name, option in (options or {}).items():
        option = dict(option or {})
        entry = {key: option[key] for key in ('type', 'elements', 'required', 'choices', 'no_log') if key in option}
        if option.get('options'):
            entry['options'] = _validation_spec(option['options'])
        spec[name] = entry
    return spec


def _templated(value):
    """True when a default is (or holds) a Jinja expression: Ansible templates it before validating."""
    if isinstance(value, str):
        return '{{' in value or '{%' in value
    if isinstance(value, dict):
        return any(_templated(item) for item in value.values())
    if isinstance(value, list):
        return any(_templated(item) for item in value)
    return False


if ROLES:
    @pytest.mark.parametrize('role', ROLES, ids=ROLES)
    def test_defaults_pass_the_roles_own_validation(role):
        """A run with nothing set in the inventory validates the defaults as Ansible does: a default
        that its own spec refuses (an empty dict whose suboptions are required, say) fails every run."""
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
        role_dir = os.path.join(ROLES_DIR, role)
        specs = load(os.path.join(role_dir, 'meta', 'argument_specs.yml')).get('argument_specs') or {}
        defaults = load(os.path.join(role_dir, 'defaults', 'main.yml')) or {}
        for entry, spec in sorted(specs.items()):
            options = {name: option for name, option in ((spec or {}).get('options') or {}).items()
                       if name in defaults and not _templated(defaults[name])}
            values = {name: defaults[name] for name in options}
            result = ArgumentSpecValidator(_validation_spec(options)).validate(values)
            assert not result.error_messages, '%s %s: %s' % (role, entry, result.error_messages)
