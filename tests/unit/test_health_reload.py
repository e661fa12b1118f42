"""A reload's health part, pure and on a fake clock (issue 18 follow-up): the plan names the probes whose
hbvip.cf line is added, changed or removed; unchanged probes keep their state (streak, last result, ban),
changed and new ones start fresh as at start-up (healthy until `fall` failures), removed ones are gone,
and eligibility follows at once."""

from __future__ import annotations

import math
from pathlib import Path

from hbvip.cluster import Hold
from hbvip.cluster.health import Health, ProbeKind
from hbvip.cluster.reload import plan_reload, probe_changes
from hbvip.config import load_config, parse_extensions, parse_haresources

CHECK, MONITOR, LINK = ProbeKind.CHECK, ProbeKind.MONITOR, ProbeKind.LINK
GROUPS, _unused = parse_haresources("server1 IPaddr::10.99.0.100/24/eth0 failback.sh\n"
                                    "server2 IPaddr::10.99.0.101/24/eth1 other.sh\n", "haresources")
VIP1, VIP2 = (g.key for g in GROUPS)
IFACES = {VIP1: frozenset({"eth0"}), VIP2: frozenset({"eth1"})}


def ext(text: str):  # noqa: ANN201 - Extensions
    parsed, problems = parse_extensions(text, "hbvip.cf")
    assert problems == []
    return parsed


def health(text: str, now: float = 0.0) -> Health:
    e = ext(text)
    return Health.from_config(me="server1", groups=GROUPS, checks=e.checks, monitors=e.monitors,
                              tracks=e.track_interfaces, vip_interfaces=IFACES, now=now)


def reload(h: Health, old: str, new: str, now: float) -> None:
    h.reconfigure(health(new, now), probe_changes(ext(old), ext(new)).renew)


def fail(h: Health, name: str, times: int, t: float) -> float:
    """`name` fails `times` runs in a row (the other checks due with it succeed)."""
    for _unused in range(times):
        due = h.due(t, [VIP1])
        assert name in [p.name for p in due]
        for p in due:
            h.result(p.kind, p.name, p.name != name, t + 0.01, "exit 1")
        t = h.probes[(CHECK, name)].next_run
    return t


def test_the_plan_names_added_changed_and_removed_lines_and_ignores_line_numbers():
    old = ext("check web command true\ncheck db command true\nmonitor failback.sh\ntrack_interface eth0\n")
    new = ext("# moved down a line\ncheck web command true\ncheck db command 'exit 1'\ncheck api command true\n"
              "track_interface eth1\n")
    changes = probe_changes(old, new)
    assert changes.added == ((CHECK, "api"), (LINK, "eth1"))
    assert changes.changed == ((CHECK, "db"),)
    assert changes.removed == ((MONITOR, "failback.sh"), (LINK, "eth0"))
    assert changes.renew == {(CHECK, "api"), (LINK, "eth1"), (CHECK, "db")}
    assert probe_changes(old, old) == probe_changes(ext(""), ext(""))   # nothing: no line logged


def test_an_unchanged_check_keeps_its_streak_and_verdict_a_changed_one_starts_fresh():
    text = "check web command false interval 2 fall 2\ncheck db command false interval 2 fall 3\n"
    h = health(text)
    fail(h, "web", 2, 0.0)
    web = h.probes[(CHECK, "web")]
    assert h.eligible() == (Hold.NONE, "check failed: web")
    reload(h, text, "check web command false interval 2 fall 2\ncheck db command 'exit 1' interval 2 fall 3\n", 10.0)
    assert h.probes[(CHECK, "web")] is web and (web.last, web.streak, web.healthy) == (False, 2, False)
    db = h.probes[(CHECK, "db")]
    assert (db.last, db.streak, db.healthy, db.next_run) == (None, 0, True, 10.0)   # fresh; runs at once
    assert h.eligible() == (Hold.NONE, "check failed: web")


def test_removing_the_failing_check_makes_the_node_eligible_again():
    text = "check web command false interval 2\ncheck db command true interval 2\n"
    h = health(text)
    fail(h, "web", 1, 0.0)
    assert h.eligible()[0] == Hold.NONE
    reload(h, text, "check db command true interval 2\n", 5.0)
    assert list(h.probes) == [(CHECK, "db")] and h.eligible() == (Hold.ALL, "")


def test_an_added_check_starts_healthy_and_blocks_only_after_fall_failures():
    h = health("check db command true interval 2\n")
    reload(h, "check db command true interval 2\n",
           "check db command true interval 2\ncheck web command false interval 2 fall 2\n", 30.0)
    assert h.probes[(CHECK, "web")].next_run == 30.0 and h.eligible() == (Hold.ALL, "")
    t = fail(h, "web", 1, 30.0)
    assert h.eligible() == (Hold.ALL, "")
    fail(h, "web", 1, t)
    assert h.eligible() == (Hold.NONE, "check failed: web")


def test_a_result_in_flight_for_a_changed_or_removed_check_is_not_current():
    text = "check web command true interval 2\ncheck db command true\n"
    h = health(text)
    web, db = h.due(0.0, [])
    reload(h, text, "check web command false interval 2\n", 0.5)
    assert not h.current(web) and not h.current(db)
    fresh = h.probes[(CHECK, "web")]
    assert h.current(fresh) and not fresh.running and h.due(0.5, []) == [fresh]


def test_an_unchanged_monitor_keeps_its_ban_and_a_tracked_link_its_state():
    text = "monitor failback.sh interval 5 restarts 0\ntrack_interface eth1\n"
    h = health(text)
    h.due(5.0, [VIP1])
    h.result(MONITOR, "failback.sh", False, 5.0)
    h.link("eth1", False, 6.0)
    assert h.probes[(MONITOR, "failback.sh")].banned_until == math.inf
    reload(h, text, text + "check web command true\n", 7.0)
    assert h.probes[(MONITOR, "failback.sh")].banned_until == math.inf
    assert h.probes[(LINK, "eth1")].last is False
    assert h.eligible() == (Hold.NONE, "monitor failed: failback.sh")
    h.restarted("gone.sh", 8.0)                          # a restart ending for a removed monitor: ignored


def test_the_reload_plan_carries_the_probe_changes_and_whether_health_runs(config_dir: Path):
    (config_dir / "hbvip.cf").write_text("check web command true\n")
    with_health = load_config(config_dir, "server1", init_dir=config_dir / "init.d")
    (config_dir / "hbvip.cf").write_text("")
    without = load_config(config_dir, "server1", init_dir=config_dir / "init.d")
    on = plan_reload(without, with_health, Hold.ALL)
    assert on.health and on.probes.added == ((CHECK, "web"),) and on.release == on.acquire == ()
    off = plan_reload(with_health, without, Hold.ALL)
    assert not off.health and off.probes.removed == ((CHECK, "web"),)
    assert plan_reload(with_health, with_health, Hold.ALL).probes.renew == frozenset()
