"""The 30 virtual patients of the UVa/Padova simulator: model parameters and clinical settings.

The tables are those of simglucose 0.2.11 (MIT licence, https://github.com/jxx123/simglucose):
``vpatient_params.csv`` (one row per patient: the initial state ``x0_1..x0_13`` and the model
parameters), ``Quest.csv`` (carb ratio ``CR`` g/U, correction factor ``CF`` mg/dL/U, ``Age``,
total daily insulin ``TDI`` U), ``sensor_params.csv`` and ``pump_params.csv``. When simglucose is
installed its own files are read (located without importing it, since its import needs gym and
``pkg_resources``); otherwise the byte-for-byte copies in ``twinjax/physiology/data/`` made from
simglucose 0.2.11 at build time are used (``tests/physiology`` checks that they still agree).
Patients are ordered as in the table: adolescent#001-010, adult#001-010, child#001-010.
"""

import importlib.util
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float

_BUNDLED = Path(__file__).resolve().parent / "data"

# The model parameters the ODE reads (names as in vpatient_params.csv).
PARAM_NAMES = (
    "BW kabs kmax kmin b d Vg Vi Ib Vmx Km0 Vm0 k1 k2 p2u m1 m2 m4 m30 ki kp1 kp2 kp3 f "
    "ke1 ke2 Fsnc kd ksc ka1 ka2 u2ss"
).split()
STATE_NAMES = (
    "Qsto1 Qsto2 Qgut Gp Gt Ip X I' XL Il Isc1 Isc2 Gs".split()
)  # x0_1..x0_13 in simglucose's order


class PatientParams(NamedTuple):
    """One patient's (or, with a leading axis, a cohort's) UVa/Padova parameters.

    ``theta`` holds :data:`PARAM_NAMES` in order (units as in simglucose: rates per minute,
    ``BW`` kg, volumes dL/kg or L/kg); ``x0`` is the initial state (13 compartments,
    :data:`STATE_NAMES`). A NamedTuple of arrays, so a cohort is one pytree to ``vmap`` over and
    gradients with respect to any parameter are one ``jax.grad`` away.
    """

    theta: Float[Array, "*patients params"]
    x0: Float[Array, "*patients 13"]

    def get(self, name: str) -> Float[Array, "*patients"]:
        """The parameter ``name`` (one of :data:`PARAM_NAMES`)."""
        return self.theta[..., PARAM_NAMES.index(name)]


class ClinicalSettings(NamedTuple):
    """The patients' therapy settings from Quest.csv (one entry per patient)."""

    carb_ratio: Float[Array, "*patients"]  # CR: grams of carbohydrate covered by 1 U
    correction_factor: Float[Array, "*patients"]  # CF: mg/dL lowered by 1 U
    total_daily_insulin: Float[Array, "*patients"]  # TDI, U/day
    age: Float[Array, "*patients"]  # years


def params_dir() -> Path:
    """Where the tables are read from: simglucose's ``params/`` if installed, else the copy."""
    spec = importlib.util.find_spec("simglucose")
    if spec is not None and spec.submodule_search_locations:
        found = Path(list(spec.submodule_search_locations)[0]) / "params"
        if (found / "vpatient_params.csv").exists():
            return found
    return _BUNDLED


def read_table(name: str, *, source: Path | None = None) -> pd.DataFrame:
    """One of the four tables (``vpatient_params``, ``Quest``, ``sensor_params``, ``pump_params``)."""
    known = ("vpatient_params", "Quest", "sensor_params", "pump_params")
    if name not in known:
        raise ValueError(f"unknown table {name!r}; expected one of {known}")
    return pd.read_csv((source or params_dir()) / f"{name}.csv")


def device_row(kind: str, name: str) -> pd.Series:
    """The row ``name`` of the ``{kind}_params`` table (``kind``: sensor or pump)."""
    table = read_table(f"{kind}_params").set_index("Name")
    if name not in table.index:
        raise ValueError(f"unknown {kind} {name!r}; known: {list(table.index)}")
    return table.loc[name]


def patient_names() -> tuple[str, ...]:
    """The 30 patient names in table order."""
    return tuple(read_table("vpatient_params")["Name"])


def _rows(table: pd.DataFrame, names) -> pd.DataFrame:
    if names is None:
        return table
    names = [names] if isinstance(names, str) else list(names)
    missing = [n for n in names if n not in set(table["Name"])]
    if missing:
        raise ValueError(f"unknown patient(s) {missing}; known: {list(table['Name'])}")
    return table.set_index("Name").loc[names].reset_index()


def load_patients(names=None, *, dtype=jnp.float32) -> PatientParams:
    """The parameters of ``names`` (a name, a list of names, or None for all 30), stacked.

    Example:
        >>> p = load_patients(["adult#001", "child#001"])
        >>> p.theta.shape, p.x0.shape
        ((2, 32), (2, 13))
        >>> float(p.get("BW")[0])
        102.32...
    """
    rows = _rows(read_table("vpatient_params"), names)
    x0 = rows[[c for c in rows.columns if c.startswith("x0_")]].to_numpy(np.float64)
    theta = rows[list(PARAM_NAMES)].to_numpy(np.float64)
    return PatientParams(jnp.asarray(theta, dtype), jnp.asarray(x0, dtype))


def load_settings(names=None, *, dtype=jnp.float32) -> ClinicalSettings:
    """Carb ratio, correction factor, total daily insulin and age of ``names`` (Quest.csv)."""
    rows = _rows(read_table("Quest"), names)
    col = lambda c: jnp.asarray(rows[c].to_numpy(np.float64), dtype)
    return ClinicalSettings(col("CR"), col("CF"), col("TDI"), col("Age"))


def age_group(name: str) -> str:
    """``adolescent``, ``adult`` or ``child`` from a patient name such as ``adult#003``."""
    return name.split("#")[0]
