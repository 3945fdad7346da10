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

    for name in sorted(defaults):
        if name not in options:
            problems.append('defaults/main.yml sets %s, which is not an option in argument_specs main' % name)
    for name, spec in sorted(options.items()):
        spec = spec or {}
        if 'default' in spec:
            if name not in defaults:
                problems.append('argument_specs main option %s has default %r, but defaults/main.yml does not set it'
                                % (name, spec['default']))
            elif not same_value(spec['default'], defaults[name]):
                problems.append('%s: argument_specs default %r != defaults/main.yml %r' % (name, spec['default'], defaults[name]))
        elif name in defaults and not spec.get('required'):
            problems.append('%s: defaults/main.yml sets it to %r, but argument_specs main has no default (and it is not required)'
                            % (name, defaults[name]))

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
