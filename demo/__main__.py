"""`python -m demo [--no-tty] [--engine agent|heartbeat]` and `python -m demo down`."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from demo import preflight, provision, scenario
from demo.timeline import Timeline, make
from lab import Lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description="A live failover on a two-host lab.")
    parser.add_argument("action", nargs="?", choices=("up", "down"), default="up")
    parser.add_argument("--no-tty", action="store_true", help="plain timestamped lines instead of a live view")
    parser.add_argument("--engine", choices=("agent", "heartbeat"), default="agent")
    args = parser.parse_args(argv)
    if args.action == "down":
        print("demo lab removed" if provision.tear_down_previous() else "no demo lab to remove")
        return 0
    problems = preflight.problems()
    if problems:
        for problem in problems:
            print(f"make demo: {problem}", file=sys.stderr)
        return 2
    timeline = make(args.no_tty)
    # Ctrl-C, and a `kill` from another terminal, both mean "stop and clean up"; also when this
    # process was started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _demo(timeline, args.engine)
    except KeyboardInterrupt:
        timeline.close()
        provision.tear_down_previous()
        print("\ninterrupted: demo lab removed", flush=True)
        return 130
    except (DemoFailed, TimeoutError) as exc:
        timeline.close()
        print(f"make demo: {exc}\nthe demo lab stays up for a look; `make demo-down` removes it", file=sys.stderr)
        return 1
    except Exception:
        timeline.close()
        print("the demo lab stays up for a look; `make demo-down` removes it", file=sys.stderr)
        raise


class DemoFailed(Exception):
    """A step failed in a way the user can act on: the message says what and where to look."""


def _demo(timeline: Timeline, engine: str) -> int:
    if provision.tear_down_previous():
        timeline.event("removed the previous demo lab")
    lab = provision.build_lab()
    timeline.event(
        f"lab up: {', '.join(lab.hosts)} on 10.99.{lab.net}.0/24 with sshd each, client {lab.client.address}"
        if lab.client else "lab up"
    )
    engine = _provision(lab, engine, timeline)
    deadtime_s = provision.TIMERS["heartbeat_vip_deadtime_ms"] / 1000
    outcome = scenario.run(lab, engine, timeline, deadtime_s)
    timeline.event(f"holders seen by the client: {' -> '.join(outcome.holders)}")
    timeline.close()
    _look_around(lab, engine, lab.dir / "inventory.yml")
    return 0


def _provision(lab: Lab, engine: str, timeline: Timeline) -> str:
    """site.yml with the chosen engine; when the agent engine fails, say so and use Debian's heartbeat,
    so the newcomer still sees the pair the role builds (the failure is shown, not hidden)."""
    timeline.event(f"ansible-playbook site.yml (engine {engine}) over ssh to both hosts")
    started = time.monotonic()
    code, log = provision.run_site(lab, engine, lambda task: timeline.status(f"site.yml: {task}"))
    if code == 0:
        timeline.event(f"site.yml done: the pair runs engine {engine} ({time.monotonic() - started:.0f} s)", "green")
        return engine
    if engine != "agent":
        raise DemoFailed(f"site.yml failed (log {log}):\n{provision.failure_excerpt(log)}")
    timeline.event(f"NOTE: site.yml with engine agent failed (log {log}); falling back to engine heartbeat", "bold yellow")
    timeline.event(provision.failure_excerpt(log, lines=3), "yellow")
    return _provision(lab, "heartbeat", timeline)


def _look_around(lab: Lab, engine: str, inventory: Path) -> None:
    status = "/opt/hbvip/venv/bin/hbvip status" if engine == "agent" else "cl_status rscstatus"
    print("\nThe lab stays up. Look around (as root):")
    for host in lab.hosts.values():
        enter = f"nsenter -t {host.anchor_pid} -n -m -u"
        print(f"  {enter} {status}")
        print(f"  {enter} tail -F /var/log/ha-log")
    assert lab.client is not None
    print(f"  ip netns exec {lab.client.netns} ping {lab.vip}        # the VIP, from the client")
    print(f"  ssh -i {lab.ssh_key} root@{lab.hosts['server1'].address}  (from: ip netns exec {lab.client.netns} bash)")
    # The controller must run in the client namespace: only it has a route to the lab's hosts.
    playbook = f"cd {provision.REPO} && ip netns exec {lab.client.netns} {Path(sys.executable).parent}/ansible-playbook -i {inventory}"
    print(f"\nThe demo's inventory: {inventory}. Run playbooks against the lab (as root):")
    if engine == "agent":
        print(f"  {playbook} demo/hb_vip_examples.yml -e demo_vip2={lab.addr(101)}   # hb_vip, hb_vip_info")
    print(f"  {playbook} playbooks/rename_node.yml -e '{{\"heartbeat_vip_rename\": {{\"server1\": \"db1\"}}}}'   # the rename")
    print("Tear it down: make demo-down")


if __name__ == "__main__":
    sys.exit(main())
