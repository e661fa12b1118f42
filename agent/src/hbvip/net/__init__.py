"""Network side effects of the agent: VIPs (netlink), gratuitous ARP (AF_PACKET), UDP transport.

Everything here touches the host's network; the pure parts (membership, wire codec) never import it.
"""

from __future__ import annotations
