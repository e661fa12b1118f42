"""Delay jitter on one UDP port between two lab hosts, without tc netem (this kernel has no sch_netem).

How: in the bridge namespace an nft `bridge` rule drops the frames to UDP `port` that the bridge would
forward from host A's port to host B's (and back). An AF_PACKET tap on each bridge port sees those
frames first (taps run before the bridge's rx handler, so before the filter), holds each for a random
delay drawn uniformly from [0, max_ms] and writes it out of the other port. A frame written to a port
leaves through that veth straight to the host: it never enters the bridge again (no second filter, no
second capture), and the taps ignore outgoing frames (PACKET_IGNORE_OUTGOING, and pkttype is checked).
Uniform, like netem's `delay 0ms 50ms` without correlation; reordering is possible only between frames
closer together than max_ms, which heartbeats every 200 ms never are.

The UDP checksum is recomputed before re-sending: a frame tapped on a veth may carry a partial
(offloaded) checksum that only the sending stack would have completed. IP fragments past the first
carry no UDP header: the filter does not match them and they cross the bridge undelayed.

Run inside the bridge namespace as a script (stdlib only):
  jitter.py PORT_A MAC_A PORT_B MAC_B UDP_PORT MAX_MS SEED OUT
MAC_x is the host behind PORT_x. OUT gets "ready", then one line per re-sent frame:
  "<from port> <to port> <held ms>". SIGTERM sends what is held at once and ends the program.
"""
from __future__ import annotations

import heapq
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hbvip.net.icmp import checksum  # the one Internet checksum (RFC 1071) of the project

if TYPE_CHECKING:
    from lab.lab import Lab

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
SOL_PACKET = 263                   # linux/socket.h and linux/if_packet.h; not exported by Python
PACKET_IGNORE_OUTGOING = 23
NFT_TABLE = "hbjitter"


# ---- the lab side: install, start, stop ------------------------------------------------------------

@dataclass
class Jitter:
    """A running jitter emulator; `stop()` ends it (by PID) and removes its nft table."""

    bridge_ns: str
    proc: subprocess.Popen
    out: Path

    def delays_ms(self) -> list[float]:
        """How long each re-sent frame was held, in order."""
        lines = self.out.read_text().splitlines()[1:] if self.out.exists() else []
        return [float(line.split()[2]) for line in lines if len(line.split()) == 3]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        subprocess.run(["ip", "netns", "exec", self.bridge_ns, "nft", "delete", "table", "bridge", NFT_TABLE],
                       check=False, capture_output=True)


def start(lab: Lab, a: str, b: str, *, max_ms: float = 50.0, port: int = 694, seed: int | None = None) -> Jitter:
    """Delay every UDP `port` frame between hosts `a` and `b` (both ways) by uniform [0, max_ms] ms.

    The process lives in the lab's bridge namespace, so the lab's teardown ends it too."""
    ha, hb = lab.hosts[a], lab.hosts[b]
    pa, pb = f"v{a}"[:15], f"v{b}"[:15]
    ruleset = "\n".join([
        f"table bridge {NFT_TABLE} {{",
        "  chain forward {",
        "    type filter hook forward priority 0; policy accept;",
        f'    iifname "{pa}" oifname "{pb}" udp dport {port} drop',
        f'    iifname "{pb}" oifname "{pa}" udp dport {port} drop',
        "  }",
        "}",
        "",
    ])
    out = lab.dir / f"jitter-{a}-{b}.log"
    out.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.bridge_ns, sys.executable, "-u", __file__,
         pa, ha.mac, pb, hb.mac, str(port), str(max_ms), str(seed if seed is not None else random.randrange(1 << 30)),
         str(out)],
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    jitter = Jitter(lab.bridge_ns, proc, out)
    try:
        deadline = time.monotonic() + 10
        while not (out.exists() and out.read_text().startswith("ready\n")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jitter emulator did not start (exit {proc.poll()})")
            time.sleep(0.01)
        # Only now drop at the bridge: the taps are already there, so no frame falls in between.
        subprocess.run(["ip", "netns", "exec", lab.bridge_ns, "nft", "-f", "-"], input=ruleset, text=True,
                       check=True, capture_output=True)
    except BaseException:
        jitter.stop()
        raise
    return jitter


# ---- the emulator (runs in the bridge namespace) ---------------------------------------------------

def delayed_udp(frame: bytes, port: int) -> bytes | None:
    """The frame with a completed UDP checksum if it is IPv4 UDP to `port` (an unfragmented datagram or
    its first fragment), else None: the frames the bridge rule drops."""
    if len(frame) < 34 or struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    flags_frag = struct.unpack_from("!H", frame, 20)[0]
    if flags_frag & 0x1FFF or len(frame) < 14 + ihl + 8:
        return None
    udp = 14 + ihl
    if struct.unpack_from("!H", frame, udp + 2)[0] != port:
        return None
    if flags_frag & 0x2000:                    # first of several fragments: the checksum covers them all
        return frame
    total_len = struct.unpack_from("!H", frame, 16)[0]
    segment = bytearray(frame[udp:14 + total_len])
    segment[6:8] = b"\0\0"
    pseudo = frame[26:34] + struct.pack("!BBH", 0, 17, len(segment))
    csum = checksum(pseudo + bytes(segment)) or 0xFFFF
    return frame[:udp + 6] + struct.pack("!H", csum) + frame[udp + 8:]


def _tap(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def _goes_to(frame: bytes, mac: bytes) -> bool:
    """Would the bridge forward this frame to the port of the host with `mac`? (unicast to it, or group)"""
    return frame[:6] == mac or bool(frame[0] & 1)


def run(port_a: str, mac_a: str, port_b: str, mac_b: str, udp_port: int, max_ms: float, seed: int,
        out_path: str) -> None:
    rng = random.Random(seed)
    taps = {port_a: _tap(port_a), port_b: _tap(port_b)}
    other = {port_a: (port_b, bytes.fromhex(mac_b.replace(":", ""))),
             port_b: (port_a, bytes.fromhex(mac_a.replace(":", "")))}
    held: list[tuple[float, int, str, str, float, bytes]] = []
    count = 0
    stop = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    with open(out_path, "w", encoding="utf-8", buffering=1) as out:
        out.write("ready\n")
        while True:
            now = time.monotonic()
            while held and (stop or held[0][0] <= now):
                _due, _n, src, dst, captured, frame = heapq.heappop(held)
                try:
                    taps[dst].send(frame)
                except OSError as exc:                 # port gone (power loss of a host): the frame is lost
                    out.write(f"# {src}->{dst} lost: {exc.strerror}\n")
                    continue
                out.write(f"{src} {dst} {(time.monotonic() - captured) * 1000:.2f}\n")
            if stop:
                break
            timeout = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
            try:
                readable = select.select(list(taps.values()), [], [], timeout)[0]
            except InterruptedError:
                continue
            for sock in readable:
                src = next(name for name, s in taps.items() if s is sock)
                dst, dst_mac = other[src]
                while True:
                    try:
                        frame, addr = sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    if addr[2] == PACKET_OUTGOING or not _goes_to(frame, dst_mac):
                        continue
                    fixed = delayed_udp(frame, udp_port)
                    if fixed is None:
                        continue
                    captured = time.monotonic()
                    count += 1
                    heapq.heappush(held, (captured + rng.uniform(0, max_ms) / 1000, count, src, dst, captured, fixed))


def main(argv: list[str]) -> int:
    port_a, mac_a, port_b, mac_b, udp_port, max_ms, seed, out = argv
    run(port_a, mac_a, port_b, mac_b, int(udp_port), float(max_ms), int(seed), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
