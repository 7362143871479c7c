"""Writes a virtual type-1 diabetes cohort as long-format Parquet (see ``cohort.py``).

    .venv/bin/python -m twinjax.physiology --out runs/t1d_cohort --days 14 --seed 0
    .venv/bin/python -m twinjax data=files data.observations=runs/t1d_cohort/observations.parquet \\
        data.interventions=runs/t1d_cohort/interventions.parquet \\
        data.static=runs/t1d_cohort/static.parquet data.step=3
"""

import argparse
import time

import jax

from twinjax.physiology.cohort import simulate_cohort, write_cohort
from twinjax.physiology.sensor import Sensor


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory for the Parquet files")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--patients", nargs="*", default=None, help="names (default: all 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sensor", default="Dexcom", help="Dexcom, GuardianRT or Navigator")
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    cohort = simulate_cohort(
        jax.random.key(args.seed), args.patients, args.days, sensor=Sensor.named(args.sensor)
    )
    paths = write_cohort(cohort, args.out)
    n, t, _ = cohort.values.shape
    print(f"{n} patients x {args.days} days ({t} readings each, every {cohort.step:g} min) "
          f"in {time.perf_counter() - tic:.1f} s:")  # fmt: skip
    for path in paths.values():
        print(f"  {path}")


if __name__ == "__main__":
    main()
