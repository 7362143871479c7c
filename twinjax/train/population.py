"""Phase (a): one population twin trained on all individuals."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import PRNGKeyArray

from twinjax.config import DataConfig, TrainConfig
from twinjax.train.loop import run_loop
from twinjax.train.objectives import window_loss
from twinjax.train.prepare import CohortArrays
from twinjax.twins import TwinSpec, init_params


class TrainState(NamedTuple):
    params: dict
    opt_state: optax.OptState
    step: jax.Array
    key: jax.Array  # raw key data (uint32), so that checkpoints hold plain arrays


def make_optimizer(lr: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))


def _data(arrays: CohortArrays, idx):
    return (
        arrays.values[idx],
        arrays.mask[idx],
        arrays.interventions[idx],
        arrays.static[idx],
        arrays.train[idx],
    )


@partial(jax.jit, static_argnames=("spec", "optimizer", "length", "n_windows", "batch"))
def population_step(
    state: TrainState,
    arrays: CohortArrays,
    *,
    spec: TwinSpec,
    optimizer,
    length: int,
    n_windows: int,
    batch: int,
):
    key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
    k_pick, k_win = jax.random.split(key)
    n = arrays.values.shape[0]
    idx = jnp.arange(n) if batch >= n else jax.random.choice(k_pick, n, (batch,), replace=False)
    keys = jax.random.split(k_win, idx.shape[0])

    def loss_i(params, key, *data):
        return window_loss(params, spec, key, *data, length=length, n_windows=n_windows)

    def loss_fn(params):
        losses = jax.vmap(loss_i, in_axes=(None, 0, 0, 0, 0, 0, 0))(
            params, keys, *_data(arrays, idx)
        )
        return jnp.mean(losses)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, state.step + 1, state.key), loss


def fit_population(
    key: PRNGKeyArray,
    spec: TwinSpec,
    arrays: CohortArrays,
    data_cfg: DataConfig,
    cfg: TrainConfig,
    checkpoint_dir: Path,
):
    """Trains the population twin (resuming from ``checkpoint_dir``); returns (params, losses)."""
    k_init, k_train = jax.random.split(key)
    optimizer = make_optimizer(cfg.lr)
    params = init_params(k_init, spec)
    state = TrainState(
        params, optimizer.init(params), jnp.zeros((), jnp.int32), jax.random.key_data(k_train)
    )
    batch = cfg.population_batch or arrays.values.shape[0]
    step = partial(
        population_step,
        spec=spec,
        optimizer=optimizer,
        length=data_cfg.context + data_cfg.horizon,
        n_windows=cfg.batch_windows,
        batch=batch,
    )
    state, losses = run_loop(
        state,
        lambda s: step(s, arrays),
        cfg.steps,
        checkpoint_dir=checkpoint_dir,
        every=cfg.checkpoint_every,
        keep=cfg.keep_checkpoints,
        name="population",
        progress=cfg.progress,
    )
    return state.params, losses
