"""hbvip.cf's metrics directives: off unless asked, loopback when merely switched on, never in ha.cf."""

from __future__ import annotations

import pytest

from hbvip.config import parse_extensions, parse_hacf


def test_metrics_are_off_by_default() -> None:
    ext, problems = parse_extensions("garp_count 3\n", "hbvip.cf")
    assert problems == []
    assert ext.metrics_listen is None and ext.metrics_textfile is None


@pytest.mark.parametrize("value, expected", [
    ("on", ("127.0.0.1", 9694)),
    ("yes", ("127.0.0.1", 9694)),
    ("off", None),
    ("9100", ("127.0.0.1", 9100)),
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("10.99.0.1:9100", ("10.99.0.1", 9100)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_metrics_listen_forms(value: str, expected: tuple[str, int] | None) -> None:
    ext, problems = parse_extensions(f"metrics_listen {value}\n", "hbvip.cf")
    assert problems == [] and ext.metrics_listen == expected


@pytest.mark.parametrize("value", ["localhost:9100", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:", "abc", "1.2.3:9"])
def test_metrics_listen_rejects_names_and_bad_ports_with_file_and_line(value: str) -> None:
    ext, problems = parse_extensions(f"garp_count 3\nmetrics_listen {value}\n", "/etc/ha.d/hbvip.cf")
    assert ext.metrics_listen is None
    assert [(p.path, p.line) for p in problems] == [("/etc/ha.d/hbvip.cf", 2)]
    assert "metrics_listen" in problems[0].message and "address" in problems[0].fix


def test_metrics_textfile_needs_an_absolute_prom_path() -> None:
    ext, problems = parse_extensions("metrics_textfile /var/lib/node_exporter/hbvip.prom\n", "hbvip.cf")
    assert problems == [] and ext.metrics_textfile == "/var/lib/node_exporter/hbvip.prom"
    for bad in ("hbvip.prom", "/var/lib/node_exporter/hbvip.txt"):
        ext, problems = parse_extensions(f"metrics_textfile {bad}\n", "hbvip.cf")
        assert ext.metrics_textfile is None and ".prom" in problems[0].fix


def test_metrics_directives_stay_out_of_hacf() -> None:
    """A real Heartbeat peer reads the same ha.cf; it would refuse an hbvip-only directive."""
    parsed, problems = parse_hacf("metrics_listen on\n", "ha.cf")
    assert parsed is None and any("unknown directive [metrics_listen]" in p.message for p in problems)
