# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate docs/api, the API reference, from the collection's own documentation.

    python3 tests/docs.py            regenerate docs/api (what `make docs` runs)
    python3 tests/docs.py --check    exit 1, one line per file, when docs/api is stale

Each plugin under plugins/<type>/ and each role with meta/argument_specs.yml is
read with the project's ansible-doc (.venv/bin/ansible-doc, in JSON) and
rendered as Markdown. The output is deterministic: the same sources always
give the same bytes. Exit codes: 0 done (or up to date), 1 stale (--check),
2 ansible-doc failed for a plugin or role (one line each, naming it).

Standard library only: it runs with the system python3 or the venv's.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_DIR = os.path.join(ROOT, 'docs', 'api')
API_REL = 'docs/api'
ANSIBLE_DOC = os.path.join(ROOT, '.venv', 'bin', 'ansible-doc')
ANSIBLE_CFG = os.path.join(ROOT, 'ansible.cfg')
DOCS_URL = 'https://docs.ansible.com/ansible/latest/collections'

# plugins/<directory> -> ansible-doc type; other directories (module_utils,
# doc_fragments, action, plugin_utils, ...) hold no documented plugins.
PLUGIN_DIRS = {
    'modules': 'module',
    'become': 'become',
    'cache': 'cache',
    'callback': 'callback',
    'cliconf': 'cliconf',
    'connection': 'connection',
    'filter': 'filter',
    'httpapi': 'httpapi',
    'inventory': 'inventory',
    'lookup': 'lookup',
    'netconf': 'netconf',
    'shell': 'shell',
    'strategy': 'strategy',
    'test': 'test',
    'vars': 'vars',
}
# Types whose files may each hold several plugins (documented in .yml files
# or in the .py file); their names come from `ansible-doc --list`.
LISTED_TYPES = ('filter', 'test')
TYPE_TITLES = {'module': 'Modules', 'role': 'Roles'}
ROLE_TYPE = 'role'


def page(ptype, name):
    """The page of a plugin or role, relative to docs/api: <type>/<name>.md, roles/<role>.md."""
    return '%s/%s.md' % ('roles' if ptype == ROLE_TYPE else ptype, name)


class DocError(Exception):
    """ansible-doc could not document a plugin or role."""


# --------------------------------------------------------------------------
# Collection and ansible-doc


def collection_name():
    """namespace.name from galaxy.yml (two top-level scalars, no YAML parser needed)."""
    values = {}
    with open(os.path.join(ROOT, 'galaxy.yml'), encoding='utf-8') as fh:
        for line in fh:
            m = re.match(r'^(namespace|name):\s*["\']?([a-z0-9_]+)["\']?\s*(#.*)?$', line)
            if m:
                values[m.group(1)] = m.group(2)
    if set(values) != {'namespace', 'name'}:
        raise DocError('galaxy.yml: cannot read namespace and name')
    return '%s.%s' % (values['namespace'], values['name'])


def doc_env(link_dir):
    """ansible-doc's environment: the repository's ansible.cfg, no colour.

    The collection resolves through collections/ansible_collections/<ns>/<name>,
    a link to the repository made by `make setup`; when that link is missing or
    points elsewhere, link_dir (a temporary directory) provides one.
    """
    env = dict(os.environ)
    for name in ('ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATHS'):
        env.pop(name, None)
    env.update({
        'ANSIBLE_CONFIG': ANSIBLE_CFG,
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_DEPRECATION_WARNINGS': '0',
        'LC_ALL': 'C.UTF-8',
    })
    namespace, name = collection_name().split('.')
    link = os.path.join(ROOT, 'collections', 'ansible_collections', namespace, name)
    try:
        linked = os.path.samefile(link, ROOT)
    except OSError:
        linked = False
    if not linked:
        os.makedirs(os.path.join(link_dir, 'ansible_collections', namespace))
        os.symlink(ROOT, os.path.join(link_dir, 'ansible_collections', namespace, name))
        env['ANSIBLE_COLLECTIONS_PATH'] = link_dir + os.pathsep + os.path.join(ROOT, 'collections')
    return env


def first_error_line(stderr):
    """The first [ERROR] line of ansible-doc's stderr (else its first line), without the prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    line = next((line for line in lines if line.startswith('[ERROR]')), lines[0] if lines else 'no output')
    return re.sub(r'^\[ERROR\]:\s*', '', line)


def ansible_doc(env, args):
    """Run ansible-doc with args and return its parsed JSON output."""
    try:
        proc = subprocess.run([ANSIBLE_DOC] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DocError(str(exc)) from exc
    if proc.returncode != 0:
        raise DocError(first_error_line(proc.stderr))
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        raise DocError('ansible-doc printed no JSON: %s' % first_error_line(proc.stderr or proc.stdout)) from exc


def plugin_files(directory):
    """Plugin names under a plugins/ directory (dotted for subdirectories)."""
    names = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(('_', '.')))
        rel = os.path.relpath(dirpath, directory)
        prefix = '' if rel == '.' else rel.replace(os.sep, '.') + '.'
        for filename in filenames:
            stem, ext = os.path.splitext(filename)
            if ext == '.py' and not stem.startswith('_'):
                names.append(prefix + stem)
    return sorted(names)


def discover(env, collection):
    """[(type, short name)] for every plugin and role to document, sorted."""
    items = []
    plugins = os.path.join(ROOT, 'plugins')
    for dirname in sorted(os.listdir(plugins)) if os.path.isdir(plugins) else []:
        ptype = PLUGIN_DIRS.get(dirname)
        if ptype is None:
            continue
        names = plugin_files(os.path.join(plugins, dirname))
        if ptype in LISTED_TYPES and names:
            listed = ansible_doc(env, ['--list', '--json', '-t', ptype, collection])
            names = sorted(fqcn[len(collection) + 1:] for fqcn in listed if fqcn.startswith(collection + '.'))
        items.extend((ptype, name) for name in names)
    roles = os.path.join(ROOT, 'roles')
    for role in sorted(os.listdir(roles)) if os.path.isdir(roles) else []:
        if any(os.path.isfile(os.path.join(roles, role, 'meta', 'argument_specs.' + ext)) for ext in ('yml', 'yaml')):
            items.append((ROLE_TYPE, role))
    return items


def fetch(env, collection, ptype, name):
    """The ansible-doc JSON document of one plugin or role."""
    fqcn = '%s.%s' % (collection, name)
    data = ansible_doc(env, ['--json', '-t', ptype, fqcn])
    if not isinstance(data, dict) or fqcn not in data:
        raise DocError('ansible-doc found no documentation for %s' % fqcn)
    return data[fqcn]


# --------------------------------------------------------------------------
# Ansible documentation markup -> Markdown


class Ctx:
    """Where the text goes: base is the path from the page to docs/api/."""

    def __init__(self, collection, base, table=False):
        self.collection = collection
        self.base = base
        self.table = table


COMMANDS = {
    # name: (parameters, escaped arguments)
    'I': (1, False), 'B': (1, False), 'M': (1, False), 'U': (1, False), 'C': (1, False),
    'L': (2, False), 'R': (2, False),
    'P': (1, True), 'E': (1, True), 'V': (1, True), 'O': (1, True), 'RV': (1, True),
}
COMMAND_RE = re.compile(r'\b(HORIZONTALLINE\b|(?:RV|[IBMULRCPEVO])\()')
# What Markdown would read as a heading, a list item or an underline at a line's start.
LINE_START_RE = re.compile(r'^(#{1,6}(?= |$)|[-+](?= )|=+$)')
NUMBERED_RE = re.compile(r'^(\d+)([.)] )')


def parse_args(text, pos, count, escaped):
    """Arguments of a command whose '(' ends at pos: (args, end) or None if unterminated."""
    args = []
    current = []
    while pos < len(text):
        char = text[pos]
        if escaped and char == '\\' and pos + 1 < len(text):
            current.append(text[pos + 1])
            pos += 2
            continue
        if char == ',' and len(args) < count - 1:
            args.append(''.join(current))
            current = []
            pos += 1
            while pos < len(text) and text[pos] == ' ':
                pos += 1
            continue
        if char == ')':
            if len(args) != count - 1:
                return None
            args.append(''.join(current))
            return args, pos + 1
        current.append(char)
        pos += 1
    return None


def code(text, ctx):
    """A Markdown code span holding text verbatim."""
    text = ' '.join(text.splitlines())
    if ctx.table:
        text = text.replace('|', '\\|')
    ticks = max((len(run) for run in re.findall('`+', text)), default=0) + 1
    pad = ' ' if text.startswith('`') or text.endswith('`') else ''
    return '%s%s%s%s%s' % ('`' * ticks, pad, text, pad, '`' * ticks)


def escape(text):
    """Plain text with Markdown's special characters escaped."""
    text = ' '.join(text.splitlines())
    text = re.sub(r'([\\`*\[\]<>|])', r'\\\1', text)
    return re.sub(r'(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])', r'\\_', text)


def plugin_link(fqcn, ptype, ctx, label=None):
    """A link to a plugin's page: ours relative, others on docs.ansible.com."""
    label = code(label or fqcn, ctx)
    parts = fqcn.split('.')
    if len(parts) < 3:
        return label
    if '.'.join(parts[:2]) == ctx.collection:
        return '[%s](%s%s/%s.md)' % (label, ctx.base, ptype, '.'.join(parts[2:]))
    suffix = 'module' if ptype == 'module' else ptype
    return '[%s](%s/%s/%s/%s_%s.html)' % (label, DOCS_URL, parts[0], parts[1], '.'.join(parts[2:]), suffix)


def option_like(text, ctx):
    """O() and RV() text: the option, its value if any, its plugin if another one."""
    plugin = ''
    if text.startswith('ignore:'):
        text = text[len('ignore:'):]
    m = re.match(r'^([a-z0-9_]+\.[a-z0-9_]+\.[^#]+)#([a-z_]+):(.*)$', text, re.S)
    if m:
        plugin = ' (%s)' % plugin_link(m.group(1), m.group(2), ctx)
        text = m.group(3)
    return code(text, ctx) + plugin


def render_command(name, args, ctx):
    """One markup command as Markdown."""
    arg = args[0] if args else ''
    if name == 'I':
        return '*%s*' % escape(arg) if arg.strip() else ''
    if name == 'B':
        return '**%s**' % escape(arg) if arg.strip() else ''
    if name in ('C', 'V', 'E'):
        return code(arg, ctx)
    if name in ('O', 'RV'):
        return option_like(arg, ctx)
    if name == 'M':
        return plugin_link(arg, 'module', ctx)
    if name == 'P':
        fqcn, _sep, ptype = arg.partition('#')
        return plugin_link(fqcn, ptype or 'module', ctx)
    if name == 'U':
        return '<%s>' % arg.replace('>', '%3E').replace(' ', '%20')
    if name == 'L':
        return '[%s](%s)' % (escape(args[0]), args[1].replace(')', '%29').replace(' ', '%20'))
    if name == 'R':
        return '*%s*' % escape(args[0])
    return '<hr>' if ctx.table else '\n\n---\n\n'


def markup(text, ctx):
    """Ansible doc markup (classic and semantic) in one paragraph -> Markdown."""
    if not isinstance(text, str):
        text = json.dumps(text, sort_keys=True)
    out = []
    pos = 0
    while pos < len(text):
        m = COMMAND_RE.search(text, pos)
        if m is None:
            out.append(escape(text[pos:]))
            break
        out.append(escape(text[pos:m.start()]))
        name = m.group(1).rstrip('(')
        if name == 'HORIZONTALLINE':
            out.append(render_command(name, [], ctx))
            pos = m.end()
            continue
        count, escaped = COMMANDS[name]
        parsed = parse_args(text, m.end(), count, escaped)
        if parsed is None:
            out.append(escape(m.group(1)))
            pos = m.end()
            continue
        args, pos = parsed
        out.append(render_command(name, args, ctx))
    text = re.sub(r' *\n\n---\n\n *', '\n\n---\n\n', ''.join(out)).strip()
    return '\n'.join(line_start(line) for line in text.split('\n'))


def line_start(line):
    """A line of text that Markdown reads as text, not as a heading or list item."""
    if line == '---':
        return line
    return NUMBERED_RE.sub(r'\1\\\2', LINE_START_RE.sub(r'\\\1', line))


def paragraphs(value):
    """A description (string or list of strings) as a list of paragraphs."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) if not isinstance(v, str) else v for v in value if v not in (None, '')]
    return [value] if value != '' else []


def cell_text(value, ctx):
    """A description in one table cell, paragraphs joined with <br>."""
    return '<br>'.join(markup(p, ctx) for p in paragraphs(value))


def literal(value):
    """A default, choice or sample as compact JSON."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def table(header, rows):
    """A Markdown table."""
    lines = ['| %s |' % ' | '.join(header), '|' + '---|' * len(header)]
    for row in rows:
        lines.append('| %s |' % ' | '.join(cell if cell else ' ' for cell in row))
    return '\n'.join(lines)


# --------------------------------------------------------------------------
# Page sections


def type_cell(spec):
    """type, with elements for lists."""
    text = spec.get('type') or 'str'
    if spec.get('elements'):
        text += ' / elements=%s' % spec['elements']
    return text


def choices_cell(choices, ctx):
    """Choices: a list of values or a mapping of value to description."""
    if isinstance(choices, dict):
        return '<br>'.join('%s: %s' % (code(literal(k), ctx), cell_text(v, ctx)) for k, v in choices.items())
    return ', '.join(code(literal(c), ctx) for c in choices or [])


def config_sources(spec, ctx):
    """Where a plugin option can also be set: env, ini, vars, keyword, cli."""
    out = []
    for env in spec.get('env') or []:
        out.append('Environment: %s' % code(env.get('name', ''), ctx))
    for ini in spec.get('ini') or []:
        out.append('INI: %s' % code('[%s] %s' % (ini.get('section', ''), ini.get('key', '')), ctx))
    for var in spec.get('vars') or []:
        out.append('Variable: %s' % code(var.get('name', ''), ctx))
    for keyword in spec.get('keyword') or []:
        out.append('Keyword: %s' % code(keyword.get('name', ''), ctx))
    for cli in spec.get('cli') or []:
        out.append('CLI: %s' % code(cli.get('option') or '--' + cli.get('name', '').replace('_', '-'), ctx))
    return out


def deprecation(dep, ctx):
    """A deprecation (plugin or option) as one line."""
    parts = ['**Deprecated**']
    if dep.get('removed_in') or dep.get('version'):
        parts.append('(removed in %s)' % escape(str(dep.get('removed_in') or dep.get('version'))))
    elif dep.get('removed_at_date'):
        parts.append('(removed after %s)' % escape(str(dep['removed_at_date'])))
    line = ' '.join(parts) + ':'
    if dep.get('why'):
        line += ' ' + cell_text(dep['why'], ctx)
    if dep.get('alternative') or dep.get('alternatives'):
        line += ' Use instead: ' + cell_text(dep.get('alternative') or dep.get('alternatives'), ctx)
    return line


def option_rows(options, ctx, parent_version, prefix=''):
    """Table rows for options, suboptions following their parent as parent.child."""
    rows = []
    for name in sorted(options or {}):
        spec = options[name] or {}
        description = [cell_text(spec.get('description'), ctx)]
        if spec.get('aliases'):
            description.append('Aliases: %s' % ', '.join(code(a, ctx) for a in spec['aliases']))
        added = spec.get('version_added')
        if added and str(added) != str(parent_version) and spec.get('version_added_collection') == ctx.collection:
            description.append('Added in version %s.' % escape(str(added)))
        description.extend(config_sources(spec, ctx))
        if spec.get('deprecated'):
            description.append(deprecation(spec['deprecated'], ctx))
        rows.append([
            code(prefix + name, ctx),
            escape(type_cell(spec)),
            'yes' if spec.get('required') else 'no',
            code(literal(spec['default']), ctx) if 'default' in spec and spec['default'] is not None else '',
            choices_cell(spec.get('choices'), ctx),
            '<br>'.join(d for d in description if d),
        ])
        children = spec.get('suboptions') or spec.get('options')
        if isinstance(children, dict):
            rows.extend(option_rows(children, ctx, parent_version, prefix + name + '.'))
    return rows


def return_rows(values, ctx, prefix=''):
    """Table rows for return values, nested ones as parent.child."""
    rows = []
    for name in sorted(values or {}):
        spec = values[name] or {}
        sample = ''
        if 'sample' in spec:
            text = literal(spec['sample'])
            if len(text) <= 80:
                sample = code(text, ctx)
        rows.append([
            code(prefix + name, ctx),
            escape(type_cell(spec)),
            cell_text(spec.get('returned'), ctx),
            cell_text(spec.get('description'), ctx),
            sample,
        ])
        if isinstance(spec.get('contains'), dict):
            rows.extend(return_rows(spec['contains'], ctx, prefix + name + '.'))
    return rows


def bullet_list(items, ctx):
    """A Markdown list, one item per paragraph."""
    return '\n'.join('- %s' % markup(item, ctx) for item in paragraphs(items))


def seealso_item(item, ctx):
    """One seealso entry: module, plugin, ref or link."""
    description = cell_text(item.get('description'), ctx)
    if item.get('module'):
        head = plugin_link(item['module'], 'module', ctx)
    elif item.get('plugin'):
        head = plugin_link(item['plugin'], item.get('plugin_type', 'module'), ctx)
    elif item.get('link'):
        head = '[%s](%s)' % (escape(item.get('name') or item['link']), item['link'])
    else:
        head = '*%s*' % escape(item.get('name') or item.get('ref') or '')
    return '- %s%s' % (head, ': ' + description if description else '')


def fence(text, language):
    """A fenced code block longer than any backtick run inside it."""
    ticks = max([3] + [len(run) + 1 for run in re.findall('`{3,}', text)])
    return '%s%s\n%s\n%s' % ('`' * ticks, language, text, '`' * ticks)


def doc_sections(doc, ctx, tctx, level, synopsis=''):
    """The sections common to plugins and role entry points (tctx: inside tables)."""
    head = '#' * level
    out = []
    if doc.get('deprecated'):
        out.append(deprecation(doc['deprecated'], ctx))
    description = paragraphs(doc.get('description'))
    if description:
        text = '\n\n'.join(markup(p, ctx) for p in description)
        out.append('%s %s\n\n%s' % (head, synopsis, text) if synopsis else text)
    if doc.get('requirements'):
        out.append('%s Requirements\n\n%s' % (head, bullet_list(doc['requirements'], ctx)))
    rows = option_rows(doc.get('options'), tctx, doc.get('version_added'))
    if rows:
        out.append('%s Options\n\n%s' % (head, table(
            ['Option', 'Type', 'Required', 'Default', 'Choices', 'Description'], rows)))
    attributes = doc.get('attributes') or {}
    if attributes:
        rows = []
        for name in sorted(attributes):
            spec = attributes[name] or {}
            description = [cell_text(spec.get('description'), tctx), cell_text(spec.get('details'), tctx)]
            if spec.get('platforms'):
                description.append('Platforms: %s' % escape(', '.join(paragraphs(spec['platforms']))))
            if spec.get('membership'):
                description.append('Action group: %s' % ', '.join(code(g, tctx) for g in paragraphs(spec['membership'])))
            rows.append([code(name, tctx), escape(str(spec.get('support', ''))), '<br>'.join(d for d in description if d)])
        out.append('%s Attributes\n\n%s' % (head, table(['Attribute', 'Support', 'Description'], rows)))
    if doc.get('notes'):
        out.append('%s Notes\n\n%s' % (head, bullet_list(doc['notes'], ctx)))
    if doc.get('seealso'):
        out.append('%s See also\n\n%s' % (head, '\n'.join(seealso_item(i, ctx) for i in doc['seealso'])))
    return out


def authors(doc, ctx):
    """Authors as a list, or nothing."""
    # ansible-doc marks an author without a GitHub handle with ' (!UNKNOWN)'.
    names = [re.sub(r'\s*\(!UNKNOWN\)$', '', n) for n in paragraphs(doc.get('author'))]
    return '## Authors\n\n%s' % '\n'.join('- %s' % escape(n) for n in names) if names else ''


def render_plugin(collection, ptype, name, data):
    """The page of one plugin."""
    ctx = Ctx(collection, '../', table=False)
    tctx = Ctx(collection, '../', table=True)
    doc = data.get('doc') or {}
    out = ['# %s.%s (%s)' % (collection, name, ptype)]
    if doc.get('short_description'):
        out.append(markup(doc['short_description'], ctx))
    if doc.get('version_added') and doc.get('version_added_collection', collection) == collection:
        out.append('Added in %s %s.' % (collection, escape(str(doc['version_added']))))
    out.extend(doc_sections(doc, ctx, tctx, 2, synopsis='Synopsis'))
    examples = (data.get('examples') or '').strip('\n')
    if examples.strip():
        out.append('## Examples\n\n%s' % fence(examples, 'yaml'))
    rows = return_rows(data.get('return'), tctx)
    if rows:
        out.append('## Return values\n\n%s' % table(['Key', 'Type', 'Returned', 'Description', 'Sample'], rows))
    out.append(authors(doc, ctx))
    return '\n\n'.join(part for part in out if part) + '\n'


def entry_points_sorted(entry_points):
    """main first, then the others by name."""
    return sorted(entry_points, key=lambda ep: (ep != 'main', ep))


def render_role(collection, name, data):
    """The page of one role, every entry point."""
    ctx = Ctx(collection, '../', table=False)
    tctx = Ctx(collection, '../', table=True)
    entry_points = data.get('entry_points') or {}
    out = ['# %s.%s (role)' % (collection, name)]
    main = entry_points.get('main') or {}
    if main.get('short_description'):
        out.append(markup(main['short_description'], ctx))
    for ep in entry_points_sorted(entry_points):
        spec = entry_points[ep] or {}
        out.append('## Entry point %s' % code(ep, ctx))
        if spec.get('short_description') and ep != 'main':
            out.append(markup(spec['short_description'], ctx))
        if spec.get('version_added'):
            out.append('Added in %s %s.' % (collection, escape(str(spec['version_added']))))
        out.extend(doc_sections(spec, ctx, tctx, 3))
        usage = '- name: Run %s.%s%s\n  ansible.builtin.include_role:\n    name: %s.%s' % (
            collection, name, '' if ep == 'main' else ' (%s)' % ep, collection, name)
        if ep != 'main':
            usage += '\n    tasks_from: %s' % ep
        out.append('### Usage\n\n%s' % fence(usage, 'yaml'))
    out.append(authors(main, ctx))
    return '\n\n'.join(part for part in out if part) + '\n'


def type_title(ptype):
    """The README heading of a type."""
    return TYPE_TITLES.get(ptype, '%s plugins' % ptype.capitalize())


def short_description(ptype, data):
    """The one-line summary of a plugin or role."""
    if ptype == ROLE_TYPE:
        main = (data.get('entry_points') or {}).get('main') or {}
        return main.get('short_description') or ''
    return (data.get('doc') or {}).get('short_description') or ''


def render_index(collection, documented):
    """docs/api/README.md: every page, grouped by type."""
    ctx = Ctx(collection, '', table=True)
    out = [
        '# %s API reference' % collection,
        'These pages are generated by `make docs` (`python3 tests/docs.py`) from the plugins\' and roles\' own '
        'documentation (`DOCUMENTATION`, `EXAMPLES`, `RETURN` and `meta/argument_specs.yml`): do not edit them '
        'by hand, edit the source and run `make docs`. `python3 tests/docs.py --check` tells whether they are up to date.',
    ]
    types = sorted({ptype for ptype, _name in documented}, key=lambda t: (t != 'module', t == ROLE_TYPE, t))
    for ptype in types:
        rows = []
        for name in sorted(n for t, n in documented if t == ptype):
            rows.append(['[%s](%s)' % (code('%s.%s' % (collection, name), ctx), page(ptype, name)),
                         markup(short_description(ptype, documented[(ptype, name)]), ctx)])
        out.append('## %s\n\n%s' % (type_title(ptype), table(['Name', 'Description'], rows)))
    if not types:
        out.append('The collection has no documented plugins or roles yet.')
    return '\n\n'.join(out) + '\n'


# --------------------------------------------------------------------------
# Generation and check


def error_line(env, collection, ptype, name, exc):
    """One line naming the plugin or role and ansible-doc's error about it."""
    fqcn = '%s.%s' % (collection, name)
    message = re.sub(r'^%s %s:?\s*' % (re.escape(ptype), re.escape(fqcn)), '', str(exc))
    if env.get('ANSIBLE_COLLECTIONS_PATH'):
        # Paths through the temporary link: show them in the repository instead.
        link = os.path.join(env['ANSIBLE_COLLECTIONS_PATH'].split(os.pathsep)[0], 'ansible_collections', *collection.split('.'))
        message = message.replace(link, ROOT)
    return '%s %s: %s' % (ptype, fqcn, message)


def build(env, collection):
    """({relative path: content}, [error lines], {failed relative paths})."""
    errors = []
    try:
        items = discover(env, collection)
    except DocError as exc:
        return {}, ['%s: %s' % (collection, exc)], set()
    documented = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        futures = {item: pool.submit(fetch, env, collection, item[0], item[1]) for item in items}
        for (ptype, name), future in sorted(futures.items()):
            try:
                documented[(ptype, name)] = future.result()
            except DocError as exc:
                errors.append(error_line(env, collection, ptype, name, exc))
    pages = {}
    for (ptype, name), data in sorted(documented.items()):
        if ptype == ROLE_TYPE:
            pages[page(ptype, name)] = render_role(collection, name, data)
        else:
            pages[page(ptype, name)] = render_plugin(collection, ptype, name, data)
    pages['README.md'] = render_index(collection, documented)
    failed = {page(*item) for item in items if item not in documented}
    return pages, errors, failed


def tree(directory):
    """Every file under directory, as relative paths with forward slashes."""
    found = set()
    for dirpath, _dirnames, filenames in os.walk(directory):
        for filename in filenames:
            found.add(os.path.relpath(os.path.join(dirpath, filename), directory).replace(os.sep, '/'))
    return found


def write_pages(directory, pages, keep=frozenset()):
    """Write pages under directory, removing other files (except keep) and empty directories."""
    for rel in sorted(tree(directory) - set(pages) - set(keep)) if os.path.isdir(directory) else []:
        os.remove(os.path.join(directory, rel))
    for rel, content in sorted(pages.items()):
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, encoding='utf-8', newline='') as fh:
                if fh.read() == content:
                    continue
        except FileNotFoundError:
            pass
        with open(path, 'w', encoding='utf-8', newline='\n') as fh:
            fh.write(content)
    for dirpath, _dirnames, _filenames in sorted(os.walk(directory), reverse=True):
        if dirpath != directory and not os.listdir(dirpath):
            os.rmdir(dirpath)


def read(path):
    """A file's bytes."""
    with open(path, 'rb') as fh:
        return fh.read()


def check(pages):
    """One line per stale, missing or extra file in docs/api; the number of them."""
    problems = []
    with tempfile.TemporaryDirectory(prefix='aiquiz-docs-') as tmp:
        write_pages(tmp, pages)
        expected = tree(tmp)
        actual = tree(API_DIR) if os.path.isdir(API_DIR) else set()
        for rel in sorted(expected | actual):
            where = '%s/%s' % (API_REL, rel)
            if rel not in actual:
                problems.append('%s is missing: run `make docs`' % where)
            elif rel not in expected:
                problems.append('%s is not generated from any plugin or role: run `make docs`' % where)
            elif read(os.path.join(tmp, rel)) != read(os.path.join(API_DIR, rel)):
                problems.append('%s is out of date: run `make docs`' % where)
    for line in problems:
        print(line)
    return len(problems)


def main(argv=None):
    """Entry point: exit 0 done or up to date, 1 stale (--check), 2 errors."""
    parser = argparse.ArgumentParser(description='Generate docs/api from the collection\'s own documentation.')
    parser.add_argument('--check', action='store_true',
                        help='do not write; exit 1 when docs/api differs from what would be generated')
    args = parser.parse_args(argv)
    if not os.access(ANSIBLE_DOC, os.X_OK):
        print('%s not found: run `make setup`' % os.path.relpath(ANSIBLE_DOC, ROOT), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix='aiquiz-docs-link-') as link_dir:
        try:
            collection = collection_name()
            env = doc_env(link_dir)
        except (DocError, OSError) as exc:
            print('docs: %s' % exc, file=sys.stderr)
            return 2
        pages, errors, failed = build(env, collection)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        if not args.check and pages:
            # Write what could be documented; the failed plugins keep their old page.
            write_pages(API_DIR, pages, keep=failed)
        return 2
    if args.check:
        return 1 if check(pages) else 0
    write_pages(API_DIR, pages)
    print('%s: %d pages' % (API_REL, len(pages)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
