"""Federated training: pure ``(init, apply)`` algorithms sharded over a ``clients`` mesh axis.

Parts, each a small pair with its own state (fedjax's ``FederatedAlgorithm`` and
``Aggregator``): a client update ``(init, update)`` (:func:`sgd_update` for FedAvg and
FedProx, :func:`scaffold_update`, :func:`personal_update`), an aggregator ``(init,
aggregate)`` (:func:`mean`, :func:`median`, :func:`trimmed_mean`, :func:`krum`,
:func:`multi_krum`, :func:`dp_mean`, :func:`secure_mean`, composed with :func:`screen`,
:func:`per_step` and :func:`bucketed`) and an optax server optimizer, put together by
:func:`federated_averaging`. The simulated environment (:class:`Simulation`: stragglers,
dropouts, :class:`Byzantine` clients) and where it runs (:class:`Execution`) are options of
their own. Public API::

    data = ClientData(...)  /  from_client_lists([...])
    algo = fedprox(loss_fn, mu=1.0, clients_per_round=10,
                   execution=Execution(backend="shard_map", mesh=client_mesh()))
    state = algo.init(params, num_clients=data.num_clients)
    state, metrics = algo.apply(state, data, key)
    state, history = run_rounds(algo, state, data, key, rounds=100, evaluate=...)

:class:`FederatedOptions` holds one training's settings (rounds, clients per round, local
SGD, sampling, weighting) with the named algorithms' defaults, as the experiments nest them.
"""

from twinjax.federated.aggregators import (
    Aggregator,
    DPState,
    RoundClients,
    RoundKeys,
    bucket_means,
    bucketed,
    coordinate_median,
    coordinate_trimmed_mean,
    dp_mean,
    krum,
    mean,
    median,
    multi_krum,
    multi_krum_mean,
    per_step,
    round_keys,
    screen,
    screen_updates,
    secure_mean,
    trimmed_mean,
    weighted_mean,
)
from twinjax.federated.algorithm import (
    FAST_COMPILE,
    Execution,
    FederatedAlgorithm,
    ServerState,
    federated_averaging,
    sampling_rate,
)
from twinjax.federated.clients import (
    ClientOutput,
    ClientStates,
    ClientTask,
    ClientUpdate,
    PersonalConfig,
    fine_tune,
    personal_params,
    personal_update,
    scaffold_update,
    sgd_update,
)
from twinjax.federated.data import ClientData, from_client_lists
from twinjax.federated.execution import (
    BACKENDS,
    DistributedConfig,
    client_mesh,
    initialize_distributed,
    lockstep_steps,
    map_clients,
)
from twinjax.federated.local import local_sgd
from twinjax.federated.loop import run_rounds
from twinjax.federated.options import FederatedOptions, check_dp_sampling
from twinjax.federated.privacy import (
    DPConfig,
    calibrate_noise,
    epsilon,
    round_event,
    update_noise_multiplier,
)
from twinjax.federated.simulation import Byzantine, Simulation, byzantine_clients
from twinjax.federated.size_classes import size_class_edges
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
    "ALGORITHMS", "Aggregator", "BACKENDS", "Byzantine", "ClientData", "ClientOutput",
    "ClientStates", "ClientTask", "ClientUpdate", "RoundClients", "DPConfig", "DPState",
    "DistributedConfig", "Execution", "FAST_COMPILE", "FederatedAlgorithm", "FederatedOptions",
    "PersonalConfig", "RoundKeys", "ServerState", "Simulation", "bucket_means", "bucketed",
    "byzantine_clients", "calibrate_noise", "check_dp_sampling", "client_mesh",
    "coordinate_median", "coordinate_trimmed_mean", "dp_mean",
    "epsilon", "fedadagrad", "fedadam", "fedavg", "fedavgm", "federated_averaging", "fedprox",
    "fedyogi", "fine_tune", "from_client_lists", "initialize_distributed", "krum", "local_sgd",
    "lockstep_steps", "logistic_evaluate", "logistic_init", "logistic_loss", "map_clients", "mean",
    "median", "multi_krum", "multi_krum_mean", "per_step", "personal_params", "personal_update",
    "round_event", "round_keys", "run_rounds", "sampling_rate", "scaffold", "scaffold_update",
    "screen", "screen_updates", "secure_mean", "sgd_update", "size_class_edges", "synthetic_alpha_beta",
    "trimmed_mean", "update_noise_multiplier", "weighted_mean",
]  # fmt: skip
