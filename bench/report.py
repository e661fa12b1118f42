"""results.json (every trial, raw), results.md (tables, targets, ratios), failover.png (takeover)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench import timers as T
from bench.stats import percentile, summary

METRICS = {
    "takeover_power": "takeover after power loss (fault → first answer from the backup)",
    "outage_power": "client outage around the power loss",
    "failback_gap": "failback gap (primary back → serves again)",
    "failback_serving": "failback: primary powered on, its daemon launched → it serves again",
    "planned_loss": "planned switchover loss (standby / hb_standby / priority change)",
    "first_service": "first service after a joint start",
    "takeover_kill9": "takeover after daemon-only kill -9",
    "blackhole_kill9": "stale-VIP blackhole: lost probes from kill -9 through restart and failback",
    "takeover_service": "takeover after the holder's service died (kill → first answer from the backup)",
    "outage_service": "client outage around the service's death",
}
SERVICE_METRICS = ("takeover_service", "outage_service")
CONTENDERS = ("hbvip", "heartbeat", "keepalived")
SETS = {t.name: t for t in (*T.FAILOVER_SETS, *T.FOOTPRINT_SETS)}
STARTUP = {"listening": "launch → listening", "first_heartbeat": "launch → first heartbeat at the peer"}


def _values(rows: Iterable[Mapping[str, Any]], contender: str, timers: str, metric: str) -> list[float | None]:
    return [r.get(metric) for r in rows if r["contender"] == contender and r["timers"] == timers]


def _table(rows: list[Mapping[str, Any]], metrics: Iterable[str]) -> dict[str, Any]:
    """{metric: {timers: {contender: stats in ms}}}."""
    table: dict[str, Any] = {}
    for metric in metrics:
        for timers in dict.fromkeys(r["timers"] for r in rows):
            for c in CONTENDERS:
                vals = _values(rows, c, timers, metric)
                if vals:
                    table.setdefault(metric, {}).setdefault(timers, {})[c] = {
                        k: (v * 1000 if isinstance(v, float) else v) for k, v in summary(vals).items()}
    return table


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """The failover, scale, service and start-up rows as tables of statistics."""
    return {"failover": _table(results["failover"], [m for m in METRICS if m not in SERVICE_METRICS]),
            "scale": _table(results["scale"], ("takeover_power", "first_service")),
            "service": _table(results.get("service", []), SERVICE_METRICS),
            "startup": _table(results.get("startup", []), STARTUP)}


def _median(stats: Mapping[str, Any], metric: str, timers: str, c: str, section: str = "failover") -> float | None:
    return stats[section].get(metric, {}).get(timers, {}).get(c, {}).get("median")


def targets(results: Mapping[str, Any], stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for hbvip, each with the measured value and whether it is met."""
    rows: list[dict[str, Any]] = []

    def add(what: str, timers: str, value: float | None, limit: float, unit: str) -> None:
        limit = round(limit, 3)
        rows.append({"target": what, "timers": timers, "value": value, "limit": limit, "unit": unit,
                     "met": None if value is None else value <= limit})

    fail = results["failover"]
    for name in dict.fromkeys(r["timers"] for r in fail):
        t = SETS[name]
        late = [v * 1000 - t.deadtime_ms for v in _values(fail, "hbvip", name, "takeover_power") if v is not None]
        add("takeover − deadtime, p99", name, percentile(late, 99) if late else None, 20, "ms")
        mine = _median(stats, "takeover_power", name, "hbvip")
        for other, limit in (("keepalived", 1.0 if t is T.FLOOR else 0.9), ("heartbeat", 0.5)):
            theirs = _median(stats, "takeover_power", name, other)
            if mine is not None and theirs:
                add(f"takeover ÷ {other}'s (medians)", name, mine / theirs, limit, "×")
        planned = [v * 1000 for v in _values(fail, "hbvip", name, "planned_loss") if v is not None]
        add("planned handoff loss, max", name, max(planned) if planned else None, 10, "ms")
        first = [v * 1000 for v in _values(fail, "hbvip", name, "first_service") if v is not None]
        add("first service, max (limit 2×keepalive)", name, max(first) if first else None, 2 * t.keepalive_ms, "ms")
        if t is T.FLOOR:
            add("failback: launch → serving, median", name, _median(stats, "failback_serving", name, "hbvip"), 150, "ms")
    for timers, by_c in stats["startup"].get("first_heartbeat", {}).items():
        if "hbvip" in by_c:
            add("launch → ready (first heartbeat), median", timers, by_c["hbvip"]["median"], 60, "ms")
    busiest = {(fp["contender"], fp["timers"]): max(fp[h]["cpu_pct"] for h in ("server1", "server2"))
               for fp in results["footprint"] if fp.get("error") is None}
    for name in dict.fromkeys(r["timers"] for r in results.get("service", [])):
        mine = _median(stats, "takeover_service", name, "hbvip", "service")
        theirs = _median(stats, "takeover_service", name, "keepalived", "service")
        if mine is not None and theirs:
            add("service-death takeover ÷ keepalived's (medians)", name, mine / theirs, 1.0, "×")
    for fp in results["footprint"]:
        if fp["contender"] == "hbvip" and fp["timers"] == T.FOOTPRINT_100.name and fp.get("error") is None:
            add("RSS, larger host", fp["timers"], max(fp[h]["rss_mb"] for h in ("server1", "server2")), 25, "MB")
            theirs = busiest.get(("keepalived", fp["timers"]))
            if theirs is not None:
                add("CPU, busier host (limit: keepalived's)", fp["timers"], busiest["hbvip", fp["timers"]], theirs, "%")
    if ("hbvip", T.ONE_S.name) in busiest:
        add("CPU, busier host", T.ONE_S.name, busiest["hbvip", T.ONE_S.name], 0.05, "%")
    return rows


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _cell(st: Mapping[str, Any] | None) -> str:
    if st is None:
        return "n/a"
    return f"{_fmt(st['min'])} / {_fmt(st['median'])} / {_fmt(st['p95'])} / {_fmt(st['max'])} ({st['n']}, {st['failed']})"


def markdown(results: Mapping[str, Any], stats: Mapping[str, Any], goals: list[dict[str, Any]]) -> str:
    meta = results["meta"]
    v = meta["versions"]
    lines = [
        f"# hbvip bench — {meta['started']}",
        "",
        f"hbvip {v['hbvip']}, Heartbeat {v['heartbeat']}, keepalived {v['keepalived']}; kernel {v['kernel']},"
        f" Python {v['python']}, {v['cpus']} CPUs. {meta['trials']} trial(s) per cell, probe every"
        f" {meta['probe_interval_ms']:g} ms, footprint window {meta['footprint_window_s']:g} s,"
        f" run took {meta.get('duration_s', 0):.0f} s. All times in ms: min / median / p95 / max (n, failed).",
        "",
        "## Targets (hbvip)",
        "",
        "| target | timers | measured | limit | met |",
        "|---|---|---|---|---|",
    ]
    for g in goals:
        met = {True: "yes", False: "**no**", None: "–"}[g["met"]]
        digits = 2 if g["unit"] in ("×", "%") else 1
        lines.append(f"| {g['target']} | {g['timers']} | {_fmt(g['value'], digits)} {g['unit']} |"
                     f" {g['limit']:g} {g['unit']} | {met} |")
    check = meta.get("service_check", {})
    service_title = (f"Service death: check every {check.get('interval_s')} s, fall {check.get('fall')}"
                     " (hbvip `check`, keepalived `vrrp_script`; Heartbeat has none)")
    for section, title in (("failover", "Failover"), ("scale", f"Scale: {meta['scale_vips']} VIPs in one group, the last one probed"),
                           ("service", service_title)):
        table = stats.get(section)
        if not table:
            continue
        lines += ["", f"## {title}"]
        for metric, by_set in table.items():
            lines += ["", f"### {METRICS[metric]}", "", "| timers | " + " | ".join(CONTENDERS) + " |",
                      "|---|" + "---|" * len(CONTENDERS)]
            for name, by_c in by_set.items():
                cells = [_cell(by_c.get(c)) for c in CONTENDERS]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += _startup_lines(stats["startup"])
    lines += ["", "## Footprint (steady state, both daemons up, server1 active)", "",
              "| timers | contender | RSS MB active / backup | CPU % active / backup | wake-ups/s active / backup"
              " | µs CPU per wake-up active / backup | processes |",
              "|---|---|---|---|---|---|---|"]
    for fp in results["footprint"]:
        if fp.get("error"):
            first = str(fp["error"]).splitlines()[0]     # the log lines quoted after it stay in results.json
            lines.append(f"| {fp['timers']} | {fp['contender']} | error: {first} | | |")
            continue
        a, b = fp["server1"], fp["server2"]
        lines.append(f"| {fp['timers']} | {fp['contender']} | {_fmt(a['rss_mb'], 1)} / {_fmt(b['rss_mb'], 1)} |"
                     f" {_fmt(a['cpu_pct'], 3)} / {_fmt(b['cpu_pct'], 3)} |"
                     f" {_fmt(a.get('wakeups_per_s'), 1)} / {_fmt(b.get('wakeups_per_s'), 1)} |"
                     f" {_fmt(a.get('us_per_wakeup'))} / {_fmt(b.get('us_per_wakeup'))} | {a['procs']} / {b['procs']} |")
    errors = [r for r in (*results["failover"], *results["scale"], *results.get("service", []), *results.get("startup", [])) if r.get("error")]
    if errors:
        lines += ["", "## Failed trials", ""]
        lines += [f"- {r['contender']} {r['timers']} trial {r['trial']}: {r['error']}" for r in errors]
    return "\n".join(lines) + "\n"


def _startup_lines(table: Mapping[str, Any]) -> list[str]:
    """Start-up of one daemon on the primary with an idle peer (see bench/startup.py)."""
    if not table:
        return []
    lines = ["", "## Start-up (one daemon launched, its peer idle)", "",
             "keepalived starts as BACKUP and adverts only after its master-down timer (3 × advert + skew).", "",
             "| what | timers | " + " | ".join(CONTENDERS) + " |", "|---|---|" + "---|" * len(CONTENDERS)]
    for key, by_set in table.items():
        for name, by_c in by_set.items():
            cells = [_cell(by_c.get(c)) for c in CONTENDERS]
            lines.append(f"| {STARTUP[key]} | {name} | " + " | ".join(cells) + " |")
    return lines


def plot(results: Mapping[str, Any], path: Path) -> None:
    """Takeover after power loss, every trial as a dot, per timer set and contender (log scale)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["failover"]
    sets = list(dict.fromkeys(r["timers"] for r in rows))
    colors = {"hbvip": "tab:green", "heartbeat": "tab:red", "keepalived": "tab:blue"}
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=80)
    for i, name in enumerate(sets):
        for j, c in enumerate(CONTENDERS):
            vals = [v * 1000 for v in _values(rows, c, name, "takeover_power") if v is not None]
            x = i + (j - 1) * 0.25
            ax.scatter([x] * len(vals), vals, s=12, color=colors[c], label=c if i == 0 else None)
            if vals:
                ax.hlines(sorted(vals)[len(vals) // 2], x - 0.1, x + 0.1, color=colors[c])
        ax.hlines(SETS[name].deadtime_ms, i - 0.4, i + 0.4, color="grey", linestyles="dotted")
    ax.set_xticks(range(len(sets)), sets)
    ax.set_yscale("log")
    ax.set_ylabel("takeover after power loss, ms")
    ax.set_title("dots: trials, bars: median, dotted: deadtime", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, pil_kwargs={"optimize": True})
    plt.close(fig)


def write(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = summarize(results)
    goals = targets(results, stats)
    results["summary_ms"] = stats
    results["targets"] = goals
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    (out_dir / "results.md").write_text(markdown(results, stats, goals))
    plot(results, out_dir / "failover.png")
