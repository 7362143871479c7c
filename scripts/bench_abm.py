"""Agent-steps per second of SIR on a dynamic random network: twinjax vs starsim vs Mesa.

Each engine runs in its own subprocess (so peak memory is its own): the same model and
parameters (see ``twinjax/abm/peers.py`` for the mapping), ``--n`` agents and ``--steps`` steps
for twinjax and starsim, ``--mesa-n`` agents for Mesa (one Python object per agent).

    .venv/bin/python scripts/bench_abm.py --n 1000000 --steps 100 --mesa-n 20000

twinjax is timed twice: the first call (tracing and XLA compilation included) and a second call
with a new key (steady state). Peak memory is the subprocess's max RSS (getrusage); for Mesa the
Python-heap peak from tracemalloc is reported as well.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_twinjax(spec, seed):
    import jax

    from twinjax.abm.peers import _twinjax_fn

    fn = _twinjax_fn(spec)
    t0 = time.perf_counter()
    first = jax.block_until_ready(fn(jax.random.split(jax.random.key(seed), 1)))
    t1 = time.perf_counter()
    second = jax.block_until_ready(fn(jax.random.split(jax.random.key(seed + 1), 1)))
    t2 = time.perf_counter()
    return {
        "seconds": t2 - t1,
        "seconds_first_call_with_compile": t1 - t0,
        "attack_rate": float(second[0]),
        "attack_rate_first": float(first[0]),
    }


def run_starsim(spec, seed):
    from twinjax.abm.peers import starsim_attack_rate, starsim_sim

    t0 = time.perf_counter()
    sim = starsim_sim(spec, seed)
    sim.init()
    t1 = time.perf_counter()
    sim.run()
    t2 = time.perf_counter()
    return {"seconds": t2 - t1, "seconds_init": t1 - t0, "attack_rate": starsim_attack_rate(sim)}


def run_mesa(spec, seed):
    from twinjax.abm.peers import mesa_model

    tracemalloc.start()
    t0 = time.perf_counter()
    model = mesa_model(spec, seed)
    t1 = time.perf_counter()
    for _ in range(spec.n_steps):
        model.step()
    t2 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    return {
        "seconds": t2 - t1,
        "seconds_init": t1 - t0,
        "attack_rate": model.attack_rate(),
        "python_heap_peak_mb": peak / 2**20,
    }


ENGINES = {"twinjax": run_twinjax, "starsim": run_starsim, "mesa": run_mesa}


def child(args):
    from twinjax.abm.peers import SIRNetSpec

    spec = SIRNetSpec(n_agents=args.n, n_steps=args.steps)
    out = ENGINES[args.engine](spec, args.seed)
    out.update(
        engine=args.engine,
        n_agents=args.n,
        n_steps=args.steps,
        agent_steps_per_s=args.n * args.steps / out["seconds"],
        peak_rss_mb=_maxrss_mb(),
    )
    print("RESULT " + json.dumps(out))


def spawn(engine, n, steps, seed):
    cmd = [sys.executable, __file__, "--child", engine, "--n", str(n), "--steps", str(steps)]
    cmd += ["--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--mesa-n", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default="twinjax,starsim,mesa")
    ap.add_argument("--json", default=None, help="write all results to this file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.engine = args.child
        return child(args)

    results = {}
    for engine in args.engines.split(","):
        n = args.mesa_n if engine == "mesa" else args.n
        results[engine] = r = spawn(engine, n, args.steps, args.seed)
        print(
            f"{engine:8s} n={r['n_agents']:>9,d} steps={r['n_steps']} time={r['seconds']:8.2f}s "
            f"agent-steps/s={r['agent_steps_per_s']:.3e} attack={r['attack_rate']:.4f} "
            f"peak_rss={r['peak_rss_mb']:.0f}MB",
            flush=True,
        )
    if "twinjax" in results:
        tj = results["twinjax"]
        tj_first = tj["n_agents"] * tj["n_steps"] / tj["seconds_first_call_with_compile"]
        print(f"twinjax first call incl. compile: {tj['seconds_first_call_with_compile']:.2f}s")
        for peer in ("starsim", "mesa"):
            if peer in results:
                ratio = tj["agent_steps_per_s"] / results[peer]["agent_steps_per_s"]
                ratio_first = tj_first / results[peer]["agent_steps_per_s"]
                results[f"ratio_vs_{peer}"] = ratio
                print(
                    f"ratio twinjax/{peer} (agent-steps/s): {ratio:.1f}x steady, "
                    f"{ratio_first:.1f}x incl. compile"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
