"""What an operator sees of service health: `hbvip status` (table and JSON shape from hbvip.views) and the
Prometheus metrics, both rendered from the same StatusView."""

from __future__ import annotations

from status_samples import status, value

from hbvip.cluster import Hold
from hbvip.cluster.health import Health
from hbvip.config import parse_extensions, parse_haresources
from hbvip.metrics import render
from hbvip.status import _health
from hbvip.status_table import render_status
from hbvip.views import ProbeStatusView


def test_the_table_shows_each_probe_its_result_streak_and_the_eligibility_per_group():
    text = render_status(status(), now=1764100010.0)
    assert "check    web                  failed   3       exit 7" in text
    assert "monitor  failback.sh          failed   0       not running  banned until `hbvip cleanup`" in text
    assert "eligible IPaddr::10.99.0.100/24/eth0: server1 no, server2 yes" in text
    assert "DEGRADED" not in text
    degraded = status()
    degraded["groups"][0].update(peer_eligible=False, degraded=True)
    assert "server2 no   DEGRADED: no node eligible, it stays" in render_status(degraded, now=1764100010.0)


def test_without_health_directives_the_table_has_no_health_lines():
    assert "HEALTH" not in render_status(status(health=None), now=1764100010.0)


def test_metrics_of_probes_and_groups():
    text = render(status())
    assert value(text, "hbvip_health_probe_healthy", kind="check", probe="web") == 0
    assert value(text, "hbvip_health_probe_streak", kind="check", probe="web") == -3
    assert value(text, "hbvip_health_monitor_restarts", kind="monitor", probe="failback.sh") == 1
    assert value(text, "hbvip_group_eligible", group="IPaddr::10.99.0.100/24/eth0") == 0
    assert value(text, "hbvip_group_degraded", group="IPaddr::10.99.0.100/24/eth0") == 0
    assert "hbvip_health_" not in render(status(health=None))


def test_the_status_of_a_live_health_machine_has_the_views_shape(assert_shape):
    groups, _problems = parse_haresources("server1 IPaddr::10.99.0.100/24/eth0 failback.sh\n", "haresources")
    ext, _problems = parse_extensions("check web command true fall 2\nmonitor failback.sh restarts 0\n", "hbvip.cf")
    h = Health.from_config(me="server1", groups=groups, checks=ext.checks, monitors=ext.monitors, tracks=(),
                           vip_interfaces={}, now=0.0)
    h.due(0.0, [groups[0].key])
    h.result(h.probes[next(iter(h.probes))].kind, "web", False, 1.0, "exit 1")
    h.result(h.probes[next(reversed(h.probes))].kind, "failback.sh", False, 1.0, "not running")
    probes = _health(h, 5.0)
    for p in probes:
        assert_shape(p, ProbeStatusView)
    assert [(p["name"], p["healthy"], p["streak"], p["banned_for_s"]) for p in probes] == [
        ("web", True, 1, None), ("failback.sh", False, 0, -1.0)]
    assert h.eligible() == (Hold.FOREIGN, "monitor failed: failback.sh")
