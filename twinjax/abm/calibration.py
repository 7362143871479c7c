"""Calibrating SIR transmission and recovery rates to an observed epidemic.

Observations are per-step population counts of new infections and recoveries (what surveillance
of the simulated population reports), e.g. from :func:`observed_counts` on the stochastic engine.

- :func:`fit_gradient`: optax Adam on ``log beta, log gamma`` through the straight-through relaxed
  simulator (:mod:`twinjax.abm.relaxed`; hard draws forward, by default the gradient of the draw
  probabilities backward), squared error between simulated and observed
  incidence/recovery fractions, fresh common noise each iteration, cosine-decayed step size, average of the last quarter.
- :func:`posterior` (:func:`posterior_mcmc`: the run itself, for ``arviz.from_numpyro``):
  NumPyro NUTS with the chain-binomial likelihood of the counts: recoveries
  ``~ Binomial(I, 1 - exp(-gamma dt))`` and new infections ``~ Binomial(S, 1 - escape(I))``, the
  escape probability of the layer (exact for mass action; for the dynamic RandomNet the per-agent
  marginal, exact up to the O(1/N) correlation of who is hit by the same partner draws);
  :func:`predictive_counts` draws from those conditionals under each posterior draw.
"""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jaxtyping import Array, Float, PRNGKeyArray
from numpyro.infer import MCMC, NUTS

from twinjax.abm.agents import I, R, S
from twinjax.abm.contacts import WellMixed
from twinjax.abm.epidemic import StepOutput
from twinjax.abm.networks import RandomNet
from twinjax.abm.relaxed import escape_probability, simulate_relaxed

_WELL_MIXED = WellMixed()


class EpidemicCounts(NamedTuple):
    """Population counts per step: new infections, recoveries, and S, I after each step."""

    new: Float[Array, " time"]
    recovered: Float[Array, " time"]
    s: Float[Array, " time"]
    i: Float[Array, " time"]
    n_agents: int
    s0: Float[Array, ""]
    i0: Float[Array, ""]


def observed_counts(out: StepOutput, n_agents: int) -> EpidemicCounts:
    """Counts from the engine's stacked step outputs (summed over subgroups)."""
    counts = out.counts.sum(axis=1)  # [T, statuses]
    new = out.new_infections.sum(axis=1)
    r = counts[:, R]
    rec = jnp.diff(r, prepend=0.0)
    s, i = counts[:, S], counts[:, I]
    s0 = s[0] + new[0]
    i0 = n_agents - s0
    return EpidemicCounts(new, rec, s, i, n_agents, s0, i0)


class GradientFit(NamedTuple):
    beta: float
    gamma: float
    loss_history: Float[Array, " iterations"]


def fit_gradient(
    key: PRNGKeyArray,
    obs: EpidemicCounts,
    *,
    init_prev: float,
    network: WellMixed | RandomNet = _WELL_MIXED,
    dt: float = 1.0,
    init: tuple[float, float] = (0.1, 0.1),
    n_iterations: int = 250,
    learning_rate: float = 0.1,
    n_keys: int = 4,
    tau: float = 0.5,
    surrogate: Literal["concrete", "probability"] = "probability",
) -> GradientFit:
    """Point estimates of ``(beta, gamma)`` by Adam through the relaxed simulator."""
    target = jnp.stack([obs.new, obs.recovered], axis=1) / obs.n_agents
    n_steps = target.shape[0]

    def loss(log_params, keys):
        beta, gamma = jnp.exp(log_params)
        sims = jax.vmap(
            lambda k: simulate_relaxed(
                k,
                beta,
                gamma,
                n_agents=obs.n_agents,
                n_steps=n_steps,
                init_prev=init_prev,
                network=network,
                dt=dt,
                tau=tau,
                straight_through=True,
                surrogate=surrogate,
            )
        )(keys)
        return jnp.mean(jnp.sum((sims - target) ** 2, axis=(1, 2))) * 1e3

    schedule = optax.cosine_decay_schedule(learning_rate, n_iterations, alpha=0.05)
    opt = optax.adam(schedule)

    @jax.jit
    def update(carry, key):
        params, opt_state = carry
        value, grad = jax.value_and_grad(loss)(params, jax.random.split(key, n_keys))
        updates, opt_state = opt.update(grad, opt_state)
        return (optax.apply_updates(params, updates), opt_state), (value, params)

    params = jnp.log(jnp.asarray(init, jnp.float32))
    carry = (params, opt.init(params))
    history, trace = [], []
    for k in jax.random.split(key, n_iterations):
        carry, (value, p) = update(carry, k)
        history.append(value)
        trace.append(p)
    tail = jnp.stack(trace[(3 * n_iterations) // 4 :])
    beta, gamma = jnp.exp(tail.mean(axis=0))
    return GradientFit(float(beta), float(gamma), jnp.stack(history))


def _chain_binomial(beta, gamma, obs: EpidemicCounts, network, dt):
    """The chain binomial's conditionals given the observed counts: agents at risk of recovery
    (days 1 to T-1; seeds are infected during day 0) and its probability, agents at risk of
    infection (every day) and theirs."""
    s_prev = jnp.concatenate([obs.s0[None], obs.s[:-1]])
    i_prev = jnp.concatenate([obs.i0[None], obs.i[:-1]])
    q = -jnp.expm1(-gamma * dt)
    i_after = i_prev - obs.recovered
    p_inf = 1.0 - escape_probability(network, beta, dt, i_after, obs.n_agents)
    return i_prev[1:], q, s_prev, jnp.clip(p_inf, 1e-9, 1.0 - 1e-9)


def _sir_model(obs: EpidemicCounts, network, dt):
    beta = numpyro.sample("beta", dist.LogNormal(jnp.log(0.1), 1.5))
    gamma = numpyro.sample("gamma", dist.LogNormal(jnp.log(0.2), 1.5))
    at_risk_rec, q, at_risk_inf, p_inf = _chain_binomial(beta, gamma, obs, network, dt)
    numpyro.sample("rec", dist.Binomial(at_risk_rec, probs=q), obs=obs.recovered[1:])
    numpyro.sample("new", dist.Binomial(at_risk_inf, probs=p_inf), obs=obs.new)


def predictive_counts(
    key: PRNGKeyArray,
    samples: dict[str, Float[Array, " samples"]],
    obs: EpidemicCounts,
    *,
    network: WellMixed | RandomNet = _WELL_MIXED,
    dt: float = 1.0,
) -> dict[str, Array]:
    """One-step posterior predictive of the observed counts: each day's recoveries ``rec`` and
    new infections ``new`` drawn under each posterior draw of ``beta`` and ``gamma`` from the
    chain binomial given the observed S and I before that day (the model's own conditionals)."""

    @jax.jit  # one program (the sampler's compilation is most of the cost)
    def _draw(beta, gamma, key):
        n_rec, q, n_inf, p_inf = jax.vmap(lambda b, g: _chain_binomial(b, g, obs, network, dt))(
            beta, gamma
        )
        n = jnp.concatenate([n_rec, n_inf], axis=1)
        p = jnp.concatenate([jnp.broadcast_to(q[:, None], n_rec.shape), p_inf], axis=1)
        # NumPyro draws a binomial from whole counts (the model's are whole-valued floats)
        draws = dist.Binomial(jnp.round(n).astype(jnp.int32), probs=p).sample(key)
        return {"rec": draws[:, : n_rec.shape[1]], "new": draws[:, n_rec.shape[1] :]}

    return _draw(samples["beta"], samples["gamma"], key)


# NUTS' statistics kept per draw: ArviZ's sample_stats (energy, tree depth, step size, ...)
EXTRA_FIELDS = ("diverging", "energy", "num_steps", "accept_prob", "adapt_state.step_size",
                "potential_energy")  # fmt: skip


def posterior_mcmc(
    key: PRNGKeyArray,
    obs: EpidemicCounts,
    *,
    network: WellMixed | RandomNet = _WELL_MIXED,
    dt: float = 1.0,
    num_warmup: int = 400,
    num_samples: int = 600,
    num_chains: int = 1,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
) -> MCMC:
    """The NUTS run itself (``arviz.from_numpyro`` reads it): ``beta`` and ``gamma`` under the
    chain-binomial likelihood, with :data:`EXTRA_FIELDS` kept (vectorized chains). The NUTS
    keywords are those of ``twinjax.bayes.Nuts`` (``**nuts.kwargs()``)."""
    kernel = NUTS(_sir_model, target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                  dense_mass=dense_mass)  # fmt: skip
    mcmc = MCMC(
        kernel, num_warmup=num_warmup, num_samples=num_samples,
        num_chains=num_chains, chain_method="vectorized", progress_bar=False,
    )  # fmt: skip
    mcmc.run(key, obs, network, dt, extra_fields=EXTRA_FIELDS)
    return mcmc


def posterior(
    key: PRNGKeyArray,
    obs: EpidemicCounts,
    *,
    network: WellMixed | RandomNet = _WELL_MIXED,
    dt: float = 1.0,
    num_warmup: int = 400,
    num_samples: int = 600,
) -> dict[str, Float[Array, " samples"]]:
    """Posterior samples of ``beta`` and ``gamma`` (NUTS, one chain)."""
    mcmc = posterior_mcmc(
        key, obs, network=network, dt=dt, num_warmup=num_warmup, num_samples=num_samples
    )
    return mcmc.get_samples()


def inference_labels(obs: EpidemicCounts) -> dict:
    """The names of :func:`posterior_mcmc`'s observations for ArviZ (``coords``, ``dims`` and
    ``constant_data`` of ``twinjax.bayes.mcmc_inference_data``): new infections ``new`` by
    ``day`` (0 to T-1), recoveries ``rec`` by ``recovery_day`` (1 to T-1: none on day 0), and
    the susceptible and infectious counts after each day (``s``, ``i``) that condition them."""
    days = np.arange(len(obs.new))
    return {
        "coords": {"day": days, "recovery_day": days[1:]},
        "dims": {"new": ["day"], "rec": ["recovery_day"], "s": ["day"], "i": ["day"]},
        "constant_data": {"s": np.asarray(obs.s), "i": np.asarray(obs.i)},
    }


def interval(samples: Float[Array, " samples"], level: float = 0.9) -> tuple[float, float]:
    """Equal-tailed posterior interval."""
    lo, hi = jnp.quantile(samples, jnp.array([(1 - level) / 2, (1 + level) / 2]))
    return float(lo), float(hi)
