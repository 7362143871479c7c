"""``twinjax compare DIR...``: one table of runs, or of a sweep's trials, with their settings and
metrics.

Every run directory under the given folders (a folder holding ``.hydra/``: a single run, or a
sweep's trial) is one row: its path, experiment, status (``ok``; ``failed``, with the message of
``failed.txt``; ``incomplete``: no ``metrics.json`` yet), the settings it changed (its
``.hydra/overrides.yaml``, a trial's sampled values included) and its metrics (``objective``
first, then every number of ``metrics.json`` at the top level and one level down, e.g.
``personalized.rmse_mean``). ``compare.csv`` holds every column; ``compare.md`` (also printed)
the settings and the metrics that differ between runs, sorted by ``objective``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
import yaml

from twinjax.runtime.files import atomic_write_text

RUN_TO_RUN = ("timings.", "memory.")  # metrics that differ between any two runs of one config
FAILED_FILE = "failed.txt"  # written by the app when a run stops on a user error


def run_dirs(roots: list[Path]) -> list[Path]:
    """The run directories under ``roots`` (each holding ``.hydra/``), sorted by path."""
    found = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder")
        found |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    return sorted(found)


def numbers_of(metrics: dict) -> dict[str, float]:
    """Every finite number of ``metrics`` at the top level and one level down (``a.b``)."""
    out = {}
    for key, value in metrics.items():
        inner = value.items() if isinstance(value, dict) else [("", value)]
        for sub, v in inner:
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if v is not None and math.isfinite(v):
                out[f"{key}.{sub}" if sub else key] = float(v)
    return out


def row(run: Path, root: Path) -> dict:
    """One run's row: path, experiment, status, ``settings`` (its overrides as one string),
    each override as a column ``set:KEY`` and each metric as a column."""
    hydra = run / ".hydra"
    overrides = yaml.safe_load((hydra / "overrides.yaml").read_text()) if (
        hydra / "overrides.yaml").exists() else []  # fmt: skip
    config = yaml.safe_load((hydra / "config.yaml").read_text()) if (
        hydra / "config.yaml").exists() else {}  # fmt: skip
    experiment = ((config or {}).get("experiment") or {}).get("name", "")
    metrics_file, failed = run / "metrics.json", run / FAILED_FILE
    if metrics_file.exists():
        status, metrics = "ok", json.loads(metrics_file.read_text())
    elif failed.exists():
        status, metrics = f"failed: {failed.read_text().strip()[:120]}", {}
    else:
        status, metrics = "incomplete", {}
    pairs = [o.split("=", 1) for o in overrides or [] if "=" in o]
    out = {
        "run": str(run.relative_to(root)) if run.is_relative_to(root) else str(run),
        "experiment": experiment,
        "status": status,
        "settings": " ".join(overrides or []),
        **{f"set:{k.lstrip('+~')}": v for k, v in pairs},
    }
    numbers = numbers_of(metrics)
    if "objective" in numbers:
        out["objective"] = numbers.pop("objective")
    return {**out, **numbers}


def compare(roots: list[Path]) -> pd.DataFrame:
    """Every run under ``roots`` as a row (see :func:`row`), sorted by objective (runs without
    one last).

    Raises:
      FileNotFoundError: a root that is not a folder, or no run directory under the roots.
    """
    roots = [Path(r).resolve() for r in roots]
    runs = run_dirs(roots)
    if not runs:
        raise FileNotFoundError(f"no run directories (folders with .hydra/) under {roots}")
    common = Path(*Path(runs[0]).parts[: min(len(r.parts) for r in roots)])
    table = pd.DataFrame([row(r, common) for r in runs])
    if "objective" in table.columns:
        table = table.sort_values("objective", kind="stable", na_position="last")
    return table.reset_index(drop=True)


def varying(table: pd.DataFrame, *, limit: int = 12) -> pd.DataFrame:
    """The columns a reader compares: run, status, the settings that differ between runs, the
    objective and up to ``limit`` metrics that differ."""
    differs = [c for c in table.columns if table[c].astype(str).nunique(dropna=False) > 1]
    sets = [c for c in differs if c.startswith("set:")]
    fixed = ("run", "status", "settings", "experiment", "objective")
    metrics = [c for c in differs if c not in sets and c not in fixed
               and not c.startswith(RUN_TO_RUN)]  # seconds and bytes differ between any two runs  # fmt: skip
    keep = ["run", "experiment", "status", *sets]
    keep += ["objective"] if "objective" in table.columns else []
    return table[keep + metrics[:limit]].rename(columns=lambda c: c.removeprefix("set:"))


def _number(v) -> float | None:
    """``v`` as a float when it is a non-integer number or a string of one (an override's
    value), else None (shown as written)."""
    if isinstance(v, bool | int):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if x.is_integer() and not isinstance(v, float) else x


def markdown(table: pd.DataFrame) -> str:
    cells = table.astype(object).where(table.notna(), "")
    fmt = lambda v: f"{_number(v):.4g}" if _number(v) is not None else str(v)
    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "---|" * len(table.columns)]  # fmt: skip
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="twinjax compare",
        description="One table (CSV and Markdown) of runs or of a sweep's trials: their changed "
        "settings and metrics, sorted by objective.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="run or sweep folders (searched)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where compare.csv and compare.md go (default: the first folder)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        table = compare(args.dirs)
    except FileNotFoundError as e:
        print(f"twinjax compare: {e}")
        return 1
    out = args.out or args.dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(varying(table))
    atomic_write_text(out / "compare.csv", table.to_csv(index=False))
    atomic_write_text(out / "compare.md", text)
    print(text + f"\n{len(table)} runs; every column in {out / 'compare.csv'}")
    return 0
