# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab-only: names the lab's hosts after their label, once docker_containers has found them.

Not part of the collection: ansible.cfg loads it from tests/lab/inventory_plugins.
community.docker.docker_containers names each host after its container
(aiquiz-lab-app1) and has no option for another name; the lab's playbooks,
tests and certificates know the hosts as app1, data1, ... (the containers'
hostnames and network aliases). Everything else about the lab's inventory is
docker_containers' own configuration (inventories/lab/aiquiz_lab.docker.yml).
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: lab_hostnames
short_description: Renames hosts after one of their variables
description:
  - Lab-only, loaded from C(tests/lab/inventory_plugins) by the project's C(ansible.cfg).
  - Every host already in the inventory that has the variable O(name_var) is renamed to its value, keeping its
    variables and groups. Hosts without it, or whose new name is taken, keep their names.
  - Runs after the sources that add the hosts: in an inventory directory, name its file so that it sorts after them.
  - Uses a YAML configuration file whose name ends with C(lab_hostnames.yml) or C(lab_hostnames.yaml).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
options:
  plugin:
    description:
      - Token that ensures this is a source file for this plugin.
    type: str
    required: true
    choices: [lab_hostnames]
  name_var:
    description:
      - The host variable whose value becomes the host's name.
    type: str
    default: lab_host
"""

from ansible.plugins.inventory import BaseInventoryPlugin


def renames(hosts, name_var):
    """(old, new) pairs for the hosts (name -> variables) whose name_var names them otherwise, and the skipped ones.

    A new name already taken, by a host of the inventory or an earlier rename, is skipped: (old, new, reason).
    """
    taken = set(hosts)
    moves, skipped = [], []
    for old in sorted(hosts):
        new = str(hosts[old].get(name_var) or '').strip()
        if not new or new == old:
            continue
        if new in taken:
            skipped.append((old, new, 'the name %s is taken' % new))
            continue
        taken.discard(old)
        taken.add(new)
        moves.append((old, new))
    return moves, skipped


class InventoryModule(BaseInventoryPlugin):
    """Renames hosts after one of their variables."""

    NAME = 'lab_hostnames'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('lab_hostnames.yml', 'lab_hostnames.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        name_var = self.get_option('name_var')
        moves, skipped = renames({name: host.vars for name, host in inventory.hosts.items()}, name_var)
        for old, new, reason in skipped:
            self.display.warning('lab_hostnames: host %s keeps its name (%s)' % (old, reason))
        for old, new in moves:
            host = inventory.get_host(old)
            groups = [group.name for group in host.get_groups()]
            variables = dict(host.vars)
            inventory.remove_host(host)
            inventory.add_host(new)
            for key, value in variables.items():
                inventory.set_variable(new, key, value)
            for group in groups:
                inventory.add_child(group, new)
