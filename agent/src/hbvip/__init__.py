"""hbvip: a Heartbeat-compatible two-node virtual IP failover agent."""

from __future__ import annotations

__version__ = "0.1.0"

#: The command's exit codes: fine, a runtime failure, a configuration error.
EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2
