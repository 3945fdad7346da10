# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make `import ansible_collections.aiquiz.ops...` resolve to this working tree."""

from __future__ import annotations

import os
import sys

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', 'collections'))
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


def _install_collection_loader():
    # As `ansible-test units` does: with Ansible's collection loader in place,
    # plain imports and plugin loaders (filter_loader.get('aiquiz.ops.canary_weights'))
    # yield the same modules.
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([COLLECTIONS])


_install_collection_loader()
