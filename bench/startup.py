"""Start-up of one daemon, alone on the primary with an idle peer: launch → listening → first heartbeat.

`listening`: the heartbeat socket is open (UDP 694 bound, or keepalived's VRRP socket), polled from
/proc in the host's network namespace. `first heartbeat`: the first heartbeat datagram (or VRRP
advert) from the primary reaching the peer, seen by a sniffer there (bench/_sniff.py). Launch is the
moment the bench starts the daemon's command, on the same monotonic clock.

keepalived starts as a BACKUP and adverts only once its master-down timer (3 × advert_int + skew)
ran out, so its first advert includes that protocol wait; its `listening` is its start-up cost.
`python -m bench.startup [TRIALS] [KEEPALIVE_MS DEADTIME_MS]` prints a table without the whole bench.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from lab import Lab
from lab.node import Host
from lab.probe import stop_proc, wait_ready

from bench.contenders.base import BACKUP, PRIMARY, Contender
from bench.timers import TimerSet
from bench.trial import reset

SNIFF = Path(__file__).with_name("_sniff.py")
_UDP_694 = ":02B6 00000000:0000 07"     # /proc/net/udp: 0.0.0.0:694 bound, unconnected (state 07)
_RAW_VRRP = ":0070 "                    # /proc/net/raw: a raw socket's "port" is its protocol, 112


def _listening(host: Host) -> bool:
    net = Path(f"/proc/{host.anchor_pid}/net")
    if _UDP_694 in (net / "udp").read_text():
        return True
    return any(line.split()[1].endswith(_RAW_VRRP.strip()) for line in (net / "raw").read_text().splitlines()[1:])


def _watch_listening(host: Host, found: dict[str, float], stop: threading.Event) -> None:
    while not stop.is_set():
        if _listening(host):
            found["listening"] = time.monotonic()
            return
        time.sleep(0.0005)


def _first_packet(out: Path, after: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in out.read_text().splitlines()[1:]:
            t = float(line.split()[0])
            if t >= after:
                return t
        time.sleep(0.01)
    return None


def trial(lab: Lab, contender: Contender, timers: TimerSet) -> dict[str, float | None]:
    """One cold start of the primary, in seconds since launch (None: not seen within the timeout)."""
    primary, peer = lab.hosts[PRIMARY], lab.hosts[BACKUP]
    reset(lab, contender)
    contender.install(timers, [lab.vip])
    out = lab.dir / f"sniff-{contender.name}-{time.monotonic_ns()}.log"
    sniffer = peer.spawn_tool([sys.executable, "-u", str(SNIFF), peer.iface, primary.address, str(out)])
    found: dict[str, float] = {}
    stop = threading.Event()
    try:
        wait_ready(out, sniffer, "sniffer")
        watcher = threading.Thread(target=_watch_listening, args=(primary, found, stop), daemon=True)
        launched = time.monotonic()
        watcher.start()
        contender.start(primary)
        first = _first_packet(out, launched, 2 * timers.initdead_ms / 1000 + 10)
        stop.set()
        watcher.join(5)
    finally:
        stop.set()
        stop_proc(sniffer)
        reset(lab, contender)
    listening = found.get("listening")
    return {"listening": None if listening is None else listening - launched,
            "first_heartbeat": None if first is None else first - launched}


def measure(lab: Lab, contender: Contender, timers: TimerSet, trials: int) -> list[dict[str, float | None]]:
    return [trial(lab, contender, timers) for _unused in range(trials)]


def main(argv: list[str]) -> int:
    """A quick look without the whole bench (root: it builds its own lab)."""
    import os  # pylint: disable=import-outside-toplevel

    from bench.contenders import ALL  # pylint: disable=import-outside-toplevel
    from bench.stats import summary  # pylint: disable=import-outside-toplevel

    trials = int(argv[0]) if argv else 5
    timers = TimerSet("cli", int(argv[1]), int(argv[2])) if len(argv) >= 3 else TimerSet("50ms/150ms", 50, 150)
    names = os.environ.get("BENCH_CONTENDERS", "hbvip,keepalived,heartbeat").split(",")
    with Lab(prefix=f"su{os.getpid()}", net=None) as lab:
        for c in [cls(lab) for cls in ALL if cls.name in names]:
            if not c.supports(timers):
                continue
            rows = measure(lab, c, timers, trials)
            for key in ("listening", "first_heartbeat"):
                s = summary([r[key] for r in rows])
                spread = " / ".join(f"{s[k] * 1000:.0f}" if isinstance(s[k], float) else str(s[k])
                                    for k in ("min", "median", "max"))
                print(f"{c.name:<11} {key:<16} {spread} ms (n={s['n']}, failed={s['failed']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
