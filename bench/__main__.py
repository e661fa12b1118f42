"""`python -m bench [--smoke] [--out DIR]`: run the bench, write bench/results/<date>/."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from bench import report
from bench.run import Plan, run

RESULTS = Path(__file__).resolve().parent / "results"


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true",
                   help="1 trial, 1 timer set (200 ms), 3 s footprint, no scale: the make-test check")
    p.add_argument("--out", type=Path, help="results directory (default bench/results/<date>)")
    p.add_argument("--resume", type=Path, metavar="PARTIAL_JSON",
                   help="continue an interrupted run from its partial.json (finished cells are kept)")
    p.add_argument("--prefix", default="bn", help="lab namespace prefix (the pid is appended)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("python -m bench: the lab needs root", file=sys.stderr)
        return 2
    # SIGTERM (a CI timeout, `kill`) must unwind through the Lab's teardown like Ctrl-C does.
    signal.signal(signal.SIGTERM, _terminate)
    out = args.out or RESULTS / time.strftime("%Y-%m-%d")
    partial = out / "partial.json"
    resume = json.loads(args.resume.read_text()) if args.resume else None
    results = run(Plan.from_env(args.smoke), prefix=args.prefix, checkpoint=partial, resume=resume)
    report.write(results, out)
    partial.unlink()
    print(f"bench: results in {out}")
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
