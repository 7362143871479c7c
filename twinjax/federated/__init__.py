"""Federated training: pure ``init``/``round`` algorithms sharded over a ``clients`` mesh axis.

Public API::

    data = ClientData(...)  /  from_client_lists([...])
    cfg = fedprox(loss_fn, mu=1.0, clients_per_round=10, backend="shard_map", mesh=client_mesh())
    algo = build(cfg)
    state = algo.init(params, num_clients=data.num_clients)
    state, metrics = algo.round(state, data, key)
"""

from twinjax.federated.aggregation import (
    AGGREGATORS,
    aggregate,
    coordinate_median,
    multi_krum,
    screen_updates,
    trimmed_mean,
    weighted_mean,
)
from twinjax.federated.algorithm import (
    FAST_COMPILE,
    Byzantine,
    FedConfig,
    FederatedAlgorithm,
    ServerState,
    build,
    init,
    round,
    sampling_rate,
)
from twinjax.federated.data import ClientData, from_client_lists
from twinjax.federated.execution import (
    BACKENDS,
    DistributedConfig,
    client_mesh,
    initialize_distributed,
    map_clients,
)
from twinjax.federated.local import local_sgd
from twinjax.federated.personal import PersonalConfig, fine_tune, personal_params
from twinjax.federated.privacy import DPConfig, epsilon
from twinjax.federated.strategies import (
    ALGORITHMS,
    fedadagrad,
    fedadam,
    fedavg,
    fedavgm,
    fedprox,
    fedyogi,
    scaffold,
)
from twinjax.federated.synthetic import (
    logistic_evaluate,
    logistic_init,
    logistic_loss,
    synthetic_alpha_beta,
)

__all__ = [
    "AGGREGATORS", "ALGORITHMS", "FAST_COMPILE", "BACKENDS", "Byzantine", "ClientData", "DPConfig",
    "DistributedConfig", "FedConfig", "FederatedAlgorithm", "PersonalConfig", "ServerState",
    "aggregate", "build", "client_mesh", "coordinate_median", "epsilon", "fedadagrad",
    "fedadam", "fedavg", "fedavgm", "fedprox", "fedyogi", "fine_tune", "from_client_lists",
    "init", "initialize_distributed", "local_sgd", "logistic_evaluate", "logistic_init",
    "logistic_loss", "map_clients", "multi_krum", "personal_params", "round", "sampling_rate",
    "scaffold", "screen_updates", "synthetic_alpha_beta", "trimmed_mean", "weighted_mean",
]  # fmt: skip
