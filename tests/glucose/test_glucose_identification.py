"""The Bayesian glucose twin by name (twinjax.glucose.identification): each name reaches its own
fit with its own options, and an unknown name is refused. The fits themselves are tested in
test_glucose_mechanistic.py and test_glucose_population.py; experiment=glucose_twins runs both."""

import inspect
import typing

import jax
import numpy as np
import pytest
from jaxtyping import TypeCheckError

from twinjax.glucose import identification
from twinjax.glucose.identification import TWINS, TwinKind, identify
from twinjax.glucose.mechanistic import MechanisticFit, fit_mechanistic
from twinjax.glucose.population_fit import fit_population
from twinjax.glucose.records import Records
from twinjax.glucose.twin import MechanisticTwin
from twinjax.physiology import PARAM_NAMES

RECS = Records(np.zeros((1, 3), np.float32), np.zeros((1, 6), np.float32),
               np.zeros((1, 6), np.float32), np.zeros(1, np.float32), np.ones(1, np.float32),
               3.0, ("adult#001",))  # fmt: skip
TWIN = MechanisticTwin(np.zeros((1, 2, len(PARAM_NAMES))), np.zeros((1, 2, 13)), np.ones((1, 2)),
                       ("adult#001",), ())  # fmt: skip
FIT = MechanisticFit(None, {}, np.zeros(1), {}, (), {})


def _spy(monkeypatch) -> dict:
    """Replaces both fits by recorders of their keyword arguments."""
    calls = {}

    def recorder(name):
        def fit(key, recs, **kw):
            calls[name] = kw
            return TWIN, FIT

        return fit

    for name in ("fit_mechanistic", "fit_population"):
        monkeypatch.setattr(identification, name, recorder(name))
    return calls


def test_each_twin_gets_its_own_options(monkeypatch):
    calls = _spy(monkeypatch)
    recs = RECS
    common = dict(fit_days=1.5, draws=7, progress=False)
    options = dict(svi_steps=11, svi_lr=0.3, mode_steps=12, steps=13, starts=5)
    twin, fit = identify(jax.random.key(0), recs, twin="population", **common, **options)
    assert twin is TWIN and fit is FIT
    assert calls == {"fit_population": {**common, "mode_steps": 12, "steps": 13, "starts": 5}}
    calls.clear()
    identify(jax.random.key(0), recs, twin="mechanistic", **common, **options)
    assert calls == {"fit_mechanistic": {**common, "steps": 11, "lr": 0.3}}


def test_an_unknown_twin_is_refused_and_the_names_match_the_type():
    assert typing.get_args(TwinKind) == TWINS == ("mechanistic", "population")
    # the test-time type check refuses it before the function's own ValueError does
    with pytest.raises((ValueError, TypeCheckError), match="recurrent"):
        identify(jax.random.key(0), RECS, twin="recurrent")


def test_the_defaults_are_the_fits():
    """identify's defaults are those of the fit each option goes to."""
    ours = inspect.signature(identify).parameters
    pop, mech = (inspect.signature(f).parameters for f in (fit_population, fit_mechanistic))
    for name, theirs in {"fit_days": pop, "draws": pop, "mode_steps": pop, "steps": pop,
                         "starts": pop}.items():  # fmt: skip
        assert ours[name].default == theirs[name].default, name
    for name, theirs in {"fit_days": "fit_days", "draws": "draws", "svi_steps": "steps",
                         "svi_lr": "lr"}.items():  # fmt: skip
        assert ours[name].default == mech[theirs].default, name
