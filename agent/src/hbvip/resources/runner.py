"""Acquire and release resource groups with Heartbeat's ResourceManager semantics.

Acquire: left to right, `status` then `start` unless running. Release: `stop` right to left. IPaddr,
IPaddr2 and IPv6addr are native (netlink + gratuitous ARP, or unsolicited neighbour advertisements for
an IPv6 VIP; the `garp_*` settings and log events cover both); everything else is a script from
`resource.d/` or the init directory. A native VIP has no separate status step: its start checks
presence itself (from the group's address snapshot, or the kernel's EEXIST) and says "already present",
and the VIPs of a group share one address dump, invalidated whenever a script ran (a script may change
addresses).

Unlike Heartbeat, a failed stop never reboots the machine or kills the daemon: it is retried,
reported, and the VIP is removed anyway so the peer can serve it. A failed start releases what was
acquired so far, so the node never holds half a group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from hbvip.config import NATIVE_RESOURCES, Resource, ResourceGroup, VipSpec, resolve_script
from hbvip.net.garp import send_garp
from hbvip.net.ifaddr import IfAddr, all_addresses
from hbvip.net.ndisc import send_unsolicited_na
from hbvip.net.vip import VipError, add_vip, del_vip, placed_in, vip_present
from hbvip.records import dataclass, field
from hbvip.resources.scripts import SCRIPT_PATH, ScriptCall, run_script, says_running

if TYPE_CHECKING:
    from hbvip.config import Config
    from hbvip.log import EventLog

STOP_TRIES = 3  # a failed stop is tried twice more before it is reported
STOP_RETRY_DELAY = 0.5
HISTORY = 200  # calls kept for `hbvip status`

Log = Callable[[str, dict], None]


@dataclass
class AcquireResult:
    """`ok` False means the group was released again; `failed` is the call that broke it."""

    group: str
    ok: bool
    calls: list[ScriptCall] = field(default_factory=list)
    failed: ScriptCall | None = None


@dataclass
class ReleaseResult:
    """`ok` False lists the stops that failed even after retries (the VIPs are gone regardless)."""

    group: str
    ok: bool
    calls: list[ScriptCall] = field(default_factory=list)
    failed: list[ScriptCall] = field(default_factory=list)


class ResourceRunner:
    """Runs resource actions for the daemon; keeps a call history and counters for `hbvip status`."""

    def __init__(
        self,
        config_dir: Path,
        *,
        script_timeout: float = 30.0,
        garp_count: int = 5,
        garp_interval: float = 0.2,
        init_dir: Path = Path("/etc/init.d"),
        log: Log | None = None,
    ) -> None:
        self.config_dir = Path(config_dir)
        self.script_timeout = script_timeout
        self.garp_count = garp_count
        self.garp_interval = garp_interval
        self.init_dir = Path(init_dir)
        self.calls: list[ScriptCall] = []
        self.counters: dict[str, int] = {"script_runs": 0, "script_failures": 0, "script_timeouts": 0}
        self._log = log or (lambda event, fields: None)
        self._bursts: dict[str, asyncio.Task[int]] = {}
        self._placed: dict[str, str] = {}  # VIP -> interface it was added on: where it is announced again
        self._env = {
            "PATH": SCRIPT_PATH,
            "LANG": "C",
            "HA_D": str(self.config_dir),
            "HA_RSCDIR": str(self.config_dir / "resource.d"),
        }

    async def status(self, res: Resource) -> bool:
        """Is the resource running? Scripts: Heartbeat's rule on what `status` prints. IPaddr: VIP present."""
        return (await self._status(res)).output_says_running

    async def acquire(self, group: ResourceGroup) -> AcquireResult:
        result = AcquireResult(group.key, ok=True)
        view = _AddressView()
        for position, res in enumerate(group.resources):
            vip = _native_vip(res)
            if vip is not None:
                call = await self._start_vip(res, vip, view)
            else:
                view.forget()
                probe = await self._status(res)
                result.calls.append(probe.call)
                if probe.output_says_running:
                    continue
                call = await self._script(res, "start")
            result.calls.append(call)
            if not call.ok:
                result.ok, result.failed = False, call
                self._log("resource.acquire_failed", {"group": group.key, "name": res.name, "rc": call.rc})
                rollback = await self._release(group.key, group.resources[: position + 1])
                result.calls.extend(rollback.calls)
                break
        return result

    async def release(self, group: ResourceGroup) -> ReleaseResult:
        return await self._release(group.key, group.resources)

    def announce(self, group: ResourceGroup, *, count: int | None = None, quiet: bool = False) -> int:
        """Gratuitous ARP again for the group's VIPs (split-brain heal, `garp_refresh`); returns how many.

        The frames leave on the interface each VIP was added on, the one `add_vip` resolved (named, or the
        one whose subnet holds it), so a VIP written without an interface is announced where it lives. A
        VIP this runner never placed is skipped: there is nothing of ours to announce. `quiet` keeps a
        periodic refresh out of the log unless it fails.
        """
        sent = 0
        for vip in filter(None, map(_native_vip, group.resources)):
            iface = self._placed.get(vip.address)
            if quiet and vip.address in self._bursts:
                continue       # a burst is still running for it: the refresh would only cut it short
            if iface is not None:
                self._start_burst(iface, vip.address, count=count or self.garp_count, quiet=quiet)
                sent += 1
        return sent

    async def cleanup_stale(self, group: ResourceGroup) -> bool:
        """Remove the group's VIPs from a node that does not hold the group (e.g. after `kill -9`)."""
        removed = False
        view = _AddressView()
        for vip in filter(None, map(_native_vip, group.resources)):
            try:
                if await del_vip(vip, await view.get()):
                    removed = True
                    self._log("vip.stale_removed", {"group": group.key, "ip": vip.address})
            except (VipError, OSError) as exc:
                self._log("vip.stale_remove_failed", {"group": group.key, "ip": vip.address, "error": str(exc)})
        return removed

    def adopt(self, group: ResourceGroup, addresses: list[IfAddr]) -> list[str]:
        """A group the previous agent held (a restart in place): note where each VIP is in `addresses`, so
        refreshes and announcements go there as after an acquire. Returns the VIPs that are not there
        (nothing else is checked: the scripts' processes were never stopped)."""
        missing = []
        for vip in filter(None, map(_native_vip, group.resources)):
            iface = placed_in(vip, addresses)
            if iface is None:
                missing.append(vip.address)
            else:
                self._placed[vip.address] = iface
        return missing

    async def _release(self, key: str, resources: tuple[Resource, ...]) -> ReleaseResult:
        result = ReleaseResult(key, ok=True)
        view = _AddressView()
        for res in reversed(resources):
            try:
                attempts = await self._stop(res, view)
            except Exception as exc:  # release must finish: the peer waits for it
                attempts = [self._record(ScriptCall(res.name, "stop", None, "", 0.0, False, repr(exc)))]
            result.calls.extend(attempts)
            call = attempts[-1]
            if not call.ok:
                result.ok = False
                result.failed.append(call)
        return result

    async def _stop(self, res: Resource, view: _AddressView) -> list[ScriptCall]:
        """Every attempt, last one deciding; only scripts are retried (netlink does not fail transiently)."""
        vip = _native_vip(res)
        if vip is not None:
            return [await self._stop_vip(res, vip, view)]
        view.forget()
        attempts: list[ScriptCall] = []
        for attempt in range(1, STOP_TRIES + 1):
            call = await self._script(res, "stop")
            attempts.append(call)
            if call.ok:
                break
            self._log("resource.stop_failed", {"name": res.name, "attempt": attempt, "rc": call.rc})
            if attempt < STOP_TRIES:
                await asyncio.sleep(STOP_RETRY_DELAY)
        return attempts

    async def _status(self, res: Resource) -> _Probe:
        vip = _native_vip(res)
        if vip is not None:
            started = time.monotonic()
            try:
                present = await vip_present(vip)
                call = ScriptCall(res.name, "status", 0, "running" if present else "stopped", time.monotonic() - started, False)
            except (VipError, OSError) as exc:
                present = False
                call = ScriptCall(res.name, "status", None, "", time.monotonic() - started, False, str(exc))
            return _Probe(self._record(call), present)
        call = await self._script(res, "status")
        return _Probe(call, says_running(call.output))

    async def _start_vip(self, res: Resource, vip: VipSpec, view: _AddressView) -> ScriptCall:
        started = time.monotonic()
        try:
            label, already = await add_vip(vip, await view.get())
        except (VipError, OSError) as exc:
            return self._record(ScriptCall(res.name, "start", None, "", time.monotonic() - started, False, str(exc)))
        iface = vip.interface or label.partition(":")[0]
        self._placed[vip.address] = iface
        self._start_burst(iface, vip.address)
        # One yield runs the burst's first step, which sends the first frame: clients move to this MAC
        # now, not after the group's next resource script has been forked (about 9 ms on the lab).
        await asyncio.sleep(0)
        note = f"{label} already present" if already else label
        return self._record(ScriptCall(res.name, "start", 0, note, time.monotonic() - started, False), label=label)

    async def _stop_vip(self, res: Resource, vip: VipSpec, view: _AddressView) -> ScriptCall:
        started = time.monotonic()
        self._placed.pop(vip.address, None)
        burst = self._bursts.pop(vip.address, None)
        if burst is not None:
            burst.cancel()  # never keep announcing a VIP this node is giving away
        try:
            removed = await del_vip(vip, await view.get())
        except (VipError, OSError) as exc:
            return self._record(ScriptCall(res.name, "stop", None, "", time.monotonic() - started, False, str(exc)))
        note = "removed" if removed else "was not present"
        return self._record(ScriptCall(res.name, "stop", 0, note, time.monotonic() - started, False))

    def _start_burst(self, iface: str, ip: str, *, count: int | None = None, quiet: bool = False) -> None:
        """GARP in the background: acquire does not wait for the burst (its first frame leaves at the
        task's first step, see `_start_vip`)."""
        previous = self._bursts.pop(ip, None)
        if previous is not None:
            previous.cancel()
        send = send_unsolicited_na if ":" in ip else send_garp
        task = asyncio.create_task(send(iface, ip, count=count or self.garp_count, interval=self.garp_interval))
        self._bursts[ip] = task
        task.add_done_callback(lambda t: self._burst_done(t, iface, ip, quiet))

    def _burst_done(self, task: asyncio.Task[int], iface: str, ip: str, quiet: bool = False) -> None:
        if self._bursts.get(ip) is task:
            del self._bursts[ip]
        if task.cancelled():
            if not quiet:
                self._log("garp.cancelled", {"iface": iface, "ip": ip})
            return
        if task.exception() is not None:
            self._log("garp.failed", {"iface": iface, "ip": ip, "error": str(task.exception())})
        elif not quiet:
            self._log("garp.sent", {"iface": iface, "ip": ip, "frames": task.result()})

    async def _script(self, res: Resource, action: str) -> ScriptCall:
        path = resolve_script(self.config_dir, res.name, self.init_dir)
        if path is None:
            missing = f"no script {res.name} in {self.config_dir / 'resource.d'} or {self.init_dir}"
            call = ScriptCall(res.name, action, None, "", 0.0, False, missing)
        else:
            self.counters["script_runs"] += 1
            call = await run_script(path, res.name, tuple(res.args), action, timeout=self.script_timeout, env=self._env)
        if call.timed_out:
            self.counters["script_timeouts"] += 1
        if not call.ok and action != "status":  # status speaks through its output, not its exit code
            self.counters["script_failures"] += 1
        return self._record(call)

    def _record(self, call: ScriptCall, **extra: str) -> ScriptCall:
        self.calls.append(call)
        del self.calls[:-HISTORY]
        fields = {"name": call.resource, "action": call.action, "rc": call.rc, "ms": round(call.duration * 1000)}
        if call.timed_out:
            fields["timed_out"] = True
        if call.stderr:
            fields["error"] = call.stderr.strip()[:200]
        self._log("resource.call", {**fields, **extra})
        return call


def runner_for(config: Config, init_dir: object, log: EventLog) -> ResourceRunner:
    return ResourceRunner(config.config_dir, script_timeout=config.ext.script_timeout,
                          garp_count=config.ext.garp_count, garp_interval=config.ext.garp_interval,
                          init_dir=init_dir,  # type: ignore[arg-type]
                          log=lambda event, fields: log("info", event, None, fields))


async def remove_stale_vips(runner: ResourceRunner, groups: Iterable[ResourceGroup]) -> None:
    """At start this node holds nothing: remove any copy of the groups' VIPs (left by kill -9)."""
    for group in groups:
        await runner.cleanup_stale(group)


class _AddressView:
    """The host's addresses for one pass over a group: dumped when first needed, dropped when a script runs.

    add_vip/del_vip keep the list current with their own changes, so 64 VIPs cost one dump, not 64.
    """

    def __init__(self) -> None:
        self._addresses: list[IfAddr] | None = None

    async def get(self) -> list[IfAddr]:
        if self._addresses is None:
            self._addresses = await all_addresses()
        return self._addresses

    def forget(self) -> None:
        self._addresses = None


@dataclass(frozen=True)
class _Probe:
    """How a script's `status` call is read."""
    call: ScriptCall
    output_says_running: bool


def _native_vip(res: Resource) -> VipSpec | None:
    """The VIP hbvip places itself, for IPaddr/IPaddr2/IPv6addr; None for script resources."""
    return res.vip if res.name in NATIVE_RESOURCES else None
