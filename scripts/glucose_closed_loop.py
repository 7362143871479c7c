"""The twin bolus advisor vs simglucose's BBController, closed loop in simglucose itself.

    .venv/bin/python scripts/glucose_closed_loop.py --patients adolescent#001 adult#001 child#001 \
        --days 1 --out /tmp/glucose_a/closed_loop

Without ``--twin`` the twin is a stand-in made from the true parameters
(:func:`~twinjax.glucose.closed_loop.perturbed_twin`: 16 draws, log-normal spread 0.1 on
kp3, Vmx, kabs, kmax, kd and 0.02 on kp1, centred off the truth by one draw of the same spread).
Writes ``outcomes.csv``, ``by_group.csv``, ``traces/`` and one figure per patient into ``--out``.
"""

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import jax

from twinjax.glucose import Advisor
from twinjax.glucose.closed_loop import perturbed_twin
from twinjax.glucose.verify import outcomes_by_group, plot_closed_loop, run_closed_loop


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", nargs="+", default=["adolescent#001", "adult#001", "child#001"])
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2026, help="held-out meals and sensor noise")
    ap.add_argument("--twin-seed", type=int, default=1)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument(
        "--advisor",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="advisor options (twinjax.glucose.Advisor), e.g. quantile=0.75 "
        "max_residual=none",
    )
    ap.add_argument("--tau-flux", type=float, default=60.0, help="0: no integral action")
    ap.add_argument(
        "--spread",
        nargs="*",
        metavar="NAME=SD",
        help="the test twin's log-normal spreads (default: closed_loop.PERTURBED)",
    )
    ap.add_argument("--out", type=Path, default=Path("runs/glucose_closed_loop"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spread = None if args.spread is None else {
        k: float(v) for k, v in (item.split("=") for item in args.spread)}  # fmt: skip
    twin = perturbed_twin(jax.random.key(args.twin_seed), args.patients, draws=args.draws,
                          spread=spread)  # fmt: skip
    tic = time.perf_counter()
    fields = {f.name: f.type for f in dataclasses.fields(Advisor)}
    value = lambda k, v: None if v == "none" else (int if fields[k] in (int, "int") else float)(v)
    advisor = Advisor(**{k: value(k, v) for k, v in (item.split("=") for item in args.advisor)})
    table = run_closed_loop(twin, args.patients, args.days, jax.random.key(args.seed), args.out,
                            processes=args.processes, advisor=advisor,
                            tau_flux=args.tau_flux or None)  # fmt: skip
    wall = time.perf_counter() - tic
    groups = outcomes_by_group(table)
    groups.to_csv(args.out / "by_group.csv")
    for name in args.patients:
        fig = plot_closed_loop(args.out / "traces" / f"{name}.npz")
        fig.savefig(args.out / f"closed_loop_{name.replace('#', '')}.png", dpi=120)
    cols = ["patient", "controller", "tir", "below70", "below54", "above180", "lbgi", "hbgi",
            "seconds", "advised", "deferred"]  # fmt: skip
    print(table[cols].round(3).to_string(index=False))
    print(groups.round(3).to_string())
    print(f"wall {wall:.0f} s for {len(args.patients)} patient(s) x {args.days} day(s), "
          f"{args.processes} process(es)")  # fmt: skip


if __name__ == "__main__":
    main()
