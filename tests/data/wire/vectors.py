"""Access to the captured Heartbeat 3.0.6 datagrams committed in ``vectors.json``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SECRET = b"labsecret-0123"
_FILE = Path(__file__).with_name("vectors.json")


@dataclass(frozen=True)
class Captured:
    capture: str
    index: int
    time: float
    src: str
    dst: str
    payload: bytes

    @property
    def id(self) -> str:
        return f"{self.capture}#{self.index}"


def captured() -> list[Captured]:
    """Every UDP/694 datagram of hb-wire.pcap and fast-timings.pcap, in capture order."""
    data = json.loads(_FILE.read_text())
    return [Captured(name, i, rec["time"], rec["src"], rec["dst"], bytes.fromhex(rec["payload"]))
            for name, records in data.items() for i, rec in enumerate(records)]
