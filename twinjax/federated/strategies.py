"""Named algorithms: each returns a :class:`FedConfig`; build it with :func:`build`.

Server optimizers follow Reddi et al. (2021, "Adaptive federated optimization"): the negative
aggregated update is a pseudo-gradient fed to an optax optimizer.
"""

from __future__ import annotations

import optax

from twinjax.federated.algorithm import FedConfig
from twinjax.federated.local import LossFn


def fedavg(loss_fn: LossFn, **kw) -> FedConfig:
    """McMahan et al. (2017); stragglers are dropped."""
    return FedConfig(loss_fn, server_optimizer=optax.sgd(1.0), **kw)


def fedavgm(loss_fn: LossFn, *, server_lr: float = 1.0, momentum: float = 0.9, **kw) -> FedConfig:
    """FedAvg with server momentum (Hsu et al., 2019)."""
    return FedConfig(loss_fn, server_optimizer=optax.sgd(server_lr, momentum=momentum), **kw)


def fedprox(loss_fn: LossFn, *, mu: float = 1.0, **kw) -> FedConfig:
    """Li et al. (2020): proximal term ``mu/2 ||w - w_t||^2``; stragglers keep partial work."""
    kw.setdefault("drop_stragglers", False)
    return FedConfig(loss_fn, mu=mu, server_optimizer=optax.sgd(1.0), **kw)


def scaffold(loss_fn: LossFn, *, server_lr: float = 1.0, **kw) -> FedConfig:
    """Karimireddy et al. (2020), control variates with option II."""
    return FedConfig(loss_fn, scaffold=True, server_optimizer=optax.sgd(server_lr), **kw)


def fedadam(
    loss_fn: LossFn, *, server_lr: float = 0.01, b1=0.9, b2=0.99, tau=1e-3, **kw
) -> FedConfig:
    return FedConfig(loss_fn, server_optimizer=optax.adam(server_lr, b1, b2, eps=tau), **kw)


def fedyogi(
    loss_fn: LossFn, *, server_lr: float = 0.01, b1=0.9, b2=0.99, tau=1e-3, **kw
) -> FedConfig:
    return FedConfig(loss_fn, server_optimizer=optax.yogi(server_lr, b1, b2, eps=tau), **kw)


def fedadagrad(loss_fn: LossFn, *, server_lr: float = 0.01, tau=1e-3, **kw) -> FedConfig:
    opt = optax.adagrad(server_lr, initial_accumulator_value=0.0, eps=tau)
    return FedConfig(loss_fn, server_optimizer=opt, **kw)


ALGORITHMS = {
    "fedavg": fedavg,
    "fedavgm": fedavgm,
    "fedprox": fedprox,
    "scaffold": scaffold,
    "fedadam": fedadam,
    "fedyogi": fedyogi,
    "fedadagrad": fedadagrad,
}
