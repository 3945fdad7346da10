# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the aiquiz.ops collection: this file backs the
# aiquiz.ops.release module only. Its functions may change or go away in any
# release; do not import it from outside this collection.
#
# The release ledger of one workload on one host: which release runs on which
# colour (blue, green, and any more the caller names), and in which state. Everything here runs on the
# managed host (Python 3.8+, standard library only). The state machine works on
# plain dicts (transition() never touches the disk) so it can be tested alone;
# load(), write_atomic() and locked() are the file side. project_name() is the
# one place that names a release's Docker Compose project.

from __future__ import annotations

import copy
import datetime
import errno
import json
import os
import re

from ansible_collections.aiquiz.ops.plugins.module_utils import _files
from ansible_collections.aiquiz.ops.plugins.module_utils import _redact

LEDGER_VERSION = 1
# The colours when the caller names none: the blue-green pair.
COLOURS = ('blue', 'green')
# A colour ends a Compose project name: no '_' (see project_name()).
COLOUR_RE = re.compile(r'^[a-z][a-z0-9-]{0,31}$')
STATES = ('deploying', 'active', 'standby', 'failed')
ACTIONS = ('query',) + STATES + ('absent',)
# The reason of a failure may quote a program's output: root only.
FILE_MODE = 0o600
DIR_MODE = 0o755
# Release ids and workload names in the ledger.
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$')
# Workloads that run as Compose projects (compose_app_name): what Compose
# accepts in a project name, within NAME_RE.
COMPOSE_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]{0,127}$')
# A reason is a summary: its end, credentials masked.
REASON_MAX = 1000


class LedgerError(Exception):
    """A ledger that cannot be read, or a transition the state machine refuses."""


def utc_now():
    """Current UTC time as ISO-8601 with a Z suffix, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def slug(release):
    """The release id as it appears in a Compose project name: lowercase, every
    character but a-z, 0-9 and '-' read as '-'. Never holds '_'."""
    return re.sub(r'[^a-z0-9-]', '-', release.lower())


def project_name(workload, release, colour):
    """Compose project of a release on a colour: <workload>_<slug>_<colour>.

    Injective for one workload's distinct slugs (transition() refuses a release
    whose slug another release has), and across workloads: slug and colour hold
    no '_', so the last two '_' split any name back into its three parts,
    whatever '_' the workload name holds. None for a workload name Compose
    does not accept.
    """
    if not COMPOSE_NAME_RE.match(workload or ''):
        return None
    return '%s_%s_%s' % (workload, slug(release), colour)


def projects(ledger):
    """Compose project of each release in the ledger, on its recorded colour."""
    return dict((entry['id'], project_name(ledger['workload'], entry['id'], entry['colour']))
                for entry in ledger['releases'])


def clean_reason(reason):
    """A reason fit for the ledger: credentials masked, at most REASON_MAX characters (its end)."""
    if reason is None:
        return None
    return _redact.summary(reason, REASON_MAX)


def empty_ledger(workload):
    return {'version': LEDGER_VERSION, 'workload': workload, 'colours': {}, 'releases': []}


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

def colour_errors(colours):
    """Readable errors in a list of colours (None: the default pair)."""
    if colours is None:
        return []
    errors = ['colour %r must be 1-32 lowercase letters, digits and "-", starting with a letter' % (colour,)
              for colour in colours if not isinstance(colour, str) or not COLOUR_RE.match(colour)]
    if len(set(colours)) != len(colours):
        errors.append('colours must be distinct, got %s' % ', '.join(str(c) for c in colours))
    if len(colours) < 2:
        named = ', '.join(str(colour) for colour in colours) or 'none'
        errors.append('colours must name at least two colours, got %s' % named)
    return errors


def validate_params(params):
    """Return a list of readable errors in the module arguments."""
    errors = colour_errors(params.get('colours'))
    if not NAME_RE.match(params['workload'] or ''):
        errors.append('workload must be 1-128 letters, digits, ".", "_", "+" or "-" starting with a letter or '
                      'digit, got %r' % params['workload'])
    release = params.get('release')
    if release is not None and not NAME_RE.match(release):
        errors.append('release must be 1-128 letters, digits, ".", "_", "+" or "-" starting with a letter or '
                      'digit, got %r' % release)
    keep = params.get('keep')
    if keep is not None and keep < 1:
        errors.append('keep must be >= 1, got %d' % keep)
    images = params.get('images')
    if images is not None:
        if params['state'] == 'deploying' and not images:
            errors.append('images must name at least one service when state=deploying')
        for service, ref in sorted(images.items()):
            if not isinstance(ref, str) or not ref.strip():
                errors.append('images.%s must be a non-empty image reference (string), got %r' % (service, ref))
    if params.get('lock_timeout') is not None and params['lock_timeout'] < 0:
        errors.append('lock_timeout must be >= 0, got %s' % params['lock_timeout'])
    if not os.path.isabs(params['path']):
        errors.append('path must be an absolute path, got %r' % params['path'])
    return errors


def check_ledger(data, path, colours=None):
    """Raise LedgerError naming the first problem of a ledger read from path.

    Its colours must be among colours (default COLOURS): a ledger of the
    blue-green pair loads wherever blue and green are configured.
    """
    colours = tuple(colours or COLOURS)

    def bad(what):
        raise LedgerError('release ledger %s is corrupt: %s. Fix it by hand or move it aside (the next deploy then '
                          'starts a new ledger); the module never overwrites a ledger it cannot read' % (path, what))

    if not isinstance(data, dict):
        bad('the top level is a %s, not an object' % type(data).__name__)
    version = data.get('version')
    if version != LEDGER_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > LEDGER_VERSION:
            raise LedgerError('release ledger %s has format version %d; this aiquiz.ops reads version %d only, '
                              'upgrade the collection' % (path, version, LEDGER_VERSION))
        bad('"version" is %r, expected %d' % (version, LEDGER_VERSION))
    if not isinstance(data.get('workload'), str):
        bad('"workload" is missing or not a string')
    releases = data.get('releases')
    if not isinstance(releases, list):
        bad('"releases" is missing or not a list')
    seen = set()
    active = []
    for index, entry in enumerate(releases):
        where = 'releases[%d]' % index
        if not isinstance(entry, dict):
            bad('%s is not an object' % where)
        rid = entry.get('id')
        if not isinstance(rid, str) or not rid:
            bad('%s has no "id" string' % where)
        where = '%s (%s)' % (where, rid)
        if rid in seen:
            bad('release id %s appears twice' % rid)
        seen.add(rid)
        if entry.get('colour') not in colours:
            bad('%s: "colour" is %r, expected one of the configured colours %s (a colour taken out of the '
                'configuration while a release is recorded on it: configure it again)'
                % (where, entry.get('colour'), ', '.join(colours)))
        if entry.get('state') not in STATES:
            bad('%s: "state" is %r, expected one of %s' % (where, entry.get('state'), ', '.join(STATES)))
        images = entry.get('images')
        if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
            bad('%s: "images" is not an object of service names to image references' % where)
        for key in ('created', 'updated'):
            if not isinstance(entry.get(key), str):
                bad('%s: "%s" is not a timestamp string' % (where, key))
        for key in ('activated', 'reason'):
            if entry.get(key) is not None and not isinstance(entry.get(key), str):
                bad('%s: "%s" is neither null nor a string' % (where, key))
        history = entry.get('history')
        if not isinstance(history, list) or not all(
                isinstance(event, dict) and event.get('state') in STATES and isinstance(event.get('at'), str)
                for event in history):
            bad('%s: "history" is not a list of {state, at} objects' % where)
        if entry['state'] == 'active':
            active.append(rid)
    if len(active) > 1:
        bad('more than one release is active (%s)' % ', '.join(active))
    allowed = colours
    colours = data.get('colours', {})
    if not isinstance(colours, dict) or any(
            key not in allowed or value not in seen for key, value in colours.items()):
        bad('"colours" must map the configured colours (%s) to ids of releases in the ledger, got %r'
            % (', '.join(allowed), colours))


# --------------------------------------------------------------------------
# File side
# --------------------------------------------------------------------------

def load(path, workload, colours=None):
    """Return (ledger, existed). A missing file is an empty ledger. colours: as check_ledger()."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return empty_ledger(workload), False
        raise LedgerError('cannot read release ledger %s: %s' % (path, exc.strerror or exc))
    if not raw.strip():
        raise LedgerError('release ledger %s is corrupt: the file is empty. Fix it by hand or move it aside (the '
                          'next deploy then starts a new ledger); the module never overwrites a ledger it cannot '
                          'read' % path)
    try:
        data = json.loads(raw.decode('utf-8'))
    except UnicodeDecodeError as exc:
        raise LedgerError('release ledger %s is corrupt: not UTF-8 text (%s). Fix it by hand or move it aside; the '
                          'module never overwrites a ledger it cannot read' % (path, exc))
    except ValueError as exc:
        raise LedgerError('release ledger %s is corrupt: not valid JSON (%s). Fix it by hand or move it aside (the '
                          'next deploy then starts a new ledger); the module never overwrites a ledger it cannot '
                          'read' % (path, exc))
    check_ledger(data, path, colours)
    if data['workload'] != workload:
        raise LedgerError('release ledger %s belongs to workload %r, not %r; every workload needs a ledger file of '
                          'its own' % (path, data['workload'], workload))
    data.setdefault('colours', {})
    return data, True


def serialize(ledger):
    return json.dumps(ledger, indent=2, sort_keys=True) + '\n'


def write_atomic(path, ledger):
    """Write the ledger to a temporary file beside path, fsync it, rename it over path."""
    _files.write_atomic(path, serialize(ledger), FILE_MODE, DIR_MODE)


def loose_mode(path):
    """The mode of an existing ledger that others than root may read, None otherwise."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except (IOError, OSError):
        return None
    return mode if mode != FILE_MODE else None


def tighten(path):
    os.chmod(path, FILE_MODE)


def locked(path, timeout, poll=0.05):
    """Hold an exclusive fcntl lock on <path>.lock, waiting up to timeout seconds."""
    return _files.locked(path, timeout, lambda name: LedgerError(
        'release ledger %s is locked by another process (lock file %s) and stayed locked for %s s; another deploy '
        'of this workload is running on this host, wait for it or raise lock_timeout' % (path, name, timeout)),
        poll, FILE_MODE, DIR_MODE)


# --------------------------------------------------------------------------
# State machine
# --------------------------------------------------------------------------

def find(ledger, release):
    for entry in ledger['releases']:
        if entry['id'] == release:
            return entry
    return None


def active_entry(ledger):
    for entry in ledger['releases']:
        if entry['state'] == 'active':
            return entry
    return None


def kept(ledger, entry):
    """True when entry's containers are still on its colour (no release deployed there since)."""
    return entry is not None and ledger.get('colours', {}).get(entry['colour']) == entry['id']


def idle_colour(ledger, colours=None, release=None):
    """The colour a deploy of release (None: a new one) goes to.

    Never the active release's colour, and never the colour where the
    previous good release's containers are kept, when another colour is free
    (with two colours there is none: the pair's old rule, the colour the active
    release does not use). release, when it is the one kept there, goes back to
    its own colour. Otherwise the first free colour after the active one's, in
    the order of colours: deploys in a row take the colours in turn.
    """
    colours = tuple(colours or COLOURS)
    active = active_entry(ledger)
    good = previous_good(ledger)
    held = set()
    if active is not None:
        held.add(active['colour'])
    own = find(ledger, release) if release is not None else None
    if own is not None and own is not active and own['colour'] in colours and own['colour'] not in held \
            and kept(ledger, own):
        return own['colour']
    start = colours.index(active['colour']) + 1 if active is not None and active['colour'] in colours else 0
    turn = colours[start:] + colours[:start]
    free = [colour for colour in turn if colour not in held]
    spare = [colour for colour in free if not (kept(ledger, good) and colour == good['colour'])]
    return (spare or free)[0]


def previous_good(ledger):
    """The standby release activated most recently, or None.

    Ties of the one-second timestamps go to the release deployed later, that is
    the one nearer the front of the newest-first list.
    """
    best = None
    best_key = None
    for index, entry in enumerate(ledger['releases']):
        if entry['state'] != 'standby' or not entry.get('activated'):
            continue
        key = (entry['activated'], -index)
        if best_key is None or key > best_key:
            best, best_key = entry, key
    return best


def release_ids(ledger):
    return [entry['id'] for entry in ledger['releases']]


def prunable(ledger, keep):
    """Ids beyond the keep newest, never the active release nor the previous good one."""
    protected = set(entry['id'] for entry in (active_entry(ledger), previous_good(ledger)) if entry)
    return [rid for rid in release_ids(ledger)[keep:] if rid not in protected]


def known_releases(ledger):
    ids = release_ids(ledger)
    if not ids:
        return 'the ledger has no releases yet'
    return 'releases in the ledger, newest first: %s' % ', '.join(
        '%s (%s)' % (entry['id'], entry['state']) for entry in ledger['releases'])


def _set_state(entry, state, reason, now):
    entry['state'] = state
    entry['reason'] = reason
    entry['updated'] = now
    entry['history'].append({'state': state, 'at': now})


def _require(ledger, release, path, action):
    entry = find(ledger, release)
    if entry is None:
        raise LedgerError('release %s is not in the ledger %s of workload %s, cannot mark it %s; %s'
                          % (release, path, ledger['workload'], action, known_releases(ledger)))
    return entry


def _check_images(entry, images):
    if images is not None and images != entry['images']:
        raise LedgerError('release %s was deployed with images %s, not %s; a release id names one set of images, '
                          'deploy the new images under a new release id'
                          % (entry['id'], json.dumps(entry['images'], sort_keys=True),
                             json.dumps(images, sort_keys=True)))


def _check_slug(ledger, release, path):
    for other in ledger['releases']:
        if other['id'] != release and slug(other['id']) == slug(release):
            raise LedgerError(
                'release %s would share its Compose project names (%s) with release %s in the ledger %s; release ids '
                'of a workload must stay distinct when lowercased with ".", "_" and "+" read as "-". Deploy it under '
                'another id, or remove %s from the ledger first (state=absent)'
                % (release, project_name(ledger['workload'], release, '<colour>') or slug(release), other['id'],
                   path, other['id']))


def transition(ledger, params, now=None):
    """Apply params['state'] to a copy of ledger.

    Returns (new ledger, info) where info has 'noop' (deploying a release that is
    already active with the same images) and 'removed' (ids taken out by
    state=absent). Raises LedgerError for a transition the ledger forbids.
    """
    now = now or utc_now()
    new = copy.deepcopy(ledger)
    new.setdefault('colours', {})
    state = params['state']
    release = params.get('release')
    images = params.get('images')
    reason = clean_reason(params.get('reason'))
    path = params.get('path')
    info = {'noop': False, 'removed': []}

    if state == 'query':
        if release is not None:
            entry = find(new, release)
            if entry is None:
                raise LedgerError('release %s is not in the ledger %s of workload %s; %s'
                                  % (release, path, new['workload'], known_releases(new)))
            _check_images(entry, images)
        return new, info

    if state == 'deploying':
        active = active_entry(new)
        entry = find(new, release)
        if entry is not None and entry is active:
            if images != entry['images']:
                _check_images(entry, images)
            info['noop'] = True
            return new, info
        _check_slug(new, release, path)
        colour = idle_colour(new, params.get('colours'), release)
        # An unfinished deploy of another release on this colour is superseded:
        # its containers are about to be replaced.
        for other in new['releases']:
            if other is not entry and other['state'] == 'deploying' and other['colour'] == colour:
                _set_state(other, 'failed', 'superseded by release %s before it was activated' % release, now)
        if entry is None:
            entry = {
                'id': release, 'colour': colour, 'state': 'deploying', 'images': dict(images),
                'created': now, 'updated': now, 'activated': None, 'reason': reason,
                'history': [{'state': 'deploying', 'at': now}],
            }
            new['releases'].insert(0, entry)
        elif (entry['state'] != 'deploying' or entry['colour'] != colour or entry['images'] != images
              or entry['reason'] != reason or new['colours'].get(colour) != release):
            entry['colour'] = colour
            entry['images'] = dict(images)
            _set_state(entry, 'deploying', reason, now)
            new['releases'].remove(entry)
            new['releases'].insert(0, entry)
        new['colours'][colour] = release
        return new, info

    if state == 'absent':
        targets = []
        if release is not None:
            entry = find(new, release)
            if entry is not None:
                if entry['state'] == 'active':
                    raise LedgerError('release %s is the active release of workload %s and cannot be removed; '
                                      'activate another release first' % (release, new['workload']))
                targets.append(release)
        if params.get('keep') is not None:
            targets.extend(rid for rid in prunable(new, params['keep']) if rid not in targets)
        for rid in targets:
            new['releases'].remove(find(new, rid))
            for colour in list(new['colours']):
                if new['colours'][colour] == rid:
                    del new['colours'][colour]
        info['removed'] = targets
        return new, info

    entry = _require(new, release, path, state)
    _check_images(entry, images)

    if state == 'active':
        if entry['state'] == 'active':
            return new, info
        if entry['state'] == 'failed':
            raise LedgerError('release %s is marked failed (%s); deploy it again (state=deploying) and pass its '
                              'health gate before activating it' % (release, entry['reason'] or 'no reason given'))
        occupant = new['colours'].get(entry['colour'])
        if occupant != release:
            raise LedgerError('release %s last ran on %s, where release %s has been deployed since; its containers '
                              'are gone, deploy it again (state=deploying) before activating it'
                              % (release, entry['colour'], occupant))
        previous = active_entry(new)
        if previous is not None:
            _set_state(previous, 'standby', 'replaced by release %s' % release, now)
        _set_state(entry, 'active', reason, now)
        entry['activated'] = now
        return new, info

    # failed, standby
    if entry['state'] == 'active':
        raise LedgerError('release %s is the active release of workload %s; activate another release first (the '
                          'active one then becomes standby), then mark it %s' % (release, new['workload'], state))
    if entry['state'] != state or entry['reason'] != reason:
        _set_state(entry, state, reason, now)
    return new, info


def facts(ledger, release=None, keep=None, colours=None):
    """The return values derived from a ledger."""
    active = active_entry(ledger)
    good = previous_good(ledger)
    entry = find(ledger, release) if release is not None else None
    return {
        'ledger': ledger,
        'active': active,
        'previous_good': good,
        'colour': entry['colour'] if entry else None,
        'project': project_name(ledger['workload'], entry['id'], entry['colour']) if entry else None,
        'projects': projects(ledger),
        'idle_colour': idle_colour(ledger, colours),
        'releases': release_ids(ledger),
        'prunable': prunable(ledger, keep) if keep is not None else [],
    }
