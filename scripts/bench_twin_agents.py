"""Twin-driven agents per second: each agent's own twin inside the epidemic step.

Two ways to run the twins, timed in one run at each ``--n``: ``carry`` (each twin's recurrent
state carried across epidemic steps: one cell step per agent per step,
:func:`twinjax.twins.stream_step`) and ``window`` (every twin re-run over its sliding window of
``--window`` steps at every epidemic step, the earlier implementation). Twins are ``--cell``
``--hidden`` with temporal attention (cache = window) unless ``--no-attention``, parameters drawn
at random (the cost does not depend on their values). Each mode is compiled and run once (time reported apart), then
timed ``--repeats`` times; the median is reported.

    .venv/bin/python scripts/bench_twin_agents.py --n 10000 100000 --steps 50 --window-steps 5
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from twinjax import abm
from twinjax.adapters.twin_agents import TwinCoupling, simulate_with_twins
from twinjax.data import Series
from twinjax.twins import TwinSpec, init_params


def setup(n: int, window: int, hidden: int, cell: str, attention: bool, seed: int = 0):
    k_p, k_w, k_a = jax.random.split(jax.random.key(seed), 3)
    spec = TwinSpec(n_features=3, n_interventions=2, n_static=3, cell=cell, hidden=hidden,
                    attention=attention, attention_dim=16)  # fmt: skip
    params = jax.vmap(lambda k: init_params(k, spec))(jax.random.split(k_p, n))
    kv, km = jax.random.split(k_w)
    windows = Series(
        jax.random.normal(kv, (n, window, 3)),
        jax.random.bernoulli(km, 0.7, (n, window, 3)),
        jnp.zeros((n, window, 2)),
        jnp.zeros((n, 3)),
    )
    agents = abm.init_agents(k_a, n, 0.01)
    return spec, params, windows, agents


def time_mode(
    mode: str, n: int, steps: int, *, window: int, hidden: int, cell: str, attention: bool,
    repeats: int,
) -> dict:  # fmt: skip
    spec, params, windows, agents = setup(n, window, hidden, cell, attention)
    layers = (abm.Layer(abm.WellMixed(), 0.35),)
    seir = abm.SEIRParams(gamma=0.1)
    c = TwinCoupling(feature=0, ref_mean=0.0, ref_sd=1.0, strength=0.3, sick_feature=2,
                     sick_value=-2.0)  # fmt: skip
    run = jax.jit(
        lambda k: (
            simulate_with_twins(
                k, agents, seir, layers, steps, params, spec, windows, c, mode=mode
            )[0].agents.status
        )  # fmt: skip
    )
    t0 = time.perf_counter()
    run(jax.random.key(0)).block_until_ready()
    first = time.perf_counter() - t0
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        run(jax.random.key(r + 1)).block_until_ready()
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    return {"mode": mode, "n": n, "steps": steps, "seconds_median": med,
            "seconds_first_call_with_compile": first, "agent_steps_per_s": n * steps / med}  # fmt: skip


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--steps", type=int, default=50, help="epidemic steps, carry mode")
    ap.add_argument("--window-steps", type=int, default=5, help="epidemic steps, window mode")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--no-attention", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = []
    for n in args.n:
        for mode, steps in (("window", args.window_steps), ("carry", args.steps)):
            row = time_mode(mode, n, steps, window=args.window, hidden=args.hidden,
                            cell=args.cell, attention=not args.no_attention,
                            repeats=args.repeats)  # fmt: skip
            rows.append(row)
            print(f"n={n:>7} {mode:>6}: {row['agent_steps_per_s']:.3e} agent-steps/s "
                  f"(median {row['seconds_median']:.3f}s of {steps} steps; first call "
                  f"{row['seconds_first_call_with_compile']:.2f}s)", flush=True)  # fmt: skip
        w, c = rows[-2], rows[-1]
        print(f"n={n:>7} carry / window: {c['agent_steps_per_s'] / w['agent_steps_per_s']:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"devices": str(jax.devices()), "args": vars(args), "rows": rows}, f, indent=1
            )
    return rows


if __name__ == "__main__":
    main()
