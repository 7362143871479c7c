"""A federated training's settings (twinjax.federated.FederatedOptions): the keywords the named
algorithms take, and a DP run's check of its sampling."""

import pytest

from twinjax import federated as fl
from twinjax.runtime.errors import ConfigError


def test_options_build_the_algorithm_they_name():
    options = fl.FederatedOptions(rounds=7, clients_per_round=3, local_epochs=2, sampling="size",
                                  weighting="uniform")  # fmt: skip
    assert "rounds" not in options.algorithm_kwargs()
    parts = fl.fedprox(fl.logistic_loss, mu=0.1, **options.algorithm_kwargs()).parts
    assert (parts.clients_per_round, parts.local_epochs) == (3, 2)
    assert (parts.sampling, parts.weighting) == ("size", "uniform")


def test_a_dp_run_takes_poisson_sampling_only():
    fl.check_dp_sampling(fl.FederatedOptions(sampling="poisson"), "experiment.dp")
    with pytest.raises(ConfigError) as e:
        fl.check_dp_sampling(fl.FederatedOptions(sampling="size"), "experiment.dp")
    assert str(e.value) == (
        "experiment.dp.sampling='size': a DP run's privacy accounting takes Poisson sampling: "
        "use poisson"
    )
