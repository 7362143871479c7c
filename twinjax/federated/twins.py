"""Recurrent twins as federated clients: one individual = one client, windows = its samples.

Each individual's training segment is cut into windows (``length`` steps, every ``stride``);
a window's loss is the twin's masked Gaussian NLL (:func:`twinjax.twins.nll_loss`) on its
training targets. The personal layers for FedPer/FedRep are the output heads (``mean``,
``scale``); the recurrent cell and attention are shared.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from twinjax.federated.data import ClientData, from_client_lists
from twinjax.train.prepare import CohortArrays
from twinjax.twins import TwinSpec, nll_loss

HEAD_LAYERS = ("mean", "scale")


def window_client_data(arrays: CohortArrays, *, length: int, stride: int) -> ClientData:
    """Training windows of every individual as :class:`ClientData` (one client each).

    A window sample is ``(values, mask, interventions, static, target)`` with ``target`` the
    training-segment mask (targets outside it never enter the loss).
    """
    a = jax.tree.map(np.asarray, arrays)
    n, t, _ = a.values.shape
    if t < length:
        raise ValueError(f"series of {t} steps are shorter than windows of {length}")
    clients = []
    for i in range(n):
        end = int(a.train[i].sum())
        starts = list(range(0, max(end - length, 0) + 1, stride))
        sl = lambda x, i=i, starts=starts: np.stack([x[i, s : s + length] for s in starts])
        target = np.repeat(sl(a.train)[..., None], a.values.shape[2], axis=-1)
        static = np.repeat(a.static[i][None], len(starts), axis=0)
        clients.append((sl(a.values), sl(a.mask), sl(a.interventions), static, target))
    return from_client_lists(clients)


def twin_loss(spec: TwinSpec) -> Callable:
    """``loss(params, windows, sample_mask)``: mean window NLL over the valid windows."""

    def loss(params, batch, valid: Bool[Array, " batch"]) -> Float[Array, ""]:
        values, mask, interventions, static, target = batch
        per = jax.vmap(nll_loss, in_axes=(None, None, 0, 0, 0, 0, 0))(
            params, spec, values, mask, interventions, static, target
        )
        w = valid.astype(per.dtype)
        return jnp.sum(per * w) / jnp.maximum(jnp.sum(w), 1.0)

    return loss


def head_mask(params: dict) -> dict:
    """True on the personal (output head) leaves."""
    return {k: jax.tree.map(lambda _, k=k: k in HEAD_LAYERS, v) for k, v in params.items()}


def test_nll(
    params: dict, spec: TwinSpec, arrays: CohortArrays, *, personal: bool = False
) -> Float[Array, " individuals"]:
    """Each individual's one-step NLL on its test segment (``personal``: one params per row)."""
    axes = (0 if personal else None, None, 0, 0, 0, 0, 0)
    return jax.vmap(nll_loss, in_axes=axes)(
        params, spec, arrays.values, arrays.mask, arrays.interventions, arrays.static,
        jnp.broadcast_to(arrays.test[..., None], arrays.values.shape),
    )  # fmt: skip
