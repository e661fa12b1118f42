"""Resource groups: run haresources' scripts and the native IPaddr the way Heartbeat's ResourceManager does."""

from __future__ import annotations
