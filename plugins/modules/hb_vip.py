#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hbvip team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""hb_vip: one VIP's group in haresources, and which node of the pair serves it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hb_vip
short_description: Declare, move and inspect a virtual IP (IPv4 or IPv6) of a Heartbeat/hbvip pair
version_added: 0.1.0
description:
  - Adds, rewrites or removes the resource group of one virtual IP in C(/etc/ha.d/haresources),
    keeping every other line and comment of the file, then reloads the running agent so that the
    other groups (and their VIPs) are left untouched.
  - A VIP's group is the haresources line whose C(IPaddr)/C(IPaddr2)/C(IPv6addr) resource has O(address).
  - O(checks) declares service checks for the group (C(check NAME command ...
    group KEY) lines of C(<config_dir>/hbvip.cf)); the module owns the check lines that name its group and
    keeps every other line.
  - Every edit is validated first with the agent's own grammar (C(hbvip check-config)); a file the
    agent would refuse is never written. The file is replaced atomically.
  - O(state=active) and O(state=standby) move the group to this node or to its peer through the
    running hbvip agent (C(hbvip takeover) / C(hbvip standby)) and return once the move is done.
  - Run O(state=present) and O(state=absent) on both nodes of the pair (the file must be identical on
    both); run O(state=active) and O(state=standby) on the one node that should take or give the VIP.
  - Every option a task leaves out keeps the group's current value, as M(ansible.builtin.user) leaves
    C(shell) alone. A task with only O(address) (and the default O(state=present)) therefore changes
    nothing on an existing group; to read where groups run use M(hbvip.heartbeat.hb_vip_info).
author:
  - hbvip team (@hbvip)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - For O(state=present) and O(state=absent) the diff is the haresources file (a list of two diffs,
        haresources and hbvip.cf, when the group's checks change too); for O(state=active) and
        O(state=standby) it is the group's holder.
  platform:
    platforms: posix
requirements:
  - The hbvip agent (its C(hbvip) command) on the managed node, also when Heartbeat is the engine.
options:
  address:
    description:
      - The virtual IP, IPv4 or IPv6, optionally with its prefix length as the agent writes it, for
        example V(10.0.0.50/24) or V(2001:db8::100/64).
      - A new or rewritten IPv6 resource is written out without C(::) (V(2001:db8:0:0:0:0:0:100)), as
        Heartbeat 3.0.6 needs; a hand-written compressed one that means the same is kept.
      - Its address part identifies the group. Without a prefix an existing group keeps its own.
    type: str
    required: true
  interface:
    description:
      - The interface to put the address on, for example V(eth0).
      - Left out, an existing group keeps its interface; a new group gets none, and the agent picks
        the interface whose subnet holds the address.
    type: str
  home_node:
    description:
      - The node (its C(uname -n), as in C(ha.cf)) that normally holds the group.
      - Required to add a group; left out, an existing group keeps its home node.
    type: str
  resources:
    description:
      - Resource scripts that follow the VIP, in start order, for example V(postgresql) or
        V(failback.sh) (from C(resource.d/) or C(/etc/init.d/)), with C(::) arguments if any.
      - Left out, an existing group keeps its resources; a new one gets none.
    type: list
    elements: str
  resource_type:
    description:
      - The resource agent that manages the address - V(IPaddr) (IPv4, Heartbeat's), V(IPv6addr) (IPv6,
        Heartbeat's) or V(IPaddr2) (both).
      - Left out, an existing group keeps its own; a new group gets V(IPaddr) for IPv4 and V(IPv6addr)
        for IPv6.
    type: str
    choices: [IPaddr, IPaddr2, IPv6addr]
  checks:
    description:
      - Service checks that guard this group, run by the hbvip agent on both nodes (exit 0 = healthy); a
        node whose check fails O(checks[].fall) times in a row may not hold the group and hands it to its
        peer, if the peer may (keepalived's C(vrrp_script)).
      - Written to C(<config_dir>/hbvip.cf) as C(check NAME command '...' [interval T] [timeout T]
        [fall N] [rise N] group KEY), KEY being the group's key (its first resource). The check lines
        that name the group become exactly these, in this order; V([]) removes them.
      - Left out, the group's checks stay (and follow the group when its key changes).
        O(state=absent) removes them with the group.
      - The reload that follows the edit (O(reload)) applies new, changed and removed checks; the agent
        keeps running, an unchanged check keeps its state. Debian's heartbeat ignores hbvip.cf.
    type: list
    elements: dict
    suboptions:
      name:
        description: The check's name (unique in hbvip.cf), as C(hbvip status) shows it.
        type: str
        required: true
      command:
        description: Shell command; exit 0 is healthy.
        type: str
        required: true
      interval:
        description: Time between runs, V(2) seconds or V(500ms) (agent default 1 s).
        type: str
      timeout:
        description: A run that takes longer is killed and counts as failed (agent default the interval).
        type: str
      fall:
        description: Failures in a row that make the node ineligible (agent default 1).
        type: int
      rise:
        description: Successes in a row that make it eligible again (agent default 1).
        type: int
  state:
    description:
      - V(present) and V(absent) edit haresources. V(present) changes only what the task's options
        ask for, so with only O(address) it is a read of an existing group.
      - V(active) makes this node hold the group (takeover); V(standby) makes the peer hold it. Both
        need the hbvip agent running here and the group in its running configuration.
    type: str
    choices: [present, absent, active, standby]
    default: present
  timeout:
    description:
      - Seconds to wait for a move (and for a reload refused during a transition) before failing.
    type: float
    default: 60
  reload:
    description:
      - Reload the running engine after an edit (C(hbvip reload), or C(/etc/init.d/heartbeat reload)
        when Debian's heartbeat runs). Nothing runs when neither does.
    type: bool
    default: true
  config_dir:
    description:
      - The directory of C(ha.cf), C(haresources), C(authkeys) and C(hbvip.cf).
    type: path
    default: /etc/ha.d
  hbvip_path:
    description:
      - The C(hbvip) command. Default is C(/opt/hbvip/venv/bin/hbvip), then C(hbvip) on E(PATH).
    type: path
notes:
  - The agent moves groups as Heartbeat does, by category, so O(state=active) or O(state=standby)
    also moves the other groups with the same home node.
"""

EXAMPLES = r"""
- name: Serve the db VIP from the db pair
  hbvip.heartbeat.hb_vip:
    address: 10.0.0.50/24
    interface: eth0
    home_node: db1
    resources: [postgresql]

- name: Where does it run? (a read, never a change)
  hbvip.heartbeat.hb_vip_info:
  register: pair

- name: Show the holder
  ansible.builtin.debug:
    msg: >-
      {{ (pair.groups | selectattr('vips', 'contains', '10.0.0.50') | first).holder }} serves the VIP;
      the peer {{ pair.peer.name }} is {{ pair.peer.state }}

- name: The IPv6 VIP of the same service, guarded by a check on both nodes
  hbvip.heartbeat.hb_vip:
    address: 2001:db8::50/64
    interface: eth0
    home_node: db1
    resources: [postgresql]
    checks:
      - name: pg
        command: pg_isready -q -h 127.0.0.1
        interval: 2
        fall: 3

- name: Put the db VIP on eth1; its home node and resources stay as they are
  hbvip.heartbeat.hb_vip:
    address: 10.0.0.50/24
    interface: eth1

- name: Move the db VIP to db2 for maintenance of db1
  hbvip.heartbeat.hb_vip:
    address: 10.0.0.50/24
    state: standby
    timeout: 30
  when: inventory_hostname == 'db1'

- name: Drop the VIP; the other groups keep running
  hbvip.heartbeat.hb_vip:
    address: 10.0.0.50/24
    state: absent
"""

RETURN = r"""
holder:
  description: The node that holds the VIP's group after the task, or null (not running, unserved, no such group).
  returned: always
  type: str
  sample: db1
peer_state:
  description: The peer's state as this node's agent sees it (C(active), C(dead), ...), or null when no agent runs.
  returned: always
  type: str
  sample: active
node:
  description: This node's name as the agent knows it, or null when no agent runs.
  returned: always
  type: str
  sample: db2
groups:
  description:
    - Every resource group, from C(hbvip status) (or from the file when no agent runs, with holder null).
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
checks:
  description: The group's check lines in hbvip.cf after the task, as the agent parses them (times in seconds).
  returned: when O(state=present) and the agent parsed hbvip.cf
  type: list
  elements: dict
  sample:
    - {name: pg, command: pg_isready -q -h 127.0.0.1, interval: 2.0, timeout: 2.0, fall: 3, rise: 1,
       group: IPaddr::10.0.0.50/24/eth0, line: 4}
reload:
  description: What the reload after an edit did.
  returned: when haresources or hbvip.cf was written
  type: str
  sample: "hbvip reload: reloaded"
problems:
  description: The problems C(hbvip check-config) found in the edited file (on failure).
  returned: failure
  type: list
  elements: dict
diff:
  description:
    - Before and after of haresources, or of the holder for a move; a list of two (haresources, hbvip.cf)
      when the group's checks change.
  returned: always
  type: raw
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hbvip.heartbeat.plugins.module_utils._hbvip_checks import CheckPlan, plan_checks
from ansible_collections.hbvip.heartbeat.plugins.module_utils._hbvip import (
    HbVipCli,
    HbVipError,
    Plan,
    describe,
    file_groups,
    find_group,
    find_binary,
    plan_edit,
    plan_move,
    reload_engine,
    status_group,
    vip_address,
)


def read_haresources(cli: HbVipCli, path: str) -> tuple[str, dict]:
    """The file's text and the agent's parse of it; a missing file is an empty one."""
    if not os.path.exists(path):
        return "", {"groups": []}
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text, cli.haresources(path)


def write_atomically(module: AnsibleModule, path: str, text: str, mode: int = 0o644) -> None:
    """Temp file in the same directory, then rename: the agent never reads half a file. A new file
    gets `mode`; an existing one keeps its own."""
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path) or ".")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    new = not os.path.exists(path)
    module.atomic_move(tmp, path)
    if new:
        os.chmod(path, mode)


def plan_group_checks(cli: HbVipCli, p: dict, parsed: dict, plan: Plan, cf_path: str) -> CheckPlan | None:
    """The edit of hbvip.cf that goes with the haresources plan: the group's check lines, when the task
    sets `checks`, the group goes, or its key changes; None when hbvip.cf has nothing to do with it."""
    group = find_group(parsed, vip_address(p["address"]))
    old_key = group["key"] if group else None
    new_key = None if p["state"] == "absent" else plan.key
    if p["checks"] is None and (not os.path.exists(cf_path) or old_key is None or old_key == new_key):
        return None
    text = ""
    if os.path.exists(cf_path):
        with open(cf_path, encoding="utf-8") as f:
            text = f.read()
    return plan_checks(text, cli.extensions(cf_path), old_key, new_key, p["checks"], cli.parse_checks)


def run(module: AnsibleModule) -> dict:
    p = module.params
    cli = HbVipCli(module, find_binary(module, p["hbvip_path"]), p["config_dir"])
    address = vip_address(p["address"])
    path = os.path.join(p["config_dir"], "haresources")
    status = cli.status()
    parsed: dict = {"groups": []}
    result: dict = {}
    cf_path = os.path.join(p["config_dir"], "hbvip.cf")
    cf_plan = None
    if p["state"] in ("present", "absent"):
        text, parsed = read_haresources(cli, path)
        plan = plan_edit(text, parsed, p, cli.parse_line)
        cf_plan = plan_group_checks(cli, p, parsed, plan, cf_path)
        cf_changed = cf_plan is not None and cf_plan.changed
        if plan.changed or cf_changed:
            problems = cli.check_config(plan.after, cf_plan.after if cf_changed else None)  # type: ignore[union-attr]
            if problems:
                raise HbVipError("the edited haresources/hbvip.cf would not load: "
                                 + "; ".join(f"{x['path']}:{x['line']}: {x['message']}" for x in problems),
                                 problems=problems, diff=plan.diff(path))
        if (plan.changed or cf_changed) and not module.check_mode:
            # A check may only name a group that exists: the group first when it comes, last when it goes.
            writes = [(path, plan.after, 0o644)] if plan.changed else []
            if cf_changed:
                cf_write = (cf_path, cf_plan.after, 0o600)  # type: ignore[union-attr]
                writes = [cf_write] + writes if p["state"] == "absent" else writes + [cf_write]
            for where, content, mode in writes:
                write_atomically(module, where, content, mode)
            if p["reload"]:
                result["reload"] = reload_engine(module, cli, status, p["timeout"])
            status = cli.status()
            parsed = parsed if status is not None else cli.haresources(path)
    else:
        if status is None:
            raise HbVipError(f"state={p['state']} needs the hbvip agent running on this node; "
                             f"`{cli.binary} status` found none")
        status = cli.settled_status(address, p["timeout"])
        plan = plan_move(status, address, p["state"])
        if plan.changed and not module.check_mode:
            answer = cli.move(plan.move, plan.which, p["timeout"])
            status = cli.settled_status(address, 5)
            group = status_group(status, address) if status else None
            if not answer.get("ok") or group is None or group["holder"] != plan.holder_after:
                raise HbVipError(f"hbvip {plan.move} {plan.which} did not move {address} to {plan.holder_after}: "
                                 f"{answer.get('error') or answer.get('message')}; {describe(status, address)}",
                                 status=status)
    group = status_group(status, address) if status else None
    changed = plan.changed or (cf_plan is not None and cf_plan.changed)
    diff = plan.diff(path)
    if cf_plan is not None and cf_plan.changed:
        diff = [diff, {"before": cf_plan.before, "after": cf_plan.after, "before_header": cf_path, "after_header": cf_path}]
    if p["state"] == "present" and (cf_plan is not None or os.path.exists(cf_path)) and plan.key is not None:
        after = cf_plan.after if cf_plan is not None else None
        result["checks"] = group_checks(cli, cf_path, after, plan.key, module.check_mode)
    result.update(
        changed=changed,
        msg="; ".join(plan.messages + (cf_plan.messages if cf_plan is not None else [])),
        holder=group["holder"] if group else None,
        peer_state=status["peer"]["state"] if status else None,
        node=status["node"] if status else None,
        groups=status["groups"] if status else file_groups(parsed),
        diff=diff,
    )
    return result


def group_checks(cli: HbVipCli, cf_path: str, planned: str | None, key: str, check_mode: bool) -> list[dict]:
    """The group's checks as the agent parses hbvip.cf after the task (the planned text in check mode)."""
    if planned is not None and check_mode:
        parsed = cli.parse_checks(planned)
    else:
        parsed = cli.extensions(cf_path)
    return [c for c in parsed.get("checks", []) if c.get("group") == key]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "address": {"type": "str", "required": True},
            "interface": {"type": "str"},
            "home_node": {"type": "str"},
            "resources": {"type": "list", "elements": "str"},
            "resource_type": {"type": "str", "choices": ["IPaddr", "IPaddr2", "IPv6addr"]},
            "checks": {"type": "list", "elements": "dict", "options": {
                "name": {"type": "str", "required": True},
                "command": {"type": "str", "required": True},
                "interval": {"type": "str"},
                "timeout": {"type": "str"},
                "fall": {"type": "int"},
                "rise": {"type": "int"},
            }},
            "state": {"type": "str", "choices": ["present", "absent", "active", "standby"], "default": "present"},
            "timeout": {"type": "float", "default": 60},
            "reload": {"type": "bool", "default": True},
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
