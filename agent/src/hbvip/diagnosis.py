"""Why the pair looks wrong, in words an operator can act on.

Two questions Heartbeat leaves to the operator's guesswork: "is the peer really dead, or are only its
heartbeats lost?" (a firewall dropping UDP 694 looks exactly like a dead peer, and both nodes then take
the VIP) and "do both nodes run the same files?" (the how-to demands identical files; a difference shows
only when a failover behaves oddly). The first is answered with an ICMP echo to the peer's fixed address
when it is declared dead; the second by a digest of the config files that every `status` message carries
as the extra field `hbvip_digest`, which Heartbeat ignores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from .link import DIGEST_FIELD
from .net.icmp import ping

__all__ = ["DIGEST_FIELD", "digest_state", "explain_silence", "firewall_hint"]


def firewall_hint(port: int) -> str:
    return f"peer alive but heartbeats lost — check the firewall for UDP {port}"


async def explain_silence(addresses: Sequence[str], port: int,
                          probe: Callable[[str], Awaitable[bool]] = ping) -> str | None:
    """The firewall hint when any of the peer's addresses still answers ICMP echo, else None."""
    for address in addresses:
        if await probe(address):
            return firewall_hint(port)
    return None


def digest_state(mine: str, theirs: str | None) -> str:
    """`same`, `differs`, or `unknown` (the peer sends no digest: an older hbvip or Heartbeat itself)."""
    if theirs is None:
        return "unknown"
    return "same" if theirs == mine else "differs"
