"""Server-side aggregation of flat client updates ``[clients, params]``.

Every aggregator takes ``accepted`` (clients whose update may enter the aggregate) and
``weight``; rows that are not accepted never influence the result (they may hold NaN).
:func:`aggregate_per_step` runs any of them on updates normalized by local work, and
:func:`bucket_means` (``bucket_size > 1``) runs them on means of random client buckets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

AGGREGATORS = ("mean", "median", "trimmed_mean", "krum", "multi_krum")


def screen_updates(
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    *,
    max_norm: float = float("inf"),
) -> tuple[Float[Array, "clients params"], Bool[Array, " clients"], Int[Array, ""]]:
    """Rejects updates with NaN/inf or a norm beyond ``max_norm``.

    Returns updates with rejected rows zeroed, the accepted mask and the rejected count
    (among clients with positive weight).
    """
    finite = jnp.all(jnp.isfinite(updates), axis=1)
    norm = jnp.sqrt(jnp.sum(jnp.where(finite[:, None], updates, 0.0) ** 2, axis=1))
    ok = finite & (norm <= max_norm)
    live = weight > 0
    accepted = ok & live
    return jnp.where(accepted[:, None], updates, 0.0), accepted, jnp.sum(live & ~ok)


def weighted_mean(
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    accepted: Bool[Array, " clients"],
) -> Float[Array, " params"]:
    w = jnp.where(accepted, weight, 0.0)
    total = jnp.sum(w)
    return jnp.where(total > 0, (w @ updates) / jnp.where(total > 0, total, 1.0), 0.0)


def _sorted_with_count(updates, accepted):
    """Per-coordinate sort with rejected rows last; the number of accepted rows."""
    x = jnp.where(accepted[:, None], updates, jnp.inf)
    return jnp.sort(x, axis=0), jnp.sum(accepted)


def coordinate_median(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"]
) -> Float[Array, " params"]:
    """Coordinate-wise median of the accepted updates (zero when none)."""
    s, n = _sorted_with_count(updates, accepted)
    lo = jnp.maximum((n - 1) // 2, 0)
    hi = jnp.maximum(n // 2, 0)
    med = 0.5 * (s[lo] + s[hi])
    return jnp.where(n > 0, med, 0.0)


def trimmed_mean(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"], trim: float
) -> Float[Array, " params"]:
    """Coordinate-wise mean after dropping the ``floor(trim * n)`` lowest and highest values."""
    s, n = _sorted_with_count(updates, accepted)
    k = jnp.floor(trim * n).astype(jnp.int32)
    rank = jnp.arange(updates.shape[0])[:, None]
    keep = (rank >= k) & (rank < n - k)
    total = jnp.sum(jnp.where(keep, s, 0.0), axis=0)
    kept = jnp.maximum(n - 2 * k, 1)
    return jnp.where(n > 0, total / kept, 0.0)


def krum_scores(
    updates: Float[Array, "clients params"], accepted: Bool[Array, " clients"], byzantine: int
) -> Float[Array, " clients"]:
    """Krum score: summed squared distance to the ``n - f - 2`` nearest accepted updates."""
    x = jnp.where(accepted[:, None], updates, 0.0)
    sq = jnp.sum(x**2, axis=1)
    d = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    pair = accepted[:, None] & accepted[None, :] & ~jnp.eye(x.shape[0], dtype=bool)
    d = jnp.sort(jnp.where(pair, jnp.maximum(d, 0.0), jnp.inf), axis=1)
    n = jnp.sum(accepted)
    m = jnp.maximum(n - byzantine - 2, 1)
    near = jnp.arange(x.shape[0])[None, :] < m
    score = jnp.sum(jnp.where(near, d, 0.0), axis=1)
    return jnp.where(accepted, score, jnp.inf)


def multi_krum(
    updates: Float[Array, "clients params"],
    accepted: Bool[Array, " clients"],
    *,
    byzantine: int,
    select: int = 1,
) -> Float[Array, " params"]:
    """Mean of the ``select`` accepted updates with the lowest Krum scores (Krum: select=1)."""
    score = krum_scores(updates, accepted, byzantine)
    order = jnp.argsort(score)
    chosen = jnp.zeros_like(accepted).at[order[:select]].set(True) & accepted
    return weighted_mean(updates, jnp.ones(updates.shape[0]), chosen)


def bucket_means(
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    accepted: Bool[Array, " clients"],
    key: PRNGKeyArray,
    *,
    size: int,
) -> tuple[Float[Array, "buckets params"], Float[Array, " buckets"], Bool[Array, " buckets"]]:
    """Weighted means of the accepted updates in random buckets of ``size`` clients
    (Karimireddy, He and Jaggi, ICLR 2022, Algorithm 1); their weights and accepted mask.

    The accepted rows, in a random order drawn from ``key``, fill the buckets first, so only
    the last filled bucket may hold fewer than ``size`` of them; rejected rows never enter a
    mean, and buckets without an accepted member are not accepted. A robust aggregator of the
    bucket means sees heterogeneity shrunk by about ``sqrt(size)``, while each attacker
    corrupts at most one bucket. Bucket weights are the summed member weights.
    """
    n = updates.shape[0]
    perm = jax.random.permutation(key, n)
    order = perm[jnp.argsort(~accepted[perm], stable=True)]
    pad = -n % size
    w = jnp.pad(jnp.where(accepted, weight, 0.0)[order], (0, pad)).reshape(-1, size)
    x = jnp.where(accepted[:, None], updates, 0.0)[order]
    x = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, size, updates.shape[1])
    total = jnp.sum(w, axis=1)
    ok = total > 0
    means = jnp.einsum("bs,bsp->bp", w, x) / jnp.where(ok, total, 1.0)[:, None]
    return means, total, ok


def aggregate(
    name: str,
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    accepted: Bool[Array, " clients"],
    *,
    trim: float = 0.1,
    byzantine: int = 0,
    select: int = 1,
    bucket_size: int = 1,
    key: PRNGKeyArray | None = None,
) -> Float[Array, " params"]:
    """Dispatches to the aggregator ``name`` (one of :data:`AGGREGATORS`), applied to the
    :func:`bucket_means` of random ``bucket_size``-client buckets (drawn from ``key``) when
    ``bucket_size > 1``."""
    if bucket_size > 1:
        if key is None:
            raise ValueError("bucketing needs a PRNG key")
        updates, weight, accepted = bucket_means(updates, weight, accepted, key, size=bucket_size)
    if name == "mean":
        return weighted_mean(updates, weight, accepted)
    if name == "median":
        return coordinate_median(updates, accepted)
    if name == "trimmed_mean":
        return trimmed_mean(updates, accepted, trim)
    if name in ("krum", "multi_krum"):
        k = 1 if name == "krum" else select
        return multi_krum(updates, accepted, byzantine=byzantine, select=k)
    raise ValueError(f"unknown aggregator {name!r}; expected one of {AGGREGATORS}")


def aggregate_per_step(
    name: str,
    updates: Float[Array, "clients params"],
    weight: Float[Array, " clients"],
    accepted: Bool[Array, " clients"],
    steps: Float[Array, " clients"],
    **kw,
) -> Float[Array, " params"]:
    """:func:`aggregate` of the per-step updates ``updates / steps``, times the weighted mean
    step count of the accepted clients (FedNova's normalized averaging, Wang et al. 2020).

    ``steps`` are the local SGD steps the server assigned (it knows every client's size and
    epochs, so a client cannot misreport them). Clients that ran E epochs over n samples send
    updates roughly proportional to n; a median or trimmed mean of raw updates then tracks
    the typical (small) client and takes a shorter step than the mean does.
    """
    steps = jnp.maximum(steps, 1.0)
    out = aggregate(name, updates / steps[:, None], weight, accepted, **kw)
    w = jnp.where(accepted, weight, 0.0)
    return jnp.sum(w * steps) / jnp.maximum(jnp.sum(w), 1e-12) * out
