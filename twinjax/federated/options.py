"""A federated training's settings: its rounds, who takes part in each, and their local work."""

import dataclasses
from dataclasses import dataclass
from typing import Literal

from twinjax.runtime.errors import ConfigError


@dataclass
class FederatedOptions:
    """The settings of one federated training, with the named algorithms' defaults
    (:mod:`twinjax.federated.strategies`): ``fedavg(loss, **options.algorithm_kwargs())``, then
    ``run_rounds(..., rounds=options.rounds)``. An experiment nests one per set of runs
    (``experiment.federated.rounds=...``), with its own defaults."""

    rounds: int = 100  # server rounds of the training
    clients_per_round: int = 10  # clients sampled per round (Poisson sampling: the expected count)
    local_epochs: int = 20  # local epochs a sampled client is asked to run per round
    batch_size: int = 10  # samples per local SGD step
    local_lr: float = 0.01  # local SGD learning rate
    # how a round's clients are drawn: uniform | size (probability proportional to a client's
    # samples) | poisson (each client independently)
    sampling: Literal["uniform", "size", "poisson"] = "uniform"
    weighting: Literal["samples", "uniform"] = "samples"  # the updates' weights in the mean

    def algorithm_kwargs(self) -> dict:
        """The settings the named algorithms take (all but ``rounds``, which
        :func:`twinjax.federated.run_rounds` takes)."""
        out = dataclasses.asdict(self)
        del out["rounds"]
        return out


def check_dp_sampling(options: FederatedOptions, key: str) -> None:
    """A DP run's settings: its privacy accounting takes each client independently (Poisson
    sampling at ``clients_per_round / num_clients``).

    Raises:
      ConfigError: naming the entry ``key`` (e.g. ``experiment.dp``) when its sampling is not
        ``poisson``."""
    if options.sampling != "poisson":
        raise ConfigError(
            f"{key}.sampling={options.sampling!r}: a DP run's privacy accounting takes Poisson "
            "sampling: use poisson"
        )
