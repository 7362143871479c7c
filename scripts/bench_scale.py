"""The default experiment at growing cohort sizes: wall time and peak memory per phase.

    .venv/bin/python scripts/bench_scale.py                       # 1,024 and 4,096 individuals
    .venv/bin/python scripts/bench_scale.py --n 1024 4096 16384 --steps 10
    .venv/bin/python scripts/bench_scale.py --n 256 --steps 5     # a minute

Runs ``python -m twinjax`` (the synthetic cohort of ``data.n_individuals`` x 1,440 hourly
steps, recurrent twins) once per size in a fresh process, with ``--steps`` population and
personal steps (reduced from the default 1,000 + 1,000: the phases' cost per step is what
grows with the cohort; calibration, evaluation and the report do not depend on the steps), and
reads each run's ``metrics.json``: seconds per phase (``timings``) and the process's peak
resident memory at each phase's end (``memory.peak_rss_mb``, a high-water mark). Prints one
Markdown table per size (seconds, milliseconds per individual, peak RSS) and a summary, and
writes them as JSON to ``--out``. Extra app settings follow ``--``, e.g.
``-- host_memory_gb=null`` (size chunks for the free memory, as before the default cap).

Not measured here yet: the same job at 1 and 2 processes (the main job does not run on
several processes; the population fit does, ``twinjax.train.processes``).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(n: int, steps: int, extra: list[str], root: Path) -> dict:
    """One app run at ``n`` individuals; its timings and memory."""
    out = root / f"n{n}"
    cmd = [sys.executable, "-m", "twinjax", f"data.n_individuals={n}", f"train.steps={steps}",
           f"train.personal_steps={steps}", "train.progress=false", f"hydra.run.dir={out}",
           *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"n={n} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "n": n,
        "steps": steps,
        "wall_s": wall,
        "timings": metrics["timings"],
        "peak_rss_mb": metrics["memory"]["peak_rss_mb"],
        "rmse_ratio": metrics.get("rmse_ratio_personalized_over_population"),
    }


def table(row: dict) -> list[str]:
    n, timings, rss = row["n"], row["timings"], row["peak_rss_mb"]
    lines = [f"n = {n:,} individuals, {row['steps']} + {row['steps']} steps: "
             f"{row['wall_s']:.0f} s wall, peak RSS {max(rss.values()) / 1024:.2f} GB", "",
             "| phase | s | ms per individual | peak RSS GB (end of phase) |", "|---|---:|---:|---:|"]  # fmt: skip
    for phase, s in timings.items():
        lines.append(f"| {phase} | {s:.1f} | {1e3 * s / n:.2f} | {rss.get(phase, 0) / 1024:.2f} |")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1024, 4096], help="cohort sizes")
    ap.add_argument("--steps", type=int, default=20, help="population and personal steps each")
    ap.add_argument("--out", type=Path, default=Path("bench_scale.json"))
    ap.add_argument("extra", nargs="*", help="app settings after --, e.g. host_memory_gb=null")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            rows.append(run(n, args.steps, args.extra, Path(tmp)))
            print("\n".join(table(rows[-1])), "\n", flush=True)
    print("| n | wall s | s per 1,000 individuals | peak RSS GB | personalized/population RMSE |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['wall_s']:.0f} | {1e3 * r['wall_s'] / r['n']:.1f} | "
              f"{max(r['peak_rss_mb'].values()) / 1024:.2f} | {r['rmse_ratio']:.4f} |")  # fmt: skip
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
