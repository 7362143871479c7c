"""scripts/mechanistic_theoph.py: R's Theoph data fitted through the mechanistic protocol."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from twinjax.bayes.theoph import FM3


def _script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "mechanistic_theoph.py"
    spec = importlib.util.spec_from_file_location("mechanistic_theoph", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
def test_theoph_modes_match_least_squares_and_fm3():
    """Every subject's posterior mode (the ODE, weak prior SD 2) is within 0.03 of per-subject
    least squares of SSfol's closed form (measured 0.016, subject 9's lKa, the least determined,
    posterior SD 0.42), and the subjects' mean of each parameter within 0.05 of nlme fm3's
    population value (measured 0.028, 0.012, 0.017 for lKe, lKa, lCl)."""
    script = _script()
    t = script.table()
    for name in script.NAMES:
        np.testing.assert_allclose(t[f"{name} map"], t[f"{name} nls"], atol=0.03, err_msg=name)
        assert abs(t[f"{name} map"].mean() - FM3[name]) < 0.05, name
    assert len(t) == 12 and (t["sigma"] > 0.1).all()


@pytest.mark.integration
def test_laplace_is_close_to_nuts_on_a_theoph_subject():
    """Subject 3 (the best determined): NUTS (numpyro, on the same negative log posterior as
    potential, 500 + 1000 draws) and fit's Laplace approximation agree: the modes within 0.3
    posterior SDs of the NUTS means (measured 0.06), the Laplace SDs of lKe, lKa, lCl 0.75-1.1
    times NUTS's (measured 0.82-0.85: the Gaussian leaves out the spread the noise SD's own
    uncertainty adds)."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    from twinjax.mechanistic import fit, neg_log_posterior, on_grid
    from twinjax.mechanistic.models import ONE_COMPARTMENT_ORAL, dosing

    script = _script()
    obs, doses, _ = script.theoph_frames()
    _, times, y, mask, dose = script.subject_grids(obs, doses)
    t, o, m = jnp.asarray(times[2]), jnp.asarray(y[2]), jnp.asarray(mask[2])
    u = dosing(oral=on_grid(t, jnp.zeros(1), jnp.asarray(dose[2])[None]))
    args = (ONE_COMPARTMENT_ORAL, t, o, m, u, script.PRIOR)
    fitted = jax.jit(lambda: fit(*args, steps=1500, substeps=2))()
    mode = jnp.concatenate([fitted.params, fitted.log_sigma[None]])
    potential = lambda z: neg_log_posterior(ONE_COMPARTMENT_ORAL, z, *args[1:], substeps=2)
    mcmc = MCMC(NUTS(potential_fn=potential), num_warmup=500, num_samples=1000,
                progress_bar=False)  # fmt: skip
    mcmc.run(jax.random.key(3), init_params=mode)
    draws = np.asarray(mcmc.get_samples())[:, :3]
    sd = np.sqrt(np.diag(np.asarray(fitted.cov)))[:3]
    assert (np.abs(np.asarray(fitted.params) - draws.mean(0)) / draws.std(0)).max() < 0.3
    ratio = sd / draws.std(0)
    assert ((ratio > 0.75) & (ratio < 1.1)).all(), ratio
