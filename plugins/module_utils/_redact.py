# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: shared by its modules and plugins
# (release ledger, the redact filter). Its functions may change or go away in
# any release; do not import it from outside this collection.
"""Masking credentials in free text that a program printed (a migration's
stderr, a command's error), before the text goes into a message, a file or
an audit trail. What is masked: the password of a URL (scheme://user:PW@,
scheme://:PW@), the value after a secret-looking key (password=..., "token":
"...", PGPASSWORD=...), Authorization headers, PEM private key bodies, and
any value the caller names as secret (also URL-encoded). Standard library
only: it runs on managed hosts and on the controller."""

from __future__ import annotations

import re

from urllib.parse import quote, unquote

MASK = '********'
# Shorter values are too likely to occur by chance (and mask nothing useful).
MIN_SECRET_LEN = 4

# scheme://user:password@ or scheme://:password@. The password runs to the
# last @ of the word: a careless DSN may hold an unencoded @ or /.
_URL_PASSWORD = re.compile(
    r'''(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'"<>]*:)(?P<secret>[^\s'"<>]*)(?=@)''')
# password=x, PGPASSWORD=x, "secret_key": "x y", api-token: x, pwd=x (libpq keyword DSNs).
_KEY_VALUE = re.compile(
    r'''(?P<head>(?P<key>\b[\w.-]*(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|'''
    r'''credential|private[_-]?key)[\w.-]*)["']?[ \t]*[:=][ \t]*)'''
    r'''(?:(?P<quote>["'])(?P<quoted>(?:\\.|(?!(?P=quote)).)*)(?:(?P=quote)|$)|(?P<bare>[^\s"',;&}\])]+))''',
    re.IGNORECASE | re.MULTILINE)
_AUTHORIZATION = re.compile(r'(?P<head>\bAuthorization[ \t]*:[ \t]*(?:Basic|Bearer|Token|Digest)?[ \t]*)(?P<secret>\S+)',
                            re.IGNORECASE)
_PEM_PRIVATE = re.compile(r'-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----.*?(?:-----END (?P=kind)-----|\Z)',
                          re.DOTALL)
_CONTROL = re.compile(r'[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')


def _key_value(match):
    if match.group('quote'):
        return match.group('head') + match.group('quote') + MASK + match.group('quote')
    return match.group('head') + MASK


def _known(secrets):
    """The values to mask: each secret, and the password inside a secret that is a URL
    (so that the URL, once its password is masked, still shows its user, host and path)."""
    values = set()
    for secret in secrets or ():
        if secret is None:
            continue
        secret = str(secret)
        values.add(secret)
        for match in _URL_PASSWORD.finditer(secret):
            values.add(match.group('secret'))
            values.add(unquote(match.group('secret')))
    return sorted((value for value in values if len(value) >= MIN_SECRET_LEN), key=len, reverse=True)


def redact(text, secrets=()):
    """text with every credential it holds replaced by ********.

    secrets: values known to be secret (the caller's vault values, say), masked
    wherever they appear, as they are and URL-encoded. The patterns go first,
    so a DSN that is itself a secret keeps its user, host and database.
    """
    if text is None:
        return ''
    if not isinstance(text, str):
        text = str(text)
    text = _PEM_PRIVATE.sub(lambda m: '-----BEGIN %s-----%s-----END %s-----' % (m.group('kind'), MASK, m.group('kind')),
                            text)
    text = _URL_PASSWORD.sub(lambda m: m.group('head') + MASK, text)
    text = _AUTHORIZATION.sub(lambda m: m.group('head') + MASK, text)
    text = _KEY_VALUE.sub(_key_value, text)
    for value in _known(secrets):
        text = text.replace(value, MASK)
        encoded = quote(value, safe='')
        if encoded != value:
            text = text.replace(encoded, MASK)
    return text


def summary(text, limit=500, secrets=()):
    """A redacted, bounded, one-paragraph summary of a program's output.

    Control characters go, runs of blank lines fold, and when the text is
    longer than limit its END is kept (errors come last), after '... '.
    Redaction runs before the cut, so a cut never leaves half a secret.
    """
    clean = _CONTROL.sub('', redact(text, secrets))
    lines = [line.rstrip() for line in clean.strip().splitlines()]
    clean = ' | '.join(line.strip() for line in lines if line.strip())
    if limit is not None and len(clean) > limit:
        keep = max(limit - 4, 0)
        clean = '... ' + clean[len(clean) - keep:] if keep else clean[:limit]
    return clean
