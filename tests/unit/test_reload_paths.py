"""A reload that adds or removes heartbeat media lines, on a fake clock: which paths come and go (the pure
plan), what a path keeps across the reload, and a reload refused as a whole when it would drop every path
the peer is heard on, or when the new sockets cannot open."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from hbvip import reloader
from hbvip.cluster import Hold
from hbvip.cluster.paths import PathChange, PathWatch
from hbvip.cluster.reload import plan_reload
from hbvip.config import Config, load_config
from hbvip.net.transport import TransportError

SECOND_PATH = "ucast6 eth1 fd99:2:1::1\nucast6 eth1 fd99:2:1::2\n"


def load(config_dir: Path) -> Config:
    return load_config(config_dir, "server1", init_dir=config_dir / "init.d")


def with_media(config_dir: Path, add: str = "", drop_eth0: bool = False) -> Config:
    hacf = config_dir / "ha.cf"
    lines = [line for line in hacf.read_text().splitlines(keepends=True)
             if not (drop_eth0 and line.startswith("ucast eth0"))]
    hacf.write_text("".join(lines) + add)
    return load(config_dir)


def test_reload_plan_adds_a_path_and_removes_one_but_never_every_live_one(config_dir: Path) -> None:
    one = load(config_dir)
    two = with_media(config_dir, SECOND_PATH)
    plan = plan_reload(one, two, Hold.ALL, live_paths=["eth0"])
    assert (plan.paths_added, plan.paths_removed, plan.refused) == (("eth1",), (), None)
    assert plan_reload(two, one, Hold.ALL, live_paths=["eth0", "eth1"]).paths_removed == ("eth1",)

    only_eth1 = with_media(config_dir, drop_eth0=True)
    refused = plan_reload(one, only_eth1, Hold.ALL, live_paths=["eth0"]).refused
    assert refused == ("the new media lines keep none of the paths server2 is heard on now (eth0); "
                       "add the new path on both nodes and reload, then remove the old one")
    # the same step is fine once eth1 carries the peer too, or while the peer is not heard at all
    assert plan_reload(two, only_eth1, Hold.ALL, live_paths=["eth0", "eth1"]).refused is None
    silent = plan_reload(one, only_eth1, Hold.ALL, live_paths=[])
    assert (silent.paths_added, silent.paths_removed, silent.refused) == (("eth1",), ("eth0",), None)


def test_a_reloaded_path_keeps_its_state_a_new_one_starts_down_a_removed_one_is_forgotten() -> None:
    w = PathWatch("server2", ["eth0"], 1.0)
    w.heard("eth0", 0.0)
    w.reconfigure(["eth0", "eth1"], 2.0)                   # a reload adds eth1 and doubles deadtime
    assert [(p.interface, p.up, p.last_heard) for p in w.paths.values()] == [("eth0", True, 0.0), ("eth1", False, None)]
    assert w.next_deadline() == 2.0 and w.live() == ["eth0"]
    assert w.heard("eth1", 0.5) == [PathChange("server2", "eth1", True, True)]
    w.reconfigure(["eth1"], 2.0)                           # a reload removes eth0: not reported dead
    assert w.check(2.4) == [] and w.live() == ["eth1"]
    assert w.check(2.5) == [PathChange("server2", "eth1", False, False)]


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def __call__(self, level: str, event: str, message: str | None = None, fields: dict | None = None) -> None:
        self.lines.append((level, event, fields or {}))


class _Unopenable:
    """The new config's transport: an interface that is not there."""

    closed = False

    def __init__(self, *_args: object) -> None:
        pass

    async def start(self) -> None:
        raise TransportError("multicast ff12::1 on eth9: there is no interface eth9")


def _node(config: Config, config_dir: Path, live: list[str]) -> SimpleNamespace:
    watch = PathWatch("server2", live, 5.0)
    for name in live:
        watch.heard(name, 0.0)
    return SimpleNamespace(config=config, paths=SimpleNamespace(config_dir=config_dir, init_dir=config_dir / "init.d"),
                           failover=SimpleNamespace(busy=None, held=Hold.ALL), path_watch=watch, log=_Log(),
                           on_datagram=lambda data, addr: None)


@pytest.mark.parametrize("new_media, live, why", [
    ("drop eth0", ["eth0"], "the new media lines keep none of the paths server2 is heard on now (eth0)"),
    ("mcast6 eth9 ff12::1 694 1 0\n", ["eth0"], "the new heartbeat paths cannot open: multicast ff12::1 on eth9"),
])
def test_a_refused_media_reload_keeps_the_running_config_and_says_why(
        config_dir: Path, monkeypatch: pytest.MonkeyPatch, new_media: str, live: list[str], why: str) -> None:
    running = load(config_dir)
    if new_media == "drop eth0":
        with_media(config_dir, SECOND_PATH, drop_eth0=True)
    else:
        with_media(config_dir, new_media)
    monkeypatch.setattr(reloader, "transport_for", _Unopenable)
    node = _node(running, config_dir, live)
    ok, message = asyncio.run(reloader.reload_config(node))  # type: ignore[arg-type]
    assert not ok and message.startswith(why) and message.endswith("; the running configuration is kept")
    assert node.config is running and node.path_watch.live() == live
    assert [(level, event) for level, event, _f in node.log.lines] == [("error", "reload.refused")]
