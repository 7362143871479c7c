"""experiment=hierarchical with covariates from data.static (continuous centred, categorical
treatment-coded) and the centred parameterization, through the app on files.

The cohort: 16 subjects, 6 visits each, ``intercept = 5 + 0.05 (Age - mean Age) + 1.0 [Sex = M]
+ N(0, 0.3)``, slope 0.5 + N(0, 0.1), residual SD 0.1. With 6 visits per subject the intercept
coefficients are estimated to about 0.3 / sqrt(16 / 2) ~ 0.1 (Sex) and 0.3 / (sd(Age) 4) ~
0.005 per year (Age); we allow 3 SEs (0.3 and 0.015)."""

import numpy as np
import pandas as pd
import pytest

TINY = ["experiment.nuts.num_warmup=200", "experiment.nuts.num_samples=60",
        "experiment.nuts.num_chains=2", "experiment.predictive_draws=60",
        "experiment.grid_points=25", "experiment.progress=false"]  # fmt: skip


def _files(tmp_path):
    rng = np.random.default_rng(3)
    n = 16
    age = rng.uniform(20, 70, n)
    sex = np.array(["F", "M"] * (n // 2))
    icpt = 5 + 0.05 * (age - age.mean()) + 1.0 * (sex == "M") + rng.normal(0, 0.3, n)
    slope = 0.5 + rng.normal(0, 0.1, n)
    t = np.arange(6.0)
    ids = [f"s{i}" for i in range(n)]
    obs = pd.DataFrame({
        "subject_id": np.repeat(ids, 6), "time": np.tile(t, n),
        "value": (icpt[:, None] + slope[:, None] * t + rng.normal(0, 0.1, (n, 6))).ravel(),
    })  # fmt: skip
    obs.to_csv(tmp_path / "obs.csv", index=False)
    pd.DataFrame({"subject_id": ids, "Age": age, "Sex": sex}).to_csv(tmp_path / "static.csv",
                                                                     index=False)  # fmt: skip
    return age.mean(), [f"data.observations={tmp_path / 'obs.csv'}",
                        f"data.static={tmp_path / 'static.csv'}"]  # fmt: skip


@pytest.mark.integration
def test_covariate_effects_recovered_and_recorded(tmp_path, run_app):
    centre, files = _files(tmp_path)
    m = run_app(tmp_path / "run", "experiment=hierarchical", "data=files", *files, *TINY,
                "experiment.covariates=[Age,Sex]", "experiment.covariate_effects={intercept:[Age,Sex]}",
                "experiment.parameterization=centred")  # fmt: skip
    assert (
        m["covariates"][0][:3] == ["Age", "continuous", centre]
        or abs(m["covariates"][0][2] - centre) < 1e-9
    )
    assert m["covariates"][1][:3] == ["Sex", "categorical", "F"]
    assert m["covariate_effects"] == [["intercept", "Age"], ["intercept", "Sex[M]"]]
    assert abs(m["posterior_mean_beta_intercept_Age"] - 0.05) < 0.015
    assert abs(m["posterior_mean_beta_intercept_Sex[M]"] - 1.0) < 0.3
    report = (tmp_path / "run" / "report.md").read_text()
    assert "reference level 'F'" in report and f"centred at {centre:.4g}" in report


def test_a_covariate_on_no_parameter_is_refused_not_ignored():
    import pytest

    from twinjax.bayes import HierarchicalOptions
    from twinjax.bayes.from_options import covariate_effects
    from twinjax.bayes.models import mean_model
    from twinjax.pipeline import ConfigError

    c = HierarchicalOptions(covariates=["Sex"])  # read from the static file, but on no parameter
    with pytest.raises(ConfigError, match=r"\['Sex'\] act on no parameter"):
        covariate_effects(c, mean_model("linear"), None)
    assert covariate_effects(HierarchicalOptions(), mean_model("linear"), None) == ()
