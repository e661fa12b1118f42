"""`python -m demo`: a newcomer's first failover — a two-host lab, site.yml over ssh, a live timeline.

The demo lab has a fixed prefix (`demo`) and is detached, so it stays up after the timeline for looking
around and `make demo-down` (or the next `make demo`) always finds it.
"""
