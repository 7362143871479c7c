"""Household finance: income shocks, present-biased consumption, overdraft and default, nudges.

Monthly steps. Each agent has permanent income ``y[i]`` (by income group), an employment state
(job loss and re-employment hazards; unemployment pays ``replacement * y``), transitory income
noise, liquid balance ``w`` (may go negative: overdraft at a monthly rate) and a separate savings
pot ``a`` (automatic saving, withdrawn only to clear an overdraft).

Consumption follows a buffer-stock rule with quasi-hyperbolic (beta-delta) present bias: a
present-biased agent (``beta < 1``) overspends habitually, targets a smaller buffer and spends a
larger share of any excess: ``c = y_perm (1 + overspend (1 - beta)) + mpc * (w - target)``
floored at subsistence, ``target = months * beta * y_perm``, ``mpc = mpc0 + (1 - beta)`` above
the target and ``mpc_debt`` below it. Default: the balance
falls below the overdraft limit. Agents interact through a shared price level that rises with
aggregate demand relative to aggregate income.

Nudges: automatic saving (a share of income moved to ``a`` at payday), and a commitment device
that raises the effective ``beta`` used in the spending rule.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

INCOME_GROUPS = ("low", "middle", "high")


class Households(NamedTuple):
    y_perm: Float[Array, " n"]
    beta: Float[Array, " n"]  # present bias
    job_loss: Float[Array, " n"]  # monthly hazard
    income: Int[Array, " n"]


class FinanceParams(NamedTuple):
    re_employment: float = 0.25
    replacement: float = 0.5
    income_noise: float = 0.1
    overdraft_rate: float = 0.015
    overdraft_limit: float = 1.0  # in months of permanent income
    subsistence: float = 0.5  # in months of permanent income
    mpc0: float = 0.1
    mpc_debt: float = 0.25  # adjustment of spending below the target buffer
    overspend: float = 0.3  # habitual overspending per unit of present bias (1 - beta)
    buffer_months: float = 3.0
    price_sensitivity: float = 0.05
    auto_save: float = 0.0  # nudge: share of income swept to savings
    commitment: float = 0.0  # nudge: added to beta in the spending rule


class FinanceState(NamedTuple):
    w: Float[Array, " n"]  # liquid balance
    a: Float[Array, " n"]  # savings pot
    employed: Float[Array, " n"]
    defaulted: Float[Array, " n"]  # ever defaulted
    price: Float[Array, ""]


class MonthOutput(NamedTuple):
    consumption: Float[Array, " n"]
    overdraft: Float[Array, " n"]
    default_event: Float[Array, " n"]
    price: Float[Array, ""]


def synthetic_households(key: PRNGKeyArray, n: int) -> Households:
    ks = jax.random.split(key, 3)
    income = jax.random.categorical(ks[0], jnp.log(jnp.array([0.3, 0.45, 0.25])), shape=(n,))
    y = jnp.array([1.5, 3.0, 6.0])[income] * jnp.exp(0.2 * jax.random.normal(ks[1], (n,)))
    beta = jnp.clip(0.75 + 0.12 * jax.random.normal(ks[2], (n,)), 0.4, 1.0)
    job_loss = jnp.array([0.03, 0.015, 0.008])[income]
    return Households(y, beta, job_loss, income.astype(jnp.int32))


def init(h: Households) -> FinanceState:
    n = h.y_perm.shape[0]
    return FinanceState(h.y_perm * 0.5, jnp.zeros(n), jnp.ones(n), jnp.zeros(n), jnp.float32(1.0))


def step(
    state: FinanceState, key: PRNGKeyArray, h: Households, p: FinanceParams
) -> tuple[FinanceState, MonthOutput]:
    n = h.y_perm.shape[0]
    u = jax.random.uniform(key, (2, n))
    lose, find = u[0] < h.job_loss, u[1] < p.re_employment
    employed = jnp.where(state.employed > 0, 1.0 - lose, find.astype(jnp.float32))
    noise = jnp.exp(p.income_noise * jax.random.normal(jax.random.fold_in(key, 1), (n,)))
    income = h.y_perm * jnp.where(employed > 0, noise, p.replacement)
    saved = p.auto_save * income * employed
    w = state.w + income - saved
    beta = jnp.minimum(h.beta + p.commitment, 1.0)
    target = p.buffer_months * beta * h.y_perm
    excess = w - target
    mpc = jnp.where(excess > 0, p.mpc0 + 1.0 - beta, p.mpc_debt)
    real_c = h.y_perm * (1.0 + p.overspend * (1.0 - beta)) + mpc * excess
    real_c = jnp.maximum(real_c, p.subsistence * h.y_perm)
    c = real_c * state.price
    w = w - c
    w = w * jnp.where(w < 0, 1.0 + p.overdraft_rate, 1.0)
    # the savings pot clears an overdraft when it can
    a = state.a + saved
    draw = jnp.minimum(a, jnp.maximum(-w, 0.0))
    w, a = w + draw, a - draw
    limit = -p.overdraft_limit * h.y_perm
    default_event = (w < limit).astype(jnp.float32)
    w = jnp.maximum(w, limit)  # debt above the limit is written off (and recorded as default)
    demand = jnp.sum(real_c) / jnp.sum(h.y_perm)
    price = state.price * (1.0 + p.price_sensitivity * (demand - 1.0))
    new = FinanceState(w, a, employed, jnp.maximum(state.defaulted, default_event), price)
    return new, MonthOutput(c, (w < 0).astype(jnp.float32), default_event, price)


def simulate(
    key: PRNGKeyArray, h: Households, p: FinanceParams, n_months: int
) -> tuple[FinanceState, MonthOutput]:
    body = lambda s, k: step(s, k, h, p)
    return jax.lax.scan(body, init(h), jax.random.split(key, n_months))
