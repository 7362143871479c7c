"""Bayesian identification of one individual's mechanistic model: the posterior mode (MAP) by
Adam with a few Newton steps, and the Laplace approximation around it.

The posterior, for the parameter vector ``theta`` (``len(model.param_names)``) and the log noise
SD ``s``::

    theta ~ Normal(prior_loc, prior_scale)          (independent; log rates and volumes)
    s     ~ Normal(noise_loc, noise_scale)
    y_t   ~ Normal(observe(x(t; theta)), exp(s))    at the observed points (mask)

``z = (theta, s)`` is found by Adam (``steps``, cosine-decayed learning rate, non-finite
updates skipped) followed by ``newton_steps`` Newton steps, each of the length (1, 1/2, ...,
1/128 of the full step) that lowers the loss most, and none where no length lowers it. The Laplace approximation ``z ~ Normal(z_hat, H^-1)`` (``H`` the Hessian of the negative
log posterior at ``z_hat``) is what :func:`~twinjax.mechanistic.forecast.forecast` draws from.
One individual is the unit; a cohort is ``jax.vmap(fit)`` over its data.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float

from twinjax.mechanistic.protocol import MechanisticModel, simulate

# the Newton step's lengths tried (the best that lowers the loss is taken): a full step from far
# out overshoots where the loss is steep in the noise SD
_STEPS = 0.5 ** np.arange(8, dtype=np.float32)


class Prior(NamedTuple):
    """Independent normal priors on the parameter vector and on the log noise SD."""

    loc: Float[ArrayLike, " params"]
    scale: Float[ArrayLike, " params"]
    noise_loc: Float[ArrayLike, ""] = 0.0  # log noise SD
    noise_scale: Float[ArrayLike, ""] = 2.0


class Fit(NamedTuple):
    """One individual's posterior: its mode and the Laplace covariance.

    ``cov`` is over ``(params..., log_sigma)``; ``losses`` the negative log posterior per Adam
    step, then per Newton step.
    """

    params: Float[Array, " params"]
    log_sigma: Float[Array, ""]
    cov: Float[Array, "k k"]
    losses: Float[Array, " steps"]


def neg_log_posterior(
    model: MechanisticModel,
    z: Float[Array, " k"],
    times: Float[ArrayLike, " times"],
    observations: Float[ArrayLike, "times ..."],
    mask: Bool[ArrayLike, "times ..."],
    inputs: Any,
    prior: Prior,
    *,
    substeps: int = 4,
) -> Float[Array, ""]:
    """``-log p(z | y)`` up to a constant, ``z = (params..., log_sigma)``."""
    theta, s = z[:-1], z[-1]
    pred, _ = simulate(model, theta, times, inputs, substeps=substeps)
    mask = jnp.asarray(mask)
    y = jnp.where(mask, jnp.asarray(observations), pred)  # padding never reaches the gradient
    r = (y - pred) * jnp.exp(-s)
    nll = jnp.sum(jnp.where(mask, 0.5 * r**2 + s, 0.0))
    prior_z = (theta - jnp.asarray(prior.loc)) / jnp.asarray(prior.scale)
    prior_s = (s - prior.noise_loc) / prior.noise_scale
    return nll + 0.5 * jnp.sum(prior_z**2) + 0.5 * prior_s**2


def fit(
    model: MechanisticModel,
    times: Float[ArrayLike, " times"],
    observations: Float[ArrayLike, "times ..."],
    mask: Bool[ArrayLike, "times ..."],
    inputs: Any,
    prior: Prior,
    *,
    init: Float[ArrayLike, " params"] | None = None,
    steps: int = 1000,
    learning_rate: float = 0.05,
    newton_steps: int = 10,
    substeps: int = 4,
) -> Fit:
    """The posterior mode and Laplace covariance of one individual's parameters.

    Args:
        model: the model (its ``params`` a vector of ``len(model.param_names)``).
        times: the grid (see :func:`~twinjax.mechanistic.protocol.simulate`).
        observations: values at the grid times (anything where ``mask`` is False).
        mask: True where observed.
        inputs: per-interval inputs.
        prior: the priors.
        init: where the search starts (default: the prior mean).
        steps: Adam steps.
        learning_rate: Adam's initial learning rate (cosine-decayed to 1% of it).
        newton_steps: Newton steps after Adam.
        substeps: RK4 steps per interval.

    Returns:
        The :class:`Fit`.
    """
    loss = lambda z: neg_log_posterior(
        model, z, times, observations, mask, inputs, prior, substeps=substeps
    )
    start = jnp.asarray(prior.loc if init is None else init, jnp.float32)
    z = jnp.concatenate([start, jnp.full((1,), prior.noise_loc, start.dtype)])
    opt = optax.apply_if_finite(
        optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=0.01)), 10**9
    )
    value_and_grad = jax.value_and_grad(loss)

    def _step(carry, _):
        z, state = carry
        value, g = value_and_grad(z)
        updates, state = opt.update(g, state, z)
        return (optax.apply_updates(z, updates), state), value

    (z, _), losses = jax.lax.scan(_step, (z, opt.init(z)), length=steps)
    hessian = jax.jacfwd(jax.jacfwd(loss))  # few parameters: forward over forward compiles fastest

    def _newton(z, i):
        value, g = value_and_grad(z)
        h = hessian(z)
        damped = h + 1e-6 * jnp.trace(jnp.abs(h)) * jnp.eye(z.shape[0])
        direction = jnp.linalg.solve(damped, g)
        proposals = z[None, :] - jnp.asarray(_STEPS, z.dtype)[:, None] * direction[None, :]
        after = jax.vmap(loss)(proposals)
        after = jnp.where(jnp.isfinite(after), after, jnp.inf)
        best = jnp.argmin(after)
        move = (i < newton_steps) & (after[best] < value)
        return jnp.where(move, proposals[best], z), (value, h)

    # one pass more than the steps, which does not move: its Hessian is the one at the mode
    z, (polish, hs) = jax.lax.scan(_newton, z, jnp.arange(newton_steps + 1))
    h = 0.5 * (hs[-1] + hs[-1].T)
    cov = jnp.linalg.inv(h)
    return Fit(z[:-1], z[-1], 0.5 * (cov + cov.T), jnp.concatenate([losses, polish[:-1]]))
