"""The Synthetic(alpha, beta) federated task of Li et al. (FedProx, MLSys 2020).

Devices differ in their models (``alpha``) and in their input distributions (``beta``); the
model is multinomial logistic regression.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from twinjax.federated.data import ClientData, from_client_lists


def synthetic_alpha_beta(
    seed: int,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    num_clients: int = 30,
    dim: int = 60,
    num_classes: int = 10,
    train_fraction: float = 0.9,
    max_samples: int | None = None,
    iid: bool = False,
    spread: float | None = None,
) -> tuple[ClientData, ClientData]:
    """Generates (train, test) client data following the paper's procedure.

    Per device k: ``u_k ~ N(0, alpha)``, ``W_k ~ N(u_k, 1)``, ``b_k ~ N(u_k, 1)``,
    ``B_k ~ N(0, beta)``, ``v_k ~ N(B_k, 1)``, ``x ~ N(v_k, Sigma)`` with ``Sigma_jj = j^-1.2``,
    ``y = argmax softmax(x W_k + b_k)``; ``floor(lognormal(4, 2)) + 50`` samples, split
    ``train_fraction`` / rest. ``max_samples`` optionally caps a device's sample count.
    ``iid``: the paper's Synthetic-IID variant (one ``W, b ~ N(0, 1)`` for all devices and
    ``x ~ N(0, Sigma)``; ``alpha`` and ``beta`` are unused).
    ``spread``: devices share one model, ``W_k = W + spread * (W'_k - u_k)`` and likewise
    ``b_k``, with ``W, b ~ N(0, 1)`` common to all and ``W'_k`` the paper's device draw. The
    paper's device models are independent of each other (``u_k`` shifts every class's score
    equally, so it cancels in the argmax), which leaves a global model nothing to learn once
    devices are many; ``spread`` keeps the concept shift between devices but gives them a
    common part. Inputs keep their device shift ``v_k``; the random stream is the paper's.
    """
    rng = np.random.default_rng(seed)
    counts = np.floor(rng.lognormal(4.0, 2.0, num_clients)).astype(np.int64) + 50
    if max_samples is not None:
        counts = np.minimum(counts, max_samples)
    u = rng.normal(0.0, alpha, num_clients)
    shift = rng.normal(0.0, beta, num_clients)
    std_x = np.arange(1, dim + 1, dtype=np.float64) ** (-1.2 / 2)
    shared_w = rng.normal(0.0, 1.0, (dim, num_classes))
    shared_b = rng.normal(0.0, 1.0, num_classes)
    train, test = [], []
    for k in range(num_clients):
        w = rng.normal(u[k], 1.0, (dim, num_classes))
        b = rng.normal(u[k], 1.0, num_classes)
        v = rng.normal(shift[k], 1.0, dim)
        if iid:
            w, b, v = shared_w, shared_b, np.zeros(dim)
        elif spread is not None:
            w, b = shared_w + spread * (w - u[k]), shared_b + spread * (b - u[k])
        x = v + std_x * rng.standard_normal((counts[k], dim))
        y = np.argmax(x @ w + b, axis=1)  # softmax is monotone
        n_train = int(train_fraction * counts[k])
        train.append((x[:n_train].astype(np.float32), y[:n_train].astype(np.int32)))
        test.append((x[n_train:].astype(np.float32), y[n_train:].astype(np.int32)))
    return from_client_lists(train), from_client_lists(test)


def logistic_init(dim: int = 60, num_classes: int = 10) -> dict:
    """Zero-initialised multinomial logistic regression parameters."""
    return {"w": jnp.zeros((dim, num_classes)), "b": jnp.zeros(num_classes)}


def logistic_logits(params: dict, x: Float[Array, "batch dim"]) -> Float[Array, "batch classes"]:
    return x @ params["w"] + params["b"]


def logistic_loss(
    params: dict, batch: tuple, mask: Bool[Array, " batch"] | Float[Array, " batch"]
) -> Float[Array, ""]:
    """Masked mean cross-entropy of a batch ``(x, y)``."""
    x, y = batch
    logp = jax.nn.log_softmax(logistic_logits(params, x))
    nll = -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]
    mask = mask.astype(nll.dtype)
    return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0)


@jax.jit
def logistic_evaluate(params: dict, data: ClientData) -> dict:
    """Sample-weighted loss and accuracy over all clients' samples."""
    x, y = data.samples
    logits = logistic_logits(params, x)
    loss = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1).mean()
    accuracy = jnp.mean(jnp.argmax(logits, axis=1) == y)
    return {"loss": loss, "accuracy": accuracy}


def logistic_correct(params: dict, data: ClientData) -> Int[Array, " samples"]:
    x, y = data.samples
    return (jnp.argmax(logistic_logits(params, x), axis=1) == y).astype(jnp.int32)
