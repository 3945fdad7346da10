# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test candidate nginx files with the whole configuration, before they
replace the live ones (installed by aiquiz.ops.edge: the template's validate
and aiquiz.ops.nginx_backends call it).

    python3 aiquiz_nginx_test_candidate.py [LIVE CANDIDATE]... [--remove LIVE]...
                                           [--main /etc/nginx/nginx.conf] [--nginx nginx]

`nginx -t` reads the live tree, so testing a file means putting it there
first, where a reload, a restart or a reboot can pick it up before the test
says no. Instead: a private temporary mirror of the main file's directory.
Each LIVE is its CANDIDATE there (or absent, for --remove); every file that
names the tree's own directory (includes, roots) is a copy with that path
pointing into the mirror; every other file (certificates, keys, mime.types)
is a symbolic link to the live one, never copied. `nginx -t -c` then reads
exactly what the live tree would hold with the candidates in place; nothing
under the live tree changes.

A line of the candidate may end with "# <variable>" (several, comma
separated): when nginx refuses, the message names the variables of the
refused line (nginx gives file:line), or, for errors without a line, of the
line whose value nginx quotes.

Exit 0: accepted. 1: refused (the reason on stderr, temporary paths shown as
the live ones). 2: usage or setup error.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MARKER_RE = re.compile(r'#\s*((?:[A-Za-z_][A-Za-z0-9_.\[\]]*)(?:\s*,\s*[A-Za-z_][A-Za-z0-9_.\[\]]*)*)\s*$')
DIRECTIVE_RE = re.compile(r'^\s*([A-Za-z_0-9]+)\s+([^#]*?)\s*[;{]')
LOCATED_RE = re.compile(r' in \S+:\d+')


class SetupError(Exception):
    pass


def build_tree(main, candidates, workdir):
    """The mirror under workdir of the tree with {live path: candidate path,
    or None to remove it} in place; returns the path of its main file."""
    root = os.path.dirname(os.path.abspath(main))
    replaced = {}
    for live, candidate in candidates.items():
        rel = os.path.relpath(os.path.abspath(live), root)
        if rel.startswith('..') or rel == os.path.basename(main):
            raise SetupError('%s is not a file under %s (other than the main file)' % (live, root))
        replaced[rel] = candidate
    # The tree's own absolute paths (an include, a root) point into the mirror.
    own_path = re.compile(r'(?<![\w.~/-])' + re.escape(root.rstrip('/') + '/'))

    def place(text, dst):
        with open(dst, 'w', encoding='utf-8', errors='surrogateescape') as handle:
            handle.write(own_path.sub(workdir.rstrip('/') + '/', text))

    def read(path):
        with open(path, encoding='utf-8', errors='surrogateescape') as handle:
            return handle.read()

    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            dst = os.path.join(workdir, rel)
            if name in dirnames and not os.path.islink(src):
                os.mkdir(dst, 0o700)
                continue
            # A link to a file of the tree (sites-enabled) stands for that file.
            target = os.path.realpath(src)
            rel_target = os.path.relpath(target, root)
            if rel in replaced or rel_target in replaced:
                candidate = replaced.get(rel, replaced.get(rel_target))
                if candidate is not None:
                    place(read(candidate), dst)
            elif os.path.isfile(target) and own_path.search(read(target)):
                place(read(target), dst)
            else:
                os.symlink(target, dst)
    # New files, in directories that may be new too.
    for rel, candidate in replaced.items():
        dst = os.path.join(workdir, rel)
        if candidate is not None and not os.path.lexists(dst):
            os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
            place(read(candidate), dst)
    return os.path.join(workdir, os.path.basename(main))


def markers(text):
    """{line number: (variables, directive line without its marker)} of the marked lines."""
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = MARKER_RE.search(line)
        if match and DIRECTIVE_RE.match(line):
            names = [name.strip() for name in match.group(1).split(',')]
            found[number] = (names, line[:match.start()].strip())
    return found


def blame(message, live, text):
    """[(variables, line number, directive)] of one candidate nginx's message points at."""
    marked = markers(text)
    hits = []
    for number in re.findall(r'in %s:(\d+)' % re.escape(live), message):
        number = int(number)
        if number in marked and number not in [hit[1] for hit in hits]:
            hits.append((marked[number][0], number, marked[number][1]))
    if hits or LOCATED_RE.search(message):
        return hits
    # No file:line given (OpenSSL's errors, files that do not load): the
    # line whose value nginx quotes.
    for number, (names, line) in sorted(marked.items()):
        value = DIRECTIVE_RE.match(line).group(2)
        if value and '"%s"' % value in message and names not in [hit[0] for hit in hits]:
            hits.append((names, number, line))
    return hits


def explain(message, texts):
    """The refusal as the operator reads it: the variables first (of the
    candidates, {live path: text}, whose lines carry markers), then nginx."""
    lines = []
    for live, text in sorted(texts.items()):
        for names, number, line in blame(message, live, text):
            lines.append('line %d of %s ("%s") set by %s' % (number, live, line, ', '.join(names)))
    if lines:
        return '; '.join(lines) + '\n' + message
    if any(markers(text) for text in texts.values()):
        return 'no variable marks the refused line\n' + message
    return message


def check(candidates, main, nginx):
    """(accepted, message) of the tree with the candidates in place."""
    workdir = tempfile.mkdtemp(prefix='aiquiz-nginx-test-')
    try:
        test_main = build_tree(main, candidates, workdir)
        proc = subprocess.run([nginx, '-t', '-q', '-c', test_main], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120, check=False)
        message = proc.stdout.decode('utf-8', 'replace').strip()
        root = os.path.dirname(os.path.abspath(main))
        message = message.replace(workdir.rstrip('/') + '/', root.rstrip('/') + '/')
        if proc.returncode == 0:
            return True, message
        texts = {}
        for live, candidate in candidates.items():
            if candidate is not None:
                with open(candidate, encoding='utf-8', errors='replace') as handle:
                    texts[os.path.abspath(live)] = handle.read()
        return False, explain(message, texts)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('pairs', nargs='*', metavar='LIVE CANDIDATE')
    parser.add_argument('--remove', action='append', default=[], metavar='LIVE')
    parser.add_argument('--main', default='/etc/nginx/nginx.conf')
    parser.add_argument('--nginx', default='nginx')
    args = parser.parse_intermixed_args(argv)
    if len(args.pairs) % 2 or not (args.pairs or args.remove):
        parser.error('give LIVE CANDIDATE pairs and/or --remove LIVE')
    candidates = dict(zip(args.pairs[::2], args.pairs[1::2]))
    candidates.update((live, None) for live in args.remove)
    try:
        accepted, message = check(candidates, args.main, args.nginx)
    except (OSError, SetupError, subprocess.SubprocessError) as error:
        sys.stderr.write('cannot test the candidates: %s\n' % error)
        return 2
    if not accepted:
        sys.stderr.write(message + '\n')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
