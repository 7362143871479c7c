"""``Twins``: the app's twins as one estimator, for notebooks.

It runs the pipeline of ``python -m twinjax data=files ...`` (the same functions, settings and
random keys, so the same forecasts) on pandas frames instead of files::

    twins = twinjax.Twins(target="weight").fit(frame)  # subject_id, time, variable, value
    twins.forecast(3)                                   # subject_id, horizon, time, mean, q05...
    twinjax.Twins().fit(df).forecast(3, shape="nixtla") # unique_id, ds, y (+ exogenous)

Settings are the app's, named as scikit-learn names nested options: ``data__horizon=6`` is
``data.horizon=6`` on the command line, ``train__steps=200`` is ``train.steps=200``; ``family``
is ``model.family`` (``None``: auto without interventions, recurrent with them), ``target``
``data.target``, ``freq`` ``data.step``, ``seed`` ``seed``.

Two table shapes are read:

- the project's long format: one row per observation (``data.subject_col``, ``time_col``,
  ``variable_col``, ``value_col``); with several variables the target must be named;
- Nixtla's: ``unique_id, ds, y`` and exogenous columns (each becomes a variable; ``y`` is the
  target), with ``static_df`` (``unique_id`` and static covariates) as the static table.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from twinjax import pipeline
from twinjax.bundle import TwinBundle, load, save_bundle
from twinjax.bundle import personalize as bundle_personalize
from twinjax.bundle import update as bundle_update
from twinjax.config import Config, check_choices
from twinjax.eval.auto import AutoTwin, fit_auto, load_auto, save_auto, skill_table
from twinjax.eval.panel import future_times
from twinjax.runtime.files import atomic_write_text

log = logging.getLogger(__name__)

NIXTLA = ("unique_id", "ds", "y")
SECTIONS = ("data", "model", "train")
# data options the estimator sets from fit()'s arguments, never from options
_TABLES = ("source", "observations", "interventions", "static")
SETTINGS_FILE = "twins.json"


class NotFittedError(RuntimeError):
    """A method that needs a fitted twin was called before :meth:`Twins.fit`."""


class Twins:
    """Digital twins of a cohort's individuals, fitted and used from Python.

    Args:
      family: ``"auto"``, ``"recurrent"`` or None (``model.family``).
      target: the variable to forecast (``data.target``; ``"y"`` for a Nixtla-shaped frame).
      freq: the grid step (``data.step``): a number in the unit of numeric times, or a
        duration (``"1D"``, ``"15min"``) for timestamps.
      seed: the run's seed. workdir: where the recurrent twins' checkpoints go (default: a
        temporary folder removed after each fit).
      alias: the forecast column's name in Nixtla's shape.
      **options: the app's settings, ``section__field=value`` (``data__horizon=6``).

    Raises:
      ValueError: an option that is not a setting of the data, model or train section.
    """

    def __init__(self, family=None, *, target=None, freq=None, seed: int = 0, workdir=None,
                 alias: str = "twinjax", **options):  # fmt: skip
        self.family, self.target, self.freq, self.seed = family, target, freq, seed
        self.workdir, self.alias, self.options = workdir, alias, dict(options)
        self.config()  # a misspelt option fails here, not after a fit
        self.twin_: AutoTwin | TwinBundle | None = None

    # ---- settings -------------------------------------------------------------------------

    def config(self, **data) -> Config:
        """The app's :class:`twinjax.config.Config` for these settings (``data``: data options
        set by the estimator itself, e.g. the tables)."""
        cfg = Config(seed=self.seed, experiment=None)
        cfg.data.source = "files"
        for key, value in self.options.items():
            section, _, name = key.partition("__")
            group = getattr(cfg, section, None) if section in SECTIONS else None
            if group is None or not hasattr(group, name) or (section, name) in [
                ("data", t) for t in _TABLES
            ]:
                fields = [f"{s}__{f.name}" for s in SECTIONS
                          for f in dataclasses.fields(getattr(cfg, s))
                          if (s, f.name) not in [("data", t) for t in _TABLES]]  # fmt: skip
                near = difflib.get_close_matches(key, fields, 1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ValueError(f"Twins: unknown option {key!r}{hint}; options are "
                                 f"section__field, one of {fields}")  # fmt: skip
            setattr(group, name, value)
        if self.family is not None:
            cfg.model.family = self.family
        if self.freq is not None:
            cfg.data.step = self.freq
        for key, value in data.items():
            setattr(cfg.data, key, value)
        check_choices(cfg)
        return cfg

    def _tables(self, frame: pd.DataFrame, static_df, interventions) -> dict:
        """The data options for ``frame`` (and the static and intervention tables)."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"Twins.fit takes a pandas DataFrame, not {type(frame).__name__}")
        base = self.config()
        if set(NIXTLA) <= set(frame.columns):
            exog = [c for c in frame.columns if c not in NIXTLA]
            obs = frame.melt(id_vars=["unique_id", "ds"], value_vars=["y", *exog],
                             var_name="variable", value_name="value").dropna(subset=["value"])  # fmt: skip
            target = self.target or "y"
            cols = dict(subject_col="unique_id", time_col="ds", variable_col="variable",
                        value_col="value")  # fmt: skip
        else:
            obs, cols = frame, {}
            names = frame[base.data.variable_col].dropna().unique().tolist() if (
                base.data.variable_col in frame.columns) else []  # fmt: skip
            target = self.target or base.data.target
            if target is None and len(names) > 1:
                raise ValueError(f"the table has {len(names)} variables ({sorted(map(str, names))[:10]}): "
                                 "name the one to forecast, Twins(target=...)")  # fmt: skip
            target = target if target is not None else (names[0] if names else None)
        return dict(observations=obs, static=static_df, interventions=interventions,
                    target=target, **cols)  # fmt: skip

    # ---- fitting --------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, *, static_df=None, interventions=None) -> Twins:
        """Fits the twins to ``frame`` (the project's long format or Nixtla's), as
        ``python -m twinjax data=files`` does to a file. Returns ``self``."""
        tables = self._tables(frame, static_df, interventions)
        cfg = self.config(**tables)
        self.family_ = pipeline.family_of(cfg)
        self.tables_ = tables
        with self._workdir() as workdir:
            if self.family_ == "auto":
                cohort = pipeline.load_cohort(jax.random.key(cfg.seed), cfg.data)
                panel, target, excluded = pipeline.auto_panel(cohort, cfg.data,
                                                              period=cfg.model.period)  # fmt: skip
                families, extra = pipeline.auto_candidates(cfg, workdir)
                self.twin_, self.choice_ = fit_auto(
                    panel, horizon=cfg.data.horizon, variable=target, families=families,
                    extra=extra, origins=cfg.model.origins,
                )  # fmt: skip
                self.panel_, self.excluded_ = panel, excluded
            else:
                k_data, k_fit, _ = jax.random.split(jax.random.key(cfg.seed), 3)
                cohort = pipeline.check_cohort(pipeline.load_cohort(k_data, cfg.data), cfg.data)
                cfg = _described(cfg)
                fit = pipeline.fit_twins(k_fit, cohort, cfg, workdir)
                self.twin_ = pipeline.bundle_from_fit(
                    fit, cohort, cfg, fingerprint=pipeline.run_fingerprint(cfg, cohort, seed=cfg.seed)
                )  # fmt: skip
        self.cohort_ = cohort
        return self

    def _workdir(self):
        if self.workdir is not None:
            Path(self.workdir).mkdir(parents=True, exist_ok=True)
            return nullcontext(Path(self.workdir))
        return _temporary()

    def _check_fitted(self) -> None:
        if self.twin_ is None:
            raise NotFittedError("this Twins is not fitted yet: call fit(frame) first")

    def _cohort(self, frame, *, static_df=None, interventions=None):
        """The cohort of ``frame`` read with the fitted settings (the fitted one for None)."""
        if frame is None:
            if getattr(self, "cohort_", None) is None:
                raise ValueError("a loaded twin forecasts from data: pass frame=")
            return self.cohort_
        tables = self._tables(frame, static_df, interventions)
        cfg = self.config(**tables)
        levels = None if self.family_ == "auto" else (self.twin_.static_levels or None)
        return pipeline.load_cohort(jax.random.key(cfg.seed), cfg.data, static_levels=levels)

    # ---- use ------------------------------------------------------------------------------

    def forecast(self, horizon: int | None = None, frame: pd.DataFrame | None = None, *,
                 plan=None, n_samples: int = 200, shape: str = "long",
                 static_df=None, interventions=None) -> pd.DataFrame:  # fmt: skip
        """Forecasts every subject ``horizon`` steps (visits, for an auto twin) from the end
        of its data: the fitted data, or ``frame`` (new subjects get recurrent twins of
        their own first, as ``experiment=forecast`` does).

        Args:
          horizon: steps ahead (default ``data.horizon``); plan: interventions planned over
            the horizon (recurrent twins; :func:`twinjax.bundle.forecast`); n_samples:
            sampled trajectories (recurrent twins).
          shape: ``"long"`` (the app's ``forecasts.csv``: one row per subject, step and
            variable) or ``"nixtla"`` (``unique_id, ds, <alias>, <alias>-lo-90,
            <alias>-hi-90`` of the target).

        Raises:
          NotFittedError: before fit. ValueError: a plan for an auto twin, an unknown shape.
        """
        self._check_fitted()
        if shape not in ("long", "nixtla"):
            raise ValueError(f"shape={shape!r}: use long or nixtla")
        cfg = self.config(**self.tables_)
        horizon = cfg.data.horizon if horizon is None else int(horizon)
        if self.family_ == "auto":
            if plan is not None:
                raise ValueError("an auto twin forecasts from each subject's own visits: it "
                                 "takes no intervention plan (use family='recurrent')")  # fmt: skip
            if frame is None and self.panel_ is None:
                raise ValueError("a loaded twin forecasts from data: pass frame=")
            panel = self.panel_ if frame is None else pipeline.auto_panel(
                self._cohort(frame, static_df=static_df, interventions=interventions),
                cfg.data, period=self.twin_.period)[0]  # fmt: skip
            with self._workdir() as workdir:
                _, extra = pipeline.auto_candidates(cfg, workdir)
                fc = self.twin_.forecast(panel, future_times(panel, horizon), extra=extra)
            cohort = self.cohort_ if frame is None else self._cohort(frame)
            out = fc.frame().drop(columns=["y", "observed"])
            if cohort is not None:
                out["time"] = pipeline.data_times(out["time"], cohort)
            out.insert(3, "variable", self.twin_.variable)
        else:
            cohort = self._cohort(frame, static_df=static_df, interventions=interventions)
            out = self._recurrent_forecast(cohort, horizon, plan, n_samples)
        return out if shape == "long" else self._nixtla(out)

    def _recurrent_forecast(self, cohort, horizon, plan, n_samples) -> pd.DataFrame:
        """``experiment=forecast``'s table (:func:`twinjax.pipeline.forecast_cohort`)."""
        table, _, _ = pipeline.forecast_cohort(self.twin_, cohort, seed=self.seed,
                                               horizon=horizon, n_samples=n_samples, plan=plan)  # fmt: skip
        return table

    def _nixtla(self, out: pd.DataFrame) -> pd.DataFrame:
        target = self.twin_.variable if self.family_ == "auto" else self.tables_["target"]
        target = target if target is not None else self.twin_.variables[0]
        rows = out[out.variable == target]
        time = rows["time"]
        a = self.alias
        return pd.DataFrame({
            "unique_id": rows["subject_id"].to_numpy(), "ds": np.asarray(time),
            a: rows["mean"].to_numpy(), f"{a}-lo-90": rows["q05"].to_numpy(),
            f"{a}-hi-90": rows["q95"].to_numpy(),
        })  # fmt: skip

    def skill(self, h: int | None = None) -> pd.DataFrame:
        """The auto twin's skill table (``report.md``'s): each candidate and ``auto`` on each
        subject's last ``h`` visits (``model.holdout``), with CRPS and RMSE relative to the best
        baseline."""
        self._check_fitted()
        if self.family_ != "auto":
            raise ValueError("skill() scores the auto family's candidates: use family='auto'")
        cfg = self.config(**self.tables_)
        with self._workdir() as workdir:
            families, extra = pipeline.auto_candidates(cfg, workdir)
            table, _, _ = skill_table(self.panel_, h=h or cfg.model.holdout, families=families,
                                      extra=extra)  # fmt: skip
        return table

    def personalize(self, frame: pd.DataFrame, **tables) -> Twins:
        """Twins for new subjects (ids the twins do not know) from ``frame``: recurrent twins
        are fine-tuned from the population twin; an auto twin's forecasters take the new
        visits in (a baseline's fit is its data). Returns ``self``."""
        return self._take_in(frame, new=True, **tables)

    def update(self, frame: pd.DataFrame, **tables) -> Twins:
        """Known subjects' twins take in their data so far (old and new visits, in
        ``frame``): recurrent twins are warm-started and fine-tuned; an auto twin's
        forecasters use the new visits. Returns ``self``."""
        return self._take_in(frame, new=False, **tables)

    def _take_in(self, frame, *, new: bool, static_df=None, interventions=None) -> Twins:
        self._check_fitted()
        cohort = self._cohort(frame, static_df=static_df, interventions=interventions)
        ids = [str(s) for s in cohort.subject_ids]
        known = {str(s) for s in (self.panel_.subject if self.family_ == "auto"
                                  else self.twin_.subject_ids)}  # fmt: skip
        clash = [s for s in ids if (s in known) == new]
        if clash:
            what = "already have twins: use update()" if new else "have no twin: personalize() them"
            raise ValueError(f"subjects {clash[:5]} {what}")
        _, k_pers, _ = jax.random.split(jax.random.key(self.seed), 3)
        if self.family_ == "auto":
            cfg = self.config(**self.tables_)
            panel, _, _ = pipeline.auto_panel(cohort, cfg.data, period=self.twin_.period)
            self.panel_ = _merge(self.panel_, panel)
            self.cohort_ = None  # the panel is the data now
        else:
            cfg = self.config(**self.tables_)
            self.twin_ = (bundle_personalize(self.twin_, cohort, key=k_pers) if new else
                          bundle_update(self.twin_, cohort, key=k_pers,
                                        steps=cfg.train.personal_steps))  # fmt: skip
            self.cohort_ = cohort
        return self

    # ---- saving ---------------------------------------------------------------------------

    def save(self, path) -> Path:
        """Writes the twins (``path/model``: ``twinjax.load`` and ``experiment=forecast
        twin=PATH`` read it) and these settings (``path/twins.json``); returns ``path``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.family_ == "auto":
            save_auto(self.twin_, path / "model")
        else:
            save_bundle(self.twin_, path / "model")
        target = self.tables_.get("target")
        settings = {"family": self.family_, "target": target, "freq": self.freq,
                    "seed": self.seed, "alias": self.alias,
                    "options": self.options,
                    "columns": {k: v for k, v in self.tables_.items() if k.endswith("_col")}}  # fmt: skip
        atomic_write_text(path / SETTINGS_FILE, json.dumps(settings, indent=1, default=str))
        return path

    @classmethod
    def load(cls, path) -> Twins:
        """The :class:`Twins` saved at ``path`` by :meth:`save`; it forecasts from data given
        to :meth:`forecast` (``frame=``)."""
        path = Path(path)
        settings = json.loads((path / SETTINGS_FILE).read_text())
        twins = cls(settings["family"], target=settings["target"], freq=settings["freq"],
                    seed=settings["seed"], alias=settings["alias"], **settings["options"])  # fmt: skip
        twins.family_ = settings["family"]
        twins.twin_ = load_auto(path / "model") if twins.family_ == "auto" else load(path / "model")
        twins.tables_ = {"target": settings["target"], **settings["columns"]}
        twins.cohort_ = None
        if twins.family_ == "auto":
            twins.panel_ = None
        return twins


def _described(cfg: Config) -> Config:
    """``cfg`` with each DataFrame option replaced by a description (the fit's fingerprint and
    the saved twins' settings are JSON; the data's own digest is in the fingerprint)."""
    frames = {name: getattr(cfg.data, name) for name in _TABLES}
    described = {k: f"<DataFrame: {len(v)} rows>" for k, v in frames.items()
                 if isinstance(v, pd.DataFrame)}  # fmt: skip
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **described))


def _merge(old, new):
    """The visits of ``old`` and ``new`` panels, subjects of ``new`` replacing their rows."""
    keep = np.nonzero(~np.isin(np.asarray(old.subject, str), np.asarray(new.subject, str)))[0]
    old = old.take(keep)
    width = max(old.y.shape[1], new.y.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])))
    return old._replace(
        subject=np.concatenate([old.subject, new.subject]),
        time=np.concatenate([pad(old.time), pad(new.time)]),
        y=np.concatenate([pad(old.y), pad(new.y)]),
        n=np.concatenate([old.n, new.n]),
    )


@contextmanager
def _temporary() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="twinjax-") as tmp:
        yield Path(tmp)
