"""Start-up before the event loop: the host's addresses from the hand-written netlink dump, and the
`up` heartbeats that keep going while the rest of the agent loads (hbvip.boot)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from pathlib import Path

from hbvip.boot import Beating, Booted
from hbvip.clock import SYSTEM_CLOCK
from hbvip.config import load_config
from hbvip.dirs import Paths
from hbvip.link import Link
from hbvip.log import EventLog
from hbvip.net.ifaddr import addresses_now
from hbvip.wire import Signer, decode


class SentList:
    peer_addresses = ["10.99.0.2"]

    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    def send(self, data: bytes) -> None:
        self.sent.append((time.monotonic(), data))


def test_the_netlink_dump_lists_what_ip_addr_lists() -> None:
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    expected = set()
    for line in out.splitlines():
        words = line.split()
        ifname, family, cidr = words[1], words[2], words[3]
        if family in ("inet", "inet6"):
            iface = ipaddress.ip_interface(cidr)
            expected.add((ifname.split("@")[0], str(iface.ip), iface.network.prefixlen))
    got = {(a.ifname, a.address, a.prefix) for a in addresses_now()}
    assert got == expected
    assert {a for a in got if ":" not in a[1]} == {(a.ifname, a.address, a.prefix) for a in addresses_now(2)}


def _booted(config_dir: Path, tmp_path: Path, keepalive: str) -> tuple[Booted, SentList]:
    hacf = config_dir / "ha.cf"
    lines = [line for line in hacf.read_text().splitlines() if not line.startswith(("logfile", "debugfile", "keepalive"))]
    hacf.write_text("\n".join(lines + [f"keepalive {keepalive}"]) + "\n")
    config = load_config(config_dir, "server1", init_dir=tmp_path / "init.d")
    link = Link(config.node_name, Signer.from_authkeys(config.authkeys), SYSTEM_CLOCK)
    transport = SentList()
    link.transport = transport  # type: ignore[assignment]
    now = SYSTEM_CLOCK.monotonic()
    paths = Paths(config_dir, tmp_path, tmp_path, tmp_path / "init.d")
    return Booted(config, paths, EventLog("server1", stderr=False), link, now, up_at=now), transport


def test_up_heartbeats_go_on_every_keepalive_while_the_agent_loads(config_dir: Path, tmp_path: Path) -> None:
    booted, transport = _booted(config_dir, tmp_path, "20ms")
    with Beating(booted):
        deadline = time.monotonic() + 5
        while len(transport.sent) < 5 and time.monotonic() < deadline:
            os.sched_yield()
    stopped_with = len(transport.sent)
    messages = [decode(data, None) for _t, data in transport.sent]
    assert stopped_with >= 5
    assert {m.type for m in messages} == {"status"} and {m.get("st") for m in messages} == {"up"}
    gaps = [b[0] - a[0] for a, b in zip(transport.sent, transport.sent[1:])]
    assert min(gaps) >= 0.015, f"beats closer than a keepalive: {gaps}"
    assert [m.seq for m in messages] == list(range(1, stopped_with + 1))
    assert booted.up_at >= transport.sent[-1][0], "the node would not continue the keepalive grid from the last beat"
    time.sleep(0.1)
    assert len(transport.sent) == stopped_with, "a beat left after the block ended"


def test_no_beats_when_the_transport_failed(config_dir: Path, tmp_path: Path) -> None:
    booted, transport = _booted(config_dir, tmp_path, "10ms")
    booted.failed = True
    with Beating(booted):
        time.sleep(0.05)
    assert transport.sent == []
