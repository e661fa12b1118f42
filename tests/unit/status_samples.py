"""A sample `StatusView` and a strict reader of Prometheus exposition text, shared by the metrics and
ping-node tests (a helper module, like cluster_sim: test modules never import each other)."""

from __future__ import annotations

import re
from typing import Any

from hbvip.views import StatusView

SAMPLE = re.compile(r'^([a-z_]+)(\{([^}]*)\})? (\S+)$')


def status(**over: Any) -> StatusView:
    st: StatusView = {
        "node": "server1", "version": "0.1.0", "status": "active", "phase": "running", "stable": True,
        "hold": "local", "generation": 7, "uptime_s": 12.5, "config_digest": "0123456789abcdef",
        "auto_failback": "on",
        "timers": {"keepalive": 1.0, "warntime": 3.0, "deadtime": 5.0, "initdead": 10.0},
        "peer": {"name": "server2", "state": "active", "hold": "none", "stable": True, "last_heard_s": 0.42,
                 "deadtime_s": 5.0, "generation": 3, "late_heartbeats": 2, "addresses": ["10.99.0.2"],
                 "config_digest": "0123456789abcdef", "config": "same", "diagnosis": None},
        "groups": [
            {"key": "IPaddr::10.99.0.100/24/eth0", "home_node": "server1", "holder": "server1", "state": "held",
             "resources": [], "vips": ["10.99.0.100"], "since_s": 3.0,
             "eligible": False, "peer_eligible": True, "degraded": False,
             "transitions": 1, "last_takeover_at": 1764100000.5, "last_takeover_s": 0.25},
            {"key": 'odd"name\\x', "home_node": "server2", "holder": "server2", "state": "held_by_peer",
             "resources": [], "vips": [], "since_s": None,
             "eligible": True, "peer_eligible": True, "degraded": False,
             "transitions": 0, "last_takeover_at": None, "last_takeover_s": None},
        ],
        "holding_nothing": None,
        "ping": None,
        "paths": [{"peer": "server2", "interface": "eth0", "up": True, "last_heard_s": 0.2, "datagrams": 40,
                   "media": ["ucast eth0 10.99.0.2"]},
                  {"peer": "server2", "interface": "eth1", "up": False, "last_heard_s": 7.5, "datagrams": 12,
                   "media": ["ucast6 eth1 fd99:1::2"]}],
        "health": [
            {"kind": "check", "name": "web", "groups": ["IPaddr::10.99.0.100/24/eth0"], "healthy": False,
             "last": False, "streak": 3, "detail": "exit 7", "restarts": 0, "banned_for_s": None},
            {"kind": "monitor", "name": "failback.sh", "groups": ["IPaddr::10.99.0.100/24/eth0"], "healthy": False,
             "last": False, "streak": 0, "detail": "not running", "restarts": 1, "banned_for_s": -1.0},
        ],
        "last_takeover": None,
        "counters": {"packets_sent": 40, "packets_received": 38, "retransmitted": 0,
                     "dropped": {"bad_auth": 5, "replay": 1}, "script_runs": 4, "script_failures": 1,
                     "script_timeouts": 0},
    }
    st.update(over)  # type: ignore[typeddict-item]
    return st


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse exposition text strictly enough to fail on format slips."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("gauge", "counter")
            assert not kind == "counter" or name.endswith("_total")
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not an exposition line: {line!r}"
        assert m.group(1) in typed, f"{m.group(1)} has no TYPE line before it"
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, frozenset(labels.items()))]
