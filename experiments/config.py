"""Every experiment's options with their defaults, written once.

One dataclass per experiment. The app (:func:`twinjax.config.register_configs`) stores each in
Hydra's ConfigStore as the option ``name`` of the ``experiment`` group, so
``python -m twinjax experiment=NAME experiment.FIELD=VALUE`` selects and overrides it, an unknown
field or a wrong type fails when the config is composed, and the driver ``experiments/NAME.py``
receives the instance as ``cfg.experiment``; :data:`REGISTRY` names each experiment's driver.
Settings the library owns are its own dataclasses, nested: NUTS's are
:class:`twinjax.bayes.Nuts` (``experiment.nuts.num_warmup=...``), with each experiment's defaults.
Drivers are not imported here: registering every experiment imports no driver. A YAML file under
``configs/experiment/`` is only for a variant that overrides defaults (``defaults: [NAME,
_self_]`` and the changed fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from twinjax.bayes import HierarchicalOptions, Nuts
from twinjax.bayes.residual import ErrorModel
from twinjax.federated.options import FederatedOptions


@dataclass
class TwinsSynthetic:
    """Default experiment: population vs personalized recurrent twins on the synthetic cohort;
    the data, model and train groups configure them."""

    name: str = "twins_synthetic"
    n_plot_individuals: int = 4  # individuals in the forecast figures (spread over the cohort)


@dataclass
class BayesTwins:
    """Bayesian recurrent twins: a posterior over each individual's twin parameters (prior
    centred on the population twin), held-out calibration of 90% intervals. The MAP stage uses
    the data, model and train groups like the default experiment."""

    name: str = "bayes_twins"
    steps: int = 1500  # SVI steps
    lr: float = 3e-3  # Adam step for the posterior means (they start at the personal MAP twins)
    scale_lr: float = 3e-2  # Adam step for the posterior SDs and the learned prior SDs
    init_scale: float = 0.01  # initial posterior SD of every parameter
    num_draws: int = 32  # posterior draws per individual for the predictive mixture
    # random parameter groups (of cell, attention, mean, scale); the others stay at the MAP
    layers: list[Literal["cell", "attention", "mean", "scale"]] = field(
        default_factory=lambda: ["mean", "scale"]
    )
    checkpoint_every: int = 250  # SVI steps between orbax checkpoints (a rerun resumes)
    n_plot_individuals: int = 4  # individuals in forecast_bands.png (the first ones)


@dataclass
class BayesSynthetic:
    """GP twins on the core synthetic cohort: per-individual GPs with shared hyperpriors,
    calibration of 90% predictive intervals on held-out points."""

    name: str = "bayes_synthetic"
    n_individuals: int = 64  # individuals of the synthetic cohort
    # hourly grid steps per individual (each length drawn from 0.8 n_steps to n_steps)
    n_steps: int = 240
    holdout: float = 0.2  # fraction of observed training-period points held out (interpolation)
    method: Literal["hsgp", "exact"] = "hsgp"  # Hilbert-space approximate GP or exact
    m: int = 48  # HSGP basis functions
    steps: int = 150  # Adam steps of the hyperparameter fit
    lr: float = 0.05  # Adam learning rate of the hyperparameter fit
    n_plot_individuals: int = 4  # individuals in gp_individual_fits.png (the first ones)
    streams: list[str] = field(default_factory=list)  # streams to fit (e.g. [glucose]); []: all


@dataclass
class PkTheophylline:
    """Bayesian PK twin of R's Theoph data (NUTS), compared with nlme fm3, then personalized
    dosing."""

    name: str = "pk_theophylline"
    # NUTS's settings (twinjax.bayes.Nuts): warm-up, draws and chains, target acceptance...
    nuts: Nuts = field(default_factory=lambda: Nuts(num_warmup=1000, num_samples=1000))
    # lKe, lKa, lCl: weakly informative, 2 log-units wide
    prior_loc: list[float] = field(default_factory=lambda: [-2.0, 0.0, -3.0])
    prior_scale: float = 2.0  # SD of the Normal priors of lKe, lKa and lCl (log units)
    weight_covariate: bool = False  # fm3 has none (doses are per kg); true adds lCl ~ log(weight)
    correlated: bool = False  # fm3 uses a diagonal random-effects covariance (pdDiag)
    svi_steps: int = 0  # >0 adds an AutoNormal SVI fit of the same model for comparison
    dose_interval: float = 12.0  # hours between oral doses
    target_low: float = 10.0  # mg/L
    target_high: float = 20.0  # mg/L
    # posterior draws (a random subset of all chains') behind the predictive check, the fitted
    # bands and the dosing
    predictive_draws: int = 1000
    progress: bool = True  # show progress (NUTS, dosing): a bar on a terminal, log lines elsewhere


@dataclass
class Hierarchical(HierarchicalOptions):
    """Hierarchical Bayesian twins of your own long-format files (``data=files``): the mean model,
    random effects, error model and inference chosen here; data-scale default priors checked
    against the data before fitting; posterior and per-subject tables, fitted curves with 90%
    bands, and an ArviZ InferenceData file (posterior.nc). The model and its inference are
    :class:`twinjax.bayes.HierarchicalOptions`' fields; this class adds the run's checks, curves,
    forecasts and held-out scoring."""

    name: str = "hierarchical"
    prior_check: bool = True  # prior-predictive check; warns when the data sit in its tails
    predictive_draws: int = 400  # draws behind the fitted-curve bands
    # time points of each subject's fitted curve (fitted_curves.csv, the figures) over the
    # observed time span
    grid_points: int = 101
    n_plot_subjects: int = 12  # subjects in individual_fits.png and forecasts.png (the first ones)
    # Forecasts (posterior predictive with residual error, from every posterior draw), written to
    # forecasts.csv (subject_id, time, mean, q05, q25, q50, q75, q95 in data units) and
    # forecasts.png. Either forecast_steps > 0: the next N times after each subject's last
    # observation, forecast_every apart (data time units; None: the subject's median visit gap,
    # the cohort's for a subject with one visit); or forecast_times: the same absolute times
    # (data units) for every subject. Not both.
    forecast_steps: int = 0
    forecast_every: float | None = None  # data time units between forecast_steps' times
    forecast_times: list[float] | None = None  # the same absolute times for every subject
    # Hold out each subject's last k visits (0: none): fit on the rest, forecast the held-out
    # times and score them (RMSE, MAE, 90% coverage and width, CRPS) next to the last value
    # carried forward on the same points (interval from the cohort's h-visit changes). Subjects
    # with k or fewer visits are left out with a warning naming them. An evaluation run: it
    # takes no forecast_steps or forecast_times.
    holdout_last: int = 0


@dataclass
class FedproxSynthetic:
    """FedProx (Li et al., MLSys 2020) on Synthetic(alpha, beta): FedAvg vs FedProx under
    stragglers, robust aggregation under Byzantine clients, DP-FedAvg with its (epsilon, delta)."""

    name: str = "fedprox_synthetic"
    # model heterogeneity: device k's W_k, b_k ~ N(u_k, 1) with u_k ~ N(0, alpha) (alpha the SD)
    alpha: float = 1.0
    # input heterogeneity: device k's inputs centre on v_k ~ N(B_k, 1), B_k ~ N(0, beta) (the SD)
    beta: float = 1.0
    num_clients: int = 30  # devices of the straggler and DP runs (the paper's 30)
    # the straggler runs: FedAvg vs FedProx (the paper's 10 of 30 devices per round, E = 20);
    # sampling size: probability proportional to the device's samples
    straggler: FederatedOptions = field(
        default_factory=lambda: FederatedOptions(
            rounds=200, clients_per_round=10, sampling="size", weighting="uniform"
        )
    )
    mu: float = 1.0  # FedProx's proximal term mu/2 ||w - w_t||^2 (mu=0 is run as well)
    # fractions of each round's sampled devices that are stragglers (they run 1 .. E-1 local
    # epochs), one set of runs each; []: skip
    straggler_fractions: list[float] = field(default_factory=lambda: [0.0, 0.5, 0.9])
    seeds: int = 3  # training seeds per straggler run (one dataset; results are their mean)
    max_samples: int | None = None  # cap on a device's sample count; None: uncapped (lognormal)
    # where client updates run: vmap | serial (no jit) | shard_map (clients split over the
    # devices, also of several hosts with distributed)
    backend: Literal["vmap", "serial", "shard_map"] = "vmap"
    buckets: int = 3  # vmapped groups of similar-size clients (speed only)
    final_window: int = 10  # "final" accuracies also reported as the mean of the last rounds
    # the robustness runs (byzantine.rounds=0: skip them); robust aggregators see updates per
    # local step (byzantine_per_step)
    byzantine: FederatedOptions = field(
        default_factory=lambda: FederatedOptions(
            rounds=200, clients_per_round=50, sampling="uniform", weighting="uniform"
        )
    )
    # share of the devices that attack (the lowest ids), in every round they are sampled
    byzantine_fraction: float = 0.2
    # the attacks' factor s: an attacker sends s times its update (scale) or -s times (sign_flip)
    byzantine_scale: float = 10.0
    # sign_flip | scale | nan; a NaN attack on the mean is always run too (its updates rejected)
    byzantine_attacks: list[Literal["sign_flip", "scale", "nan"]] = field(
        default_factory=lambda: ["scale", "sign_flip"]
    )
    # mean (FedAvg) | median | trimmed_mean | krum | multi_krum (both Krums built with f=0);
    # each also run without attackers
    byzantine_aggregators: list[str] = field(
        default_factory=lambda: ["mean", "median", "trimmed_mean"]
    )
    trim_fraction: float = 0.3  # share of each coordinate's values the trimmed mean drops per end
    byzantine_iid: bool = True  # robustness on the paper's Synthetic-IID data
    # The robustness runs use their own Synthetic-IID population. With the paper's 30 devices
    # the 6 attackers are the same clients every round and each sends the flip of its own
    # persistent direction, which biases every coordinate's median the same way: sign flip
    # costs the median 7 points there (seed 0, 20 of 30 per round), 2.5 with 100 devices and
    # 1.9 with 200 (50 per round): the bias averages over more attackers' directions.
    byzantine_num_clients: int = 200
    # robust aggregators see updates per local step (aggregation.aggregate_per_step, FedNova
    # style); the mean stays plain FedAvg
    byzantine_per_step: bool = True
    # >1: robust aggregators of means of random buckets of this many clients (Karimireddy et
    # al. 2022); the clean reference of each robust aggregator is bucketed the same way
    byzantine_bucket_size: int = 1
    # the DP-FedAvg run (dp.rounds=0: skip it); its accounting takes Poisson sampling at
    # dp.clients_per_round / num_clients
    dp: FederatedOptions = field(
        default_factory=lambda: FederatedOptions(
            rounds=100, clients_per_round=10, sampling="poisson", weighting="uniform"
        )
    )
    # z: SD of the Gaussian noise on the sum of clipped updates, in units of dp_clip_norm
    dp_noise_multiplier: float = 1.0
    dp_clip_norm: float = 1.0  # L2 norm each client update is clipped to (fixed clipping)
    dp_delta: float = 1e-5  # the delta of the reported (epsilon, delta), RDP and PLD accounting
    progress: bool = True  # a progress bar per run (log lines when not on a terminal)
    fast_compile: bool = False  # XLA -O0: quicker compiles for tiny CI runs


@dataclass
class FederatedTwins:
    """Recurrent twins trained federatedly (one client per individual) vs centralized training;
    the cohort and the twin come from the data and model groups."""

    name: str = "federated_twins"
    window: int = 48  # grid steps per training window (a client's samples are its windows)
    stride: int = 12  # grid steps between the starts of an individual's windows
    # FedAdam's rounds (of the global twin, and again of the personal heads), clients per
    # round (at most the cohort; sampled uniformly, updates weighted by their windows), local
    # epochs over a client's windows, and the SGD batch (windows) and learning rate, which the
    # centralized baseline and the fine-tuning use too
    federated: FederatedOptions = field(
        default_factory=lambda: FederatedOptions(
            rounds=60, clients_per_round=16, local_epochs=2, batch_size=4, local_lr=0.05
        )
    )
    server_lr: float = 0.01  # the server's Adam learning rate (FedAdam)
    central_epochs: int = 10  # epochs of the centralized baseline over all windows pooled
    fine_tune_epochs: int = 2  # epochs of each client's fine-tuning of the FedAdam twin
    progress: bool = True  # a progress bar per run (log lines when not on a terminal)
    fast_compile: bool = False  # XLA -O0: quicker compiles for tiny CI runs


@dataclass
class DpPopulation:
    """DP-FedAvg at population scale (user-level DP): 10,000 clients, 1,000 Poisson-sampled
    per round, adaptive clipping (Andrew et al. 2021), noise calibrated by dp-accounting to
    ``target_epsilon`` at ``delta`` for the whole run, against the same rounds without DP."""

    name: str = "dp_population"
    # Synthetic(alpha, beta) with one shared model (spread: each device's deviation from it)
    num_clients: int = 10_000
    # the paper's model shift u_k ~ N(0, alpha); with spread it cancels (W_k = W + spread (W'_k
    # - u_k)), so alpha does not change the data here
    alpha: float = 1.0
    # input heterogeneity: device k's inputs centre on v_k ~ N(B_k, 1), B_k ~ N(0, beta) (the SD)
    beta: float = 1.0
    spread: float = 0.5  # SD of each device's model deviation from the shared model
    max_samples: int = 500  # caps the lognormal client sizes (the largest set a round's length)
    # rounds of each run (the DP run's epsilon covers all of them), clients per round (the
    # expected count: Poisson sampling at clients_per_round/num_clients, which the accounting
    # takes), local SGD of a sampled client, uniform weights
    federated: FederatedOptions = field(
        default_factory=lambda: FederatedOptions(
            rounds=200,
            clients_per_round=1_000,
            local_epochs=1,
            batch_size=10,
            local_lr=0.1,
            sampling="poisson",
            weighting="uniform",
        )
    )
    target_epsilon: float = 3.0  # user-level epsilon of the whole run; the noise is fitted to it
    delta: float = 1e-5  # the delta of (epsilon, delta)
    accountant: Literal["rdp", "pld"] = "rdp"  # calibrates the noise (both are reported)
    clip_norm: float = 0.5  # initial clip norm; it adapts to the target quantile of update norms
    target_quantile: float = 0.5  # gamma: the share of update norms the clip norm aims to exceed
    # eta: step of the clip norm's update C <- C exp(-eta (b - gamma)), b the (noisy) share of
    # unclipped updates
    clip_learning_rate: float = 0.2
    # sigma_b of the clip count; None: federated.clients_per_round/20
    quantile_noise: float | None = None
    buckets: int = 8  # vmapped groups of similar-size clients (speed only)
    size_classes: bool = True  # group edges fitted to the client sizes (else geometric widths)
    eval_every: int = 10  # rounds between test-accuracy evaluations (rounds/s timed between them)
    progress: bool = True  # a progress bar per run (log lines when not on a terminal)
    fast_compile: bool = False  # XLA -O0: quicker compiles for tiny CI runs


@dataclass
class AbmEpidemic:
    """SEIR on a household / school-work / community network: interventions vs baseline by age
    group, plus calibration of a synthetic epidemic (NumPyro NUTS and optax through the relaxed
    simulator) and agents driven by their own twins."""

    name: str = "abm_epidemic"
    n_agents: int = 20_000  # agents of the scenario runs
    n_steps: int = 180  # days simulated (one step a day)
    # runs per scenario (the same seeds in every scenario: common random numbers); also the
    # runs of the twin-driven section
    n_seeds: int = 20
    init_prev: float = 0.002  # probability that an agent starts infectious
    # transmission rate per contact and day (probability 1 - exp(-beta)) in households of 1-5
    beta_household: float = 0.08
    beta_school_work: float = 0.015  # the same in classes (ages 0-17) and workplaces (18-64)
    beta_community: float = 0.025  # the same on random community contacts (4 on average)
    sigma: float = 0.3333333  # E -> I rate, 1/3 (mean latent 3 days) to the 7 digits always run
    gamma: float = 0.2  # I -> R rate (mean infectious 5 days)
    vax_start: int = 10  # day the vaccination scenario's campaign starts
    vax_rate: float = 0.02  # share of the still-susceptible agents vaccinated per day
    vax_efficacy: float = 0.8  # a vaccinated agent's susceptibility is multiplied by 1 - this
    distancing_start: int = 15  # day the distancing scenario starts
    distancing_scale: float = 0.4  # on school/work and community
    test_rate: float = 0.25  # test_isolate scenario: daily probability an infectious agent is found
    isolation_efficacy: float = 0.9  # a found agent's transmission is multiplied by 1 - this
    # calibration section: a synthetic SIR epidemic on a random network (10 contacts a day, new
    # each day); NUTS and Adam through the relaxed simulator recover its beta and gamma
    calibrate: bool = True
    calib_n_agents: int = 10_000  # agents of the synthetic epidemic
    calib_n_steps: int = 100  # days of the synthetic epidemic
    calib_beta: float = 0.05  # the synthetic epidemic's true transmission rate per contact, day
    calib_gamma: float = 0.2  # the synthetic epidemic's true recovery rate per day
    calib_iterations: int = 250  # Adam steps of the gradient fit
    # the calibration's NUTS settings (twinjax.bayes.Nuts): warm-up, draws and chains...
    nuts: Nuts = field(
        default_factory=lambda: Nuts(
            num_warmup=400, num_samples=600, num_chains=1, target_accept=0.8
        )
    )
    # twin-driven section: each agent's own GRU twin, fitted on its synthetic-cohort record,
    # sets its susceptibility every step (well-mixed SIR)
    twin_agents: bool = True
    twin_n_agents: int = 256  # agents, each with its own twin
    # grid steps of each agent's synthetic record: its twin is fitted on them and then predicts
    # from a sliding window this long
    twin_window: int = 48
    twin_fit_steps: int = 100  # Adam steps of the twins' fit
    # susceptibility 1 + strength z (clipped to 0.2-3), z the twin's standardized prediction of
    # its first stream; 0: uncoupled
    twin_strength: float = 0.5
    twin_n_steps: int = 60  # steps of the twin-driven epidemic


@dataclass
class AbmCommuting:
    """Commuting: logit mode and departure choice with road congestion and transit crowding
    feedback; levers: transit frequency and a peak congestion price; effects by income group."""

    name: str = "abm_commuting"
    n_agents: int = 20_000  # commuters
    n_days: int = 40  # days simulated (commuters learn congestion and crowding day to day)
    # runs per scenario, each with its own synthetic commuters and choice noise (the same seeds
    # in every scenario)
    n_seeds: int = 10
    average_last_days: int = 10  # results are averaged over this many last days
    transit_frequency: float = 4.0  # transit vehicles per 30-minute slot, baseline
    transit_frequency_high: float = 8.0  # the same with the transit lever
    congestion_price: float = 4.0  # charge per car trip in the peak slots (money units; fare 2.5)


@dataclass
class AbmFinance:
    """Household finance: income shocks, present-biased consumption, overdraft and default;
    nudges (automatic saving, commitment) vs baseline by income group."""

    name: str = "abm_finance"
    n_agents: int = 20_000  # households
    n_months: int = 60  # months simulated (one step a month)
    # runs per scenario, each with its own synthetic households and shocks (the same seeds in
    # every scenario)
    n_seeds: int = 20
    auto_save: float = 0.05  # share of income saved automatically
    commitment: float = 0.15  # rise of the present-bias beta with a commitment device


@dataclass
class TwinLifecycle:
    """Twins after their run: reload and forecast, personalize new individuals from their first
    days, stream their data in chunks into their twins (the data, model and train groups train
    the cohort's twins as in the default experiment)."""

    name: str = "twin_lifecycle"
    n_new: int = 16  # new individuals (synthetic, drawn with a key the training never used)
    history_days: int = 30  # their data taken in
    eval_days: int = 7  # then forecast one step ahead
    steps_per_day: int = 0  # grid steps per day; 0: 24 / data.step (hourly grid: 24)
    chunks: int = 10  # pieces the history arrives in
    update_steps: int = 200  # MAP steps per streamed update
    horizon: int = 24  # sampled forecast of the round-trip check
    n_samples: int = 100  # trajectories sampled per individual in that forecast


@dataclass
class Forecast:
    """Forecasts from saved twins (``twin=RUN_DIR``) for the subjects of the data group (e.g.
    ``data=files data.observations=new.csv``): forecasts.csv with quantiles, and a figure."""

    name: str = "forecast"
    horizon: int = 24  # grid steps after each subject's data
    n_samples: int = 200  # sampled trajectories per subject
    personalize_new: bool = False  # true: subjects the twins lack get their own twin first
    n_plot_subjects: int = 4  # subjects in forecasts.png (the first ones)
    # auto twins: a CSV or Parquet of (data.subject_col, data.time_col) rows, e.g. the next
    # scheduled visits; each listed subject is forecast at those times (numeric times, after
    # its last visit) instead of at its next experiment.horizon visits spaced by its median gap
    at: str | None = None


@dataclass
class PbcTwins:
    """Mayo PBC trial (R survival ``pbcseq``, 312 patients): each patient's last-visit labs
    forecast with intervals by recurrent twins (population, personalized), GP twins and a
    hierarchical growth model vs last value carried forward; calibration, subgroups, and the
    twins' switched-arm effect on bilirubin vs the trial's randomized comparison. The recurrent
    twins use the model and train groups (their grid is the visit index, the gap an input)."""

    name: str = "pbc_twins"
    # pbcseq lab columns forecast, one stream each (bili is required: the arm effect uses it)
    labs: list[str] = field(
        default_factory=lambda: [
            "bili",
            "albumin",
            "protime",
            "platelet",
            "alk.phos",
            "ast",
            "chol",
        ]
    )
    log_labs: list[str] = field(  # modelled and scored as natural logs (right-skewed)
        default_factory=lambda: ["bili", "protime", "alk.phos", "ast", "chol"]
    )
    n_patients: int = 0  # 0: every patient with min_visits; >0: the first n of them (CI)
    min_visits: int = 2  # the last visit is the target, so at least one visit before it
    # central interval levels whose coverage is scored (0.9 is always added)
    levels: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95])
    gp_steps: int = 300  # Adam steps of the GP hyperparameters (exact GP per lab)
    gp_lr: float = 0.05  # Adam learning rate of the GP hyperparameters
    # the hierarchical growth model's inference, one fit per lab
    growth_inference: Literal["nuts", "svi"] = "nuts"
    # growth model, NUTS: its settings (twinjax.bayes.Nuts), warm-up, draws and chains...
    nuts: Nuts = field(default_factory=lambda: Nuts(num_warmup=300, num_samples=300, num_chains=2))
    svi_steps: int = 3000  # growth model, SVI: steps (mean-field normal guide, Adam 0.01)
    predictive_draws: int = 400  # growth-model posterior draws behind its intervals
    # recurrent twins (architecture and steps: the model and train groups): the population twin
    # is evaluated on the validation visits every so many steps and the best kept (0: the last);
    # personal twins keep their best-on-validation parameters (individual | cohort | none)
    population_eval_every: int = 25
    # individual (each twin its own best step) | cohort (one step for all) | none (the last)
    personal_selection: Literal["individual", "cohort", "none"] = "individual"
    n_plot_patients: int = 4  # patients whose bilirubin forecasts are plotted (the most visits)
    progress: bool = False  # progress of the growth-model fits (NUTS or SVI)


@dataclass
class WagesPanel:
    """Earnings twins of the PSID wage panel (Ecdat ``Wages``, 595 workers, 1976-1982): each
    worker's 1982 log wage forecast from 1976-1981 by recurrent twins (population, personalized;
    the model and train groups), a hierarchical Bayesian growth twin (NUTS), a random intercept
    and slope mixed model (REML) and last value + mean increase; calibration by sex and race."""

    name: str = "wages_panel"
    n_workers: int = 0  # 0: all 595; >0: a random subset of that many (CI)
    # time-varying covariates known at the forecast: target_year (scenario) | previous_year
    covariates: Literal["target_year", "previous_year"] = "target_year"
    # central interval levels whose coverage is scored (0.9 is always added)
    levels: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95])
    lme_method: Literal["reml", "ml"] = "reml"  # the linear mixed model's fit
    correlated: bool = True  # LKJ-correlated random intercept and slope in the growth twin
    # growth twin, NUTS: its settings (twinjax.bayes.Nuts), warm-up, draws and chains...
    nuts: Nuts = field(default_factory=lambda: Nuts(num_warmup=1000, num_samples=1000))
    n_plot_workers: int = 6  # workers plotted with every method's 1982 forecast (the first ones)
    progress: bool = True  # the growth twin's NUTS progress


@dataclass
class PkRemifentanil:
    """Remifentanil population PK (nlme ``Remifentanil``, 65 subjects, infusions): hierarchical
    twins with age and lean-body-mass effects, 1 vs 2 vs 3 compartments by PSIS-LOO, coverage of
    held-out late concentrations, covariates against Minto et al. (1997)."""

    name: str = "pk_remifentanil"
    n_subjects: int = 0  # 0: all 65; >0: the first n (CI)
    # mean models fitted and compared (PSIS-LOO): pk_iv | pk2_iv | pk3_iv (1, 2, 3 compartments)
    models: list[Literal["pk_iv", "pk2_iv", "pk3_iv"]] = field(
        default_factory=lambda: ["pk_iv", "pk2_iv", "pk3_iv"]
    )
    # subject covariates of Remifentanil (Age, Sex, Wt, Ht, LBM); each must act on a parameter
    # in covariate_effects
    covariates: list[str] = field(default_factory=lambda: ["Age", "LBM"])
    # Minto's structure (age and LBM on the clearances and volumes); parameters a model lacks
    # are skipped (lV: one compartment; lQ: two; lQ2, lQ3, lV3: three)
    covariate_effects: dict[str, list[str]] = field(
        default_factory=lambda: {
            "lCl": ["Age", "LBM"], "lV": ["Age", "LBM"], "lV1": ["Age", "LBM"],
            "lV2": ["Age", "LBM"], "lQ": ["Age"], "lQ2": ["Age"], "lQ3": ["Age"],
        }
    )  # fmt: skip
    # covariates divided by their SD (effects per SD, prior Normal(0, beta_scale) on the log
    # scale); the report converts them back to per year / per kg
    scale_covariates: bool = True
    beta_scale: float = 1.0  # SD of the Normal prior of each covariate effect
    holdout_fraction: float = 0.2  # the last 20% of each subject's samples (in time)
    # residual error: additive | proportional | combined | log_additive (additive on the log
    # scale)
    error_model: ErrorModel = "log_additive"
    parameterization: Literal["noncentred", "centred"] = "noncentred"  # random effects' form
    # NUTS's settings for every model (twinjax.bayes.Nuts): warm-up, draws and chains...
    nuts: Nuts = field(default_factory=Nuts)
    predictive_draws: int = 400  # posterior draws behind the held-out scores and the bands
    grid_points: int = 101  # time points of the plotted curves (0 to the last sample)
    n_plot_subjects: int = 8  # subjects in individual_fits.png (the best model by LOO; the first)
    progress: bool = False  # NUTS progress: a bar on a terminal, log lines elsewhere


@dataclass
class GlucoseTwins:
    """Type-1 diabetes twins on a virtual cohort from the JAX UVa/Padova simulator
    (:mod:`twinjax.physiology`): CGM forecasts at 30 and 60 minutes by age group from recurrent,
    federated, Bayesian mechanistic and hybrid twins against a last-value baseline, parameter
    recovery, and a twin-chosen bolus verified closed loop in simglucose."""

    name: str = "glucose_twins"
    per_group: int = 10  # patients per age group (the first ones of each: 10 = all 30)
    days: int = 14  # days of records per patient
    train_days: float = 10.0  # the twins learn from these; forecasts are scored on the rest
    every: float = 30.0  # minutes between forecast origins on the held-out days
    draws: int = 32  # sample paths per recurrent forecast
    # the recurrent twins' grid (minutes; a multiple of the CGM's 3): readings every grid step,
    # insulin and carbohydrates summed over it. 15 min: a 60-minute forecast is 4 steps of
    # rollout instead of 20 (the twin is trained one step ahead)
    grid: float = 15.0
    context: int = 16  # grid steps of history a recurrent twin is trained and run on
    # (d) federated: clients are patients (their windows never leave them), FedAdam rounds
    # followed by local fine-tuning on each patient's own windows
    rounds: int = 200
    clients_per_round: int = 30  # patients sampled per round (at most all of them)
    local_epochs: int = 2  # local epochs over a patient's windows per round
    local_lr: float = 3e-3  # SGD learning rate (local and fine-tuning)
    server_lr: float = 1e-2  # the server's Adam learning rate (FedAdam)
    batch_size: int = 16  # windows per SGD step (local and fine-tuning)
    window_stride: int = 8  # grid steps between a patient's windows (context + 1 steps each)
    fine_tune_epochs: int = 2  # epochs of each patient's fine-tuning on its own windows
    # (b) Bayesian mechanistic twin, identified on the first fit_days days (the rest of the
    # training days calibrate its intervals and train (c)); it is also (c)'s base and the
    # closed loop's advisor. "mechanistic" (twinjax.glucose.mechanistic): six parameters, the
    # others at age-group medians, SVI with a low-rank guide over the cohort; "population"
    # (twinjax.glucose.population_fit): all 23 under the population prior, a full-rank guide
    # per patient from a multi-start mode search
    twin: Literal["mechanistic", "population"] = "mechanistic"
    fit_days: float = 2.0  # days (b) is fitted on, from the start of the records
    svi_steps: int = 800  # mechanistic: SVI steps (low-rank normal guide, Adam)
    svi_lr: float = 0.02  # mechanistic: SVI's Adam learning rate
    population_starts: int = 3  # population: mode-search starts (the mean, then prior draws)
    population_mode_steps: int = 300  # population: Adam steps towards each start's mode
    population_steps: int = 300  # population: ELBO steps from the Laplace approximation
    mechanistic_draws: int = 64  # posterior draws per patient kept in the twin
    hybrid_calib_days: float = 2.0  # (c): training days held back to choose its shrinkage
    # closed loop in simglucose (optional extra `glucose`): the twin advisor vs BBController on
    # held-out days; 0 days skips it
    closed_loop_days: int = 3
    # the advisor's safety (twinjax.glucose.Advisor): its chance constraints' level
    # over the twin's draws (time below 70 and below 54)
    advisor_quantile: float = 0.9
    advisor_max_increase: float = 1.0  # the largest dose over the clinic's (a factor; 1: cuts only)
    # the CGM residual RMS (mg/dL) above which the advisor defers to the clinic's dose (null:
    # never on that ground)
    advisor_max_residual: float | None = 25.0
    processes: int = 2  # simglucose processes (patients in parallel)
    n_plot_patients: int = 1  # forecast bands plotted per age group
    progress: bool = True  # progress bars: federated rounds, SVI, the closed loop


class Experiment(NamedTuple):
    """One entry of :data:`REGISTRY`: an experiment's options and the module of its driver."""

    options: type  # the dataclass above; Hydra's ``experiment=NAME`` option
    driver: str  # the module whose ``run(config, out_dir)`` runs it, imported when chosen


# The app's table of experiments (NAME -> options, driver), shared by the config registration,
# the app and its --help (twinjax.config.experiments). Drivers are named, not imported: they
# import JAX, this module does not. Installed, this package is ``twinjax_experiments``.
REGISTRY: dict[str, Experiment] = {
    e.options.name: e
    for e in (
        Experiment(TwinsSynthetic, "twinjax_experiments.twins_synthetic"),
        Experiment(BayesTwins, "twinjax_experiments.bayes_twins"),
        Experiment(BayesSynthetic, "twinjax_experiments.bayes_synthetic"),
        Experiment(PkTheophylline, "twinjax_experiments.pk_theophylline"),
        Experiment(FedproxSynthetic, "twinjax_experiments.fedprox_synthetic"),
        Experiment(FederatedTwins, "twinjax_experiments.federated_twins"),
        Experiment(DpPopulation, "twinjax_experiments.dp_population"),
        Experiment(AbmEpidemic, "twinjax_experiments.abm_epidemic"),
        Experiment(AbmCommuting, "twinjax_experiments.abm_commuting"),
        Experiment(AbmFinance, "twinjax_experiments.abm_finance"),
        Experiment(TwinLifecycle, "twinjax_experiments.twin_lifecycle"),
        Experiment(Forecast, "twinjax_experiments.forecast"),
        Experiment(Hierarchical, "twinjax_experiments.hierarchical"),
        Experiment(PbcTwins, "twinjax_experiments.pbc_twins"),
        Experiment(WagesPanel, "twinjax_experiments.wages_panel"),
        Experiment(PkRemifentanil, "twinjax_experiments.pk_remifentanil"),
        Experiment(GlucoseTwins, "twinjax_experiments.glucose_twins"),
    )
}
EXPERIMENTS: tuple[type, ...] = tuple(e.options for e in REGISTRY.values())  # the dataclasses
