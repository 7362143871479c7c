"""Phase (b): per-individual twins initialized from the population twin and fine-tuned together.

Each individual's objective is a MAP estimate under a Gaussian prior centred on the population
parameters: mean window NLL + (prior_strength / 2) * ||theta_i - theta_pop||^2 / n_i, with n_i the
individual's number of observed training targets (so the prior weighs like prior_strength pseudo
observations per parameter unit). All individuals are optimized in one vmapped, jitted step; each
keeps the parameters with the best validation NLL seen (checked every ``eval_every`` steps,
starting from the population's), so a personal twin is never chosen over the population twin
unless it predicts that person's held-out validation data better.
"""

import logging
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import PRNGKeyArray

from twinjax.data import CohortArrays
from twinjax.runtime import run_loop
from twinjax.runtime.scalars import loss_hook
from twinjax.train.devices import (
    AXIS,
    device_memory_budget,
    fit_chunk,
    individuals_mesh,
    layout,
    step_bytes,
    training_devices,
)
from twinjax.train.population import make_optimizer
from twinjax.train.validation import max_segment, val_nll, val_nll_blocks, validation_rows
from twinjax.twins import Params, Spec, window_loss

log = logging.getLogger(__name__)


class PersonalizeOptions(NamedTuple):
    """How the personal twins are fine-tuned from the population twin.

    Attributes:
      steps: optimizer steps; lr: Adam learning rate (gradients clipped to global norm 1).
      window: steps per training window (context + horizon); batch_windows: windows per step.
      prior_strength: precision of the Gaussian prior centred on the population parameters,
        in pseudo-observations per parameter unit.
      rollout_steps: k > 0 adds the NLL of each window's last k values forecast by a rollout
        that feeds back the predicted mean (0: one step ahead only; see ``window_loss``).
      chunk_size: individuals fine-tuned together (0: as many as fit in ``memory_fraction`` of
        a device's free memory, all if they fit); eval_every: validation NLL period.
      selection: keep each individual's best-on-validation parameters (``individual``), one
        stopping step for the chunk (``cohort``), or the last parameters (``none``).
      adapt: the parts of the twin that become personal: ``all``, the two output ``heads``
        (mean and scale; the recurrent cell and attention stay the population's), or ``mean``
        (the mean head only: the predictive scale stays pooled, so it cannot shrink on a few
        points).
      checkpoint_every, keep_checkpoints: orbax checkpoints (resumable); progress: a bar.
    """

    steps: int = 1000
    lr: float = 3e-3
    window: int = 18
    batch_windows: int = 8
    prior_strength: float = 30.0
    rollout_steps: int = 0
    chunk_size: int = 0
    memory_fraction: float = 0.5
    eval_every: int = 25
    selection: Literal["individual", "cohort", "none"] = "none"
    adapt: Literal["all", "heads", "mean"] = "mean"
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    progress: bool = True


_ADAPTED = {"heads": ("mean", "scale"), "mean": ("mean",)}


def personal_optimizer(options: PersonalizeOptions) -> optax.GradientTransformation:
    """Adam with global-norm clipping (as the population's) over the ``options.adapt`` parts of
    one twin; the gradients of the other parts are zeroed first, so they stay the population's
    (the personal twin starts there)."""
    inner = make_optimizer(options.lr)
    if options.adapt == "all":
        return inner
    if options.adapt not in _ADAPTED:
        raise ValueError(f"adapt={options.adapt!r}: one of all, heads, mean")
    keep = _ADAPTED[options.adapt]

    def labels(params: Params):
        return type(params)(*(
            jax.tree.map(lambda _, name=name: "adapt" if name in keep else "freeze", part)
            for name, part in zip(params._fields, params, strict=True)
        ))  # fmt: skip

    frozen = optax.multi_transform({"adapt": optax.identity(), "freeze": optax.set_to_zero()},
                                   labels)  # fmt: skip
    return optax.chain(frozen, inner)


class PersonalState(NamedTuple):
    params: Params  # leading axis: individuals
    opt_state: optax.OptState
    best_params: Params
    best_val: jax.Array  # [individuals]
    step: jax.Array
    key: jax.Array


def _sq_dist(a, b):
    return sum(
        jnp.sum(jnp.square(x - y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def _personal_step(
    state: PersonalState,
    arrays: CohortArrays,
    ids,
    weight,
    pop_params,
    prior_strength,
    *,
    spec: Spec,
    optimizer,
    length: int,
    n_windows: int,
    eval_every: int,
    val_size: int,
    selection: str,
    rollout_steps: int = 0,
):
    """One step for the individuals on one device (``jax.shard_map`` body over :data:`AXIS`)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, ids)  # chunking-invariant
    n_obs = jnp.maximum(jnp.sum(arrays.series.mask & arrays.train[..., None], axis=(1, 2)), 1)

    def loss_i(params, key, series, train, n):
        fit = window_loss(
            params, spec, key, series, train, length=length, n_windows=n_windows,
            rollout_steps=rollout_steps,
        )  # fmt: skip
        return fit + 0.5 * prior_strength * _sq_dist(params, pop_params) / n

    data = (arrays.series, arrays.train, n_obs)
    loss, grads = jax.vmap(jax.value_and_grad(loss_i))(state.params, keys, *data)
    updates, opt_state = jax.vmap(optimizer.update)(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    step = state.step + 1

    def _select(_):
        val = val_nll(params, arrays, spec, length - 1, val_size)
        if selection == "individual":
            better = val < state.best_val
        else:  # "cohort": one stopping step for the chunk's real individuals (not its padding)
            total = lambda x: jax.lax.psum(jnp.sum(weight * x), AXIS)
            better = jnp.broadcast_to(total(val) < total(state.best_val), val.shape)
        pick = lambda new, old: jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        return jax.tree.map(pick, params, state.best_params), jnp.where(better, val, state.best_val)

    if selection == "none":  # no validation during training: the last parameters are kept
        best_params, best_val = state.best_params, state.best_val
    else:
        best_params, best_val = jax.lax.cond(
            step % eval_every == 0, _select, lambda _: (state.best_params, state.best_val), None
        )
    return PersonalState(params, opt_state, best_params, best_val, step, state.key), loss


_IND, _REP = P(AXIS), P()
_STATE_SPEC = PersonalState(_IND, _IND, _IND, _IND, _REP, _REP)


@partial(
    jax.jit,
    static_argnames=(
        "spec",
        "optimizer",
        "length",
        "n_windows",
        "eval_every",
        "val_size",
        "selection",
        "mesh",
        "rollout_steps",
    ),
)
def personal_step(
    state: PersonalState,
    arrays: CohortArrays,
    ids,
    weight,
    pop_params,
    prior_strength,
    *,
    spec: Spec,
    optimizer,
    length: int,
    n_windows: int,
    eval_every: int,
    val_size: int,
    selection: str,
    mesh: jax.sharding.Mesh,
    rollout_steps: int = 0,
):
    """One optimizer step of every individual of a chunk, sharded over ``mesh``'s devices.

    ``ids`` (each row's individual, for its PRNG stream) and ``weight`` (1 for a real row, 0 for
    padding) have the chunk's leading axis, as do ``state`` (except ``step`` and ``key``) and
    ``arrays``; ``pop_params`` and ``prior_strength`` are the same everywhere.
    """
    body = partial(
        _personal_step,
        spec=spec,
        optimizer=optimizer,
        length=length,
        n_windows=n_windows,
        eval_every=eval_every,
        val_size=val_size,
        selection=selection,
        rollout_steps=rollout_steps,
    )
    sharded = jax.shard_map(
        body,
        mesh=mesh,
        in_specs=(_STATE_SPEC, _IND, _IND, _IND, _REP, _REP),
        out_specs=(_STATE_SPEC, _IND),
        check_vma=False,  # the twins' scans start from constant carries (no varying-axis types)
    )
    return sharded(state, arrays, ids, weight, pop_params, prior_strength)


def _memory_chunk(statics, chunk, d, devices, key, pop_params, arrays, cfg) -> tuple[int, int]:
    """``(chunk, devices)`` that fit ``cfg.memory_fraction`` of a device's free memory, from
    the memory analysis of the step compiled for ``chunk`` rows over ``d`` devices."""
    mesh = individuals_mesh(devices[:d])
    rows = NamedSharding(mesh, _IND)
    like = lambda x, sharding=rows: jax.ShapeDtypeStruct(
        (chunk,) + x.shape[1:], x.dtype, sharding=sharding
    )
    per_row = jax.tree.map(lambda x: x[None], pop_params)  # individuals axis of the state
    params = jax.tree.map(like, per_row)
    opt_state = jax.tree.map(like, jax.eval_shape(jax.vmap(personal_optimizer(cfg).init), per_row))
    whole = NamedSharding(mesh, _REP)
    scalar = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=whole)
    state = PersonalState(
        params,
        opt_state,
        params,
        jax.ShapeDtypeStruct((chunk,), jnp.float32, sharding=rows),
        jax.ShapeDtypeStruct((), jnp.int32, sharding=whole),
        scalar(jax.random.key_data(key)),
    )
    vec = lambda dtype: jax.ShapeDtypeStruct((chunk,), dtype, sharding=rows)
    compiled = personal_step.lower(
        state,
        jax.tree.map(like, arrays),
        vec(jnp.int32),
        vec(jnp.float32),
        jax.tree.map(scalar, pop_params),
        cfg.prior_strength,
        **statics,
        mesh=mesh,
    ).compile()
    used, budget = (
        step_bytes(compiled),
        device_memory_budget(devices[0], fraction=cfg.memory_fraction),
    )
    if used is None or used <= budget:
        return chunk, d
    n = arrays.n_individuals
    fitted, d = layout(n, fit_chunk(chunk // d, used, budget, d), d)
    log.info(
        "personal fit: %d individuals need %.2f GB per device, over the %.2f GB allowed: chunks "
        "of %d over %d device(s)", chunk, used / 1e9, budget / 1e9, fitted, d
    )  # fmt: skip
    return fitted, d


def fit_personal(
    key: PRNGKeyArray,
    spec: Spec,
    pop_params: Params,
    arrays: CohortArrays,
    options: PersonalizeOptions,
    checkpoint_dir: str | Path,
    *,
    start: Params | None = None,
    devices: Sequence[jax.Device] | None = None,
    index: Sequence[int] | None = None,
):
    """Personal twins for every individual, in chunks, each chunk sharded over the devices.

    A chunk holds ``options.chunk_size`` individuals, or (0) as many as fit in
    ``options.memory_fraction`` of a device's free memory by the compiled step's
    ``memory_analysis()`` (all of them when they fit). Its rows are split over ``devices``
    (default: this process's accelerators or CPU cores) with ``jax.shard_map``, vmapped within a device; a chunk
    is padded to a multiple of the devices by repeating its last individual. Each chunk is a
    separately checkpointed run (resumed if interrupted); equal-size chunks reuse one compiled
    step. The result does not depend on the chunking or the devices (up to float rounding):
    each individual's windows come from a key folded with its index, and the ``cohort``
    selection averages over real rows only.

    Args:
      key: draws the training windows (folded with each individual's id: chunking-invariant).
      spec: the twins' architecture; pop_params: the population twin (start and prior centre).
      arrays: the prepared cohort; options: see :class:`PersonalizeOptions`.
      checkpoint_dir: one sub-directory per chunk.
      start: where each individual's optimization starts (leading individuals axis; e.g. their
        current personal twin, for an online update); None starts from the population twin.
      devices: the devices to shard individuals over (default:
        :func:`~twinjax.train.devices.training_devices`: the accelerators, or the CPU devices up
        to one per core, see ``use_cpu_devices``).
      index: each individual's position in the whole cohort when ``arrays`` is a part of it
        (one process's share): its windows are those it draws when fitted with the whole
        cohort (default: its row in ``arrays``). Personal twins need nothing of other
        individuals, so each process fits its share on its own devices.

    Returns:
      ``(params, val_nll)``: the stacked personal params (leading individuals axis) and each
      individual's validation NLL.
    """
    cfg = options
    if cfg.selection not in ("individual", "cohort", "none"):
        raise ValueError(f"train.selection={cfg.selection!r}: use individual, cohort or none")
    if cfg.chunk_size < 0:
        raise ValueError(f"train.chunk_size={cfg.chunk_size}: use 0 (fit memory) or a size > 0")
    n = arrays.n_individuals
    optimizer = personal_optimizer(cfg)
    length = cfg.window
    val_size = max_segment(arrays.val)
    statics = dict(
        spec=spec,
        optimizer=optimizer,
        length=length,
        n_windows=cfg.batch_windows,
        eval_every=cfg.eval_every,
        val_size=val_size,
        selection=cfg.selection,
        rollout_steps=cfg.rollout_steps,
    )
    devices = list(training_devices() if devices is None else devices)
    chunk, d = layout(n, cfg.chunk_size or n, len(devices))
    if not cfg.chunk_size:
        chunk, d = _memory_chunk(statics, chunk, d, devices, key, pop_params, arrays, cfg)
    mesh = individuals_mesh(devices[:d])
    # the validation NLL (start, curve, end) is an evaluation outside the step: sized on its own
    val_rows = validation_rows(
        pop_params, arrays, spec, length - 1, val_size, chunk, cfg.memory_fraction
    )
    step = partial(personal_step, **statics, mesh=mesh)
    rows = NamedSharding(mesh, _IND)
    pop = jax.device_put(pop_params, NamedSharding(mesh, _REP))
    outputs = []
    for c, lo in enumerate(range(0, n, chunk)):
        idx = np.minimum(np.arange(lo, lo + chunk), n - 1)
        keep = np.arange(chunk) < n - lo  # the padding rows of the last chunk repeat the last one
        here = arrays.take(idx)  # on the default device: evaluated there, sharded for training
        sub = jax.device_put(here, rows)
        ids = idx if index is None else np.asarray(index)[idx]
        ids, weight = jax.device_put((ids, keep.astype(np.float32)), rows)
        if start is None:
            init = jax.tree.map(lambda x: jnp.broadcast_to(x, (chunk,) + x.shape), pop_params)
        else:
            init = jax.tree.map(lambda x, idx=idx: jnp.asarray(x)[idx], start)
        state = jax.device_put(
            PersonalState(
                init,
                jax.vmap(optimizer.init)(init),
                init,
                val_nll_blocks(init, here, spec, length - 1, val_size, val_rows),
                jnp.zeros((), jnp.int32),
                jax.random.key_data(key),
            ),
            jax.tree.map(lambda spec: NamedSharding(mesh, spec), _STATE_SPEC),
        )
        run = lambda s, sub=sub, ids=ids, w=weight: jax.block_until_ready(
            step(s, sub, ids, w, pop, cfg.prior_strength)
        )
        state, losses = run_loop(
            state,
            run,
            cfg.steps,
            checkpoint_dir=Path(checkpoint_dir) / f"chunk{c:04d}",
            every=cfg.checkpoint_every,
            keep=cfg.keep_checkpoints,
            name=f"personal[{c}]",
            progress=cfg.progress,
            on_step=loss_hook(
                f"personal/chunk{c}",
                cfg.steps,
                extra=_val_curve(sub, spec, length, val_size, val_rows),
                extra_every=cfg.eval_every,
            ),
        )
        final = state.params if cfg.selection == "none" else state.best_params
        final = jax.device_put(final, here.train.sharding)  # gathered: no cross-device op
        # waited for: left running, it overlapped the next phase's forecasts (two peaks at once)
        val = jax.block_until_ready(
            val_nll_blocks(final, here, spec, length - 1, val_size, val_rows)
        )
        real = int(keep.sum())  # padding rows come last: a slice, not a gather
        outputs.append(jax.tree.map(lambda x, r=real: x if r == len(x) else x[:r], (final, val)))
    if len(outputs) == 1:
        return outputs[0]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)


def _val_curve(arrays: CohortArrays, spec: Spec, length: int, val_size: int, rows: int):
    """``val_nll``: the personal twins' mean validation NLL (current parameters; a curve)."""
    return lambda done, state: {
        "val_nll": jnp.mean(val_nll_blocks(state.params, arrays, spec, length - 1, val_size, rows))
    }
