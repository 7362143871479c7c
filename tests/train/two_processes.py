"""One of two processes training the population twin together (tests/train/test_processes.py):
``python two_processes.py PROCESS_ID PORT OUT_DIR [STEPS]``. Each process holds every other individual
of a 12-individual synthetic cohort (0, 2, 4... or 1, 3, 5...) and calls ``fit_population`` with
their positions; process 0 writes the trained twin and the losses to ``OUT_DIR/0.npz`` (process
1 to ``1.npz``), and what a wrong share raised to ``OUT_DIR/<id>.txt``."""

import logging
import os
import sys
from pathlib import Path

import jax
import numpy as np

from twinjax.data import prepare, synthetic_cohort
from twinjax.train import PopulationOptions, fit_population
from twinjax.train.processes import initialize, processes_mesh, share_rows
from twinjax.twins import TwinSpec

OPTIONS = PopulationOptions(steps=4, window=10, batch_windows=2, progress=False)


def cohort():
    """The test's cohort, spec and arrays (the same in every process and in the test)."""
    data = synthetic_cohort(jax.random.key(0), n_individuals=12, n_steps=48)
    spec = TwinSpec.for_cohort(data, hidden=4, attention_dim=4)
    return spec, prepare(data)[0]


def main(process_id: int, port: int, out: Path, steps: int) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, force=True)
    initialize(f"localhost:{port}", 2, process_id, heartbeat_timeout_seconds=10)
    spec, arrays = cohort()
    share = np.arange(process_id, arrays.n_individuals, 2)
    options = OPTIONS._replace(steps=steps, checkpoint_every=5)
    params, losses = fit_population(
        jax.random.key(3), spec, arrays.take(share), options, out / "checkpoints", index=share
    )
    flat = {jax.tree_util.keystr(p): np.asarray(x)
            for p, x in jax.tree_util.tree_leaves_with_path(params)}  # fmt: skip
    np.savez(out / f"{process_id}.npz", losses=np.asarray(losses), **flat)
    try:  # both processes hold individual 0: refused in both
        share_rows(arrays.take(np.array([0, 1])), np.array([0, process_id]), processes_mesh())
    except ValueError as e:
        (out / f"{process_id}.txt").write_text(str(e))


if __name__ == "__main__":  # set before JAX starts its backend (not on import: the test
    # process imports cohort() from here and keeps its own 8 devices)
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"  # 2 devices a process
    os.environ["JAX_PLATFORMS"] = "cpu"
    main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), int((sys.argv[4:] or [4])[0]))
