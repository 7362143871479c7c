"""Each default that the app's schema (twinjax.config) shares with the library is defined once
in effect: the schema's defaults, mapped by the pipeline into the library's options, are the
library's own defaults. A default changed on one side only fails here."""

import dataclasses

import jax

from twinjax import pipeline
from twinjax.config import DataConfig, ModelConfig, TrainConfig
from twinjax.data import synthetic_cohort
from twinjax.train import PersonalizeOptions, PopulationOptions
from twinjax.twins import TwinSpec


def test_train_defaults_are_the_librarys():
    data, train = DataConfig(), TrainConfig()
    assert pipeline.population_options(data, train) == PopulationOptions()
    assert pipeline.personalize_options(data, train) == PersonalizeOptions()


def test_model_defaults_are_the_librarys():
    cohort = synthetic_cohort(jax.random.key(0), n_individuals=2, n_steps=24)
    app = pipeline.twin_spec(cohort, ModelConfig())
    library = TwinSpec.for_cohort(cohort)
    # the one field that differs by design: the schema's layout "auto" resolves to the
    # hand-written sequence layout for an LSTM; the library's plain default is the reference
    # scan it is tested against (tests/twins/test_layout.py)
    assert (app.layout, library.layout) == ("sequence", "scan")
    assert dataclasses.replace(app, layout=library.layout) == library


def test_distributed_defaults_are_the_librarys():
    import inspect

    from twinjax.config import DistributedConfig
    from twinjax.train.processes import initialize

    given = inspect.signature(initialize).parameters
    schema = dataclasses.asdict(DistributedConfig())
    assert schema.pop("enabled") is False
    assert schema == {name: given[name].default for name in schema}


def test_glucose_advisor_defaults_are_the_librarys():
    from twinjax.glucose import Advisor
    from twinjax_experiments.config import GlucoseTwins
    from twinjax_experiments.glucose_twins import advisor

    assert advisor(GlucoseTwins()) == Advisor()


def test_glucose_twin_defaults_are_the_librarys():
    """glucose_twins' settings of twin (b) are twinjax.glucose.identify's defaults."""
    import inspect

    from twinjax.glucose import identify
    from twinjax_experiments.config import GlucoseTwins

    c = GlucoseTwins()
    ours = {"twin": c.twin, "fit_days": c.fit_days, "draws": c.mechanistic_draws,
            "svi_steps": c.svi_steps, "svi_lr": c.svi_lr, "starts": c.population_starts,
            "mode_steps": c.population_mode_steps, "steps": c.population_steps}  # fmt: skip
    given = inspect.signature(identify).parameters
    assert {k: given[k].default for k in ours} == ours


def test_nuts_defaults_are_the_runners():
    """The NUTS settings the experiments nest (twinjax.bayes.Nuts) are run_nuts's keywords, with
    its defaults."""
    import inspect

    from twinjax.bayes import Nuts, run_nuts

    given = inspect.signature(run_nuts).parameters
    assert dataclasses.asdict(Nuts()) == {name: given[name].default for name in Nuts().kwargs()}


def test_federated_defaults_are_the_algorithms():
    """The federated settings the experiments nest (twinjax.federated.FederatedOptions) are the
    named algorithms' keywords, and their defaults are those the algorithms run with."""
    import inspect

    from twinjax import federated as fl
    from twinjax.federated.algorithm import federated_averaging

    options = fl.FederatedOptions()
    given = inspect.signature(federated_averaging).parameters
    assert options.sampling == given["sampling"].default
    assert options.weighting == given["weighting"].default
    parts = fl.fedavg(fl.logistic_loss).parts  # what the named algorithm runs by default
    built = (parts.clients_per_round, parts.local_epochs, parts.sampling, parts.weighting)
    assert built == (options.clients_per_round, options.local_epochs, options.sampling,
                     options.weighting)  # fmt: skip
