"""`make bench`: hbvip, Debian's Heartbeat 3.0.6 and keepalived, one after another on one lab.

Every number comes from the same namespaces, VIP and client probe, so the contenders can be compared
on a noisy machine: what matters is the ratio, not the absolute value.
"""
