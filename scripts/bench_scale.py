"""The default experiment at growing cohort sizes: wall time and peak memory per phase.

    .venv/bin/python scripts/bench_scale.py                       # 1,024 and 4,096 individuals
    .venv/bin/python scripts/bench_scale.py --n 1024 4096 16384 --steps 10
    .venv/bin/python scripts/bench_scale.py --n 4096 --processes 1 2   # one process, then two
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

``--processes P``: the same job on P processes of this machine (``distributed.enabled=true``
on localhost, each with ``cpu_devices`` = the cores / P, so that one process with every core
and P processes share the same cores); the phases are process 0's, and the peak RSS of each
process is listed (process k > 0 writes its own in ``process<k>/timings.json``).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run(n: int, steps: int, extra: list[str], root: Path, processes: int = 1) -> dict:
    """One app run at ``n`` individuals on ``processes`` processes; its timings and memory."""
    out = root / f"n{n}p{processes}"
    cmd = [sys.executable, "-m", "twinjax", f"data.n_individuals={n}", f"train.steps={steps}",
           f"train.personal_steps={steps}", "train.progress=false", f"hydra.run.dir={out}",
           *extra]  # fmt: skip
    if processes > 1:
        cores = os.cpu_count() or processes
        port = _free_port()
        cmds = [[*cmd, "distributed.enabled=true", f"distributed.num_processes={processes}",
                 f"distributed.coordinator_address=localhost:{port}",
                 f"distributed.process_id={k}", f"cpu_devices={max(1, cores // processes)}"]
                for k in range(processes)]  # fmt: skip
    else:
        cmds = [cmd]
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for c in cmds]  # fmt: skip
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - start
    for p, err in zip(procs, errors, strict=True):
        if p.returncode:
            sys.exit(f"n={n} failed (exit {p.returncode}):\n{err[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    others = [json.loads((out / f"process{k}" / "timings.json").read_text())
              for k in range(1, processes)]  # fmt: skip
    return {
        "n": n,
        "steps": steps,
        "processes": processes,
        "wall_s": wall,
        "timings": metrics["timings"],
        "peak_rss_mb": metrics["memory"]["peak_rss_mb"],
        "process_peak_rss_mb": [max(m["memory"]["peak_rss_mb"].values())
                                for m in (metrics, *others)],  # fmt: skip
        "rmse_ratio": metrics.get("rmse_ratio_personalized_over_population"),
    }


def table(row: dict) -> list[str]:
    n, timings, rss = row["n"], row["timings"], row["peak_rss_mb"]
    each = ", ".join(f"{m / 1024:.2f}" for m in row["process_peak_rss_mb"])
    lines = [f"n = {n:,} individuals, {row['steps']} + {row['steps']} steps, "
             f"{row['processes']} process(es): {row['wall_s']:.0f} s wall, peak RSS {each} GB",
             "", "| phase (process 0) | s | ms per individual | peak RSS GB (end of phase) |",
             "|---|---:|---:|---:|"]  # fmt: skip
    for phase, s in timings.items():
        lines.append(f"| {phase} | {s:.1f} | {1e3 * s / n:.2f} | {rss.get(phase, 0) / 1024:.2f} |")
    return lines


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1024, 4096], help="cohort sizes")
    ap.add_argument("--steps", type=int, default=20, help="population and personal steps each")
    ap.add_argument("--processes", type=int, nargs="+", default=[1], help="process counts")
    ap.add_argument("--out", type=Path, default=Path("bench_scale.json"))
    ap.add_argument("extra", nargs="*", help="app settings after --, e.g. host_memory_gb=null")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            for p in args.processes:
                rows.append(run(n, args.steps, args.extra, Path(tmp), p))
                print("\n".join(table(rows[-1])), "\n", flush=True)
    print("| n | processes | wall s | s per 1,000 individuals | peak RSS GB (each process) | "
          "personalized/population RMSE |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        each = " + ".join(f"{m / 1024:.2f}" for m in r["process_peak_rss_mb"])
        print(f"| {r['n']:,} | {r['processes']} | {r['wall_s']:.0f} | "
              f"{1e3 * r['wall_s'] / r['n']:.1f} | {each} | {r['rmse_ratio']:.4f} |")  # fmt: skip
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
