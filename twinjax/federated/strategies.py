"""Named algorithms: a client update and a server optimizer for :func:`federated_averaging`.

Every function takes the loss, the local SGD settings (``local_lr``, ``batch_size``,
``local_epochs``), ``clients_per_round`` and, through ``options``, the rest of
:func:`federated_averaging` (aggregator, sampling, weighting, simulation, execution).
``personal`` swaps in a personalized client (:func:`personal_update`). Server optimizers
follow Reddi et al. (2021, "Adaptive federated optimization"): the negative aggregated update
is a pseudo-gradient fed to an optax optimizer.
"""

import optax

from twinjax.federated.algorithm import FederatedAlgorithm, federated_averaging
from twinjax.federated.clients import (
    ClientUpdate,
    PersonalConfig,
    personal_update,
    scaffold_update,
    sgd_update,
)
from twinjax.federated.local import LossFn
from twinjax.federated.options import FederatedOptions


def _build(
    loss_fn: LossFn,
    server_optimizer: optax.GradientTransformation,
    *,
    local_lr: float,
    batch_size: int,
    local_epochs: int,
    clients_per_round: int,
    mu: float = 0.0,
    scaffold: bool = False,
    personal: PersonalConfig | None = None,
    **options,
) -> FederatedAlgorithm:
    run = dict(learning_rate=local_lr, batch_size=batch_size, epochs=local_epochs)
    client: ClientUpdate
    if personal is not None:
        client = personal_update(loss_fn, personal, **run)
    elif scaffold:
        client = scaffold_update(loss_fn, **run)
    else:
        client = sgd_update(loss_fn, mu=mu, **run)
    return federated_averaging(
        client, clients_per_round=clients_per_round, local_epochs=local_epochs,
        server_optimizer=server_optimizer, **options,
    )  # fmt: skip


def _defaults(kw: dict) -> dict:
    return {**FederatedOptions().algorithm_kwargs(), **kw}


def fedavg(loss_fn: LossFn, **kw) -> FederatedAlgorithm:
    """McMahan et al. (2017): local SGD, the weighted mean, stragglers are dropped.

    Args:
        loss_fn: ``loss(params, batch, sample_mask) -> mean loss``.
        **kw: ``local_lr`` (0.01), ``batch_size`` (10), ``local_epochs`` (20),
            ``clients_per_round`` (10), ``personal`` and :func:`federated_averaging`'s options.

    Returns:
        The :class:`FederatedAlgorithm`.
    """
    return _build(loss_fn, optax.sgd(1.0), **_defaults(kw))


def fedavgm(
    loss_fn: LossFn, *, server_lr: float = 1.0, momentum: float = 0.9, **kw
) -> FederatedAlgorithm:
    """FedAvg with server momentum (Hsu et al., 2019); ``kw`` as for :func:`fedavg`."""
    return _build(loss_fn, optax.sgd(server_lr, momentum=momentum), **_defaults(kw))


def fedprox(loss_fn: LossFn, *, mu: float = 1.0, **kw) -> FederatedAlgorithm:
    """Li et al. (2020): proximal term ``mu/2 ||w - w_t||^2``; stragglers keep partial work.

    ``kw`` as for :func:`fedavg`."""
    kw.setdefault("drop_stragglers", False)
    return _build(loss_fn, optax.sgd(1.0), mu=mu, **_defaults(kw))


def scaffold(loss_fn: LossFn, *, server_lr: float = 1.0, **kw) -> FederatedAlgorithm:
    """Karimireddy et al. (2020), control variates with option II; ``kw`` as for :func:`fedavg`."""
    return _build(loss_fn, optax.sgd(server_lr), scaffold=True, **_defaults(kw))


def fedadam(
    loss_fn: LossFn, *, server_lr: float = 0.01, b1=0.9, b2=0.99, tau=1e-3, **kw
) -> FederatedAlgorithm:
    """FedAdam (Reddi et al. 2021); ``kw`` as for :func:`fedavg`."""
    return _build(loss_fn, optax.adam(server_lr, b1, b2, eps=tau), **_defaults(kw))


def fedyogi(
    loss_fn: LossFn, *, server_lr: float = 0.01, b1=0.9, b2=0.99, tau=1e-3, **kw
) -> FederatedAlgorithm:
    """FedYogi (Reddi et al. 2021); ``kw`` as for :func:`fedavg`."""
    return _build(loss_fn, optax.yogi(server_lr, b1, b2, eps=tau), **_defaults(kw))


def fedadagrad(loss_fn: LossFn, *, server_lr: float = 0.01, tau=1e-3, **kw) -> FederatedAlgorithm:
    """FedAdagrad (Reddi et al. 2021); ``kw`` as for :func:`fedavg`."""
    opt = optax.adagrad(server_lr, initial_accumulator_value=0.0, eps=tau)
    return _build(loss_fn, opt, **_defaults(kw))


ALGORITHMS = {
    "fedavg": fedavg,
    "fedavgm": fedavgm,
    "fedprox": fedprox,
    "scaffold": scaffold,
    "fedadam": fedadam,
    "fedyogi": fedyogi,
    "fedadagrad": fedadagrad,
}
