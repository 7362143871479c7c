"""The population fit on several processes (JAX's multi-process runtime) against one process.

    .venv/bin/python scripts/bench_processes.py --processes 2 --n 4096 --steps 20
    .venv/bin/python scripts/bench_processes.py --processes 2 --n 8 --steps 2 --length 60  # dry

Starts ``--processes`` worker processes on this host (coordinator on localhost). On a host with
GPUs each worker sees one of them (``CUDA_VISIBLE_DEVICES``); on a CPU each gets one CPU device
and gloo collectives. Worker ``k`` holds individuals ``k, k + P, ...`` of a synthetic cohort of
``--n`` individuals x ``--length`` steps and calls ``fit_population(..., index=share)``. Then
one process fits the whole cohort on one device. Prints one JSON line: the wall seconds of
each fit (compilation included) and the largest difference between the two fits' parameters
(float rounding only: every process takes the step one process takes).
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


def _cohort(n: int, length: int):
    import jax

    from twinjax.data import prepare, synthetic_cohort
    from twinjax.twins import TwinSpec

    cohort = synthetic_cohort(jax.random.key(0), n_individuals=n, n_steps=length)
    return TwinSpec.for_cohort(cohort), prepare(cohort)[0]


def _fit(args, out: Path, *, share=None, devices=None) -> dict:
    """One fit, timing each step: ``{"seconds": [...], "params": {...}}``."""
    import jax
    import numpy as np

    from twinjax.train import PopulationOptions, fit_population

    spec, arrays = _cohort(args.n, args.length)
    if share is not None:
        arrays = arrays.take(share)
    options = PopulationOptions(steps=args.steps, checkpoint_every=args.steps, progress=False)
    start = time.perf_counter()
    params, losses = fit_population(jax.random.key(3), spec, arrays, options, out,
                                    devices=devices, index=share)  # fmt: skip
    seconds = time.perf_counter() - start
    flat = {jax.tree_util.keystr(p): np.asarray(x).tolist()
            for p, x in jax.tree_util.tree_leaves_with_path(params)}  # fmt: skip
    return {"seconds": seconds, "losses": np.asarray(losses).tolist(), "params": flat}


def worker(args) -> None:
    import numpy as np

    from twinjax.train.processes import initialize

    initialize(f"localhost:{args.port}", args.processes, args.worker)
    share = np.arange(args.worker, args.n, args.processes)
    result = _fit(args, Path(args.out) / "checkpoints", share=share)
    if args.worker == 0:
        (Path(args.out) / "processes.json").write_text(json.dumps(result))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--n", type=int, default=4096, help="individuals")
    ap.add_argument("--length", type=int, default=240, help="steps per individual")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return worker(args)
    import shutil

    # GPUs counted without starting JAX here (it would take a GPU's memory before the workers)
    smi = shutil.which("nvidia-smi")
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout if smi else ""
    gpus = [line for line in listed.splitlines() if line.startswith("GPU ")]
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for k in range(args.processes):
            env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = str(k % len(gpus))
            else:
                env["XLA_FLAGS"], env["JAX_PLATFORMS"] = "", "cpu"  # one CPU device each
            cmd = [sys.executable, __file__, "--worker", str(k), "--port", str(port), "--out", tmp,
                   "--processes", str(args.processes), "--n", str(args.n), "--length",
                   str(args.length), "--steps", str(args.steps)]  # fmt: skip
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))  # fmt: skip
        logs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            sys.exit("a worker failed:\n" + "\n".join(x[-2000:] for x in logs))
        many = json.loads((Path(tmp) / "processes.json").read_text())
        import jax
        import numpy as np

        one = _fit(args, Path(tmp) / "one", devices=jax.devices()[:1])
    diff = max(float(np.max(np.abs(np.asarray(one["params"][k]) - np.asarray(v))))
               for k, v in many["params"].items())  # fmt: skip
    print(json.dumps({
        "processes": args.processes, "n": args.n, "steps": args.steps,
        "devices": "gpu" if gpus else "cpu",
        "seconds_processes": round(many["seconds"], 2), "seconds_one": round(one["seconds"], 2),
        "max_param_difference": diff,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
