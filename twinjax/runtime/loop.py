"""A checkpointed loop (train, Bayesian SVI, federated rounds): resume, NaN/inf guard, progress."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from twinjax.runtime import interrupt
from twinjax.runtime.checkpoints import CheckedManager, restore_newest
from twinjax.runtime.files import replacing
from twinjax.runtime.progress import progress as progress_bar

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss or parameter became NaN/inf; no checkpoint was written past the last good one."""


def _all_finite(tree) -> bool:
    # each shard on its own device, never a cross-device reduction: an eager all-reduce over
    # several virtual CPU devices can stall in XLA's rendezvous on a loaded host. Checked on the
    # host (the checkpoint copies the state there anyway): an eager jnp check compiled a
    # program per leaf shape in every run
    return all(
        np.isfinite(np.asarray(part)).all()
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.inexact)
        for part in ([s.data for s in x.addressable_shards] if isinstance(x, jax.Array) else [x])
    )


def this_process_only() -> ocp.options.MultiprocessingOptions:
    """orbax's options for files one process writes alone (its own arrays, in a directory of
    its own) while other processes run: no barrier waits for them (the default options make
    every process take part in each save)."""
    if jax.process_count() == 1:
        return ocp.options.MultiprocessingOptions()
    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(
        primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"process{me}"
    )


def checkpoint_manager(directory: Path, *, keep: int, local: bool = False) -> ocp.CheckpointManager:
    """A manager whose refused writes raise ``RunWriteError`` (see :class:`CheckedManager`).

    Step directories are created in the calling thread: created in orbax's background thread,
    a refused one left its other threads waiting minutes for it before the error surfaced.
    ``local``: under JAX's multi-process runtime, this process saves its own (fully
    addressable) state alone (:func:`this_process_only`); otherwise every process saves."""
    synchronous_mkdir = ocp.AsyncOptions(create_directories_asynchronously=False)
    if local:  # orbax creates no root directory for a subset of the processes
        Path(directory).mkdir(parents=True, exist_ok=True)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not local,
        async_options=synchronous_mkdir,
        **({"multiprocessing_options": this_process_only()} if local else {}),
    )
    return CheckedManager(Path(directory).absolute(), options=options)


def restore_latest(manager: ocp.CheckpointManager, state):
    """The newest saved state that reads back (restored into the structure of ``state``), or
    ``state`` if none; a damaged newer checkpoint is set aside with a warning
    (:func:`~twinjax.runtime.checkpoints.restore_newest`)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    args = ocp.args.StandardRestore(abstract)
    out = restore_newest(manager, lambda step: manager.restore(step, args=args))
    return state if out is None else out


def _restore_with_records(manager: ocp.CheckpointManager, state) -> tuple[Any, list | None]:
    """Like :func:`restore_latest` for checkpoints saved with a JSON record list."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    args = ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), records=ocp.args.JsonRestore()
    )
    out = restore_newest(manager, lambda step: manager.restore(step, args=args))
    return (state, None) if out is None else (out["state"], list(out["records"]))


def _step_attribute(state) -> Any:
    return state.step


def run_loop(
    state,
    step_fn: Callable[[Any], tuple[Any, Any]],
    n_steps: int,
    *,
    checkpoint_dir: Path | None,
    every: int,
    keep: int = 3,
    name: str = "train",
    progress: bool = True,
    check_every: int | None = 10,
    step_of: Callable[[Any], Any] = _step_attribute,
    stop_after: int | None = None,
    on_step: Callable[[int, Any, Any], dict | None] | None = None,
    records: list | None = None,
) -> tuple[Any, np.ndarray]:
    """Runs ``state, loss = step_fn(state)`` until ``state.step == n_steps``.

    Resumes from the latest checkpoint in ``checkpoint_dir``; saves ``state`` (params, optimizer
    state, step and PRNG key data) every ``every`` steps and at the end, keeping the last ``keep``.
    Losses are pulled to the host every ``check_every`` steps (not every step); a NaN/inf loss or
    parameter raises :class:`TrainingDiverged` naming the phase, step and individual, before any
    checkpoint of the bad state is written. Returns the final state and the losses of every step
    ([steps] or [steps, individuals]): a resumed run's include those before the checkpoint (saved
    beside it, see :func:`_save_history`). SIGINT/SIGTERM stop the loop at the end of a step with a
    checkpoint and raise :class:`twinjax.runtime.interrupt.Interrupted`.

    Options for other loops (federated rounds): ``checkpoint_dir=None`` saves nothing;
    ``step_of(state)`` is the step counter (default ``state.step``); ``stop_after`` ends after
    that many steps of this call (saving a checkpoint there: an interruption, for tests);
    ``check_every=None`` treats the second output of ``step_fn`` as opaque (not a loss: nothing
    is pulled or checked, and no losses are returned). ``on_step(done, state, output)`` runs
    after every step, and once with ``(0, state, None)`` before the first step of a fresh run;
    a dict it returns is appended to ``records``, a list saved as JSON with every checkpoint
    and replaced in place by the saved one when a run resumes.
    """
    # a state of this process's own arrays (personal twins of its share) is saved by it alone
    local = jax.process_count() > 1 and all(
        getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(state)
    )
    manager = checkpoint_manager(checkpoint_dir, keep=keep, local=local) if checkpoint_dir else None
    # orbax saves no process-local jax.Array under several processes: such a state is saved
    # and restored as host arrays, then placed as it was
    on_host = (lambda tree: jax.device_get(tree)) if local else (lambda tree: tree)
    placed = state
    if manager is not None and records is not None:
        state, saved = _restore_with_records(manager, on_host(state))
        if saved is not None:
            records[:] = saved
    elif manager is not None:
        state = restore_latest(manager, on_host(state))
    if local:
        state = jax.tree.map(lambda x, like: jax.device_put(x, like.sharding), state, placed)
    start = int(step_of(state))
    history = []
    if start:
        log.info("%s: resumed from step %d in %s", name, start, checkpoint_dir)
        if check_every is not None:
            history = _load_history(checkpoint_dir, start, name)
    if start == 0 and on_step is not None:
        _record(records, on_step(0, state, None))
    pending = []
    bar = progress_bar(n_steps, initial=start, desc=name, enabled=progress)
    try:
        with interrupt.deferred():
            for step in range(start, n_steps):
                state, loss = step_fn(state)
                done = step + 1
                signum = interrupt.pending()
                stop = (stop_after is not None and done - start >= stop_after) or bool(signum)
                save = done % every == 0 or done == n_steps or stop
                if check_every is None:
                    bar.update(1)
                else:
                    pending.append(loss)
                if check_every is not None and (save or done % check_every == 0):
                    losses = np.asarray(jnp.stack(pending))
                    _check(losses, done - len(pending), name)
                    history.extend(losses)
                    bar.update(len(pending))
                    bar.set_postfix(loss=f"{np.mean(losses[-1]):.4f}")
                    pending = []
                if on_step is not None:
                    _record(records, on_step(done, state, loss))
                if save and manager is not None:
                    if not _all_finite(state):
                        raise TrainingDiverged(f"{name}: parameters became NaN/inf by step {done}")
                    if check_every is not None:
                        _save_history(checkpoint_dir, done, history, manager)
                    manager.save(done, args=_save_args(on_host(state), records))
                if signum:
                    if manager is not None:
                        manager.wait_until_finished()
                    where = f"in {name} after step {done} of {n_steps}"
                    saved = str(Path(checkpoint_dir) / str(done)) if manager is not None else None
                    raise interrupt.Interrupted(signum, where, saved)
                if stop:
                    break
            if manager is not None:
                manager.wait_until_finished()
            signum = interrupt.pending()  # arrived during the last step or the last save
            if signum:
                last = int(step_of(state))
                where = f"in {name} after step {last} of {n_steps}"
                saved = str(Path(checkpoint_dir) / str(last)) if manager is not None else None
                raise interrupt.Interrupted(signum, where, saved)
    finally:
        bar.close()
        if manager is not None:
            manager.close()
    return state, np.asarray(history)


HISTORY_DIR = "losses"  # beside a loop's checkpoints: <step>.npy, every loss up to that step


def _history_path(checkpoint_dir: Path, step: int) -> Path:
    return Path(checkpoint_dir) / HISTORY_DIR / f"{step}.npy"


def _save_history(checkpoint_dir: Path, step: int, history: list, manager) -> None:
    """The losses of steps 1..``step``, saved with checkpoint ``step`` (a resumed run then
    returns, plots and reports the whole curve); files of checkpoints no longer kept go."""
    path = _history_path(checkpoint_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:  # whole or not at all; a refused write: RunWriteError
        np.save(tmp, np.asarray(history, np.float32))
    kept = set(manager.all_steps()) | {step}
    for old in path.parent.glob("*.npy"):
        if old.stem.isdigit() and int(old.stem) < min(kept):
            old.unlink(missing_ok=True)


def _load_history(checkpoint_dir: Path, step: int, name: str) -> list:
    path = _history_path(checkpoint_dir, step)
    try:
        history = np.load(path)
    except (OSError, ValueError):
        log.warning("%s: no loss history saved with step %d (%s): the returned losses start at "
                    "step %d", name, step, path, step + 1)  # fmt: skip
        return []
    if len(history) != step:
        log.warning("%s: the loss history saved with step %d has %d entries: not used", name,
                    step, len(history))  # fmt: skip
        return []
    return list(history)


def _record(records: list | None, record: dict | None) -> None:
    if record is not None and records is not None:
        records.append(record)


def _save_args(state, records: list | None) -> ocp.args.CheckpointArgs:
    if records is None:
        return ocp.args.StandardSave(state)
    return ocp.args.Composite(
        state=ocp.args.StandardSave(state), records=ocp.args.JsonSave(list(records))
    )


def _check(losses: np.ndarray, first_step: int, name: str) -> None:
    bad = ~np.isfinite(losses)
    if bad.any():
        idx = np.argwhere(bad)[0]
        where = f" for individual {idx[1]}" if losses.ndim > 1 else ""
        raise TrainingDiverged(
            f"{name}: loss is {losses[tuple(idx)]} at step {first_step + idx[0] + 1}{where}; "
            "lower the learning rate or check the data (no checkpoint past the last good one)"
        )
