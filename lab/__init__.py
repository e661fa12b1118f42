"""The hbvip lab: simulated hosts in network + mount + UTS namespaces, a client, a bridge.

Used by the integration tests, `make demo` and `make bench`. See lab/lab.py for the topology and
DESIGN.md "The lab" for why it looks like this.
"""
from __future__ import annotations

from lab.lab import Lab
from lab.node import Client, Host
from lab.probe import ArpFrame, ArpWatch, Probe, ProbeResult

__all__ = ["ArpFrame", "ArpWatch", "Client", "Host", "Lab", "Probe", "ProbeResult"]
