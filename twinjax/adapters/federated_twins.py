"""Recurrent twins as federated clients: one individual = one client, windows = its samples.

Each individual's training segment is cut into windows (``length`` steps, every ``stride``);
a window's loss is the twin's masked Gaussian NLL (:func:`twinjax.twins.nll_loss`) on its
training targets. The personal layers for FedPer/FedRep are the output heads (``mean``,
``scale``); the recurrent cell and attention are shared.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from twinjax.data import CohortArrays, Series
from twinjax.federated import ClientData, from_client_lists
from twinjax.twins import TwinParams, TwinSpec, nll_loss

HEAD_LAYERS = ("mean", "scale")


def window_client_data(arrays: CohortArrays, *, length: int, stride: int) -> ClientData:
    """Training windows of every individual as :class:`ClientData` (one client each).

    A window sample is ``(series, target)`` with ``series`` a :class:`~twinjax.data.Series` of
    ``length`` steps and ``target`` the training-segment mask (targets outside it never enter
    the loss).
    """
    a = jax.tree.map(np.asarray, arrays)
    n, t, _ = a.series.values.shape
    if t < length:
        raise ValueError(f"series of {t} steps are shorter than windows of {length}")
    clients = []
    for i in range(n):
        end = int(a.train[i].sum())
        starts = list(range(0, max(end - length, 0) + 1, stride))
        sl = lambda x, i=i, starts=starts: np.stack([x[i, s : s + length] for s in starts])
        target = np.repeat(sl(a.train)[..., None], a.series.values.shape[2], axis=-1)
        static = np.repeat(a.series.static[i][None], len(starts), axis=0)
        series = Series(sl(a.series.values), sl(a.series.mask), sl(a.series.interventions), static)
        clients.append((series, target))
    return from_client_lists(clients)


def twin_loss(spec: TwinSpec) -> Callable:
    """``loss(params, windows, sample_mask)``: mean window NLL over the valid windows."""

    def loss(params, batch, valid: Bool[Array, " batch"]) -> Float[Array, ""]:
        series, target = batch
        per = jax.vmap(nll_loss, in_axes=(None, None, 0, 0))(params, spec, series, target)
        w = valid.astype(per.dtype)
        return jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1.0)

    return loss


def head_mask(params: TwinParams) -> TwinParams:
    """True on the personal (output head) leaves."""
    return TwinParams(
        *(jax.tree.map(lambda _, k=k: k in HEAD_LAYERS, v) for k, v in params._asdict().items())
    )


def test_nll(
    params: TwinParams, spec: TwinSpec, arrays: CohortArrays, *, personal: bool = False
) -> Float[Array, " individuals"]:
    """Each individual's one-step NLL on its test segment (``personal``: one params per row)."""
    target = jnp.broadcast_to(arrays.test[..., None], arrays.series.values.shape)
    return jax.vmap(nll_loss, in_axes=(0 if personal else None, None, 0, 0))(
        params, spec, arrays.series, target
    )
