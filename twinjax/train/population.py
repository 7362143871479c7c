"""Phase (a): one population twin trained on all individuals.

A step's individuals are split over the devices of a mesh (``jax.shard_map``; one per core on a
CPU, see ``train.devices``): each device sums its individuals' losses and gradients, which are
added over the devices (``psum``); the update is the same on every device.
"""

import logging
from collections.abc import Sequence
from functools import cache, partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import PRNGKeyArray

from twinjax.data import CohortArrays
from twinjax.runtime import run_loop
from twinjax.runtime.scalars import loss_hook
from twinjax.train.devices import AXIS, individuals_mesh, training_devices
from twinjax.train.processes import ShareRows, local_copy, processes_mesh, replicated, share_rows
from twinjax.train.validation import max_segment, val_nll_blocks, validation_rows
from twinjax.twins import Params, Spec, init_params, window_loss

log = logging.getLogger(__name__)


class TrainState(NamedTuple):
    params: Params
    opt_state: optax.OptState
    step: jax.Array
    key: jax.Array  # raw key data (uint32), so that checkpoints hold plain arrays


class PopulationOptions(NamedTuple):
    """How the population twin is trained.

    Attributes:
      steps: optimizer steps; lr: Adam learning rate (gradients clipped to global norm 1).
      window: steps per training window (context + horizon); batch_windows: windows per
        individual per step; batch: individuals per step (0: all).
      rollout_steps: k > 0 adds the NLL of each window's last k values forecast by a rollout
        that feeds back the predicted mean (0: one step ahead only; see ``window_loss``).
      checkpoint_every, keep_checkpoints: orbax checkpoints (resumable); progress: a bar.
      block: a device's rows of a step are taken this many at a time (0: all at once), so the
        step's memory is bounded by the block, not the cohort (same step up to float rounding).
    """

    steps: int = 1000
    lr: float = 3e-3
    window: int = 18
    batch_windows: int = 8
    batch: int = 0
    rollout_steps: int = 0
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    progress: bool = True
    block: int = 256


@cache  # one object per rate: the jitted steps take it as a static argument, so a new object
# on every fit_population/fit_personal call would compile the step again
def make_optimizer(lr: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))


def _update(state: TrainState, keys, series, segment, weight, rows, *, spec, optimizer, length,
            n_windows, mesh, rollout_steps, block=0):
    """One optimizer step on the mean window loss of ``rows`` individuals: the weighted sums of
    the given rows' losses and gradients, split over ``mesh``'s devices (None: this one) and
    added over them; within a device, ``block`` rows at a time (0: all at once), their sums
    carried from one block to the next, so that memory grows with the block, not the cohort."""

    def loss_i(params, key, series, segment):
        return window_loss(
            params, spec, key, series, segment, length=length, n_windows=n_windows,
            rollout_steps=rollout_steps,
        )  # fmt: skip

    def sums(params, keys, series, segment, weight):  # rows' weighted loss sum and gradient
        def total(params):
            losses = jax.vmap(loss_i, in_axes=(None, 0, 0, 0))(params, keys, series, segment)
            return jnp.sum(weight * losses)

        return jax.value_and_grad(total)(params)

    def local(params, *rows):  # this device's rows
        n_rows = rows[-1].shape[0]
        if block and n_rows > block:  # padded to a multiple of block (weight-0 rows)
            blocks = jax.tree.map(lambda x: x.reshape(n_rows // block, block, *x.shape[1:]), rows)
            zero = jax.tree.map(jnp.zeros_like, (jnp.zeros(()), params))
            add = lambda acc, b: (jax.tree.map(jnp.add, acc, sums(params, *b)), None)
            value, grads = jax.lax.scan(add, zero, blocks)[0]
        else:
            value, grads = sums(params, *rows)
        return (value, grads) if mesh is None else jax.lax.psum((value, grads), AXIS)

    if mesh is not None:
        ind, rep = PartitionSpec(AXIS), PartitionSpec()
        local = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(rep, ind, ind, ind, ind),
            out_specs=rep,
            check_vma=False,  # the twins' scans start from constant carries
        )
    total, grads = local(state.params, keys, series, segment, weight)
    loss, grads = total / rows, jax.tree.map(lambda g: g / rows, grads)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1, state.key), loss


_STATIC = ("spec", "optimizer", "length", "n_windows", "mesh", "rollout_steps")


@partial(jax.jit, static_argnames=(*_STATIC, "batch", "block"))
def population_step(
    state: TrainState,
    arrays: CohortArrays,
    *,
    spec: Spec,
    optimizer,
    length: int,
    n_windows: int,
    batch: int,
    mesh: jax.sharding.Mesh | None = None,
    rollout_steps: int = 0,
    block: int = 0,
):
    """One optimizer step on the mean window loss of ``batch`` individuals (all if ``batch``
    >= N), their rows split over ``mesh``'s devices (None: this one), ``block`` rows of a
    device at a time (0: all at once)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    k_pick, k_win = jax.random.split(key)
    n = arrays.n_individuals
    idx = jnp.arange(n) if batch >= n else jax.random.choice(k_pick, n, (batch,), replace=False)
    rows = idx.shape[0]
    keys = jax.random.split(k_win, rows)
    d = 1 if mesh is None else mesh.size
    per_device = -(-rows // d)
    if block and per_device > block:  # whole blocks on every device
        per_device = -(-per_device // block) * block
    pad = per_device * d - rows  # rows repeating individual 0 with weight 0, as many a device
    weight = jnp.concatenate([jnp.ones(rows), jnp.zeros(pad)])
    idx, keys = (
        jnp.concatenate([idx, jnp.zeros(pad, idx.dtype)]),
        jnp.concatenate([keys, jnp.broadcast_to(keys[:1], (pad, *keys.shape[1:]))]),
    )
    return _update(
        state, keys, arrays.series.at(idx), arrays.train[idx], weight, rows, spec=spec,
        optimizer=optimizer, length=length, n_windows=n_windows, mesh=mesh,
        rollout_steps=rollout_steps, block=block,
    )  # fmt: skip


@partial(jax.jit, static_argnames=(*_STATIC, "total"))
def processes_step(state: TrainState, rows: ShareRows, *, spec: Spec, optimizer, length: int,
                   n_windows: int, mesh: jax.sharding.Mesh, rollout_steps: int = 0,
                   total: int):  # fmt: skip
    """:func:`population_step` on all ``total`` individuals when each process holds a share of
    them (``rows``, global arrays over ``mesh``, which spans every process's devices): each
    individual draws the windows it would draw in one process, by its index in the cohort."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    _, k_win = jax.random.split(key)
    keys = jax.random.split(k_win, total)[rows.index]
    return _update(
        state, keys, rows.series, rows.train, rows.weight, total, spec=spec,
        optimizer=optimizer, length=length, n_windows=n_windows, mesh=mesh,
        rollout_steps=rollout_steps,
    )  # fmt: skip


def fit_population(
    key: PRNGKeyArray,
    spec: Spec,
    arrays: CohortArrays,
    options: PopulationOptions,
    checkpoint_dir: str | Path,
    *,
    devices: Sequence[jax.Device] | None = None,
    index: Sequence[int] | None = None,
):
    """Trains one twin on all individuals' training windows.

    Args:
      key: initializes the twin and draws the windows (and the individuals, with ``batch``).
      spec: the twin's architecture.
      arrays: the prepared cohort (training segments are used).
      options: steps, learning rate, windows and checkpointing.
      checkpoint_dir: resumes from the latest checkpoint there, saves into it.
      devices: each step's individuals are split over these (default:
        :func:`~twinjax.train.devices.training_devices`); the result does not depend on them
        (up to float rounding).
      index: under JAX's multi-process runtime (more than one process), ``arrays`` is this
        process's share of the cohort and ``index`` its individuals' positions in the whole
        cohort; every process calls this with its share, over a mesh spanning every process's
        devices (:mod:`twinjax.train.processes`), and gets the twin one process holding the
        whole cohort would train (up to float rounding). Needs ``options.batch`` 0 (all).

    Returns:
      ``(params, losses)``: the trained parameters and the loss of each step run in this call.
    """
    cfg = options
    k_init, k_train = jax.random.split(key)
    optimizer = make_optimizer(cfg.lr)
    params = init_params(k_init, spec)
    state = TrainState(
        params, optimizer.init(params), jnp.zeros((), jnp.int32), jax.random.key_data(k_train)
    )
    if jax.process_count() > 1:
        return _fit_across_processes(state, spec, arrays, cfg, checkpoint_dir, optimizer, index)
    batch = cfg.batch or arrays.n_individuals
    devices = training_devices() if devices is None else list(devices)
    devices = devices[: min(batch, arrays.n_individuals)]
    mesh = individuals_mesh(devices) if len(devices) > 1 else None
    if mesh is not None:  # the state on every device (a resumed one is restored like it)
        state = jax.device_put(state, NamedSharding(mesh, PartitionSpec()))
    step = partial(
        population_step,
        spec=spec,
        optimizer=optimizer,
        length=cfg.window,
        n_windows=cfg.batch_windows,
        batch=batch,
        mesh=mesh,
        rollout_steps=cfg.rollout_steps,
        block=cfg.block,
    )
    extra = _val_curve(arrays, spec, cfg.window)
    state, losses = _run(state, lambda s: step(s, arrays), cfg, checkpoint_dir, extra)
    # on the default device, where the rest of the app (personal fit, evaluation) starts from
    return jax.device_put(state.params, jax.local_devices()[0]), losses


def _run(state, step_fn, cfg: PopulationOptions, checkpoint_dir, extra, *, progress=True):
    """``run_loop`` over the population steps: checkpoints, progress, the loss curves and the
    validation curve ``extra`` every checkpoint."""
    return run_loop(
        state,
        step_fn,
        cfg.steps,
        checkpoint_dir=Path(checkpoint_dir),
        every=cfg.checkpoint_every,
        keep=cfg.keep_checkpoints,
        name="population",
        progress=cfg.progress and progress,
        on_step=loss_hook("population", cfg.steps, extra=extra, extra_every=cfg.checkpoint_every),
    )


def _fit_across_processes(state, spec, arrays, cfg, checkpoint_dir, optimizer, index):
    if index is None:
        raise ValueError(
            f"{jax.process_count()} processes: fit_population needs each process's individuals' "
            "positions in the cohort (index=)"
        )
    if cfg.batch:
        raise ValueError("across processes every step takes every individual: batch must be 0")
    mesh = processes_mesh()
    rows, total = share_rows(arrays, index, mesh)
    step = partial(
        processes_step, spec=spec, optimizer=optimizer, length=cfg.window,
        n_windows=cfg.batch_windows, mesh=mesh, rollout_steps=cfg.rollout_steps, total=total,
    )  # fmt: skip
    log.info(
        "population: process %d of %d holds %d of %d individuals; if a process ends, JAX ends "
        "the others: rerun every process with the same settings, training resumes from the last "
        "checkpoint in %s", jax.process_index(), jax.process_count(), len(index), total,
        checkpoint_dir,
    )  # fmt: skip
    curve = _val_curve(arrays, spec, cfg.window)  # this process's individuals
    extra = lambda done, state: curve(done, state._replace(params=local_copy(state.params)))
    state, losses = _run(replicated(state, mesh), lambda s: step(s, rows), cfg, checkpoint_dir,
                         extra, progress=jax.process_index() == 0)  # fmt: skip
    return local_copy(state.params), losses


_CURVE_ROWS = 256  # individuals behind the validation curve (a training curve, not a metric)


def _val_curve(arrays: CohortArrays, spec: Spec, window: int):
    """``val_nll``: the population twin's mean validation NLL (a training curve) on at most
    ``_CURVE_ROWS`` individuals spread evenly over the cohort, so its memory does not grow with N
    (on all 4,096 individuals at once it ran the app out of memory)."""
    rows = np.unique(np.linspace(0, arrays.n_individuals - 1, _CURVE_ROWS).astype(int))
    arrays = arrays.take(rows)
    n, size = arrays.n_individuals, max_segment(arrays.val)
    block: list[int] = []  # individuals per call, sized at the first curve point

    def curve(done: int, state: TrainState) -> dict:
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), state.params)
        if not block:
            block.append(validation_rows(state.params, arrays, spec, window - 1, size, n, 0.25))
        return {"val_nll": jnp.mean(val_nll_blocks(params, arrays, spec, window - 1, size,
                                                   block[0]))}  # fmt: skip

    return curve
