"""Covariates from a static table (centred / scaled continuous, treatment-coded categorical),
steady-state dose columns, and the centred parameterization's density against the non-centred one.
"""

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density

from twinjax.bayes import HierarchicalSpec, TwinData, hierarchical_model, linear_predict
from twinjax.bayes.tables import covariate_columns, covariate_design, longitudinal_data
from twinjax.data.errors import CohortError

STATIC = pd.DataFrame({
    "subject_id": ["a", "b", "c", "d"], "Age": [20.0, 40.0, 60.0, 40.0],
    "Sex": ["M", "F", "M", "F"], "Arm": ["x", "y", "z", "x"],
})  # fmt: skip


def test_design_centres_scales_and_treatment_codes():
    x, names, info = covariate_design(STATIC.set_index("subject_id"), ["Age", "Arm"],
                                      ["d", "a", "b", "c"], scale=True)  # fmt: skip
    assert names == ("Age", "Arm[y]", "Arm[z]")
    sd = np.std([40.0, 20.0, 40.0, 60.0])
    np.testing.assert_allclose(x[:, 0], (np.array([40.0, 20.0, 40.0, 60.0]) - 40.0) / sd)
    assert x[:, 1:].tolist() == [[0, 0], [0, 0], [1, 0], [0, 1]]  # reference level x
    assert info == (("Age", "continuous", 40.0, sd), ("Arm", "categorical", "x", ("x", "y", "z")))


def test_longitudinal_data_reads_covariates_and_names_their_columns():
    obs = pd.DataFrame({"subject_id": list("abcd"), "time": 0.0, "value": 1.0})
    d = longitudinal_data(obs, static=STATIC, covariate_cols=("Age", "Sex"))
    assert d.covariate_names == ("Age", "Sex[M]")
    assert d.covariates.tolist() == [[-20.0, 1.0], [0.0, 0.0], [20.0, 1.0], [0.0, 0.0]]
    assert covariate_columns(d, "Sex") == ("Sex[M]",)
    with pytest.raises(ValueError, match="no covariate 'Wt'"):
        covariate_columns(d, "Wt")
    with pytest.raises(CohortError, match="missing for subjects"):
        longitudinal_data(obs, static=STATIC.iloc[:3], covariate_cols=("Age",))


def test_steady_state_columns_and_their_errors():
    obs = pd.DataFrame({"subject_id": ["a", "a"], "time": [1.0, 2.0], "value": [1.0, 2.0]})
    doses = pd.DataFrame({"subject_id": ["a", "a"], "time": [0.0, 0.0], "amount": [10.0, 5.0],
                          "kind": ["bolus", "infusion"], "duration": [0.0, 2.0],
                          "ss": [1, 0], "ii": [12.0, np.nan]})  # fmt: skip
    d = longitudinal_data(obs, doses)
    assert d.regimen.ss.tolist() == [[1.0, 0.0]] and d.regimen.ii.tolist() == [[12.0, 0.0]]
    assert longitudinal_data(obs, doses.drop(columns=["ss", "ii"])).regimen.ss is None
    with pytest.raises(CohortError, match="need 'ii' > 0"):
        longitudinal_data(obs, doses.assign(ii=[0.0, 0.0]))
    with pytest.raises(CohortError, match="longer than its interval"):
        longitudinal_data(obs, doses.assign(ss=[1, 1], ii=[12.0, 1.0]))


@pytest.mark.integration
@pytest.mark.parametrize("correlated", [False, True])
def test_centred_density_is_the_noncentred_one_changed_by_the_jacobian(correlated):
    """Sampling theta_r ~ N(typical, Sigma) vs z ~ N(0, I) with theta_r = typical + chol z: the
    densities differ by the Jacobian |det chol| = prod(omega) |det L| = prod(omega) prod(diag L)
    per individual, an exact identity (float32: 1e-3 absolute on log densities of ~-50)."""
    t = np.tile(np.arange(4.0), (3, 1))
    x = np.array([[1.0], [0.0], [-1.0]])
    data = TwinData(t, 1.0 + 0.5 * t, np.ones_like(t, bool), None, x, covariate_names=("x",))
    kw = dict(correlated=correlated, covariate_effects=(("slope", "x"),))
    nc = HierarchicalSpec(linear_predict, ("intercept", "slope"), **kw)
    c = HierarchicalSpec(linear_predict, ("intercept", "slope"), centred=True, **kw)
    rng = np.random.default_rng(0)
    params = {"mu": jnp.array([0.8, 0.4]), "omega": jnp.array([0.5, 0.3]),
              "beta": jnp.array([0.2]), "sigma_add": jnp.array(0.7),
              "z": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)}  # fmt: skip
    chol = jnp.eye(2)
    if correlated:
        chol = jnp.array([[1.0, 0.0], [0.6, 0.8]])
        params["L_corr"] = chol
    lp_nc, tr = log_density(hierarchical_model, (nc, data), {}, params)
    theta = tr["theta"]["value"]
    centred = {k: v for k, v in params.items() if k != "z"} | {"theta_random": theta}
    lp_c, tr_c = log_density(hierarchical_model, (c, data), {}, centred)
    jac = 3 * (jnp.sum(jnp.log(params["omega"])) + jnp.sum(jnp.log(jnp.diag(chol))))
    assert float(lp_c) == pytest.approx(float(lp_nc - jac), abs=1e-3)
    np.testing.assert_allclose(tr_c["z"]["value"], params["z"], atol=1e-5)
