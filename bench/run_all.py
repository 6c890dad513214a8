"""Every benchmark at small sizes in one go, one table: figure, target, measured, pass/fail.

    python bench/run_all.py --quick            # a few minutes (--repeat 1: one run of each)
    python bench/run_all.py --quick --json     # a JSON list of {"figure", "target", "measured", "unit", "pass"}
    python bench/run_all.py                    # full sizes (tens of minutes)

Each bench runs as its own process (so one's memory and threads cannot skew another's); a bench
that cannot run (e.g. ``wrk`` missing) shows as a failed figure with the reason.

Machines here are shared and noisy, so every figure is a median of several runs: the benches in
``MEDIANS_INSIDE`` time many runs themselves and report medians (or percentiles over many
samples); the others run ``--repeat`` times (default 3) and each of their figures is the median
of its runs, its pass/fail the median run's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import Figure, report

HERE = Path(__file__).resolve().parent
BENCHES = [
    "startup",
    "routing",
    "context",
    "sla_sweep",
    "webhooks_out",
    "media",
    "fanout",
    "autocomplete",
    "ingest",
]
# These repeat their measurement inside and report medians: one run of the script is enough.
MEDIANS_INSIDE = {"startup", "routing", "context", "sla_sweep", "autocomplete", "ingest"}


def run(name: str, quick: bool, timeout: float) -> list[Figure]:
    script = HERE / f"{name}.py"
    if not script.exists():
        return [Figure(f"{name}: not available", "-", 0, "", False)]
    command = [sys.executable, str(script), "--json", *(["--quick"] if quick else [])]
    started = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    except subprocess.TimeoutExpired:
        return [Figure(f"{name}: timed out after {timeout:.0f} s", "-", timeout, "s", False)]
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    if not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:100]
        return [Figure(f"{name}: did not run ({reason})", "-", time.monotonic() - started, "s", False)]
    return [
        Figure(r["figure"], r["target"], float(r["measured"]), r["unit"], bool(r["pass"]))
        for r in json.loads(lines[-1])
    ]


def median_of_runs(runs: list[list[Figure]]) -> list[Figure]:
    """Figure by figure (same bench, same order), the run whose measurement is the median (the
    lower middle of an even count): its name, unit and pass/fail go with the value."""
    if len({len(figures) for figures in runs}) != 1:
        return runs[0]  # a run that failed differently: show the first as it came
    merged = []
    for same in zip(*runs, strict=True):
        ordered = sorted(same, key=lambda figure: figure.measured)
        merged.append(ordered[(len(ordered) - 1) // 2])
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes in all")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", nargs="*", choices=BENCHES, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the benches that do not repeat inside")
    args = parser.parse_args()
    figures: list[Figure] = []
    for name in args.only or BENCHES:
        times = 1 if name in MEDIANS_INSIDE else max(1, args.repeat)
        runs = [run(name, args.quick, timeout=300 if args.quick else 3600) for _ in range(times)]
        figures += median_of_runs(runs)
        if not args.json:
            print(f"... {name} done", file=sys.stderr, flush=True)
    report(figures, args.json)


if __name__ == "__main__":
    main()
