"""The core twin pipeline as library calls: load -> prepare -> population -> personal -> evaluate.

This is the one place where the app's configuration (any object with the fields of
``twinjax.config.Config``: ``data``, ``model``, ``train``) is translated into the options the
library owns (:class:`~twinjax.train.PopulationOptions`, :class:`~twinjax.train.PersonalizeOptions`,
``prepare``'s keywords, :class:`~twinjax.twins.TwinSpec`); the pipeline never imports Hydra.
"""

import dataclasses
import difflib
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import twinjax
from twinjax.bundle import TwinBundle, save_bundle
from twinjax.data import (
    Cohort,
    CohortArrays,
    CohortError,
    Scalers,
    data_summary,
    exclude_unsplittable,
    prepare,
    read_cohort,
    synthetic_cohort,
)
from twinjax.data.options import DataConfig
from twinjax.data.share import Share
from twinjax.data.split import check_fractions
from twinjax.data.times import parse_step, to_datetimes
from twinjax.eval import (
    Forecasts,
    carry_forward,
    gaussian_metrics,
    observed_changes,
    segment_forecasts,
    summarize,
)
from twinjax.eval.auto import panel_from_cohort
from twinjax.eval.conformal import QLEVELS, Rolling, origins_of, subject_scale
from twinjax.eval.forecasts import chunked_predictions, horizon_sq_z
from twinjax.eval.panel import KNOWN
from twinjax.eval.score import Forecast
from twinjax.runtime import array_digest, claim_run_dir
from twinjax.runtime.errors import ConfigError
from twinjax.runtime.memory import device_peak_mb, peak_rss_mb
from twinjax.train import PersonalizeOptions, PopulationOptions, fit_personal, fit_population
from twinjax.train.devices import (
    individuals_mesh,
    rows_that_fit,
    training_devices,
)
from twinjax.train.options import TrainConfig
from twinjax.train.processes import Across, allgather, barrier, cohort_positions, gather_rows
from twinjax.twins import (
    FlaxSpec,
    Params,
    Spec,
    TwinSpec,
    cohort_predictions,
    flax_net,
    segment_rollouts,
)

log = logging.getLogger(__name__)


class Timings:
    """Wall seconds per phase of a run (``seconds``: phase -> seconds, summed over repeats),
    with one log line each time a phase ends (so a run names each of its phases once), and the
    peak memory at each phase's end (``memory``: :mod:`twinjax.runtime.memory`).

    >>> t = Timings()
    >>> with t.phase("data"):
    ...     pass
    >>> list(t.seconds), list(t.memory["peak_rss_mb"])
    (['data'], ['data'])
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.rss: dict[str, float] = {}
        self.device: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        spent = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + spent
        self.rss[name] = peak_rss_mb()
        device = device_peak_mb()
        if device is not None:
            self.device[name] = device
        log.info("phase %s: %.2f s, peak RSS %.0f MiB", name, spent, self.rss[name])

    @property
    def memory(self) -> dict[str, dict[str, float]]:
        """``peak_rss_mb`` per phase, and ``device_peak_mb`` per phase where JAX reports it."""
        return {"peak_rss_mb": self.rss, **({"device_peak_mb": self.device} if self.device else {})}


def load_cohort(
    key: jax.Array, cfg, *, static_levels: dict | None = None, sparse: bool = False
) -> Cohort:
    """The configured cohort: the synthetic one, or a user's long-format files.

    ``static_levels`` (categorical covariate -> levels, e.g. those of saved twins) fixes the
    one-hot encoding of the static table. ``sparse``: a mostly empty grid of files is accepted
    (:func:`twinjax.data.read_cohort`), for the auto twin, which reads the visits back out.
    """
    if cfg.source == "synthetic":
        cohort = synthetic_cohort(
            key,
            n_individuals=cfg.n_individuals,
            n_steps=cfg.n_steps,
            obs_prob=cfg.obs_prob,
            dropout_prob=cfg.dropout_prob,
            noise=cfg.noise,
        )
        if jax.process_count() == 1:
            return cohort
        # several processes: each keeps the subjects the stable hash gives it, as from files
        mine = Share(jax.process_index(), jax.process_count()).mask(list(cohort.subject_ids))
        return cohort.take(np.nonzero(mine)[0])
    if cfg.source == "files":
        if not given(cfg.observations):
            raise ConfigError("data=files needs data.observations=PATH (CSV or Parquet)")
        try:
            grid_step = parse_step(cfg.step)
        except ValueError as e:
            raise ConfigError(f"data.step: {e}") from None
        if cfg.origin not in ("subject", "absolute"):
            raise ConfigError(f"data.origin={cfg.origin!r}: use subject or absolute")
        return read_cohort(
            cfg.observations,
            cfg.interventions,
            cfg.static,
            step=grid_step.duration if grid_step.duration is not None else grid_step.size,
            origin=cfg.origin,
            subject_col=cfg.subject_col,
            time_col=cfg.time_col,
            variable_col=cfg.variable_col,
            value_col=cfg.value_col,
            kind_col=cfg.kind_col,
            amount_col=cfg.amount_col,
            static_levels=static_levels,
            drop_bad_rows=cfg.drop_bad_rows,
            sep=cfg.sep,
            encoding=cfg.encoding,
            chunk_subjects=cfg.chunk_subjects,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            sparse=sparse,
        )
    raise ConfigError(f"unknown data.source {cfg.source!r}: use synthetic or files")


def forecast_cohort(
    bundle: TwinBundle,
    cohort: Cohort,
    *,
    seed: int,
    horizon: int,
    n_samples: int = 200,
    personalize_new: bool = True,
    plan=None,
):
    """``experiment=forecast``'s forecasts of saved twins (and :class:`twinjax.Twins`'): the
    subjects the twins lack get twins of their own first (``personalize_new``), then every
    subject is forecast ``horizon`` steps (:func:`twinjax.bundle.forecast`), times in the data's
    clock. Keys: ``split(key(seed), 3)``'s second (personalize) and third (forecast).

    Returns:
      ``(table, bundle, new)``: the forecasts, the bundle with the new subjects' twins and
      their ids."""
    from twinjax.bundle import forecast, personalize

    _, k_pers, k_fc = jax.random.split(jax.random.key(seed), 3)
    new = [s for s in cohort.subject_ids if bundle.index(s) is None]
    if personalize_new and new:
        idx = np.array([i for i, s in enumerate(cohort.subject_ids) if bundle.index(s) is None])
        bundle = personalize(bundle, cohort.take(idx), key=k_pers)
    table = forecast(bundle, cohort, horizon=horizon, key=k_fc, plan=plan, n_samples=n_samples)
    table["time"] = data_times(table["time"], cohort)
    return table, bundle, new


def summary_line(summary: dict, limit: int = 600) -> str:
    """The data summary in one line for the log: what is there, without the empty entries and
    zero counts (the whole summary is in ``metrics.json``), cut at ``limit`` characters.

    >>> summary_line({"subjects": 3, "variables": ["y"], "notes": [], "rows_dropped": 0})
    'subjects=3 variables=y'
    """

    def text(v):
        if isinstance(v, list | tuple):
            return ",".join(map(str, v[:12])) + ("..." if len(v) > 12 else "")
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    kept = {k: v for k, v in summary.items() if v not in (None, 0, [], {}, "")}
    line = " ".join(f"{k}={text(v)}" for k, v in kept.items())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def given(table) -> bool:
    """Whether a data option names a table: a path (not empty) or a DataFrame (the
    :class:`twinjax.Twins` estimator passes frames where the app passes paths)."""
    return table is not None and not (isinstance(table, str) and not table)


def data_times(times, cohort: Cohort):
    """Grid times back in the data's clock: timestamps for a cohort read with datetimes
    (the grid counts seconds since 1970), else ``times`` as they are."""
    clock = cohort.meta.get("time", {})
    if clock.get("kind") != "datetime":
        return times
    return to_datetimes(np.asarray(times, float), zoned=clock.get("zoned", False)).to_numpy()


def family_of(cfg) -> str:
    """The twin family a run fits: ``model.family``, or (null) auto for a user's files
    without interventions (it forecasts a target from its own history) and recurrent for files
    with interventions (twins that take the doses in) and the synthetic cohort."""
    files_only = cfg.data.source == "files" and not given(cfg.data.interventions)
    chosen = cfg.model.family or ("auto" if files_only else "recurrent")
    if chosen not in ("auto", "recurrent"):
        raise ConfigError(f"model.family={chosen!r}: use auto, recurrent or null")
    return chosen


def auto_panel(cohort: Cohort, cfg, *, period: int = 0):
    """The target's observed visits (``cfg.target``, the app's ``data.target``) as a
    :class:`twinjax.eval.panel.Panel` with the seasonal ``period``, the target's name and the
    ids of the subjects set aside with fewer than 2 visits (logged).

    Raises:
      ConfigError: no subject has two visits of the target."""
    target = cohort.variables[target_index(cohort, cfg)]
    merged = int(cohort.meta.get("merged_observations", 0))
    if merged:
        log.warning(
            "%d observation row(s) shared a data.step=%s cell with another and were averaged: the "
            "auto twin sees each cell as one visit, at the cell's time; a finer data.step keeps "
            "visits apart (a mostly empty grid is accepted for the auto twin)",
            merged,
            cfg.step,
        )
    panel = panel_from_cohort(cohort, target)._replace(period=period)
    few = panel.n < 2
    if few.all():
        raise ConfigError(
            f"no subject has two observed values of {target!r}: nothing to learn and forecast"
        )
    if few.any():
        names = [str(s) for s in panel.subject[few][:10]]
        log.warning("%d subject(s) with fewer than 2 visits of %r set aside: %s",
                    int(few.sum()), target, ", ".join(names))  # fmt: skip
        panel = panel.take(np.nonzero(~few)[0])
    return panel, target, [str(s) for s in np.asarray(cohort.subject_ids)[few]]


def load_auto_panel(root) -> tuple[Cohort, str, object, list[str]]:
    """The app's cohort (``root.data``, a mostly empty grid accepted) and its target's panel for
    the auto twin: ``(cohort, target, panel, ids set aside)`` (:func:`auto_panel`)."""
    cohort = load_cohort(jax.random.key(root.seed), root.data, sparse=True)
    panel, target, excluded = auto_panel(cohort, root.data, period=root.model.period)
    return cohort, target, panel, excluded


def auto_candidates(cfg, workdir: Path) -> tuple[tuple[str, ...], dict]:
    """The baselines among ``cfg.model.candidates`` and the other families as forecasters
    (``recurrent``: a :class:`RecurrentForecaster` of ``cfg``'s model and train sections, its
    checkpoints under ``workdir/recurrent``).

    Raises:
      ConfigError: an unknown candidate."""
    families = tuple(cfg.model.candidates)
    unknown = sorted(set(families) - {*KNOWN, "recurrent"})
    if unknown:
        raise ConfigError(
            f"model.candidates: unknown {unknown}; choose from {[*KNOWN, 'recurrent']}"
        )
    extra = {}
    if "recurrent" in families:
        extra["recurrent"] = RecurrentForecaster(cfg, Path(workdir) / "recurrent")
    return tuple(f for f in families if f in KNOWN), extra


def target_index(cohort: Cohort, cfg) -> int:
    """The position of ``cfg.target`` (the app's ``data.target``) among the variables (0: None)."""
    if cfg.target is None:
        return 0
    if cfg.target not in cohort.variables:
        near = difflib.get_close_matches(str(cfg.target), [str(v) for v in cohort.variables], 1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError(
            f"data.target={cfg.target!r} is not one of the variables {list(cohort.variables)}"
            + hint
        )
    return cohort.variables.index(cfg.target)


def check_cohort(cohort: Cohort, cfg) -> Cohort:
    """Everything checkable before training, on the loaded cohort and the app's ``data`` config.

    The target name; subjects too short or sparse for the time split are excluded (named in
    ``meta["excluded_subjects"]``); the grid must hold a ``context + horizon`` window. A summary
    of the data (:func:`twinjax.data.data_summary`) goes to the log, its warnings as warnings,
    and to ``meta["data_summary"]``.

    Raises:
        ConfigError: an unknown ``data.target``.
        CohortError: no subject left, or series too short for ``data.context + data.horizon``
            (naming the shortest subjects and values that fit).
    """
    fractions = {"val_fraction": cfg.val_fraction, "test_fraction": cfg.test_fraction}
    try:
        check_fractions(**fractions)
    except ValueError:
        raise ConfigError(
            f"data.val_fraction={cfg.val_fraction}, data.test_fraction={cfg.test_fraction}: "
            "each must be in [0, 1) and their sum below 1 (0: no validation or no test period)"
        ) from None
    target = target_index(cohort, cfg)
    kept = exclude_unsplittable(cohort, **fractions)
    excluded = kept.meta["excluded_subjects"]
    if kept.n_individuals == 0:
        raise CohortError(
            "no subject is long or dense enough to split into training, validation and test "
            "periods: "
            + "; ".join(f"{e['subject']} ({e['reason']})" for e in excluded[:10])
            + ". Use a smaller data.step, or smaller data.val_fraction/data.test_fraction",
            source=_source(cohort),
        )
    summary = data_summary(kept, target=target, **fractions)
    log.info("data summary: %s", summary_line(summary))
    for warning in summary["warnings"]:
        log.warning("%s", warning)
    _check_window(kept, cfg)
    return dataclasses.replace(kept, meta={**kept.meta, "data_summary": summary})


def _check_window(cohort: Cohort, cfg) -> None:
    window = cfg.context + cfg.horizon
    if cohort.n_steps >= window:
        return
    order = np.argsort(cohort.lengths, kind="stable")
    ids = list(cohort.subject_ids) or list(range(cohort.n_individuals))
    shortest = ", ".join(f"{ids[i]!r} ({cohort.lengths[i]} steps)" for i in order[:5])
    train = int(np.floor(cohort.n_steps * (1 - cfg.val_fraction - cfg.test_fraction)))
    horizon = max(1, min(cfg.horizon, train // 4))
    context = max(1, train - horizon)
    raise CohortError(
        f"the series are too short for data.context={cfg.context} + data.horizon={cfg.horizon}"
        f" = {window} grid steps: the longest subject spans {cohort.n_steps} steps; the shortest"
        f" subjects: {shortest}. A window must fit the training period ({train} steps of the "
        f"longest): e.g. data.context={context} data.horizon={horizon}, or a smaller data.step",
        source=_source(cohort),
    )


def _source(cohort: Cohort) -> str | None:
    """The observations file a cohort was read from (None for generated data)."""
    return cohort.meta.get("sources", {}).get("observations")


class TwinFit(NamedTuple):
    spec: Spec
    scalers: Scalers
    arrays: CohortArrays
    population: Params
    personal: Params  # leading axis: individuals
    population_losses: np.ndarray
    # predictive-scale factors: "population" [F], "personal" [N, F] (one step), per horizon
    # "population_h" [H, F], "personal_h" [N, H, F] (see calibrate_scales)
    calibration: dict
    rows: int = 0  # individuals forecast at a time (0: all; see forecast_rows)

    def take(self, index) -> "TwinFit":
        """The fit of individuals ``index`` only (e.g. a sample to plot), shared parts kept."""
        index = np.asarray(index)
        rows = lambda x: x[index] if np.ndim(x) == 2 else x  # per-individual statistics [N, F]
        scalers = self.scalers._replace(values=jax.tree.map(rows, self.scalers.values))
        calibration = {
            k: v[index] if k.startswith("personal") else v for k, v in self.calibration.items()
        }
        personal = jax.tree.map(lambda x: x[index], self.personal)
        return self._replace(
            rows=0,
            scalers=scalers,
            arrays=self.arrays.take(index),
            personal=personal,
            calibration=calibration,
        )

    def forecasts(self, cohort: Cohort, segment, *, personal: bool, history: int) -> Forecasts:
        """Recalibrated one-step forecasts of ``segment`` in data units."""
        return segment_forecasts(
            self.personal if personal else self.population,
            self.spec,
            self.arrays,
            self.scalers.values,
            cohort,
            segment,
            history=history,
            shared=not personal,
            scale_factor=(
                self.calibration["personal"][:, None, :]
                if personal
                else self.calibration["population"]
            ),
            rows=self.rows,
            mesh=forecast_mesh(),
        )


def twin_spec(cohort: Cohort, model) -> Spec:
    """The twin architecture of ``model`` (the app's ``model`` config) sized for ``cohort``.

    ``model.network``: ``"cells"``, the built-in cell with attention, or ``"flax"``, the flax
    module ``model.module`` built with ``model.module_kwargs`` (:func:`flax_spec`).

    ``model.layout="auto"`` runs training windows through
    :func:`~twinjax.twins.sequence.lstm_sequence` for an LSTM (unless ``remat_chunk`` asks for
    the rematerialized scan) and through the scan otherwise.
    """
    network = model.network
    if network == "flax":
        return flax_spec(cohort, model)
    if network != "cells":
        raise ConfigError(f"model.network={network!r}: use cells (the built-in LSTM/GRU) or flax")
    remat = model.remat_chunk
    layout = model.layout
    residuals = model.residuals
    if layout == "auto":
        layout = "sequence" if model.cell == "lstm" and not remat else "scan"
    try:
        return TwinSpec.for_cohort(
            cohort,
            cell=model.cell,
            hidden=model.hidden,
            attention=model.attention,
            attention_dim=model.attention_dim,
            min_scale=model.min_scale,
            remat_chunk=remat,
            layout=layout,
            residuals=residuals,
        )
    except ValueError as e:  # TwinSpec checks the architecture; name the config keys
        raise ConfigError(
            f"model config (model.cell={model.cell}, model.layout={layout}, "
            f"model.residuals={residuals}): {e}"
        ) from e


def flax_spec(cohort: Cohort, model) -> FlaxSpec:
    """The flax twin of ``model.module`` (``"package.module:Name"``, a linen or nnx module)
    with ``model.module_kwargs``, built and checked here so that a bad module fails at start,
    naming the setting."""
    module, kwargs = model.module, dict(model.module_kwargs or {})
    if not module:
        raise ConfigError("model.network=flax needs model.module='package.module:ClassName'")
    try:
        spec = FlaxSpec.for_cohort(cohort, module, kwargs=kwargs, min_scale=model.min_scale)
        flax_net.network(spec)
    except (ImportError, TypeError, ValueError) as e:
        raise ConfigError(f"model.module={module!r} (model.module_kwargs={kwargs}): {e}") from e
    return spec


def prepare_cohort(cohort: Cohort, data, *, across=None) -> tuple[CohortArrays, Scalers]:
    """``prepare`` with the app's ``data`` config (``across``: see :func:`prepare`)."""
    return prepare(
        cohort,
        normalization=data.normalization,
        val_fraction=data.val_fraction,
        test_fraction=data.test_fraction,
        across=across,
    )


def population_options(data: DataConfig, train: TrainConfig) -> PopulationOptions:
    """The population fit's options: ``train``'s, on windows of the data's context + horizon."""
    return train.population(window=data.context + data.horizon)


def personalize_options(data: DataConfig, train: TrainConfig) -> PersonalizeOptions:
    """Personalization's options: ``train``'s, on windows of the data's context + horizon."""
    return train.personalize(window=data.context + data.horizon)


def _as_dict(section) -> dict:
    if dataclasses.is_dataclass(section):
        return dataclasses.asdict(section)
    return dict(section) if isinstance(section, Mapping) else dict(vars(section))


# Settings that never change a result (how often to save, how many to keep, a progress bar).
_BOOKKEEPING = ("checkpoint_every", "keep_checkpoints", "progress", "resume")


def cohort_digest(cohort: Cohort) -> str:
    """SHA-256 of everything of the cohort that training sees (arrays, ids, names, grid)."""
    names = (cohort.subject_ids, cohort.variables, cohort.intervention_kinds, cohort.static_names)
    labels = np.frombuffer(repr((names, cohort.step)).encode(), np.uint8)
    arrays = (cohort.values, cohort.mask, cohort.interventions, cohort.static, cohort.lengths)
    digest = array_digest(*arrays, labels)
    if jax.process_count() == 1:
        return digest
    # one process's share: the digest of every process's share, the same in each
    every = allgather(digest)
    return array_digest(np.frombuffer(",".join(every).encode(), np.uint8))


def run_fingerprint(cfg, cohort: Cohort, *, seed: int) -> dict:
    """The settings and data that determine a twin fit (what a resumed run must share)."""
    train = {k: v for k, v in _as_dict(cfg.train).items() if k not in _BOOKKEEPING}
    return {
        "seed": seed,
        "data": _as_dict(cfg.data),
        "model": _as_dict(cfg.model),
        "train": train,
        "cohort_sha256": cohort_digest(cohort),
    }


class ProcessShare(NamedTuple):
    """One process's share of a cohort held by several processes (JAX's multi-process
    runtime): its individuals' positions in the whole cohort and the cohort's size."""

    index: np.ndarray
    total: int

    def gather(self, tree):
        """Per-individual arrays of this share as the whole cohort's (every process's rows,
        in cohort order): per-individual scores and parameters, never the data."""
        return gather_rows(tree, self.index, self.total)


def share_of(cohort: Cohort) -> tuple[Cohort, ProcessShare | None]:
    """This process's share of the cohort (after :func:`check_cohort`) and where it sits in
    the whole: ``(cohort, None)`` in one process. Under several processes the share's grid is
    padded to the longest subject of any share (every process's arrays have one shape) and
    ``meta["data_summary"]`` becomes the summary of the whole cohort.

    Raises:
      CohortError: the shares disagree on the variables, intervention kinds or static
        covariates (a share lacks a stream the others have), or one subject is in two."""
    if jax.process_count() == 1:
        return cohort, None
    axes = (cohort.variables, cohort.intervention_kinds, cohort.static_names, cohort.step)
    every = allgather(axes)
    if any(a != every[0] for a in every):
        raise CohortError(
            "the processes' shares of the cohort have different variables, intervention kinds, "
            f"static covariates or steps: {every}. Every share needs every stream (a variable "
            "no subject of a share has leaves it out of that share's grid)",
            source=_source(cohort),
        )
    try:
        index, total = cohort_positions(cohort.subject_ids)
    except ValueError as e:
        raise CohortError(str(e), source=_source(cohort)) from None
    steps = int(Across().max(np.array(cohort.n_steps)))
    cohort = _pad_steps(cohort, steps)
    inside = cohort.valid()[..., None] & np.ones(cohort.n_features, bool)
    cells = Across().sum(np.array([cohort.mask.sum(), inside.sum()], np.int64))
    summary = merge_summaries(allgather(cohort.meta["data_summary"]),
                              fraction=float(cells[0] / max(cells[1], 1)))  # fmt: skip
    log.info("process %d of %d holds %d of the cohort's %d subjects", jax.process_index(),
             jax.process_count(), cohort.n_individuals, total)  # fmt: skip
    meta = {**cohort.meta, "data_summary": summary}
    return dataclasses.replace(cohort, meta=meta), ProcessShare(index, total)


def _pad_steps(cohort: Cohort, steps: int) -> Cohort:
    """``cohort`` on a grid of ``steps`` steps (padding: unobserved, no interventions)."""
    extra = steps - cohort.n_steps
    if extra <= 0:
        return cohort
    pad = lambda a: None if a is None else np.pad(a, ((0, 0), (0, extra), (0, 0)))
    return dataclasses.replace(
        cohort, values=pad(cohort.values), mask=pad(cohort.mask),
        interventions=pad(cohort.interventions), truth=pad(cohort.truth),
    )  # fmt: skip


def merge_summaries(parts: list[dict], *, fraction: float) -> dict:
    """The data summaries (:func:`twinjax.data.data_summary`) of every process's share as the
    summary of the whole cohort: counts summed, lists of subjects merged in subject order,
    ``fraction_observed`` the whole cohort's (``fraction``), notes and warnings of any share
    (a share's counts in its warnings are its own)."""
    out = dict(parts[0])
    out["subjects"] = sum(p["subjects"] for p in parts)
    out["grid_steps"] = max(p["grid_steps"] for p in parts)
    out["fraction_observed"] = fraction
    for key in ("rows_read", "rows_in_grid"):
        tables = dict.fromkeys(k for p in parts for k in p[key])
        out[key] = {t: sum(p[key].get(t, 0) for p in parts) for t in tables}
    for key in ("rows_merged", "rows_dropped", "duplicate_rows_removed",
                "interventions_after_last_observation"):  # fmt: skip
        out[key] = sum(p[key] for p in parts)
    for key in ("subjects_without_test_targets", "subjects_without_validation_targets"):
        out[key] = sorted((s for p in parts for s in p[key]), key=str)
    out["subjects_excluded"] = sorted((e for p in parts for e in p["subjects_excluded"]),
                                      key=lambda e: str(e["subject"]))  # fmt: skip
    for key in ("notes", "warnings"):
        out[key] = list(dict.fromkeys(x for p in parts for x in p[key]))
    out["processes"] = len(parts)
    return out


def fit_twins(
    key: jax.Array,
    cohort: Cohort,
    cfg,
    out_dir: Path,
    *,
    timings: Timings | None = None,
    share: ProcessShare | None = None,
) -> TwinFit:
    """Population twin, then personal twins; checkpoints under ``out_dir/checkpoints``.

    ``cfg`` has the app config's ``seed``, ``data``, ``model`` and ``train`` sections. The
    checkpoints are resumed only if they were written with the same settings and data (else
    :class:`~twinjax.runtime.RunDirectoryError`; ``train.resume=false`` starts over).
    ``timings`` collects the phases ``data`` (preparing the arrays), ``population fit``,
    ``personal fit`` and ``calibration``.

    ``share``: ``cohort`` is this process's share of a cohort held by several processes
    (:func:`share_of`). The scalers and calibration factors pool every share, the
    population twin is trained by all processes together, the personal twins of the share
    here (checkpoints under ``personal/process<k>``); the result is this share's rows of the
    fit one process makes of the whole cohort.
    """
    timings = Timings() if timings is None else timings
    ckpt = Path(out_dir) / "checkpoints"
    if cfg.data.val_fraction == 0 and cfg.train.selection != "none":
        raise ConfigError(
            f"train.selection={cfg.train.selection} picks personal twins on the validation "
            "period and data.val_fraction=0 leaves none: use train.selection=none"
        )
    with timings.phase("prepare"):
        fingerprint = run_fingerprint(cfg, cohort, seed=cfg.seed)
        # several processes share the directory: process 0 claims it, the others wait for it
        if jax.process_index() == 0 and claim_run_dir(ckpt, fingerprint, resume=cfg.train.resume):
            log.info("resuming the checkpoints in %s (same settings and data)", ckpt)
        barrier("run directory claimed")
        across = None if share is None else Across()
        arrays, scalers = prepare_cohort(cohort, cfg.data, across=across)
    spec = twin_spec(cohort, cfg.model)
    k_pop, k_personal = jax.random.split(key)
    index = None if share is None else share.index
    with timings.phase("population fit"):
        pop, losses = fit_population(
            k_pop, spec, arrays, population_options(cfg.data, cfg.train), ckpt / "population",
            index=index,
        )  # fmt: skip
        jax.block_until_ready(pop)
    with timings.phase("personal fit"):
        personal, _ = fit_personal(
            k_personal,
            spec,
            pop,
            arrays,
            personalize_options(cfg.data, cfg.train),
            ckpt / "personal" / ("" if share is None else f"process{jax.process_index()}"),
            index=index,
        )
        jax.block_until_ready(personal)
    history = cfg.data.context + cfg.data.horizon - 1
    with timings.phase("calibration"):
        rows = forecast_rows(spec, arrays, pop, history=history)
        calibration = calibrate_scales(
            spec,
            arrays,
            pop,
            personal,
            history=history,
            strength=cfg.train.calibration_strength,
            rows=rows,
            mesh=forecast_mesh(),
            horizon=calibration_horizon(cfg),
            n_samples=cfg.train.calibration_samples,
            max_origins=cfg.train.calibration_origins,
            key=jax.random.fold_in(key, 2),  # k_pop, k_personal unchanged
            across=across,
            ids=index,
        )
    return TwinFit(spec, scalers, arrays, pop, personal, losses, calibration, rows)


def forecast_mesh() -> jax.sharding.Mesh | None:
    """The devices forecasts split individuals over (as training does); None for one."""
    devices = training_devices()
    return individuals_mesh(devices) if len(devices) > 1 else None


def forecast_rows(
    spec: Spec, arrays: CohortArrays, pop: Params, *, history: int, fraction=0.25
) -> int:
    """Individuals to forecast at a time so that one call fits in ``fraction`` of the first
    device's free memory (0: all of them), from the memory analysis of the forecast compiled
    for 64 of them, scaled to the longest validation or test segment."""
    n, probe = arrays.n_individuals, 64
    if n <= probe:
        return 0
    segment = max((np.asarray(arrays.val), np.asarray(arrays.test)), key=lambda s: s.sum(1).max())
    head = segment[:probe]
    forecast = jax.jit(
        lambda p, a: cohort_predictions(p, spec, a, head, history=history, shared=False)
    )
    params = jax.tree.map(lambda x: jax.ShapeDtypeStruct((probe, *x.shape), x.dtype), pop)
    return rows_that_fit(
        lambda rows: forecast.lower(params, arrays.take(slice(0, rows))).compile(), n,
        fraction=fraction, probe=probe, what="forecasts",
        scale=segment.sum(1).max() / max(head.sum(1).max(), 1),
    )  # fmt: skip


def _val_sq_z(params, spec, arrays, *, history, shared, rows, mesh=None):
    mean, scale, t, inside = chunked_predictions(
        params, spec, arrays, arrays.val, history=history, shared=shared, rows=rows, mesh=mesh
    )
    rows = np.arange(arrays.n_individuals)[:, None]
    y, m = (
        np.asarray(arrays.series.values)[rows, t],
        np.asarray(arrays.series.mask)[rows, t] & np.asarray(inside)[..., None],
    )
    z2 = np.where(m, ((y - np.asarray(mean)) / np.asarray(scale)) ** 2, 0.0)
    return z2.sum(1), m.sum(1)  # [N, F] each


def calibrate_scales(
    spec,
    arrays,
    pop,
    personal,
    *,
    history: int,
    strength: float,
    rows: int = 0,
    mesh=None,
    horizon: int = 1,
    n_samples: int = 32,
    key: jax.Array | None = None,
    max_origins: int = 0,
    across=None,
    ids=None,
) -> dict:
    """Variance recalibration on the validation segment (never on test data), per horizon.

    A Gaussian forecaster whose scale is off by a factor s has E[z^2] = s^2 for z = (y - mean)/scale.
    Horizon 1 scores the one-step forecasts of every validation step; horizon h = 2..``horizon``
    scores sampled rollouts (``n_samples`` paths, drawn with ``key``) from every validation
    origin whose h-th step is a validation value (:func:`~twinjax.eval.forecasts.horizon_sq_z`):
    the errors of a multi-step forecast grow, and the twin's own spread need not grow with them.
    The population twin gets one factor per horizon and feature, pooled over the cohort (a
    horizon with nothing to score takes the previous horizon's, horizon 1 then 1); each personal
    twin its own, shrunk toward the cohort's pooled personal factor with ``strength``
    pseudo-observations (s_i^2 = (sum z^2 + strength s^2) / (n_i + strength); the pooled one for
    an individual with nothing to score). ``max_origins``: the rollouts start from at most so
    many validation origins per individual, evenly spaced (0: all). ``rows``: individuals
    forecast at a time (0: all);
    ``mesh``: the one-step forecasts split over its devices (None: one). ``across`` and
    ``ids``: these individuals are one process's share of a cohort (see :func:`fit_twins`):
    the pooled factors pool every share, each rollout is keyed by its cohort position.

    Returns:
      ``population_h [H, F]`` and ``personal_h [N, H, F]``, and their horizon-1 factors as
      ``population [F]`` and ``personal [N, F]`` (what one-step forecasts use).
    """
    forecast = dict(history=history, rows=rows, mesh=mesh)
    z2_pop, n = _val_sq_z(pop, spec, arrays, shared=True, **forecast)
    z2_per, _ = _val_sq_z(personal, spec, arrays, shared=False, **forecast)
    z2_pop, z2_per, n = z2_pop[:, None], z2_per[:, None], n[:, None]  # [N, 1, F]
    if horizon > 1:
        if key is None:
            raise ValueError("calibrate_scales(horizon > 1) samples rollouts: pass key=")
        fit = rollout_rows(spec, arrays, personal, history=history, horizon=horizon,
                           n_samples=n_samples, key=key)  # fmt: skip
        rows = fit if not rows else min(rows, fit) if fit else rows
        longest = int(np.asarray(arrays.val).sum(1).max(initial=0))
        longest = longest if across is None else int(across.max(np.array(longest)))
        roll = dict(history=history, horizon=horizon, n_samples=n_samples, key=key, rows=rows,
                    max_origins=max_origins, ids=ids, longest=longest)  # fmt: skip
        more = [horizon_sq_z(p, spec, arrays, arrays.val, shared=s, **roll) for p, s in
                ((pop, True), (personal, False))]  # fmt: skip
        z2_pop = np.concatenate([z2_pop, more[0][0][:, 1:]], 1)
        z2_per = np.concatenate([z2_per, more[1][0][:, 1:]], 1)
        n = np.concatenate([n, more[0][1][:, 1:]], 1)
    pop_h, per_h = _pooled_factors(z2_pop, n, across), _pooled_factors(z2_per, n, across)
    s2_per = (z2_per + strength * per_h**2) / np.maximum(n + strength, 1e-12)
    s_per = np.where(n + strength > 0, np.sqrt(s2_per), per_h)
    pop_h, s_per = pop_h.astype(np.float32), s_per.astype(np.float32)  # as a bundle saves them
    return {
        "population": pop_h[0],
        "personal": s_per[:, 0],
        "population_h": pop_h,
        "personal_h": s_per,
    }


def rollout_rows(
    spec, arrays, personal, *, history: int, horizon: int, n_samples: int, key, fraction=0.25
) -> int:
    """Individuals per call of the validation rollouts (0: all) that fit ``fraction`` of the
    first device's free memory, from the memory analysis of the rollouts compiled for 64 of them
    (``n_samples`` paths from every validation origin: ~32x a one-step forecast's memory, so
    not the rows of :func:`forecast_rows`; at 4,096 individuals those ran the app to 20 GB)."""
    segment = np.asarray(arrays.val)
    size = max(int(segment.sum(1).max()), 1)

    def compile_for(rows):
        like = lambda x: jax.ShapeDtypeStruct((rows, *np.shape(x)[1:]), x.dtype)
        ids = jax.ShapeDtypeStruct((rows,), np.int32)
        return segment_rollouts.lower(
            jax.tree.map(like, personal),
            spec,
            jax.tree.map(like, arrays.series),
            ids,
            ids,
            key,
            history=history,
            horizon=horizon,
            size=size,
            n_samples=n_samples,
            shared=False,
        ).compile()

    return rows_that_fit(compile_for, arrays.n_individuals, fraction=fraction)


def _pooled_factors(z2: np.ndarray, n: np.ndarray, across=None) -> np.ndarray:
    """sqrt(sum z^2 / count) over individuals ``[H, F]`` (and over every process's share with
    ``across``); where nothing was scored, the factor of the horizon before (1 at horizon 1):
    never 0 from an empty set."""
    count, total = n.sum(0), z2.sum(0)
    if across is not None:
        count, total = across.sum(count), across.sum(total)
    out = np.ones(count.shape)
    for h in range(count.shape[0]):
        before = out[h - 1] if h else 1.0
        out[h] = np.where(count[h] > 0, np.sqrt(total[h] / np.maximum(count[h], 1)), before)
    return out


def calibration_horizon(cfg) -> int:
    """Horizons the intervals are calibrated for: ``train.calibration_horizon``, or (0) the
    training windows' ``data.horizon``; forecasts beyond it use its last factor."""
    return cfg.train.calibration_horizon or cfg.data.horizon


def bundle_from_fit(fit: TwinFit, cohort: Cohort, cfg, *, fingerprint: dict) -> TwinBundle:
    """The fit with everything needed to use it after the run (see :mod:`twinjax.bundle`)."""
    config = {k: _as_dict(getattr(cfg, k)) for k in ("data", "model", "train")}
    return TwinBundle(
        spec=fit.spec,
        population=fit.population,
        personal=fit.personal,
        scalers=fit.scalers,
        calibration=fit.calibration,
        subject_ids=tuple(cohort.subject_ids) or tuple(range(cohort.n_individuals)),
        t0=np.zeros(cohort.n_individuals) if cohort.t0 is None else np.asarray(cohort.t0),
        step=float(cohort.step),
        variables=tuple(cohort.variables),
        intervention_kinds=tuple(cohort.intervention_kinds),
        static_names=tuple(cohort.static_names),
        normalization=cfg.data.normalization,
        history=cfg.data.context + cfg.data.horizon - 1,
        options=personalize_options(cfg.data, cfg.train),
        fingerprint=fingerprint,
        config={"seed": cfg.seed, **config},
        version=twinjax.__version__,
        static_levels=dict(cohort.meta.get("static_levels") or {}),
        time={k: v for k, v in cohort.meta.get("time", {}).items() if k in ("kind", "zoned")},
    )


def save_model(
    fit: TwinFit, cohort: Cohort, cfg, directory: Path, *, share: ProcessShare | None = None
) -> TwinBundle:
    """Saves the fit as a self-contained bundle (``twinjax.load(run_dir)`` reads it back).

    ``share``: the fit is one process's share (:func:`share_of`): every process's personal
    twins, calibration and scalers are gathered and process 0 saves the whole cohort's bundle
    (the same bundle one process saves); every process returns it."""
    bundle = bundle_from_fit(
        fit, cohort, cfg, fingerprint=run_fingerprint(cfg, cohort, seed=cfg.seed)
    )
    if share is not None:
        bundle = _gathered_bundle(bundle, share)
        if jax.process_index() != 0:
            return bundle
    save_bundle(bundle, directory)
    return bundle


def _gathered_bundle(bundle: TwinBundle, share: ProcessShare) -> TwinBundle:
    """The bundle of one process's share with every share's per-individual parts."""
    calibration = {k: v for k, v in bundle.calibration.items() if k.startswith("personal")}
    values = bundle.scalers.values
    individual = bundle.normalization == "individual"
    rows = {
        "personal": bundle.personal,
        "calibration": calibration,
        "values": values if individual else None,
        "ids": np.array(bundle.subject_ids, object),
        "t0": np.asarray(bundle.t0),
    }
    every = share.gather(rows)
    return bundle._replace(
        personal=jax.tree.map(jnp.asarray, every["personal"]),
        calibration={**bundle.calibration, **every["calibration"]},
        scalers=bundle.scalers._replace(
            values=jax.tree.map(jnp.asarray, every["values"]) if individual else values
        ),
        subject_ids=tuple(every["ids"]),
        t0=every["t0"],
    )


def evaluate_twins(
    fit: TwinFit,
    cohort: Cohort,
    cfg,
    *,
    segment: str = "test",
    share: ProcessShare | None = None,
) -> dict:
    """Per-individual metrics on the target stream over each individual's ``segment`` (``test``
    or ``val``), population vs personalized twins (``share``: the fit of one process's share,
    the metrics of every share gathered in cohort order)."""
    f = target_index(cohort, cfg)
    history = cfg.context + cfg.horizon - 1
    out = {}
    for name, personal in (("population", False), ("personalized", True)):
        fc = fit.forecasts(cohort, getattr(fit.arrays, segment), personal=personal, history=history)
        out[name] = gaussian_metrics(
            fc.mean[..., f], fc.scale[..., f], fc.y[..., f], fc.observed[..., f]
        )
    return out if share is None else share.gather(out)


def summary_metrics(per_individual: dict) -> dict:
    """Flat, self-explanatory metrics for metrics.json, over the individuals with a target in
    the segment (each value None where none has one: e.g. no test period)."""
    scored = per_individual["population"]["count"] > 0
    keys = ("population", "personalized", "rmse_ratio_personalized_over_population",
            "fraction_individuals_improved")  # fmt: skip
    if not scored.any():
        return dict.fromkeys(keys)
    summary = {name: summarize(m) for name, m in per_individual.items()}
    pop, per = summary["population"], summary["personalized"]
    better = per_individual["personalized"]["rmse"] < per_individual["population"]["rmse"]
    ratio = per["rmse_mean"] / pop["rmse_mean"]
    return dict(zip(keys, (pop, per, ratio, float(np.mean(better[scored]))), strict=True))


def validation_objective(
    fit: TwinFit, cohort: Cohort, cfg, *, val: dict | None = None
) -> float | None:
    """What sweeps minimize (``metrics.json: objective``): the personalized twins' one-step NLL
    on the target stream over each individual's validation period, in data units, averaged over
    the individuals with a validation target (with the variance recalibration, which is itself
    fitted on that period; never the test period); None where no individual has one (e.g.
    ``data.val_fraction=0``). ``cfg``: the app's ``data`` config; ``val``:
    :func:`evaluate_twins` of the validation segment, if the caller has it already."""
    val = evaluate_twins(fit, cohort, cfg, segment="val") if val is None else val
    per = val["personalized"]
    if not np.any(per["count"] > 0):
        return None
    return float(summarize(per)["nll_mean"])


def panel_cohort(panel, next_times: np.ndarray) -> Cohort:
    """A :class:`~twinjax.eval.panel.Panel` as a cohort on its visit grid: one grid step per
    visit, the target as the one variable, and the time to the next visit as the intervention
    ``gap`` of each step (the last visit's: to ``next_times[:, 0]``), so a recurrent twin knows
    how far ahead each step is on irregular visits."""
    n, t = panel.y.shape
    mask = panel.mask
    gap = np.diff(panel.time, axis=1, append=0.0)
    last = np.maximum(panel.n - 1, 0)
    rows = np.arange(n)
    gap[rows, last] = np.asarray(next_times)[:, 0] - panel.time[rows, last]
    return Cohort(
        values=np.where(mask, panel.y, 0.0)[..., None].astype(np.float32),
        mask=mask[..., None],
        interventions=np.where(mask, gap, 0.0)[..., None].astype(np.float32),
        static=np.zeros((n, 0), np.float32),
        lengths=panel.n.astype(np.int32),
        subject_ids=tuple(str(s) for s in panel.subject),
        variables=("y",),
        intervention_kinds=("gap",),
        t0=np.zeros(n),
        step=1.0,
    )


class RecurrentForecaster:
    """Recurrent twins as a panel forecaster (a candidate of ``model=auto``).

    A call fits population and personal twins (:func:`fit_twins`, every visit trained on) to a
    panel's visits and returns the means of :func:`twinjax.bundle.forecast`'s calibrated
    trajectories at the next visits, their gaps given as the plan. ``rolling`` fits once on each
    subject's visits before the first origin and forecasts every origin from the visits before
    it without refitting, as a deployed twin takes in new visits.

    Args:
      cfg: the app's config sections (``seed``, ``data``, ``model``, ``train``); ``data.context``
        is capped by the panel's length, the fractions set to 0.
      workdir: where checkpoints go (one subdirectory per fit).
    """

    def __init__(self, cfg, workdir: Path):
        self.cfg, self.workdir, self.fits = cfg, Path(workdir), 0

    def _fit(self, train):
        from types import SimpleNamespace

        cfg = self.cfg
        longest = int(train.n.max())
        horizon = 1
        context = max(1, min(cfg.data.context, longest - horizon - 1))
        data = dataclasses.replace(cfg.data, val_fraction=0.0, test_fraction=0.0,
                                   context=context, horizon=horizon)  # fmt: skip
        train_cfg = dataclasses.replace(cfg.train, selection="none", progress=False, resume=False)
        run = SimpleNamespace(seed=cfg.seed, data=data, model=cfg.model, train=train_cfg)
        train = train.take(np.nonzero(train.n >= 3)[0])  # the others: the population twin
        next_times = train.last()[0][:, None] + 1.0
        cohort = panel_cohort(train, next_times)
        self.fits += 1
        fit = fit_twins(jax.random.key(cfg.seed), cohort, run, self.workdir / f"fit{self.fits}")
        return bundle_from_fit(fit, cohort, run, fingerprint={})

    def _predict(self, bundle, panel, times) -> np.ndarray:
        from twinjax.bundle import forecast

        h = times.shape[1]
        cohort = panel_cohort(panel, times)
        gaps = np.diff(times, axis=1, append=times[:, -1:])[..., None]  # plan[k]: to k + 1
        frame = forecast(bundle, cohort, horizon=h, key=jax.random.key(self.cfg.seed + 1),
                         plan=gaps.astype(np.float32), n_samples=64)  # fmt: skip
        return frame["mean"].to_numpy().reshape(len(panel.n), h)

    def __call__(self, train, times) -> np.ndarray:
        return self._predict(self._fit(train), train, times)

    def rolling(self, train, *, horizon: int, origins: int):

        bundle = self._fit(train.truncate(np.maximum(train.n - origins, 1)))
        out = []
        for o in origins_of(train, horizon=horizon, origins=origins):
            point = self._predict(bundle, o.cut, o.times)
            scale = np.broadcast_to(subject_scale(o.cut)[:, None], point.shape)
            out.append((point, o.y, o.mask, scale))
        return Rolling(*(np.stack(x) for x in zip(*out, strict=True)))


def one_step_skill(
    fit: TwinFit,
    cohort: Cohort,
    cfg,
    *,
    segment: str = "test",
    share: ProcessShare | None = None,
) -> dict:
    """The twins and last value carried forward on the same points: each individual's one-step
    forecasts of the target over its ``segment``, as :class:`twinjax.eval.score.Forecast` s.

    LOCF's predictive distribution is the last observed value plus the empirical quantiles of
    the cohort's changes between consecutive observations on the training steps (99 levels).
    ``cfg``: the app's ``data`` config. Returns ``{name: Forecast}`` for ``population``,
    ``personalized`` and ``last value``. ``share``: the fit of one process's share: the
    forecasts are this share's, LOCF's changes those of the whole cohort.
    """
    f = target_index(cohort, cfg)
    history = cfg.context + cfg.horizon - 1
    out = {}
    for name, personal in (("population", False), ("personalized", True)):
        fc = fit.forecasts(cohort, getattr(fit.arrays, segment), personal=personal,
                           history=history)  # fmt: skip
        subject = np.asarray(cohort.subject_ids or range(cohort.n_individuals), object)
        out[name] = fc.stream(f, subject=subject, method=name)
    rows, t = np.arange(cohort.n_individuals)[:, None], np.asarray(fc.t)
    carried = carry_forward(cohort.values[..., f : f + 1], cohort.mask[..., f : f + 1])
    changes = observed_changes(cohort.values[..., f : f + 1], cohort.mask[..., f : f + 1],
                               np.asarray(fit.arrays.train))[0]  # fmt: skip
    if share is not None:  # the changes of every share (one number per pair of visits)
        changes = np.concatenate(allgather(np.asarray(changes)))
    value, seen = carried.value[rows, t, 0], carried.seen[rows, t, 0]
    q = np.quantile(changes, QLEVELS) if len(changes) else np.zeros(len(QLEVELS))
    base = out["personalized"]
    out["last value"] = Forecast(mean=value, quantiles=value[None] + q[:, None, None],
                                 levels=QLEVELS, y=base.y, mask=base.mask & seen,
                                 subject=base.subject, method="last value")  # fmt: skip
    # every forecaster on the same points: those LOCF can forecast too
    for name in ("population", "personalized"):
        out[name] = dataclasses.replace(out[name], mask=out["last value"].mask)
    return out
