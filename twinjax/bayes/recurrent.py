"""Bayesian recurrent twins: a posterior over each individual's twin parameters.

Each individual's twin (``twinjax.twins``) gets a Gaussian prior centred on the population
twin's parameters, ``theta_i ~ Normal(theta_pop, prior_sd)`` leaf by leaf, and the twin's one-step
Gaussian likelihood on that individual's training windows (the same random-window objective as the
point-estimate personal twins, scaled to the individual's number of observed targets). With
``prior_sd = 1 / sqrt(train.prior_strength)`` the mode of this posterior is exactly the personal
MAP twin of ``twinjax.train.fit_personal``; here NumPyro's SVI fits a mean-field Gaussian
(``AutoNormal``, analytic KL through ``TraceMeanField_ELBO``) around it, all individuals in one
plate, initialized at the MAP. Predictions average the twin's Gaussian over posterior draws, so
the predictive distribution includes parameter uncertainty.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jaxtyping import PRNGKeyArray
from numpyro.distributions import constraints
from numpyro.infer import SVI, TraceMeanField_ELBO, init_to_value
from numpyro.infer.autoguide import AutoNormal

from twinjax.bayes.inference import auto_normal_draws
from twinjax.data import CohortArrays
from twinjax.runtime import run_loop
from twinjax.runtime.scalars import loss_hook
from twinjax.twins import TwinParams, TwinSpec, cohort_predictions, window_loss


def _site_names(tree) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    name = lambda k: getattr(k, "key", getattr(k, "name", k))  # dict key or NamedTuple field
    return ["theta/" + "/".join(str(name(k)) for k in path) for path, _ in paths]


def to_sites(params: TwinParams) -> dict:
    """The twin's parameter pytree as ``{site name: leaf}`` (one NumPyro site per leaf)."""
    return dict(zip(_site_names(params), jax.tree.leaves(params), strict=True))


def from_sites(sites: dict, like: TwinParams) -> TwinParams:
    """Inverse of :func:`to_sites`, with the tree structure of ``like``."""
    leaves = [sites[name] for name in _site_names(like)]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def is_bayesian(site: str, layers: tuple[str, ...] | None) -> bool:
    """Whether a parameter site is random: ``layers`` names top-level groups ("mean", "scale",
    "cell", "attention"); None makes every parameter random."""
    return layers is None or site.split("/")[1] in layers


def personal_twin_model(
    arrays: CohortArrays,
    pop_params: TwinParams,
    fixed_params: TwinParams,
    *,
    spec: TwinSpec,
    prior_sd: float,
    length: int,
    n_windows: int,
    layers: tuple[str, ...] | None = None,
) -> None:
    """NumPyro model: personal twin parameters under a prior centred on the population twin.

    The Bayesian ``layers`` are random, ``theta_i ~ Normal(theta_pop, tau)`` with one prior SD
    ``tau`` per parameter array learned from the cohort (type-II maximum likelihood, started at
    ``prior_sd``); the other parameters are fixed at ``fixed_params`` (the personal MAP twins,
    leading individuals axis).
    """
    n = arrays.n_individuals
    pop, fixed = to_sites(pop_params), to_sites(fixed_params)
    random = [name for name in pop if is_bayesian(name, layers)]
    tau = {
        name: numpyro.param(f"{name}_prior_scale", prior_sd, constraint=constraints.positive)
        for name in random
    }
    with numpyro.plate("individuals", n):
        sites = {
            name: numpyro.sample(name, dist.Normal(pop[name], tau[name]).to_event(pop[name].ndim))
            for name in random
        }
        params = from_sites({**fixed, **sites}, pop_params)
        keys = jax.random.split(numpyro.prng_key(), n)
        loss = partial(window_loss, spec=spec, length=length, n_windows=n_windows)
        nll = jax.vmap(lambda p, k, d, seg: loss(p, key=k, series=d, segment=seg))(
            params, keys, arrays.series, arrays.train
        )
        n_obs = jnp.maximum(jnp.sum(arrays.series.mask & arrays.train[..., None], axis=(1, 2)), 1)
        numpyro.factor("twin_loglik", -n_obs * nll)


class BayesTwinState(NamedTuple):
    svi_state: object  # numpyro SVIState
    step: jax.Array


class BayesianTwins(NamedTuple):
    guide: AutoNormal
    params: dict  # guide parameters: "<site>_auto_loc" / "<site>_auto_scale", [individuals, ...]
    losses: np.ndarray
    like: TwinParams  # one individual's parameters (structure for draws)
    fixed: TwinParams  # the non-random parameters (personal MAP), [individuals, ...]


def fit_bayesian_twins(
    key: PRNGKeyArray,
    spec: TwinSpec,
    arrays: CohortArrays,
    pop_params: TwinParams,
    map_params: TwinParams,
    *,
    prior_sd: float,
    length: int,
    n_windows: int,
    steps: int,
    lr: float,
    scale_lr: float,
    init_scale: float,
    checkpoint_dir: Path,
    layers: tuple[str, ...] | None = None,
    checkpoint_every: int = 200,
    progress: bool = True,
) -> BayesianTwins:
    """Mean-field posterior of every individual's Bayesian ``layers`` (None: all parameters),
    initialized at the personal MAP twins ``map_params``, which also fix the other layers.

    Checkpointed with orbax every ``checkpoint_every`` steps (a rerun resumes).
    """
    model = partial(personal_twin_model, spec=spec, prior_sd=prior_sd, length=length,
                    n_windows=n_windows, layers=layers)  # fmt: skip
    init = {k: v for k, v in to_sites(map_params).items() if is_bayesian(k, layers)}
    guide = AutoNormal(model, init_loc_fn=init_to_value(values=init), init_scale=init_scale)
    # the locations start at the MAP and move little; the scales travel from init_scale
    optimizer = optax.multi_transform(
        {"loc": optax.adam(lr), "scale": optax.adam(scale_lr)},
        lambda params: {k: "scale" if k.endswith("_scale") else "loc" for k in params},
    )
    svi = SVI(model, guide, optimizer, TraceMeanField_ELBO())
    k_init, k_run = jax.random.split(key)
    args = (arrays, pop_params, map_params)
    state = BayesTwinState(svi.init(k_init, *args), jnp.zeros((), jnp.int32))

    @jax.jit  # data as arguments, not closed-over constants (XLA would constant-fold them)
    def _step(state, args):
        svi_state, loss = svi.update(state.svi_state, *args)
        return BayesTwinState(svi_state, state.step + 1), loss / arrays.n_individuals

    state, losses = run_loop(
        state,
        lambda state: _step(state, args),
        steps,
        checkpoint_dir=checkpoint_dir,
        every=checkpoint_every,
        name="bayesian twins (SVI)",
        progress=progress,
        on_step=loss_hook("bayesian_twins_svi", steps),  # loss: -ELBO per individual
    )
    return BayesianTwins(guide, svi.get_params(state.svi_state), losses, pop_params, map_params)


def posterior_twin_draws(fit: BayesianTwins, key: PRNGKeyArray, num_samples: int) -> TwinParams:
    """Parameter pytree draws ``[num_samples, individuals, ...]`` from the fitted posterior
    (the fixed layers repeated)."""
    draws = auto_normal_draws(fit.guide, fit.params, key, num_samples)
    fixed = {
        k: jnp.broadcast_to(v, (num_samples,) + v.shape)
        for k, v in to_sites(fit.fixed).items()
        if k not in draws
    }
    return from_sites({**fixed, **draws}, fit.like)


class MixturePredictions(NamedTuple):
    """One-step predictive mixtures over posterior draws (normalized units)."""

    mean: np.ndarray  # [draws, N, K, F]
    scale: np.ndarray  # [draws, N, K, F]
    t: np.ndarray  # [N, K]
    inside: np.ndarray  # [N, K]


def predictive_mixture(
    fit: BayesianTwins,
    spec: TwinSpec,
    arrays: CohortArrays,
    segment,
    *,
    key: PRNGKeyArray,
    num_samples: int,
    history: int,
) -> MixturePredictions:
    """The twin's Gaussian one-step predictions under each posterior draw, over ``segment``."""
    draws = posterior_twin_draws(fit, key, num_samples)
    # one compiled prediction per draw, dispatched without waiting; one host transfer at the end
    outs = [
        cohort_predictions(jax.tree.map(lambda x, s=s: x[s], draws), spec, arrays, segment,
                           history=history)
        for s in range(num_samples)
    ]  # fmt: skip
    mean, scale = (np.asarray(jnp.stack([o[i] for o in outs])) for i in (0, 1))
    return MixturePredictions(mean, scale, np.asarray(outs[0][2]), np.asarray(outs[0][3]))
