"""The twin that picks its family: ``model=auto``.

:func:`fit_auto` runs every candidate forecaster (the baselines of :mod:`twinjax.eval.panel`,
and any the caller adds, e.g. recurrent twins) at rolling origins of each subject's visits,
chooses the family, or the average of two or three, of lowest calibrated CRPS there
(:func:`twinjax.eval.conformal.auto_forecast`), and keeps the chosen combination with its
per-horizon error quantiles measured on all the data. An :class:`AutoTwin` forecasts any panel
from the end of each subject's visits (its methods refit on those visits: a baseline's fit is
its data), is saved as ``model/auto.json`` and read back by :func:`load_auto`.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from twinjax.data import Cohort
from twinjax.eval.conformal import (
    QLEVELS,
    Choice,
    auto_forecast,
    calibrated,
    point_and_scale,
)
from twinjax.eval.panel import (
    BASELINES,
    KNOWN,
    Forecaster,
    Panel,
    forecasters,
    future_times,
    holdout,
)
from twinjax.eval.score import Forecast, score
from twinjax.runtime.files import atomic_write_text, replacing_dir
from twinjax.runtime.manifest import (
    check_replaceable,
    read_json,
    verify_manifest,
    write_manifest,
)

FORMAT = 1


class AutoTwin(NamedTuple):
    """A chosen combination of forecasters: ``members`` (their names, averaged), ``quantiles``
    ``[Q, H]`` of the scaled errors per horizon at :data:`QLEVELS`, the ``horizon`` H, the
    panel's ``period``, the ``variable`` and ``choice`` (why: each candidate's CRPS)."""

    members: tuple[str, ...]
    quantiles: np.ndarray
    horizon: int
    period: int
    variable: str
    choice: dict
    families: tuple[str, ...] = BASELINES

    def forecast(
        self, panel: Panel, times: np.ndarray | None = None, *, extra=None, y=None, mask=None
    ) -> Forecast:
        """Forecasts at ``times`` ``[N, H']`` (default: the next ``horizon`` visits, spaced by
        each subject's median gap); beyond the calibrated horizon the last horizon's errors grow
        as sqrt(h / H). ``extra``: forecasters by name beyond the baselines (e.g. recurrent)."""
        times = future_times(panel, self.horizon) if times is None else np.asarray(times)
        baselines = [f for f in self.families if f in KNOWN]
        methods = {
            **forecasters(panel._replace(period=self.period), baselines, gate=False),
            **(extra or {}),
        }
        missing = [m for m in self.members if m not in methods]
        if missing:
            raise ValueError(f"the saved choice uses {missing}, not available here: pass them "
                             "as extra forecasters")  # fmt: skip
        parts = [point_and_scale(methods[m], panel, times) for m in self.members]
        point = np.mean([p for p, _ in parts], axis=0)
        scale = np.mean([s for _, s in parts], axis=0)
        h = times.shape[1]
        q = self.quantiles
        if h > q.shape[1]:
            grow = np.sqrt(np.arange(q.shape[1] + 1, h + 1) / q.shape[1])
            q = np.concatenate([q, q[:, -1:] * grow[None]], axis=1)
        y = np.zeros_like(point) if y is None else y
        mask = np.zeros(point.shape, bool) if mask is None else mask
        return calibrated(point, scale, q[:, :h], y=y, mask=mask,
                          method="auto", subject=panel.subject, time=times)  # fmt: skip


# when the chosen forecaster's lean at the rolling origins is reported: a sign test below this
# level, and a median error of at least this share of the 90% interval's half-width (a
# Gaussian interval shifted by a quarter of its half-width covers 0.87 instead of 0.90). On 14
# public panels (README, "Forecast skill") it flags Loblolly, Sitka89, Sitka, Phenobarb and
# Cigar, whose 90% intervals covered 0.40-0.79 of the held-out visits, and Soybean (covered
# 1.00: wide intervals hide its lean); the threshold was set after seeing them
BIAS_P, BIAS_SHARE = 0.01, 0.25


def bias_warning(bias: dict | None) -> list[str]:
    """The report's words on the chosen forecaster's lean at the rolling origins
    (:func:`twinjax.eval.conformal.origin_bias`): a paragraph when it is significant and
    large enough to matter, else none."""
    if not bias or bias["p_value"] >= BIAS_P:
        return []
    share = abs(bias["median"]) / max(bias["half_width_90"], 1e-12)
    if share < BIAS_SHARE:
        return []
    high = bias["median"] < 0  # truth below the forecasts
    count = bias["below"] if high else bias["above"]
    return [f"**The forecasts may run {'high' if high else 'low'}:** at the rolling origins the "
            f"chosen forecasts were {'above' if high else 'below'} the next visit for {count} of "
            f"{bias['subjects']} subjects, by a median {share:.1f} times the 90% interval's "
            f"half-width (sign test p = {bias['p_value']:.1g}). The intervals are centred on the "
            "forecasts and take only the spread from those errors, so a lean that lasts into "
            "the forecast period (e.g. growth that slows) moves neither the forecasts nor their "
            "intervals: compare the forecasts with the trend before relying on them."]  # fmt: skip


def fit_auto(
    panel: Panel,
    *,
    horizon: int,
    variable: str = "y",
    families=BASELINES,
    extra: Mapping[str, Forecaster] | None = None,
    origins: int = 3,
) -> tuple[AutoTwin, Choice]:
    """Chooses among the baselines (and ``extra``) on ``panel``'s own visits by rolling-origin
    CRPS and measures the chosen combination's per-horizon errors on all of them."""
    methods = {**forecasters(panel, families), **(extra or {})}
    times = future_times(panel, horizon)
    dummy = np.zeros(times.shape)
    _, choice = auto_forecast(methods, panel, times, y=dummy, mask=dummy > 0, origins=origins)
    twin = AutoTwin(
        members=tuple(choice.name.split("+")),
        quantiles=choice.quantiles,  # the chosen combination's, measured once
        horizon=horizon,
        period=panel.period,
        variable=variable,
        choice={
            "name": choice.name,
            "validation_crps": choice.validation_crps,
            "origin_bias": choice.bias,
        },
        families=tuple(families) + tuple(extra or ()),
    )
    return twin, choice


def skill_table(
    panel: Panel, *, h: int = 2, families=BASELINES, extra: Mapping[str, Forecaster] | None = None
) -> tuple[pd.DataFrame, dict[str, Forecast], Choice]:
    """Every candidate and ``auto`` on each subject's last ``h`` visits (1 for series shorter
    than 5), trained on the visits before: one row per method with RMSE, MAE, CRPS, 90%
    coverage and width, and CRPS and RMSE relative to the best baseline (LOCF, drift,
    seasonal, mixed model, ETS, ARIMA)."""
    ho = holdout(panel, h=h)
    methods = {**forecasters(ho.train, families), **(extra or {})}
    fcs, choice = auto_forecast(methods, ho.train, ho.time, y=ho.y, mask=ho.mask)
    rows = [{"method": name, **score(fc)["pooled"]} for name, fc in fcs.items()]
    table = pd.DataFrame(rows).set_index("method")
    baselines = [m for m in forecasters(ho.train, families) if m in table.index]
    best = table.loc[baselines, "crps"].astype(float).idxmin()
    best_rmse = table.loc[baselines, "rmse"].astype(float).min()
    table["crps_vs_best_baseline"] = table.crps.astype(float) / float(table.loc[best, "crps"])
    table["rmse_vs_best_baseline"] = table.rmse.astype(float) / best_rmse
    table.attrs["best_baseline"] = best
    return table, fcs, choice


def panel_from_cohort(cohort: Cohort, variable: str) -> Panel:
    """The observed visits of one variable of a gridded cohort, in grid time (t0 + step k)."""
    f = list(cohort.variables).index(variable)
    mask = np.asarray(cohort.mask[..., f], bool)
    n = mask.sum(1)
    t0 = np.zeros(cohort.n_individuals) if cohort.t0 is None else np.asarray(cohort.t0, float)
    grid = t0[:, None] + np.arange(mask.shape[1])[None] * float(cohort.step)
    order = np.argsort(~mask, axis=1, kind="stable")  # observed steps first, in time order
    rows = np.arange(len(n))[:, None]
    time = np.where(np.arange(mask.shape[1])[None] < n[:, None], grid[rows, order], 0.0)
    values = np.asarray(cohort.values[..., f], float)[rows, order]
    ids = np.asarray(cohort.subject_ids or range(cohort.n_individuals), object)
    return Panel(ids, time, values, n.astype(int))


def save_auto(twin: AutoTwin, directory: Path) -> None:
    """Writes ``directory/auto.json`` and, last, ``directory/manifest.json`` into a new
    directory that then replaces ``directory`` (whole or not at all).

    Raises:
        RunWriteError: the storage refused a write; ``directory`` is left as it was.
        FileExistsError: ``directory`` holds other files than a saved model.
    """
    check_replaceable(Path(directory), {"auto.json"})
    record = {
        "format": FORMAT, "family": "auto", "members": list(twin.members),
        "levels": list(QLEVELS), "quantiles": np.asarray(twin.quantiles).tolist(),
        "horizon": twin.horizon, "period": twin.period, "variable": twin.variable,
        "choice": twin.choice, "families": list(twin.families),
    }  # fmt: skip
    with replacing_dir(Path(directory)) as new:
        atomic_write_text(new / "auto.json", json.dumps(record, indent=1))
        write_manifest(new)


def is_auto(run_dir: Path) -> bool:
    """Whether ``run_dir`` (a run directory or its ``model/``) holds an auto twin."""
    return (run_dir / "auto.json").exists() or (run_dir / "model" / "auto.json").exists()


def load_auto(directory: Path) -> AutoTwin:
    """The :class:`AutoTwin` in ``directory`` (a run directory or its ``model/``).

    Raises:
        ValueError: not an auto twin (naming the file).
        DamagedModelError: a damaged or partly written file, or unreadable JSON (naming it; a
            twin saved without a manifest, by an older twinjax, loads with a warning).
    """
    directory = Path(directory)
    path = directory / "auto.json"
    if not path.exists():
        path = directory / "model" / "auto.json"
    if path.parent.is_dir():
        verify_manifest(path.parent)
    record = read_json(path)
    try:
        if record.get("format") != FORMAT or record.get("family") != "auto":
            raise ValueError(f"format {record.get('format')}, family {record.get('family')}")
        if list(record["levels"]) != list(QLEVELS):
            raise ValueError("quantile levels differ from this version's")
        return AutoTwin(
            members=tuple(record["members"]),
            quantiles=np.asarray(record["quantiles"], float),
            horizon=int(record["horizon"]),
            period=int(record["period"]),
            variable=str(record["variable"]),
            choice=record["choice"],
            families=tuple(record["families"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not a readable auto twin ({type(e).__name__}: {e})") from e
