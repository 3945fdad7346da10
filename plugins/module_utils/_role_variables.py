# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's variables read as its argument specs take them, for the filters
that check what the specs cannot express (redis_variable_errors,
rabbitmq_variable_errors, postgresql_variable_errors).

Private to the collection (the leading underscore). The role's argument
validation checks a value without converting the variable: "6380" from
extra vars stays text, None passes a str option (a required one too), and a
list option given as text (-e redis_bind=10.0.0.5) passes as text. These
helpers read such values without failing, so that each error is reported
naming its variable instead of ending in a template error.
"""

from __future__ import annotations

import re

from collections.abc import Mapping


def variables_of(variables, names, filter_name, error=ValueError):
    """The dict of a role's variables, checked to hold every name; error (the caller's
    exception class, AnsibleFilterError for a filter) otherwise."""
    if not isinstance(variables, Mapping):
        raise error('%s: expects a dict of the role variables, got %r' % (filter_name, variables))
    missing = [name for name in names if name not in variables]
    if missing:
        raise error('%s: variables missing from the input: %s' % (filter_name, ', '.join(missing)))
    return variables


def text(value):
    """The text of a str option, as its argument spec reads it: None is empty, a number its digits."""
    if value is None:
        return ''
    return value if isinstance(value, str) else str(value)


def whole_number(value):
    """An int, or a whole number written in digits (extra vars arrive as text); None for anything
    else (a bool, a float, a signed text): for ports, counts and weights that a caller range-checks."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.match(r'^[0-9]+$', value.strip()):
        return int(value)
    return None


def ha_group_errors(var, group, members, host, who, in_play):
    """(errors, usable) of a high-availability group given as {host: what the play knows of it}:
    no hosts, an even number or fewer than three, this host outside it, a host the play does not
    reach (in_play(value) is false). usable is false when there is no group to check further."""
    if not isinstance(members, Mapping) or not members:
        return ['%s: "%s" is no inventory group with hosts' % (var, group)], False
    errors = []
    hosts = list(members)
    if len(hosts) < 3 or len(hosts) % 2 == 0:
        errors.append('%s: %d host(s) in "%s" (%s); %s needs an odd number, three or more'
                      % (var, len(hosts), group, ', '.join(hosts), who))
    if host not in members:
        errors.append('%s: this host (%s) is not in "%s"' % (var, host, group))
    missing = [name for name in hosts if not in_play(members[name])]
    if missing:
        errors.append('%s: %s not in this play (--limit?); the whole group runs the role together'
                      % (var, ', '.join(missing)))
    return errors, True


def integer(value):
    """The int of an int option ("6380" from extra vars is 6380), None when it is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def items(errors, variables, name):
    """The items of a list option; anything but a list is reported (in errors) and None returned."""
    value = variables[name]
    if isinstance(value, (list, tuple)):
        return list(value)
    errors.append('%s: "%s" is not a list' % (name, value))
    return None


def has_line_break(value):
    return '\r' in value or '\n' in value


def declared_certificate_errors(variables, prefix):
    """<prefix>_tls_certificate, when set, names a certificate of tls_certificates.

    Reads <prefix>_tls_certificate and tls_certificates (a list of dicts with a name).
    """
    certificate = text(variables[prefix + '_tls_certificate'])
    if not certificate:
        return []
    certificates = variables['tls_certificates']
    if not isinstance(certificates, (list, tuple)):
        certificates = []
    if certificate in [cert.get('name') for cert in certificates if isinstance(cert, Mapping)]:
        return []
    return ['%s_tls_certificate: "%s" is not a certificate of tls_certificates' % (prefix, certificate)]


def tls_source_errors(variables, prefix):
    """With <prefix>_tls_enabled: a certificate of tls_certificates, or all three files.

    Reads <prefix>_tls_certificate, <prefix>_tls_cert_file, <prefix>_tls_key_file,
    <prefix>_tls_ca_file and tls_certificates (a list of dicts with a name).
    """
    if text(variables[prefix + '_tls_certificate']):
        return declared_certificate_errors(variables, prefix)
    files = [prefix + suffix for suffix in ('_tls_cert_file', '_tls_key_file', '_tls_ca_file')]
    if all(text(variables[name]) for name in files):
        return []
    return ['%s_tls_enabled: set %s_tls_certificate, or %s, %s and %s' % ((prefix, prefix) + tuple(files))]
