"""A checkpointed training loop: resume, NaN/inf guard, progress bar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss or parameter became NaN/inf; no checkpoint was written past the last good one."""


def _all_finite(tree) -> bool:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    return bool(jnp.all(jnp.stack(leaves))) if leaves else True


def checkpoint_manager(directory: Path, *, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    return ocp.CheckpointManager(Path(directory).absolute(), options=options)


def restore_latest(manager: ocp.CheckpointManager, state):
    """The latest saved state (restored into the structure of ``state``), or ``state`` if none."""
    step = manager.latest_step()
    if step is None:
        return state
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def run_loop(
    state,
    step_fn: Callable[[Any], tuple[Any, jax.Array]],
    n_steps: int,
    *,
    checkpoint_dir: Path,
    every: int,
    keep: int = 3,
    name: str = "train",
    progress: bool = True,
    check_every: int = 10,
) -> tuple[Any, np.ndarray]:
    """Runs ``state, loss = step_fn(state)`` until ``state.step == n_steps``.

    Resumes from the latest checkpoint in ``checkpoint_dir``; saves ``state`` (params, optimizer
    state, step and PRNG key data) every ``every`` steps and at the end, keeping the last ``keep``.
    Losses are pulled to the host every ``check_every`` steps (not every step); a NaN/inf loss or
    parameter raises :class:`TrainingDiverged` naming the phase, step and individual, before any
    checkpoint of the bad state is written. Returns the final state and the losses of the steps
    run in this call ([steps] or [steps, individuals]).
    """
    manager = checkpoint_manager(checkpoint_dir, keep=keep)
    state = restore_latest(manager, state)
    start = int(state.step)
    if start:
        log.info("%s: resumed from step %d in %s", name, start, checkpoint_dir)
    history, pending = [], []
    bar = tqdm(total=n_steps, initial=start, desc=name, disable=not progress, leave=False)
    try:
        for step in range(start, n_steps):
            state, loss = step_fn(state)
            pending.append(loss)
            done = step + 1
            save = done % every == 0 or done == n_steps
            if save or done % check_every == 0:
                losses = np.asarray(jnp.stack(pending))
                _check(losses, done - len(pending), name)
                history.extend(losses)
                bar.update(len(pending))
                bar.set_postfix(loss=f"{np.mean(losses[-1]):.4f}")
                pending = []
            if save:
                if not _all_finite(state):
                    raise TrainingDiverged(f"{name}: parameters became NaN/inf by step {done}")
                manager.save(done, args=ocp.args.StandardSave(state))
        manager.wait_until_finished()
    finally:
        bar.close()
        manager.close()
    return state, np.asarray(history)


def _check(losses: np.ndarray, first_step: int, name: str) -> None:
    bad = ~np.isfinite(losses)
    if bad.any():
        idx = np.argwhere(bad)[0]
        where = f" for individual {idx[1]}" if losses.ndim > 1 else ""
        raise TrainingDiverged(
            f"{name}: loss is {losses[tuple(idx)]} at step {first_step + idx[0] + 1}{where}; "
            "lower the learning rate or check the data (no checkpoint past the last good one)"
        )
