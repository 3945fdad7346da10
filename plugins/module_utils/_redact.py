# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redaction of secrets in text and data, shared by the audit callback and the
modules that write what a program said (the release ledger's reasons). Private
to aiquiz.ops: not a public API of the collection, but its functions keep their
names and meaning:

- redact_text(text, secrets=None) -> str: every shape below hidden;
- redact_data(value, secrets=None) -> a JSON-safe copy, same rules, by key name too;
- mask_url_credentials(text) -> str: only the credentials in URLs;
- is_secret_name(name) -> bool: whether a key, variable or option name says secret;
- SecretValues: values known to be secret (from Ansible Vault, a no_log option),
  hidden wherever they appear, also base64- and URL-encoded;
- marker(kind) -> '<redacted:KIND>', the text that replaces a secret.

What is hidden in text, in this order: known secret values; PEM bodies
(`-----BEGIN ... PRIVATE KEY-----` and any other PEM block); the password, or a
lone user name (a token), in `scheme://user:password@host`; JSON web tokens;
`Bearer`/`Basic` credentials; the value of `name: value`, `name=value`,
`"name": "value"` and `--name value` when the name says secret (also a YAML block
scalar or an indented block under it), and the value of a `{name|key: NAME,
value: ...}` item when NAME says secret. Markers are never redacted again.

Python 3.8 compatible: modules import it on managed hosts.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import re

try:
    from urllib.parse import quote, quote_plus, unquote
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    quote = quote_plus = unquote = None

MARKER_PREFIX = '<redacted:'
MIN_SUBSTRING = 4  # known secrets shorter than this are hidden only where they are a whole value

KIND_KNOWN = 'secret'
KIND_URL_PASSWORD = 'url-password'
KIND_URL_USER = 'url-user'
KIND_PRIVATE_KEY = 'private-key'
KIND_PEM = 'pem'
KIND_JWT = 'jwt'
KIND_AUTH = 'auth-token'
KIND_NAMED = 'named-secret'

# Words that make a name secret when they are one of its words (split at non-alphanumerics
# and camelCase humps), and parts that do so anywhere in the name run together.
SECRET_WORDS = frozenset((
    'pass', 'passwd', 'password', 'passwords', 'pw', 'pwd', 'passphrase', 'secret', 'secrets', 'token', 'tokens',
    'credential', 'credentials', 'cred', 'creds', 'auth', 'authorization', 'apikey', 'privkey', 'key', 'keys', 'dsn',
    'cookie', 'cookies', 'salt', 'otp', 'totp', 'signature', 'psk', 'jwt', 'bearer', 'sessionid', 'passcode',
))
SECRET_PARTS = ('passw', 'passphrase', 'secret', 'token', 'credential', 'apikey', 'privkey', 'privatekey',
                'connectionstring', 'connstr', 'sessionid', 'authkey')
# Field names of a {name: X, value: Y} item (environment lists, AWS tags, Kubernetes env).
ITEM_NAME_FIELDS = ('name', 'key')
ITEM_VALUE_FIELDS = ('value',)

_WORD_SPLIT_RE = re.compile(r'[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])')

_PEM_RE = re.compile(r'(?P<begin>-----BEGIN (?P<label>[A-Z0-9][A-Z0-9 ]*)-----)(?P<body>.*?)(?P<end>-----END (?P=label)-----|\Z)',
                     re.DOTALL)
# scheme://<userinfo>@ ; the userinfo runs to the last @ of the word (passwords are often left unencoded).
_URL_RE = re.compile(r'''(?<![A-Za-z0-9+.\-])(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<info>[^\s'"<>\\`]{0,4096})@''')
_JWT_RE = re.compile(r'(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*')
_AUTH_RE = re.compile(r'''(?<![A-Za-z0-9_\-])(?P<scheme>Bearer|Basic|Token|Digest|Negotiate)(?P<space>[ \t]+)'''
                      r'''(?P<token>(?=[A-Za-z0-9._~+/=\-]*[0-9+/=])[A-Za-z0-9._~+/=\-]{6,})''', re.IGNORECASE)
# name, then an optional closing quote of the name, then : or = (the value is parsed by hand).
_ASSIGN_RE = re.compile(r'''(?:(?<![\w.\-\\])|(?<=^[+\-])|(?<=\n[+\-]))(?P<name>[A-Za-z_][\w.\-]*)(?P<close>\\?["']?)(?P<sep>[ \t]*[:=][ \t]*)''')
_FLAG_RE = re.compile(r'''(?<![\w\-])(?P<flag>--[A-Za-z][\w\-]*)(?P<sep>=|[ \t]+)''')
_ITEM_NAME_RE = re.compile(r'''(?<![\w.\-])(?:name|key)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?P<name>[^\s"'\\,}\]]+)''', re.IGNORECASE)
_ITEM_VALUE_RE = re.compile(r'''(?<![\w.\-])value\\?["']?[ \t]*[:=]''', re.IGNORECASE)
_ITEM_START_RE = re.compile(r'''[{}]|(?:^|\n)[ \t]*- ''')
_DIFF_ITEM_START_RE = re.compile(r'''[{}]|(?:^|\n)[+\- ][ \t]*- ''')
_DIFF_RE = re.compile(r'''(?:^|\n)(?:--- |\+\+\+ |@@ )''')
_BLOCK_INDICATOR_RE = re.compile(r'''[|>][+\-]?[0-9]?[+\-]?[ \t]*(?:#[^\n]*)?(?=\n|$)''')
_ITEM_WINDOW = 300
_UNQUOTED_RE = re.compile(r'''[^\s&;,"'`)\]}]*''')
_NON_SPACE_RE = re.compile(r'\S*')
_ARGV_FLAG_RE = re.compile(r'--?[A-Za-z][\w\-]*\Z')


def marker(kind):
    """The text that stands for a hidden value of this kind."""
    return '%s%s>' % (MARKER_PREFIX, kind)


def is_secret_name(name):
    """Whether a key, variable or option name says that its value is secret.

    >>> [is_secret_name(n) for n in ('db_password', 'PGPASSWORD', 'x-api-key', 'clientSecret', 'port', 'PasswordAuthentication')]
    [True, True, True, True, False, True]
    """
    if not isinstance(name, str) or not name:
        return False
    words = [word.lower() for word in _WORD_SPLIT_RE.split(name) if word]
    if any(word in SECRET_WORDS for word in words):
        return True
    joined = ''.join(words)
    return any(part in joined for part in SECRET_PARTS)


class SecretValues(object):
    """Values known to be secret, hidden wherever they appear in text.

    Each value is also looked for base64-encoded, URL-encoded, JSON-escaped and, for a
    value of several lines, line by line. A value shorter than MIN_SUBSTRING characters
    is hidden only where it is a whole string.
    """

    def __init__(self):
        self._kinds = {}
        self._pattern = None

    def __len__(self):
        return len(self._kinds)

    def __contains__(self, value):
        return value in self._kinds

    def add(self, value, kind=KIND_KNOWN):
        """Remember value (a string) as secret; returns whether anything new was learnt."""
        if not isinstance(value, str):
            return False
        value = str(value)  # a plain copy of a tagged or other str subclass
        if not value.strip():
            return False
        forms = {value}
        if len(value) >= MIN_SUBSTRING:
            forms.update(_encodings(value))
        if '\n' in value:
            forms.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 8)
        new = False
        for form in forms:
            if form and form not in self._kinds:
                self._kinds[form] = kind
                new = True
        if new:
            self._pattern = None
        return new

    def mask(self, text):
        """text with every known value replaced by its marker."""
        if not self._kinds or not isinstance(text, str) or not text:
            return text
        if text in self._kinds:
            return marker(self._kinds[text])
        if self._pattern is None:
            long_forms = sorted((form for form in self._kinds if len(form) >= MIN_SUBSTRING), key=len, reverse=True)
            self._pattern = re.compile('|'.join(re.escape(form) for form in long_forms)) if long_forms else False
        if not self._pattern:
            return text
        return self._pattern.sub(lambda match: marker(self._kinds[match.group(0)]), text)


def _encodings(value):
    raw = value.encode('utf-8', 'surrogatepass')
    encoded = base64.b64encode(raw).decode('ascii')
    forms = {encoded, encoded.rstrip('='), base64.urlsafe_b64encode(raw).decode('ascii').rstrip('='),
             json.dumps(value)[1:-1]}
    if quote is not None:
        forms.update((quote(value, safe=''), quote_plus(value, safe=''), quote(value)))
    return forms


# ----------------------------------------------------------------------
# Text


def mask_url_credentials(text):
    """The password of `scheme://user:password@host` (or a lone user name, often a token) hidden.

    >>> mask_url_credentials('postgresql://quiz:s3cr3t@db1/quiz and https://tok3n@github.com/o/r')
    'postgresql://quiz:<redacted:url-password>@db1/quiz and https://<redacted:url-user>@github.com/o/r'
    """
    if not isinstance(text, str) or '://' not in text:
        return text
    return _URL_RE.sub(_url_credentials, text)


def _url_credentials(match):
    scheme, info = match.group('scheme'), match.group('info')
    user, colon, password = info.partition(':')
    if not info or '/' in user or '?' in user or '#' in user:
        return match.group(0)  # no userinfo: the @ belongs to a path or a query
    if colon:
        head = re.split(r'[/?#]', password, 1)[0]
        if head.isdigit() and head != password:
            return match.group(0)  # host:port/path...@: the @ comes after the authority
        if not password:
            return match.group(0)
        return '%s%s:%s@' % (scheme, user, marker(KIND_URL_PASSWORD))
    return '%s%s@' % (scheme, marker(KIND_URL_USER))


def _mask_pem(text):
    if '-----BEGIN ' not in text:
        return text

    def hide(match):
        kind = KIND_PRIVATE_KEY if 'PRIVATE' in match.group('label') else KIND_PEM
        return match.group('begin') + marker(kind) + match.group('end')

    return _PEM_RE.sub(hide, text)


def _line(text, pos, diff):
    """(indentation, content) of the line holding pos; in a unified diff its first column (+, -, space) is left out."""
    start = text.rfind('\n', 0, pos) + 1
    end = text.find('\n', start)
    line = text[start:] if end < 0 else text[start:end]
    if diff and line[:1] in ('+', '-', ' '):
        line = line[1:]
    content = line.lstrip(' \t')
    return len(line) - len(content), content


def _indented_block_end(text, pos, indent, diff, sequence):
    """End of the lines after pos (pos at a newline) that belong to a value at indent: indented deeper, or,
    for a nested value (sequence), a YAML sequence at the same indentation. pos if there are none."""
    end = pos
    cursor = pos
    while cursor < len(text) and text[cursor] == '\n':
        next_nl = text.find('\n', cursor + 1)
        line_end = len(text) if next_nl < 0 else next_nl
        if text[cursor + 1:line_end].strip():
            line_indent, content = _line(text, cursor + 1, diff)
            inside = line_indent > indent or (sequence and line_indent == indent and content[:2] in ('- ', '-'))
            if not inside:
                break
            end = line_end
        cursor = line_end
    return end


def _mask_block_lines(text, start, end, diff):
    """Each non-blank line in text[start:end] keeps its diff sign and indentation; its content becomes a marker."""
    out = []
    for line in text[start:end].split('\n'):
        if not line.strip():
            out.append(line)
            continue
        sign = line[0] if diff and line[:1] in ('+', '-', ' ') else ''
        body = line[len(sign):]
        indent = body[:len(body) - len(body.lstrip(' \t'))]
        dash = '- ' if body.lstrip(' \t').startswith('- ') else ''  # a YAML sequence stays one
        out.append(sign + indent + dash + marker(KIND_NAMED))
    return '\n'.join(out)


def _value_span(text, pos, sep, diff):
    """(start, end, kind) of the value after a separator ending at pos, or None when there is none to hide.

    kind: 'quoted' (start/end inside the quotes), 'plain', 'block' (whole lines below).
    """
    if text.startswith(MARKER_PREFIX, pos):
        return None
    if text.startswith(('\\"', "\\'"), pos):
        close = text[pos:pos + 2]
        end = text.find(close, pos + 2)
        line_end = text.find('\n', pos)
        if end < 0 or (0 <= line_end < end):
            end = len(text) if line_end < 0 else line_end
        return (pos + 2, end, 'quoted')
    char = text[pos:pos + 1]
    if char in ('"', "'"):
        cursor = pos + 1
        while cursor < len(text):
            if text[cursor] == '\\':
                cursor += 2
                continue
            if text[cursor] in (char, '\n'):
                break
            cursor += 1
        return (pos + 1, min(cursor, len(text)), 'quoted')
    if ':' in sep:
        indicator = _BLOCK_INDICATOR_RE.match(text, pos)
        if indicator or char in ('\n', ''):
            after = indicator.end() if indicator else pos
            end = _indented_block_end(text, after, _line(text, pos, diff)[0], diff, sequence=not indicator)
            return (after, end, 'block') if end > after else None
        end = text.find('\n', pos)
        end = len(text) if end < 0 else end
        return (pos, len(text[pos:end].rstrip()) + pos, 'plain')
    if sep.strip() == '=' and sep.startswith((' ', '\t')) and sep.endswith((' ', '\t')):
        end = text.find('\n', pos)  # ini style `name = value with spaces`
        end = len(text) if end < 0 else end
        return (pos, len(text[pos:end].rstrip()) + pos, 'plain')
    match = _UNQUOTED_RE.match(text, pos)
    return (pos, match.end(), 'plain') if match.end() > pos else None


def _masked(text, span, diff):
    start, end, kind = span
    if kind == 'block':
        return _mask_block_lines(text, start, end, diff)
    return marker(KIND_NAMED)


class _Pieces(object):
    """The text rebuilt once, from its unchanged stretches and the markers that replace values."""

    def __init__(self, text):
        self.text = text
        self.parts = []
        self.last = 0

    def replace(self, span, diff):
        self.parts.append(self.text[self.last:span[0]])
        self.parts.append(_masked(self.text, span, diff))
        self.last = span[1]
        return span[1]

    def result(self):
        if not self.parts:
            return self.text
        self.parts.append(self.text[self.last:])
        return ''.join(self.parts)


def _item_names(text, pos, starts):
    """The name/key fields of the {name: X, value: Y} item around pos; starts: where items start in text."""
    index = bisect.bisect_right(starts, pos)
    low = max(starts[index - 1] if index else 0, pos - _ITEM_WINDOW)
    high = min(starts[index] if index < len(starts) else len(text), pos + _ITEM_WINDOW)
    return [m.group('name') for m in _ITEM_NAME_RE.finditer(text, low, high)]


def _mask_assignments(text, diff):
    pieces = _Pieces(text)
    pos = 0
    starts = None
    while True:
        match = _ASSIGN_RE.search(text, pos)
        if match is None:
            return pieces.result()
        name = match.group('name')
        pos = match.end()
        lowered = name.lower()
        if lowered in ITEM_VALUE_FIELDS:
            if starts is None:
                starts = [m.start() for m in (_DIFF_ITEM_START_RE if diff else _ITEM_START_RE).finditer(text)]
            secret = any(is_secret_name(item) for item in _item_names(text, match.start(), starts))
        elif lowered in ITEM_NAME_FIELDS:
            # A name field holds the name, shown; `key: <data>` outside a {key: X, value: Y} item is hidden.
            near = (max(0, match.start() - _ITEM_WINDOW), min(len(text), match.end() + _ITEM_WINDOW))
            secret = lowered == 'key' and not _ITEM_VALUE_RE.search(text, *near)
        else:
            secret = is_secret_name(name)
        if secret:
            span = _value_span(text, match.end(), match.group('sep'), diff)
            if span is not None:
                pos = pieces.replace(span, diff)


def _mask_flags(text, diff):
    pieces = _Pieces(text)
    pos = 0
    while True:
        match = _FLAG_RE.search(text, pos)
        if match is None:
            return pieces.result()
        pos = match.end()
        if not is_secret_name(match.group('flag')[2:]) or text.startswith(('-', '\n'), match.end()):
            continue
        if match.group('sep') != '=' and text[match.end():match.end() + 1] not in ('"', "'"):
            span = (match.end(), _NON_SPACE_RE.match(text, match.end()).end(), 'plain')  # `--token VALUE`
        else:
            span = _value_span(text, match.end(), '=', diff)
        if span is not None and span[1] > span[0]:
            pos = pieces.replace(span, diff)


def redact_text(text, secrets=None):
    """text with every secret it shows replaced by a marker saying what kind of thing was hidden.

    secrets: a SecretValues of values known to be secret (optional).

    >>> redact_text('db_password: two words\\nport: 5432')
    'db_password: <redacted:named-secret>\\nport: 5432'
    """
    if not isinstance(text, str) or not text:
        return text
    if secrets is not None:
        text = secrets.mask(text)
    text = _mask_pem(text)
    text = mask_url_credentials(text)
    if 'eyJ' in text:
        text = _JWT_RE.sub(marker(KIND_JWT), text)
    text = _AUTH_RE.sub(lambda m: m.group('scheme') + m.group('space') + marker(KIND_AUTH), text)
    diff = _DIFF_RE.search(text) is not None  # a unified diff: each line starts with +, - or a space
    text = _mask_assignments(text, diff)
    text = _mask_flags(text, diff)
    return text


# ----------------------------------------------------------------------
# Data


def _item_fields(mapping):
    """(name field, value field) when mapping is a {name|key: X, value: Y} item, else None."""
    names = dict((str(key).lower(), key) for key in mapping)
    value_field = next((names[f] for f in ITEM_VALUE_FIELDS if f in names), None)
    name_field = next((names[f] for f in ITEM_NAME_FIELDS if f in names), None)
    if value_field is None or name_field is None or not isinstance(mapping[name_field], str):
        return None
    return name_field, value_field


def redact_data(value, secrets=None, _depth=0):
    """A JSON-safe copy of value: values under secret names hidden, texts redacted, key names kept.

    >>> redact_data({'user': 'app', 'password': 'x', 'env': [{'name': 'API_TOKEN', 'value': 'y'}]})
    {'user': 'app', 'password': '<redacted:named-secret>', 'env': [{'name': 'API_TOKEN', 'value': '<redacted:named-secret>'}]}
    """
    if _depth > 32:
        return '<too deep>'
    if isinstance(value, dict):
        item = _item_fields(value)
        out = {}
        for key, sub in value.items():
            name = redact_text(str(key), secrets)
            if item is not None and key == item[1]:
                hidden = is_secret_name(value[item[0]])
            elif item is not None and key == item[0]:
                hidden = False
            else:
                hidden = is_secret_name(str(key))
            if hidden and sub is not None and not isinstance(sub, bool):
                out[name] = marker(KIND_NAMED)
            else:
                out[name] = redact_data(sub, secrets, _depth + 1)
        return out
    if isinstance(value, (list, tuple)) and len(value) > 1 and all(isinstance(sub, str) for sub in value):
        # Lines of one text (stdout_lines): a secret's name and its value, or a PEM header and its body,
        # sit on different lines, so the lines are redacted together.
        joined = '\n'.join(value)
        clean = redact_text(joined, secrets)
        lines = list(value) if clean == joined else clean.split('\n')
        if len(lines) == len(value):
            # An argument vector: ['mysqladmin', '--password', 'VALUE'].
            for index, word in enumerate(value[:-1]):
                if _ARGV_FLAG_RE.match(word) and is_secret_name(word.lstrip('-')):
                    lines[index + 1] = marker(KIND_NAMED)
        return lines
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_data(sub, secrets, _depth + 1) for sub in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)  # NaN is not JSON
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    return redact_text(str(value), secrets)


# ----------------------------------------------------------------------
# Program output (a migration's stderr, a command's error)

_CONTROL_RE = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def known_secrets(values):
    """A SecretValues of values (None and non-strings skipped); a value that is a URL
    with a password adds that password too, as it is and URL-decoded, so that the
    URL itself, once masked, still shows its user, host and path."""
    secrets = SecretValues()
    for value in values or ():
        if value is None:
            continue
        value = str(value)
        secrets.add(value)
        for match in _URL_RE.finditer(value):
            info = match.group('info')
            if ':' in info:
                password = info.split(':', 1)[1]
                secrets.add(password, KIND_URL_PASSWORD)
                if unquote is not None:
                    secrets.add(unquote(password), KIND_URL_PASSWORD)
    return secrets


def redact(text, secrets=()):
    """redact_text for a program's output, with secrets a plain list of values.

    The patterns go first, so a DSN that is itself a secret keeps its user, host and
    database; then each known value, wherever it still appears.
    """
    if text is None:
        return ''
    if not isinstance(text, str):
        text = str(text)
    known = known_secrets(secrets)
    return known.mask(redact_text(text)) if len(known) else redact_text(text)


def summary(text, limit=500, secrets=()):
    """A redacted, bounded, one-paragraph summary of a program's output.

    Colour codes and control characters go, blank lines fold, and when the text is
    longer than limit its end is kept (errors come last), after '... '. Redaction
    runs before the cut, so a cut never leaves part of a secret.
    """
    clean = _CONTROL_RE.sub('', redact(text, secrets))
    clean = ' | '.join(line.strip() for line in clean.strip().splitlines() if line.strip())
    if limit is not None and len(clean) > limit:
        keep = max(limit - 4, 0)
        clean = '... ' + clean[len(clean) - keep:] if keep else clean[:limit]
    return clean
