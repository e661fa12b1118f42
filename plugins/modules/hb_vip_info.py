#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hbvip team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hb_vip_info: the pair and every resource group as the agent sees them; never changes anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hb_vip_info
short_description: Read the pair, its resource groups, their home nodes and holders
version_added: 0.1.0
description:
  - Returns this node, its peer and every resource group of C(haresources) with its home node and the
    node that holds it, from the running agent (C(hbvip status --json)).
  - When no agent runs on the node, the groups come from the agent's parse of C(haresources)
    (C(hbvip haresources --json)), with no holder.
  - Never changes anything, in check mode or not. To add, change, remove or move a group use
    M(hbvip.heartbeat.hb_vip).
author:
  - hbvip team (@hbvip)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - This module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - The hbvip agent (its C(hbvip) command) on the managed node.
options:
  config_dir:
    description:
      - The directory of C(haresources), read when no agent runs.
    type: path
    default: /etc/ha.d
  hbvip_path:
    description:
      - The C(hbvip) command. Default is C(/opt/hbvip/venv/bin/hbvip), then C(hbvip) on E(PATH).
    type: path
seealso:
  - module: hbvip.heartbeat.hb_vip
"""

EXAMPLES = r"""
- name: Read the pair
  hbvip.heartbeat.hb_vip_info:
  register: pair

- name: Show who serves each VIP
  ansible.builtin.debug:
    msg: "{{ item.vips | join(', ') }}: home {{ item.home_node }}, held by {{ item.holder or 'nobody' }}"
  loop: "{{ pair.groups }}"
  loop_control:
    label: "{{ item.key }}"

- name: Fail unless the peer is up
  ansible.builtin.assert:
    that: pair.peer.state in ['up', 'active']
"""

RETURN = r"""
running:
  description: Whether an agent runs on this node (the rest comes from C(hbvip status) when it does).
  returned: always
  type: bool
  sample: true
node:
  description: This node as its agent sees it, or null when no agent runs.
  returned: always
  type: dict
  contains:
    name:
      description: The node's name (C(uname -n), as in C(ha.cf)).
      type: str
    state:
      description: The node's status word (C(active), C(standby), ...).
      type: str
  sample: {name: db1, state: active}
peer:
  description: The peer as this node's agent sees it, or null when no agent runs.
  returned: always
  type: dict
  contains:
    name:
      description: The peer's node name.
      type: str
    state:
      description: The peer's state (C(active), C(up), C(dead), ...).
      type: str
  sample: {name: db2, state: active}
groups:
  description:
    - Every resource group in C(haresources) order, in the shape of C(hbvip status --json)'s groups.
    - Without an agent, C(holder) is null and C(state) is V(not_running).
  returned: always
  type: list
  elements: dict
  sample:
    - key: IPaddr::10.0.0.50/24/eth0
      home_node: db1
      holder: db1
      state: held
      resources: [IPaddr::10.0.0.50/24/eth0, postgresql]
      vips: [10.0.0.50]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hbvip.heartbeat.plugins.module_utils._hbvip import (
    HbVipCli,
    HbVipError,
    file_groups,
    find_binary,
)


def run(module: AnsibleModule) -> dict:
    p = module.params
    cli = HbVipCli(module, find_binary(module, p["hbvip_path"]), p["config_dir"])
    status = cli.status()
    if status is not None:
        return {
            "changed": False,
            "running": True,
            "node": {"name": status["node"], "state": status["status"]},
            "peer": {"name": status["peer"]["name"], "state": status["peer"]["state"]},
            "groups": status["groups"],
        }
    path = os.path.join(p["config_dir"], "haresources")
    groups = file_groups(cli.haresources(path)) if os.path.exists(path) else []
    return {"changed": False, "running": False, "node": None, "peer": None, "groups": groups}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "config_dir": {"type": "path", "default": "/etc/ha.d"},
            "hbvip_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except HbVipError as exc:
        module.fail_json(msg=exc.msg, **exc.details)


if __name__ == "__main__":
    main()
