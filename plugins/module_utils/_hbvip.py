# -*- coding: utf-8 -*-
# Copyright: hbvip team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private helpers of the hb_vip module: the `hbvip` command line and the planner.

The agent owns the haresources grammar; this file never parses it. It asks `hbvip haresources
--json` where each group is and `hbvip check-config --json` whether a candidate file is good,
then edits physical lines only. The planner is pure (text and JSON in, a Plan out), so check
mode, diff mode and the real run all come from the same Plan.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BINARIES = ("/opt/hbvip/venv/bin/hbvip",)
HEARTBEAT_PIDFILE = "/var/run/heartbeat.pid"
HEARTBEAT_INIT = "/etc/init.d/heartbeat"
# Group states of `hbvip status` that will not change without a new event (the agent's settled
# GroupState values; tests/unit/plugins/module_utils/test_hbvip_contract.py holds the two together).
SETTLED = frozenset({"held", "held_by_peer", "unserved", "failed"})


class HbVipError(Exception):
    """A failure the module reports as-is: `msg` for people, `details` as extra result keys."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


@dataclass(frozen=True)
class Plan:
    """What this run changes: the haresources text before/after and the move, if any."""

    changed: bool
    before: str
    after: str
    move: str | None = None           # "takeover" or "standby"
    which: str | None = None          # "local" or "foreign", as `hbvip takeover|standby` take it
    holder_before: str | None = None
    holder_after: str | None = None
    messages: list[str] = field(default_factory=list)
    key: str | None = None            # the group's key after the edit (its first resource); None = no group

    def diff(self, path: str) -> dict[str, str]:
        if self.move is not None or self.holder_before is not None:
            return {"before": f"holder: {self.holder_before}\n", "after": f"holder: {self.holder_after}\n",
                    "before_header": "hbvip status", "after_header": "hbvip status"}
        return {"before": self.before, "after": self.after, "before_header": path, "after_header": path}


def vip_address(address: str) -> str:
    """The identity of a VIP: its address without prefix, normalised the way the agent prints it
    (IPv6 compressed: 2001:db8:0:0::100 is 2001:db8::100)."""
    try:
        return str(ipaddress.ip_address(address.split("/", 1)[0].strip()))
    except ValueError:
        raise HbVipError(f"address {address!r} is not an IPv4 or IPv6 address "
                         "(write e.g. 10.0.0.50/24 or 2001:db8::100/64)") from None


def _vip_resource(group: dict[str, Any] | None) -> dict[str, Any] | None:
    return next((r for r in group["resources"] if r.get("vip")), None) if group else None


def vip_spec(params: dict[str, Any], have: dict[str, Any] | None) -> str:
    """The haresources word for the VIP, e.g. `IPaddr::10.0.0.50/24/eth0`.

    What the task leaves out (prefix, interface, resource type) comes from the group as it is, and
    the broadcast field is always kept. When the result means what the file already says, the word
    is kept as written (a bare IP, a dotted netmask): only what the task asks to change changes.
    """
    address, prefix = (params["address"].strip().split("/", 1) + [""])[:2]
    vip = have["vip"] if have else {}
    six = ":" in address
    name = params.get("resource_type") or (have["name"] if have else "IPv6addr" if six else "IPaddr")
    prefix = prefix or ("" if vip.get("prefix") is None else str(vip["prefix"]))
    interface = params.get("interface") or vip.get("interface") or ""
    broadcast = vip.get("broadcast") or ""
    fields = [address, prefix, interface, broadcast]
    while fields[-1] == "":
        fields.pop()
    if have is not None and (have["name"], vip.get("prefix"), vip.get("interface") or "") == (
            name, _prefix_length(prefix, six), interface):
        return have["spec"]
    if six:  # Heartbeat 3.0.6 splits a resource's arguments at every `::`: write the address out in full
        fields[0] = _without_double_colon(address)
    return f"{name}::{'/'.join(fields)}"


def _without_double_colon(address: str) -> str:
    """2001:db8::50 -> 2001:db8:0:0:0:0:0:50, the form a real Heartbeat's IPv6addr can be given."""
    try:
        return ":".join(f"{int(h, 16):x}" for h in ipaddress.IPv6Address(address).exploded.split(":"))
    except ValueError:
        return address  # the agent's parse of the new line names the mistake


def _prefix_length(prefix: str, six: bool = False) -> int | None:
    """24 and 255.255.255.0 are the same prefix to the agent; a bad one matches nothing (the agent's
    parse of the new line reports it)."""
    if not prefix:
        return None
    try:
        return ipaddress.IPv6Network(f"::/{prefix}").prefixlen if six else ipaddress.IPv4Network(f"0.0.0.0/{prefix}").prefixlen
    except ValueError:
        return -1


def find_group(parsed: dict[str, Any], address: str) -> dict[str, Any] | None:
    """The group whose IPaddr/IPaddr2 resource serves address; a group with other VIPs is not ours."""
    for group in parsed.get("groups", []):
        vips = [r["vip"]["address"] for r in group["resources"] if r.get("vip")]
        if address in vips:
            others = sorted(set(vips) - {address})
            if others:
                raise HbVipError(
                    f"address {address} is already used by the group on line {group['line']} "
                    f"({group['key']}) together with {', '.join(others)}; hb_vip manages groups with "
                    "one VIP: split that group or pick another address",
                    group=group)
            return group
    return None


def _same_resource(have: dict[str, Any], want: dict[str, Any]) -> bool:
    if have.get("vip") or want.get("vip"):
        return have["name"] == want["name"] and have.get("vip") == want.get("vip")
    return have["spec"] == want["spec"]


def same_group(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """Equal by meaning as the agent parsed both (a bare IP is IPaddr, 255.255.255.0 is /24), so a
    file written by hand is not rewritten: any rewrite makes the agent re-acquire the group."""
    return (have["home_node"].lower() == want["home_node"].lower()
            and len(have["resources"]) == len(want["resources"])
            and all(_same_resource(h, w) for h, w in zip(have["resources"], want["resources"])))


def desired_line(params: dict[str, Any], group: dict[str, Any] | None) -> str:
    """The group line hb_vip wants. Every option the task leaves out keeps what the file says (as
    ansible.builtin.user leaves `shell` alone), so a task with only `address` asks for nothing."""
    home_node = params.get("home_node") or (group["home_node"] if group else None)
    if home_node is None:
        raise HbVipError(f"{params['address']} is in no group yet: home_node is required to add it")
    have = _vip_resource(group)
    vip = vip_spec(params, have)
    resources = params.get("resources")
    if resources is not None:
        words = [vip, *resources]
    elif group is not None:  # the group's own order, the VIP's word in its place
        words = [vip if r is have else r["spec"] for r in group["resources"]]
    else:
        words = [vip]
    return " ".join([home_node, *words]) + "\n"


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def plan_edit(text: str, parsed: dict[str, Any], params: dict[str, Any],
              parse_line: Callable[[str], dict[str, Any]]) -> Plan:
    """present/absent: the new haresources text, with only this VIP's lines added, replaced or removed.

    params: address, interface, home_node, resources (None = keep), resource_type, state;
    parse_line: the agent's parse of one group line (`hbvip haresources` on a scratch file).
    """
    address = vip_address(params["address"])
    group = find_group(parsed, address)
    lines = _lines(text)
    if params["state"] == "absent":
        if group is None:
            return Plan(False, text, text, messages=[f"{address} is in no group"])
        kept = lines[:group["line"] - 1] + lines[group["end_line"]:]
        return Plan(True, text, "".join(kept), messages=[f"remove the group of {address} (line {group['line']})"])
    line = desired_line(params, group)
    wanted = parse_line(line)  # also refuses a line the agent could not read, before anything else
    if group is not None and same_group(group, wanted):
        return Plan(False, text, text, messages=[f"{address} is already in its group (line {group['line']})"],
                    key=group["key"])
    if group is None:
        return Plan(True, text, "".join(lines) + line, messages=[f"add a group for {address}"], key=wanted["key"])
    new = lines[:group["line"] - 1] + [line] + lines[group["end_line"]:]
    return Plan(True, text, "".join(new), messages=[f"rewrite the group of {address} (line {group['line']})"],
                key=wanted["key"])


def status_group(status: dict[str, Any], address: str) -> dict[str, Any] | None:
    return next((g for g in status.get("groups", []) if address in g.get("vips", [])), None)


def plan_move(status: dict[str, Any], address: str, state: str) -> Plan:
    """active/standby: which `hbvip takeover|standby local|foreign` makes this node hold (or not hold) it.

    The agent moves groups by category as Heartbeat does: `local` = the groups whose home is this
    node, `foreign` = the peer's; the category is taken from this group's home node.
    """
    group = status_group(status, address)
    node, peer = status["node"], status["peer"]["name"]
    if group is None:
        raise HbVipError(f"{address} is in no group of the running configuration on {node}: "
                         "add it with state=present first", status=status)
    which = "local" if group["home_node"].lower() == node.lower() else "foreign"
    holder = group["holder"]
    target = node if state == "active" else peer
    if holder is not None and holder.lower() == target.lower():
        return Plan(False, "", "", holder_before=holder, holder_after=holder,
                    messages=[f"{address} is already held by {holder}"])
    if state == "standby" and holder is None:
        raise HbVipError(f"{address} is not held by this node ({group['state']}): there is nothing to give "
                         f"to {peer}; `hbvip status` says peer {peer} is {status['peer']['state']}",
                         status=status)
    move = "takeover" if state == "active" else "standby"
    return Plan(True, "", "", move=move, which=which, holder_before=holder, holder_after=target,
                messages=[f"hbvip {move} {which}: {address} from {holder or 'nobody'} to {target}"])


def describe(status: dict[str, Any] | None, address: str) -> str:
    """One line of `hbvip status` about this VIP, for failure messages."""
    if status is None:
        return "hbvip status: no agent running"
    group = status_group(status, address)
    peer = status["peer"]
    text = f"hbvip status: node {status['node']} {status.get('status')}, peer {peer['name']} {peer['state']}"
    if group is not None:
        text += f"; group {group['key']} home {group['home_node']} holder {group['holder']} state {group['state']}"
    return text


class HbVipCli:
    """`hbvip` as a JSON API, in the manner of community.general's _pacemaker wrapping `pcs`."""

    def __init__(self, module: Any, binary: str, config_dir: str) -> None:
        self.module = module
        self.binary = binary
        self.config_dir = config_dir

    def _run(self, *args: str) -> tuple[int, str, str]:
        rc, out, err = self.module.run_command([self.binary, *args])
        return rc, out, err

    def _read(self, command: str, path: str) -> tuple[int, dict[str, Any]]:
        """`hbvip COMMAND --file PATH --json`: (rc, its JSON); rc 2 means the file has problems."""
        rc, out, err = self._run(command, "--config-dir", self.config_dir, "--file", path, "--json")
        if rc not in (0, 2):
            raise HbVipError(f"hbvip {command} failed (rc={rc}): {err.strip() or out.strip()}")
        return rc, json.loads(out)

    def _read_file(self, command: str, path: str) -> dict[str, Any]:
        """`_read` of a file on the host, which hb_vip is about to edit: it must have no problems."""
        rc, parsed = self._read(command, path)
        if rc == 2:
            raise HbVipError(f"{path} has errors; fix them before hb_vip edits it", problems=parsed["problems"])
        return parsed

    def _read_text(self, command: str, text: str) -> tuple[int, dict[str, Any]]:
        """`_read` of candidate lines, written to a scratch file for the agent."""
        tmp = self._scratch(text)
        try:
            return self._read(command, tmp)
        finally:
            os.unlink(tmp)

    def haresources(self, path: str) -> dict[str, Any]:
        """Groups of the file with their line spans; refuses a file the agent itself would refuse."""
        return self._read_file("haresources", path)

    def parse_line(self, line: str) -> dict[str, Any]:
        """The agent's parse of one group line; a line it refuses fails with its problems."""
        rc, parsed = self._read_text("haresources", line)
        if rc == 2 or not parsed["groups"]:
            raise HbVipError(f"the group line {line.strip()!r} is not valid haresources: "
                             + "; ".join(p["message"] for p in parsed["problems"]), problems=parsed["problems"])
        return parsed["groups"][0]

    def _scratch(self, text: str) -> str:
        fd, tmp = tempfile.mkstemp(prefix="hb_vip-", suffix=".haresources", dir=self.module.tmpdir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return tmp

    def extensions(self, path: str) -> dict[str, Any]:
        """The health lines of hbvip.cf (`hbvip extensions --json`); a missing file has none."""
        if not os.path.exists(path):
            return {"exists": False, "checks": [], "problems": []}
        return self._read_file("extensions", path)

    def parse_checks(self, text: str) -> dict[str, Any]:
        """The agent's parse of candidate check lines; lines it refuses fail with its problems."""
        rc, parsed = self._read_text("extensions", text)
        if rc == 2:
            raise HbVipError(f"the checks {text.strip()!r} are not valid hbvip.cf lines: "
                             + "; ".join(p["message"] for p in parsed["problems"]), problems=parsed["problems"])
        return parsed

    def check_config(self, candidate: str, extensions: str | None = None) -> list[dict[str, Any]]:
        """Problems of the whole config with candidate as haresources (and extensions as hbvip.cf);
        [] when it would load."""
        tmps = {"haresources": self._scratch(candidate)}
        if extensions is not None:
            tmps["hbvip.cf"] = self._scratch(extensions)
        try:
            args = ["--haresources", tmps["haresources"]] + (["--hbvip-cf", tmps["hbvip.cf"]] if extensions is not None else [])
            rc, out, err = self._run("check-config", "--config-dir", self.config_dir, *args, "--json")
        finally:
            for tmp in tmps.values():
                os.unlink(tmp)
        if rc not in (0, 2):
            raise HbVipError(f"hbvip check-config failed (rc={rc}): {err.strip() or out.strip()}")
        problems = json.loads(out)["problems"]
        for p in problems:  # name the real files, not the scratch copies check-config read
            for name, tmp in tmps.items():
                if os.path.basename(p.get("path") or "") in (name, os.path.basename(tmp)):
                    p["path"] = os.path.join(self.config_dir, name)
        return [p for p in problems if p.get("severity", "error") == "error"] if rc == 2 else []

    def status(self) -> dict[str, Any] | None:
        """`hbvip status --json`, or None when no agent runs here."""
        rc, out, _err = self._run("status", "--json")
        return json.loads(out) if rc == 0 else None

    def reload(self, timeout: float) -> str:
        """`hbvip reload`; a reload refused during a transition is retried until timeout."""
        deadline = time.monotonic() + timeout
        while True:
            rc, out, err = self._run("reload")
            if rc == 0:
                return out.strip()
            text = (out + err).strip()
            if "in progress" not in text or time.monotonic() > deadline:
                raise HbVipError(f"the new haresources is written but the agent refused to reload it: {text}")
            time.sleep(0.5)

    def move(self, kind: str, which: str, timeout: float) -> dict[str, Any]:
        rc, out, err = self._run(kind, which, "--timeout", f"{timeout:g}", "--json")
        try:
            answer = json.loads(out)
        except ValueError:
            answer = {"ok": False, "error": err.strip() or out.strip()}
        answer["rc"] = rc
        return answer

    def settled_status(self, address: str, timeout: float) -> dict[str, Any] | None:
        """Status once this VIP's group is out of transition (or the last one seen at timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            group = status_group(status, address) if status else None
            if group is None or group["state"] in SETTLED or time.monotonic() > deadline:
                return status
            time.sleep(0.2)


def file_groups(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups of the file in the shape of `hbvip status` groups, for when no agent runs."""
    return [{"key": g["key"], "home_node": g["home_node"], "holder": None, "state": "not_running",
             "resources": [r["spec"] for r in g["resources"]],
             "vips": [r["vip"]["address"] for r in g["resources"] if r.get("vip")]}
            for g in parsed.get("groups", [])]


def reload_engine(module: Any, cli: HbVipCli, status: dict[str, Any] | None, timeout: float) -> str:
    """Tell whatever runs here to read the new file: the hbvip agent, else Debian's heartbeat."""
    if status is not None:
        return cli.reload(timeout)
    if heartbeat_running():
        rc, out, err = module.run_command([HEARTBEAT_INIT, "reload"])
        if rc != 0:
            raise HbVipError(f"the new haresources is written but {HEARTBEAT_INIT} reload failed (rc={rc}): "
                             f"{err.strip() or out.strip()}")
        return "heartbeat reload: done"
    return "no engine running: the file takes effect when it starts"


def heartbeat_running() -> bool:
    """Debian's heartbeat daemon runs here (its pidfile names a live process)."""
    try:
        with open(HEARTBEAT_PIDFILE, encoding="ascii") as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def find_binary(module: Any, path: str | None) -> str:
    """hbvip_path, else the role's venv, else PATH; a clear failure when the agent is not installed."""
    if path:
        if not os.access(path, os.X_OK):
            raise HbVipError(f"hbvip_path {path} is not an executable: is the hbvip agent installed?")
        return path
    for candidate in DEFAULT_BINARIES:
        if os.access(candidate, os.X_OK):
            return candidate
    found = module.get_bin_path("hbvip")
    if not found:
        raise HbVipError("the hbvip agent is not installed: no /opt/hbvip/venv/bin/hbvip and no hbvip on PATH "
                         "(install it with the heartbeat_vip role, or set hbvip_path)")
    return found
