"""Phase (b): per-individual twins initialized from the population twin and fine-tuned together.

Each individual's objective is a MAP estimate under a Gaussian prior centred on the population
parameters: mean window NLL + (prior_strength / 2) * ||theta_i - theta_pop||^2 / n_i, with n_i the
individual's number of observed training targets (so the prior weighs like prior_strength pseudo
observations per parameter unit). All individuals are optimized in one vmapped, jitted step; each
keeps the parameters with the best validation NLL seen (checked every ``eval_every`` steps,
starting from the population's), so a personal twin is never chosen over the population twin
unless it predicts that person's held-out validation data better.
"""

from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray

from twinjax.data import CohortArrays
from twinjax.runtime import run_loop
from twinjax.runtime.scalars import loss_hook
from twinjax.train.population import make_optimizer
from twinjax.twins import TwinParams, TwinSpec, segment_nll, window_loss


class PersonalizeOptions(NamedTuple):
    """How the personal twins are fine-tuned from the population twin.

    Attributes:
      steps: optimizer steps; lr: Adam learning rate (gradients clipped to global norm 1).
      window: steps per training window (context + horizon); batch_windows: windows per step.
      prior_strength: precision of the Gaussian prior centred on the population parameters,
        in pseudo-observations per parameter unit.
      chunk_size: individuals fine-tuned together (0: all); eval_every: validation NLL period.
      selection: keep each individual's best-on-validation parameters (``individual``), one
        stopping step for the chunk (``cohort``), or the last parameters (``none``).
      checkpoint_every, keep_checkpoints: orbax checkpoints (resumable); progress: a bar.
    """

    steps: int = 1000
    lr: float = 3e-3
    window: int = 18
    batch_windows: int = 8
    prior_strength: float = 30.0
    chunk_size: int = 0
    eval_every: int = 25
    selection: Literal["individual", "cohort", "none"] = "none"
    checkpoint_every: int = 50
    keep_checkpoints: int = 3
    progress: bool = True


class PersonalState(NamedTuple):
    params: TwinParams  # leading axis: individuals
    opt_state: optax.OptState
    best_params: TwinParams
    best_val: jax.Array  # [individuals]
    step: jax.Array
    key: jax.Array


def _sq_dist(a, b):
    return sum(
        jnp.sum(jnp.square(x - y))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@partial(jax.jit, static_argnums=(2, 3, 4))
def _val_nll(params, arrays: CohortArrays, spec, history, size):
    start, end = jnp.argmax(arrays.val, 1), jnp.sum(arrays.train | arrays.val, 1)
    fn = partial(segment_nll, spec=spec, size=size, history=history)
    return jax.vmap(lambda p, d, s, e: fn(p, series=d, start=s, end=e))(
        params, arrays.series, start, end
    )


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
    ),
)
def personal_step(
    state: PersonalState,
    arrays: CohortArrays,
    ids,
    pop_params,
    prior_strength,
    *,
    spec: TwinSpec,
    optimizer,
    length: int,
    n_windows: int,
    eval_every: int,
    val_size: int,
    selection: str,
):
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, ids)  # chunking-invariant
    n_obs = jnp.maximum(jnp.sum(arrays.series.mask & arrays.train[..., None], axis=(1, 2)), 1)

    def loss_i(params, key, series, train, n):
        fit = window_loss(params, spec, key, series, train, length=length, n_windows=n_windows)
        return fit + 0.5 * prior_strength * _sq_dist(params, pop_params) / n

    data = (arrays.series, arrays.train, n_obs)
    loss, grads = jax.vmap(jax.value_and_grad(loss_i))(state.params, keys, *data)
    updates, opt_state = jax.vmap(optimizer.update)(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    step = state.step + 1

    def _select(_):
        val = _val_nll(params, arrays, spec, length - 1, val_size)
        if selection == "individual":
            better = val < state.best_val
        else:  # "cohort": one stopping step for the whole (chunk of the) cohort
            better = jnp.broadcast_to(jnp.mean(val) < jnp.mean(state.best_val), val.shape)
        pick = lambda new, old: jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        return jax.tree.map(pick, params, state.best_params), jnp.where(better, val, state.best_val)

    if selection == "none":  # no validation during training: the last parameters are kept
        best_params, best_val = state.best_params, state.best_val
    else:
        best_params, best_val = jax.lax.cond(
            step % eval_every == 0, _select, lambda _: (state.best_params, state.best_val), None
        )
    return PersonalState(params, opt_state, best_params, best_val, step, state.key), loss


def _max_segment(mask) -> int:
    return int(np.asarray(mask).sum(1).max())


def fit_personal(
    key: PRNGKeyArray,
    spec: TwinSpec,
    pop_params: TwinParams,
    arrays: CohortArrays,
    options: PersonalizeOptions,
    checkpoint_dir: str | Path,
    *,
    start: TwinParams | None = None,
):
    """Personal twins for every individual, in chunks of ``options.chunk_size`` individuals.

    Each chunk is a separately checkpointed run (resumed if interrupted); equal-size chunks reuse
    one compiled step (the last chunk is padded by repeating individuals).

    Args:
      key: draws the training windows (folded with each individual's id: chunking-invariant).
      spec: the twins' architecture; pop_params: the population twin (start and prior centre).
      arrays: the prepared cohort; options: see :class:`PersonalizeOptions`.
      checkpoint_dir: one sub-directory per chunk.
      start: where each individual's optimization starts (leading individuals axis; e.g. their
        current personal twin, for an online update); None starts from the population twin.

    Returns:
      ``(params, val_nll)``: the stacked personal params (leading individuals axis) and each
      individual's validation NLL.
    """
    cfg = options
    if cfg.selection not in ("individual", "cohort", "none"):
        raise ValueError(f"train.selection={cfg.selection!r}: use individual, cohort or none")
    n = arrays.n_individuals
    chunk = cfg.chunk_size or n
    optimizer = make_optimizer(cfg.lr)
    length = cfg.window
    val_size = _max_segment(arrays.val)
    step = partial(
        personal_step,
        spec=spec,
        optimizer=optimizer,
        length=length,
        n_windows=cfg.batch_windows,
        eval_every=cfg.eval_every,
        val_size=val_size,
        selection=cfg.selection,
    )
    outputs = []
    for c, lo in enumerate(range(0, n, chunk)):
        idx = np.minimum(np.arange(lo, lo + chunk), n - 1)
        sub = arrays.take(idx)
        ids = jnp.asarray(idx)
        if start is None:
            init = jax.tree.map(lambda x: jnp.broadcast_to(x, (chunk,) + x.shape), pop_params)
        else:
            init = jax.tree.map(lambda x, idx=idx: jnp.asarray(x)[idx], start)
        pop_val = _val_nll(init, sub, spec, length - 1, val_size)
        state = PersonalState(
            init,
            jax.vmap(optimizer.init)(init),
            init,
            pop_val,
            jnp.zeros((), jnp.int32),
            jax.random.key_data(key),
        )
        run = lambda s, sub=sub, ids=ids: step(s, sub, ids, pop_params, cfg.prior_strength)
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
                extra=_val_curve(sub, spec, length, val_size),
                extra_every=cfg.eval_every,
            ),
        )
        keep = np.arange(chunk) < n - lo  # drop the padding rows of the last chunk
        final = state.params if cfg.selection == "none" else state.best_params
        val = _val_nll(final, sub, spec, length - 1, val_size)
        outputs.append((jax.tree.map(lambda x, k=keep: x[k], final), val[keep]))
    params = jax.tree.map(lambda *xs: jnp.concatenate(xs), *[o[0] for o in outputs])
    return params, jnp.concatenate([o[1] for o in outputs])


def _val_curve(arrays: CohortArrays, spec: TwinSpec, length: int, val_size: int):
    """``val_nll``: the personal twins' mean validation NLL (current parameters; a curve)."""
    return lambda done, state: {
        "val_nll": jnp.mean(_val_nll(state.params, arrays, spec, length - 1, val_size))
    }
