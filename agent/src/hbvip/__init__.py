"""hbvip: a Heartbeat-compatible two-node virtual IP failover agent."""

from __future__ import annotations

__version__ = "0.1.0"
