"""A differentiable SIR simulator: per-agent soft states with relaxed Bernoulli transitions.

Each agent carries ``(s, i, r)`` in ``[0, 1]``. A transition with probability ``p`` and noise
``u ~ U(0, 1)`` fires when ``logit(p) + logit(u) > 0`` (probability exactly ``p``). The relaxation
replaces the step by ``sigmoid((logit(p) + logit(u)) / tau)`` (binary Concrete / Gumbel-softmax);
``straight_through=True`` keeps the hard 0/1 value forward (the forward pass is then the
stochastic model itself) and uses the relaxed value's gradient backward. With the noise fixed by
the key, the output is a deterministic function of ``(beta, gamma)`` that ``jax.grad`` differentiates.

Transmission uses the marginal escape probability of the layer: mass action
``exp(-beta dt rel_sus I / N)`` or starsim's RandomNet ``(1 - p I/N)^k (1 - p/N)^(k I)``
(``I`` the soft infectious count, ``k = n_contacts / 2``), so agents interact through ``I``.
"""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from twinjax.abm.contacts import WellMixed
from twinjax.abm.networks import RandomNet

_WELL_MIXED = WellMixed()


class SoftSIR(NamedTuple):
    s: Float[Array, " n"]
    i: Float[Array, " n"]
    r: Float[Array, " n"]


def relaxed_bernoulli(
    p: Float[Array, "..."],
    u: Float[Array, "..."],
    tau: float,
    *,
    straight_through: bool = False,
    surrogate: Literal["concrete", "probability"] = "concrete",
) -> Float[Array, "..."]:
    """A relaxed Bernoulli(p) draw from the uniform ``u`` (see the module docstring).

    With ``straight_through`` the value is the hard draw and the gradient that of the
    ``surrogate``: the Concrete sample (``"concrete"``) or the probability ``p`` itself
    (``"probability"``, the gradient of the expected draw, which is what a sum over many agents
    follows).
    """
    eps = 1e-6
    p = jnp.clip(p, eps, 1 - eps)
    x = jnp.log(p) - jnp.log1p(-p) + jnp.log(u) - jnp.log1p(-u)
    soft = jax.nn.sigmoid(x / tau)
    if not straight_through:
        return soft
    hard = jax.lax.stop_gradient((x > 0).astype(soft.dtype))
    grad_path = soft if surrogate == "concrete" else p
    return hard + grad_path - jax.lax.stop_gradient(grad_path)


def escape_probability(network, beta, dt, n_inf, n):
    if isinstance(network, WellMixed):
        return jnp.exp(-beta * dt * n_inf / n)
    if isinstance(network, RandomNet):
        k = network.n_contacts // 2
        p = -jnp.expm1(-beta * dt)
        return (1.0 - p * n_inf / n) ** k * jnp.exp(k * n_inf * jnp.log1p(-p / n))
    raise TypeError(f"relaxed simulator supports WellMixed and RandomNet, not {type(network)}")


def simulate_relaxed(
    key: PRNGKeyArray,
    beta: Float[Array, ""],
    gamma: Float[Array, ""],
    *,
    n_agents: int,
    n_steps: int,
    init_prev: float,
    network: WellMixed | RandomNet = _WELL_MIXED,
    dt: float = 1.0,
    tau: float = 0.5,
    straight_through: bool = False,
    surrogate: Literal["concrete", "probability"] = "concrete",
) -> Float[Array, "time 2"]:
    """Fractions of new infections and of recoveries per step, ``[n_steps, 2]``.

    Same step order as :func:`twinjax.abm.epidemic.step` (recovery, then transmission; seeds are
    infected during step 0).
    """
    k_seed, k_steps = jax.random.split(key)
    seeds = (jax.random.uniform(k_seed, (n_agents,)) < init_prev).astype(jnp.float32)
    state = SoftSIR(1.0 - seeds, seeds, jnp.zeros(n_agents))
    q = -jnp.expm1(-gamma * dt)
    draw = lambda p, u: relaxed_bernoulli(
        p, u, tau, straight_through=straight_through, surrogate=surrogate
    )

    def _step(state, xs):
        t, k = xs
        u = jax.random.uniform(k, (2, n_agents), minval=1e-6, maxval=1 - 1e-6)
        rec = state.i * draw(q, u[0]) * (t > 0)
        i = state.i - rec
        p_inf = 1.0 - escape_probability(network, beta, dt, jnp.sum(i), n_agents)
        new = state.s * draw(p_inf, u[1])
        out = jnp.stack([jnp.sum(new), jnp.sum(rec)]) / n_agents
        return SoftSIR(state.s - new, i + new, state.r + rec), out

    xs = (jnp.arange(n_steps), jax.random.split(k_steps, n_steps))
    return jax.lax.scan(_step, state, xs)[1]
