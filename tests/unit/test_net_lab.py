"""VIP placement, gratuitous ARP and the UDP transport on real interfaces, inside our own netns pair.

Two namespaces `nr-<pid>-<n>-a` / `-b` joined by a veth pair named eth0 on both sides
(10.99.80.1/24 and 10.99.80.2/24). The code under test runs in a child process inside a namespace
(`ip netns exec`), so the test process itself never touches a network it did not create; assertions
read the kernel's view with `ip -n`. Everything is removed again, also when a test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"),
]

AGENT_SRC = Path(__file__).resolve().parents[2] / "agent" / "src"
VIP = "10.99.80.100"
_serial = itertools.count()


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    mac_a: str


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _stop_processes(ns: str) -> None:
    """Processes outlive `ip netns del`; the ones in our namespace are ours, end them by PID."""
    out = subprocess.run(["ip", "netns", "pids", ns], check=False, capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass


@contextmanager
def _netns_pair(ipv6: bool) -> Iterator[Pair]:
    base = f"nr-{os.getpid()}-{next(_serial)}"
    a, b = f"{base}-a", f"{base}-b"
    created: list[str] = []
    # IPv6 off unless asked for; when on, no DAD and no router solicitations (no stray traffic, no delay)
    sysctls = ("accept_dad=0", "router_solicitations=0") if ipv6 else ("disable_ipv6=1",)
    try:
        for ns in (a, b):
            _ip("netns", "add", ns)
            created.append(ns)
            for key in ("all", "default"):
                for sysctl in sysctls:
                    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.{sysctl}"],
                                   check=True)
        _ip("link", "add", "nrveth0", "netns", a, "type", "veth", "peer", "name", "nrveth1", "netns", b)
        for ns, dev, addr, addr6 in ((a, "nrveth0", "10.99.80.1/24", "fd99:80::1/64"),
                                     (b, "nrveth1", "10.99.80.2/24", "fd99:80::2/64")):
            _ip("-n", ns, "link", "set", dev, "name", "eth0")
            _ip("-n", ns, "addr", "add", addr, "dev", "eth0")
            if ipv6:
                _ip("-n", ns, "addr", "add", addr6, "dev", "eth0", "nodad")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        mac_a = json.loads(_ip("-j", "-n", a, "link", "show", "eth0"))[0]["address"]
        yield Pair(a, b, mac_a)
    finally:
        for ns in created:
            _stop_processes(ns)
            subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.fixture
def pair() -> Iterator[Pair]:
    with _netns_pair(ipv6=False) as p:
        yield p


@pytest.fixture
def pair6() -> Iterator[Pair]:
    """The same pair, dual-stack: fd99:80::1/64 and fd99:80::2/64 beside the IPv4 addresses."""
    with _netns_pair(ipv6=True) as p:
        yield p


def _child(ns: str, code: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-c", textwrap.dedent(code)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(AGENT_SRC)}


def run_in(ns: str, code: str, timeout: float = 30) -> dict:
    """Run `code` (which prints one JSON object last) in namespace `ns`; return that object."""
    done = subprocess.run(_child(ns, code), env=_env(), check=False, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def addresses(ns: str) -> dict[str, dict]:
    """`ip -4 addr` of eth0 in `ns`: address -> {prefixlen, label, broadcast}."""
    info = json.loads(_ip("-j", "-4", "-n", ns, "addr", "show", "dev", "eth0"))[0]["addr_info"]
    return {a["local"]: a for a in info}


RUNNER_PRELUDE = """
import asyncio, json, sys, time
from pathlib import Path
from hbvip.config import parse_haresources
from hbvip.resources.runner import ResourceRunner
group = parse_haresources(sys.argv[1] if len(sys.argv) > 1 else {line!r} + "\\n", "haresources")[0][0]
runner = ResourceRunner(Path({config_dir!r}), init_dir=Path({config_dir!r}) / "none", script_timeout=5)
def calls(result):
    return [f"{{c.resource}} {{c.action}} {{c.rc}}" for c in result.calls]
"""


def runner_code(config_dir: Path, line: str, body: str) -> str:
    return RUNNER_PRELUDE.format(line=line, config_dir=str(config_dir)) + textwrap.dedent(body)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """resource.d with the seed's failback.sh logger and a stop that always fails."""
    rsc = tmp_path / "resource.d"
    rsc.mkdir()
    for name, extra in (("failback.sh", "exit 0"), ("stuck.sh", '[ "$1" = stop ] && exit 1; exit 0')):
        script = rsc / name
        script.write_text(f'#!/bin/sh\necho "{name} $1" >> {tmp_path / "calls.log"}\n{extra}\n')
        script.chmod(0o755)
    return tmp_path


def test_takeover_configures_vip_on_eth0_0_before_the_next_resource(pair: Pair, config_dir: Path) -> None:
    line = f"server1 IPaddr::{VIP}/24/eth0 failback.sh"
    out = run_in(pair.a, runner_code(config_dir, line, """
        async def main():
            result = await runner.acquire(group)
            await asyncio.sleep(1.2)  # let the GARP burst finish before the process exits
            return result
        result = asyncio.run(main())
        print(json.dumps({"ok": result.ok, "calls": calls(result)}))
    """))
    # a native VIP's start checks presence itself: no separate status step for it
    assert out == {"ok": True, "calls": ["IPaddr start 0", "failback.sh status 0", "failback.sh start 0"]}
    vip = addresses(pair.a)[VIP]
    assert (vip["prefixlen"], vip["label"], vip["broadcast"]) == (24, "eth0:0", "10.99.80.255")

    out = run_in(pair.a, runner_code(config_dir, line, """
        result = asyncio.run(runner.release(group))
        print(json.dumps({"ok": result.ok, "calls": calls(result)}))
    """))
    assert out == {"ok": True, "calls": ["failback.sh stop 0", "IPaddr stop 0"]}
    assert VIP not in addresses(pair.a)
    assert (config_dir / "calls.log").read_text().split("\n")[:-1] == [
        "failback.sh status", "failback.sh start", "failback.sh stop"]


def test_failed_stop_is_reported_and_vip_removed_anyway(pair: Pair, config_dir: Path) -> None:
    line = f"server1 {VIP} stuck.sh"  # bare IP: interface and prefix come from eth0's subnet
    out = run_in(pair.a, runner_code(config_dir, line, """
        import hbvip.resources.runner as r
        r.STOP_RETRY_DELAY = 0.01
        async def main():
            acquired = await runner.acquire(group)
            before = await runner.status(group.resources[0])
            released = await runner.release(group)
            return acquired, before, released
        acquired, before, released = asyncio.run(main())
        print(json.dumps({"acquired": acquired.ok, "present_before": before, "released": released.ok,
                          "failed": [f"{c.resource} {c.action} {c.rc}" for c in released.failed],
                          "calls": calls(released)}))
    """))
    assert out["acquired"] and out["present_before"]
    assert not out["released"] and out["failed"] == ["stuck.sh stop 1"]
    assert out["calls"] == ["stuck.sh stop 1"] * 3 + ["IPaddr stop 0"]
    assert VIP not in addresses(pair.a)


SNIFFER = """
import json, socket, struct, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
sock.bind(("eth0", 0))
sock.settimeout(0.1)
print("ready", flush=True)
frames, end = [], time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        frame = sock.recv(2048)
    except TimeoutError:
        continue
    frames.append([time.monotonic(), frame[:42].hex()])
print(json.dumps(frames))
"""


def test_acquire_sends_garp_burst_even_when_vip_already_present(pair: Pair, config_dir: Path) -> None:
    _ip("-n", pair.a, "addr", "add", f"{VIP}/24", "dev", "eth0", "label", "eth0:0")  # left over by kill -9
    sniffer = subprocess.Popen(_child(pair.b, SNIFFER) + ["3"], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout.readline().strip() == "ready"
        out = run_in(pair.a, runner_code(config_dir, f"server1 IPaddr::{VIP}/24/eth0", """
            async def main():
                started = time.monotonic()
                result = await runner.acquire(group)
                took = time.monotonic() - started
                await asyncio.sleep(1.2)
                return result, took
            result, took = asyncio.run(main())
            print(json.dumps({"ok": result.ok, "took": took, "start": result.calls[-1].output}))
        """))
        frames = json.loads(sniffer.communicate(timeout=10)[0])
    finally:
        if sniffer.poll() is None:
            sniffer.kill()
            sniffer.wait()
    assert out["ok"] and out["start"] == "eth0:0 already present"
    assert out["took"] < 0.5, "acquire must not wait for the burst"
    mac = bytes.fromhex(pair.mac_a.replace(":", ""))
    vip = bytes(int(x) for x in VIP.split("."))
    garps = [bytes.fromhex(f) for _unused, f in frames if bytes.fromhex(f)[28:32] == vip]
    assert len(garps) == 5
    for n, frame in enumerate(garps):
        assert frame[0:6] == b"\xff" * 6 and frame[6:12] == mac
        op = int.from_bytes(frame[20:22], "big")
        assert op == (1 if n % 2 == 0 else 2), "request and reply alternate, request first"
        assert frame[22:28] == mac and frame[28:32] == vip and frame[38:42] == vip
    times = [t for t, f in frames if bytes.fromhex(f)[28:32] == vip]
    assert 0.6 < times[-1] - times[0] < 1.2  # 4 intervals of 0.2 s


def test_vip_labels_interfaces_and_stale_cleanup(pair: Pair, config_dir: Path) -> None:
    _ip("-n", pair.a, "addr", "add", "10.99.80.50/24", "dev", "eth0", "label", "eth0:0")
    out = run_in(pair.a, runner_code(config_dir, f"server1 {VIP}", """
        from hbvip.config import VipSpec
        from hbvip.net.vip import VipError, add_vip, del_vip, vip_present
        async def main():
            res = {}
            res["added"] = await add_vip(VipSpec("10.99.80.100", None, None, None))
            res["again"] = await add_vip(VipSpec("10.99.80.100", None, None, None))
            for name, spec in (("no_subnet", VipSpec("10.99.81.1", None, None, None)),
                               ("no_iface", VipSpec("10.99.80.101", 24, "nonesuch0", None))):
                try:
                    await add_vip(spec)
                    res[name] = "added"
                except VipError as exc:
                    res[name] = str(exc)
            res["stale_removed"] = await runner.cleanup_stale(group)
            res["present_after"] = await vip_present(VipSpec("10.99.80.100", None, None, None))
            res["del_absent"] = await del_vip(VipSpec("10.99.80.100", None, None, None))
            return res
        print(json.dumps(asyncio.run(main())))
    """))
    assert out["added"] == ["eth0:1", False]  # eth0:0 was taken
    assert out["again"] == ["eth0:1", True]
    assert "no interface has a subnet containing it" in out["no_subnet"]
    assert "nonesuch0 does not exist" in out["no_iface"]
    assert out["stale_removed"] is True and out["present_after"] is False and out["del_absent"] is False
    assert set(addresses(pair.a)) == {"10.99.80.1", "10.99.80.50"}


SNIFFER6 = SNIFFER.replace("0x0806", "0x86DD").replace("frame[:42]", "frame[:86]")
VIP6 = "fd99:80::100"


def addresses6(ns: str) -> dict[str, dict]:
    """`ip -6 addr` of eth0 in `ns` (global scope): address -> {prefixlen, nodad, ...}."""
    info = json.loads(_ip("-j", "-6", "-n", ns, "addr", "show", "dev", "eth0", "scope", "global"))[0]["addr_info"]
    return {a["local"]: a for a in info if "local" in a}  # ip -j leaves {} for the filtered-out ones


def test_ipv6_vip_added_nodad_announced_by_neighbour_advertisements_and_removed(pair6: Pair, config_dir: Path) -> None:
    """IPv6addr without a prefix: the interface's fd99:80::/64 gives it; usable at once (no DAD, not
    tentative); five unsolicited NAs (override, to ff02::1, hop limit 255, our MAC); release removes it."""
    sniffer = subprocess.Popen(_child(pair6.b, SNIFFER6) + ["3"], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert sniffer.stdout.readline().strip() == "ready"
        out = run_in(pair6.a, runner_code(config_dir, f"server1 IPv6addr::{VIP6} IPaddr2::fd99:80::101/64/eth0", """
            async def main():
                acquired = await runner.acquire(group)
                await asyncio.sleep(1.2)
                return acquired
            acquired = asyncio.run(main())
            print(json.dumps({"ok": acquired.ok, "starts": [c.output for c in acquired.calls]}))
        """))
        frames = json.loads(sniffer.communicate(timeout=10)[0])
    finally:
        if sniffer.poll() is None:
            sniffer.kill()
            sniffer.wait()
    assert out["ok"] and out["starts"] == ["eth0", "eth0"]
    held = addresses6(pair6.a)
    assert held[VIP6]["prefixlen"] == 64 and held["fd99:80::101"]["prefixlen"] == 64
    assert not held[VIP6].get("tentative") and held[VIP6].get("nodad")
    mac = bytes.fromhex(pair6.mac_a.replace(":", ""))
    target = socket.inet_pton(socket.AF_INET6, VIP6)
    nas = [bytes.fromhex(f) for _unused, f in frames if bytes.fromhex(f)[54] == 136 and bytes.fromhex(f)[62:78] == target]
    assert len(nas) == 5
    for frame in nas:
        assert frame[0:6] == bytes.fromhex("333300000001") and frame[6:12] == mac
        assert frame[21] == 255 and frame[38:54] == socket.inet_pton(socket.AF_INET6, "ff02::1")
        assert frame[58] & 0x20 and frame[78:80] == b"\x02\x01" and frame[80:86] == mac
    # the VIP answers at once (a tentative address would not), and the peer learns our MAC for it
    subprocess.run(["ip", "netns", "exec", pair6.b, "ping", "-6", "-c", "1", "-W", "1", VIP6], check=True,
                   capture_output=True)
    neigh = json.loads(_ip("-j", "-n", pair6.b, "neigh", "show", VIP6))
    assert neigh and neigh[0]["lladdr"] == pair6.mac_a

    out = run_in(pair6.a, runner_code(config_dir, f"server1 IPv6addr::{VIP6}/64/eth0 IPaddr2::fd99:80::101/64/eth0", """
        async def main():
            released = await runner.release(group)
            await runner.acquire(group)  # again, then a node that does not hold it cleans up at start
            stale = await runner.cleanup_stale(group)
            return released, stale
        released, stale = asyncio.run(main())
        print(json.dumps({"released": released.ok, "stops": [c.output for c in released.calls], "stale": stale}))
    """))
    assert out["released"] and out["stops"] == ["removed", "removed"] and out["stale"] is True
    assert set(addresses6(pair6.a)) == {"fd99:80::1"}
    assert set(addresses(pair6.a)) == {"10.99.80.1"}


def test_ipv6_vip_outside_every_prefix_is_refused_with_the_fix(pair6: Pair, config_dir: Path) -> None:
    out = run_in(pair6.a, runner_code(config_dir, "server1 IPv6addr::fd99:81::1", """
        from hbvip.net.vip import VipError, add_vip
        async def main():
            try:
                await add_vip(group.resources[0].vip)
            except VipError as exc:
                return str(exc)
            return "added"
        print(json.dumps({"error": asyncio.run(main())}))
    """))
    assert "no interface has a subnet containing it" in out["error"]
    assert set(addresses6(pair6.a)) == {"fd99:80::1"}


TRANSPORT_PEERS = [["10.99.80.1", "eth0"], ["10.99.80.2", "eth0"]]
RECEIVER = """
import asyncio, json, sys
from hbvip.net.transport import Transport
async def main():
    got = asyncio.get_running_loop().create_future()
    t = Transport(6940, json.loads(sys.argv[1]), lambda d, a: got.done() or got.set_result((d.decode(), a[0])))
    await t.start()
    print("ready", flush=True)
    data, src = await asyncio.wait_for(got, 10)
    t.close()
    print(json.dumps({"peers": t.peer_addresses, "data": data, "src": src}))
asyncio.run(main())
"""


def test_transport_drops_own_address_and_delivers_between_hosts(pair: Pair) -> None:
    receiver = subprocess.Popen(_child(pair.b, RECEIVER) + [json.dumps(TRANSPORT_PEERS)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        sent = run_in(pair.a, f"""
            import asyncio, json
            from hbvip.net.transport import Transport
            async def main():
                t = Transport(6940, {TRANSPORT_PEERS + [["localhost", None]]!r}, lambda d, a: None)
                await t.start()
                t.send(b"hello from a")
                t.close()
                lost = Transport(6940, [("10.99.99.9", None)], lambda d, a: None)  # no route there
                await lost.start()
                lost.send(b"x")
                lost.close()
                return t, lost
            t, lost = asyncio.run(main())
            print(json.dumps({{"peers": t.peer_addresses, "sent": t.counters, "lost": lost.counters}}))
        """)
        got = json.loads(receiver.communicate(timeout=15)[0].splitlines()[-1])
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert sent["peers"] == ["10.99.80.2"]  # its own 10.99.80.1 and localhost are dropped
    assert sent["sent"]["sent"] == 1 and sent["sent"]["send_errors"] == 0
    assert sent["lost"]["sent"] == 0 and sent["lost"]["send_errors"] == 1
    assert got == {"peers": ["10.99.80.1"], "data": "hello from a", "src": "10.99.80.1"}


def test_ucast6_transport_delivers_over_ipv6_global_and_link_local(pair6: Pair) -> None:
    """`ucast6` peers: the own address is dropped, a datagram goes over IPv6 (global, and link-local
    through the line's interface) and arrives on the [::]:port receiver, IPv4 paths unchanged beside it."""
    link_local_a = json.loads(_ip("-j", "-6", "-n", pair6.a, "addr", "show", "dev", "eth0", "scope", "link"))[0]
    ll_a = next(a["local"] for a in link_local_a["addr_info"] if "local" in a)
    peers6 = [["fd99:80::1", "eth0"], ["fd99:80::2", "eth0"]]
    receiver = subprocess.Popen(_child(pair6.b, RECEIVER) + [json.dumps(peers6)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        sent = run_in(pair6.a, f"""
            import asyncio, json
            from hbvip.net.transport import Transport
            async def main():
                t = Transport(6940, {peers6!r}, lambda d, a: None)
                await t.start()
                t.send(b"hello over ipv6")
                t.close()
                return t
            t = asyncio.run(main())
            print(json.dumps({{"peers": t.peer_addresses, "sent": t.counters}}))
        """)
        got = json.loads(receiver.communicate(timeout=15)[0].splitlines()[-1])
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert sent["peers"] == ["fd99:80::2"] and sent["sent"]["sent"] == 1 and sent["sent"]["send_errors"] == 0
    assert got == {"peers": ["fd99:80::1"], "data": "hello over ipv6", "src": "fd99:80::1"}

    # link-local peer: no global route needed, the interface gives the scope
    ll_b = next(a["local"] for a in json.loads(_ip("-j", "-6", "-n", pair6.b, "addr", "show", "dev", "eth0",
                                                   "scope", "link"))[0]["addr_info"] if "local" in a)
    receiver = subprocess.Popen(_child(pair6.b, RECEIVER) + [json.dumps([[ll_a, "eth0"]])], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        run_in(pair6.a, f"""
            import asyncio, json
            from hbvip.net.transport import Transport
            async def main():
                t = Transport(6940, [({ll_b!r}, "eth0")], lambda d, a: None)
                await t.start()
                t.send(b"hello link-local")
                t.close()
                return t.counters
            print(json.dumps(asyncio.run(main())))
        """)
        got = json.loads(receiver.communicate(timeout=15)[0].splitlines()[-1])
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    assert got["data"] == "hello link-local" and got["src"].split("%")[0] == ll_a


def test_ping6_answers_from_a_live_address_only(pair6: Pair) -> None:
    """ha.cf `ping6` nodes and the silence diagnosis use this: ICMPv6 echo, no `ping` binary."""
    out = run_in(pair6.a, """
        import asyncio, json
        from hbvip.net.icmp import ping
        async def main():
            return {"peer": await ping("fd99:80::2"), "nobody": await ping("fd99:80::99", 0.3, tries=1)}
        print(json.dumps(asyncio.run(main())))
    """)
    assert out == {"peer": True, "nobody": False}


def test_neighbour_probe_finds_the_machine_that_holds_an_ipv6_address(pair6: Pair) -> None:
    """check-config's question for an IPv6 VIP: b holds fd99:80::100, nobody holds fd99:80::101."""
    _ip("-n", pair6.b, "addr", "add", "fd99:80::100/64", "dev", "eth0", "nodad")
    mac_b = json.loads(_ip("-j", "-n", pair6.b, "link", "show", "eth0"))[0]["address"]
    out = run_in(pair6.a, """
        import json
        from hbvip.net.ndisc import neighbour_probe
        print(json.dumps({"held": sorted(neighbour_probe("eth0", "fd99:80::100")),
                          "free": sorted(neighbour_probe("eth0", "fd99:80::101"))}))
    """)
    assert out == {"held": [mac_b], "free": []}
