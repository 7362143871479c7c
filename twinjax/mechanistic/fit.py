"""Bayesian identification of one individual's mechanistic model: the posterior mode (MAP) by
Adam with a few Newton steps, and the Laplace approximation around it.

The posterior, for the parameter vector ``theta`` (``len(model.param_names)``) and the log noise
SD ``s``::

    theta ~ Normal(prior_loc, prior_scale)          (independent; log rates and volumes)
    s     ~ Normal(noise_loc, noise_scale)
    y_t   ~ Normal(observe(x(t; theta)), exp(s))    at the observed points (mask)

``z = (theta, s)`` is found by Adam (``steps``, cosine-decayed learning rate, non-finite
updates skipped) followed by ``newton_steps`` Newton steps, each of the length (1, 1/2, ...,
1/128 of the full step) that lowers the loss most, and none where no length lowers it.

The joint mode's noise SD is biased low (about ``sqrt((n - p) / n)`` for ``n`` observations and
``p`` parameters the data determine), and with it every parameter's spread. :func:`marginal_noise`
moves ``s`` to the mode of its marginal posterior, ``theta`` integrated out by Laplace (the
analogue of REML, or of ``nls``'s residual SD on ``n - p`` degrees of freedom): the data part of
the Hessian scales as ``exp(-2 s)``, so the shifted Hessian needs no more model evaluations. The
Laplace approximation ``z ~ Normal((theta_hat, s_hat), H^-1)`` at the shifted point is what
:func:`~twinjax.mechanistic.forecast.forecast` draws from. One individual is the unit; a cohort
is ``jax.vmap(fit)`` over its data.
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
    """One individual's posterior: the parameters' mode, the noise SD's marginal mode and the
    Laplace covariance there.

    ``cov`` is over ``(params..., log_sigma)``; ``losses`` the negative log posterior per Adam
    step, then per Newton step (at the joint mode's noise SD).
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
    start = jnp.asarray(prior.loc if init is None else init, jnp.result_type(float))
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
    count = jnp.sum(jnp.broadcast_to(jnp.asarray(mask), jnp.shape(observations)), dtype=z.dtype)
    delta, h = marginal_noise(0.5 * (hs[-1] + hs[-1].T), z[-1], count, prior)
    cov = jnp.linalg.inv(h)
    losses = jnp.concatenate([losses, polish[:-1]])
    return Fit(z[:-1], z[-1] + delta, 0.5 * (cov + cov.T), losses)


def marginal_noise(
    h: Float[Array, "k k"],
    log_sigma: Float[Array, ""],
    count: Float[ArrayLike, ""],
    prior: Prior,
    *,
    iterations: int = 6,
) -> tuple[Float[Array, ""], Float[Array, "k k"]]:
    """The shift ``delta`` from the joint mode's log noise SD to its marginal mode, and the
    Hessian there.

    With ``theta`` at its mode and ``D`` the data part of the Hessian ``h`` at ``s_hat``
    (``h`` less the prior's precision ``P``), the negative log marginal posterior of ``s`` is,
    up to a constant, ``count s + a exp(-2 (s - s_hat)) / 2 + (s - m)^2 / (2 v^2) + log det
    H_theta(s) / 2`` with ``a = count + (s_hat - m) / v^2`` (the joint mode's stationarity) and
    ``H_theta(s) = D_theta exp(-2 (s - s_hat)) + P_theta``; its derivative is ``count - p_eff -
    a exp(-2 delta) + (s - m) / v^2``, ``p_eff = tr(H_theta^-1 D_theta)`` the parameters the data
    determine. Newton's method on ``delta`` (``p_eff``'s own derivative left out).

    Args:
        h: the Hessian of the negative log posterior at the joint mode, over ``(theta, s)``.
        log_sigma: the joint mode's ``s``.
        count: the number of observed values.
        prior: the priors (``P``, ``m = noise_loc``, ``v = noise_scale``).
        iterations: Newton iterations.

    Returns:
        ``(delta, h')``: the shift and the Hessian at ``(theta_hat, s_hat + delta)``.
    """
    scale = jnp.broadcast_to(jnp.asarray(prior.scale, h.dtype), (h.shape[0] - 1,))
    precision = jnp.diag(jnp.concatenate([scale**-2, jnp.full((1,), prior.noise_scale**-2)]))
    data = h - precision
    v2 = prior.noise_scale**2
    a = count + (log_sigma - prior.noise_loc) / v2

    def _newton(delta, _):
        shrink = jnp.exp(-2.0 * delta)
        h_theta = (data * shrink + precision)[:-1, :-1]
        p_eff = jnp.trace(jnp.linalg.solve(h_theta, data[:-1, :-1] * shrink))
        g = count - p_eff - a * shrink + (log_sigma + delta - prior.noise_loc) / v2
        return delta - g / (2.0 * a * shrink + 1.0 / v2), None

    delta, _ = jax.lax.scan(_newton, jnp.zeros((), h.dtype), length=iterations)
    return delta, data * jnp.exp(-2.0 * delta) + precision
