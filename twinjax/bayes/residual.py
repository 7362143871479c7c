"""Residual error models: how observations scatter around a twin's predicted curve.

``additive``: ``y ~ Normal(f, a)``; ``proportional``: ``y ~ Normal(f, b |f|)``;
``combined``: ``y ~ Normal(f, sqrt(a^2 + b^2 f^2))``; ``log_additive``: ``log y ~ Normal(log f, a)``
(the additive model on the log scale; needs positive observations and predictions).
Scales are floored at ``min_scale`` so that a prediction of exactly 0 (before the first dose)
keeps a finite likelihood under the proportional model.
"""

from typing import Literal, get_args

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

ErrorModel = Literal["additive", "proportional", "combined", "log_additive"]
ERROR_MODELS: tuple[str, ...] = get_args(ErrorModel)
LOG_SCALE = ("log_additive",)

# sample sites of each model: a = additive SD, b = proportional coefficient
_SITES = {
    "additive": ("sigma_add",),
    "proportional": ("sigma_prop",),
    "combined": ("sigma_add", "sigma_prop"),
    "log_additive": ("sigma_log",),
}


def check_error_model(name: ErrorModel) -> None:
    if name not in ERROR_MODELS:
        raise ValueError(f"unknown error model {name!r}; choose one of {ERROR_MODELS}")


def error_sites(name: ErrorModel) -> tuple[str, ...]:
    check_error_model(name)
    return _SITES[name]


def sample_error_params(
    name: ErrorModel, prior_scale: float, *, standardized: bool = False
) -> dict:
    """Samples the residual SDs of model ``name`` from HalfNormal(``prior_scale``) priors.

    ``standardized``: each SD ``s`` is ``prior_scale * s_std`` with ``s_std ~ HalfNormal(1)``
    sampled as ``{s}_std`` (the same prior; unit scale for NUTS) and ``s`` deterministic.
    """
    if not standardized:
        return {s: numpyro.sample(s, dist.HalfNormal(prior_scale)) for s in error_sites(name)}
    return {
        s: numpyro.deterministic(s, prior_scale * numpyro.sample(f"{s}_std", dist.HalfNormal(1.0)))
        for s in error_sites(name)
    }


def observation_dist(name: ErrorModel, pred, sigma: dict, *, min_scale: float = 1e-6):
    """The distribution of an observation given the predicted curve ``pred`` (natural scale).

    For ``log_additive`` the distribution is over ``log y``.
    """
    if name == "additive":
        return dist.Normal(pred, sigma["sigma_add"] + min_scale)
    if name == "proportional":
        return dist.Normal(pred, sigma["sigma_prop"] * jnp.abs(pred) + min_scale)
    if name == "combined":
        scale = jnp.sqrt(sigma["sigma_add"] ** 2 + (sigma["sigma_prop"] * pred) ** 2)
        return dist.Normal(pred, scale + min_scale)
    if name == "log_additive":
        return dist.Normal(jnp.log(jnp.maximum(pred, 1e-30)), sigma["sigma_log"] + min_scale)
    check_error_model(name)


def to_model_scale(name: ErrorModel, y):
    """Observations on the scale that :func:`observation_dist` describes."""
    return jnp.log(y) if name in LOG_SCALE else y


def from_model_scale(name: ErrorModel, y):
    return jnp.exp(y) if name in LOG_SCALE else y
