"""simglucose's meal bookkeeping before and after its issue 41 (issue 26, item 4).

simglucose computes gastric emptying from the current meal's amount ``Dbar``. Before 0.2.3 it
added the grams eaten to the stomach content in milligrams (``Dbar = last_Qsto +
last_foodtaken``); 0.2.3 converted the grams (``* 1000``), and 0.2.11, which
:mod:`twinjax.physiology` matches, keeps that. ``simulate(..., compat="simglucose<0.2.3")``
runs the old bookkeeping. This script measures, for every virtual patient, one day of a
fixed open-loop therapy (three meals with carb-ratio boluses on the steady basal):

- how far the two bookkeepings' glucose are apart (RMS and largest difference, mg/dL), and
  what that does to time in range, below 70 and above 180;
- with ``--old-wheel DIR`` (simglucose 0.2.2 unpacked there, e.g. ``pip download
  simglucose==0.2.2 --no-deps`` and unzip), how far ``compat="simglucose<0.2.3"`` is from
  simglucose 0.2.2's own patient (its ``T1DPatient``, scipy's dopri5), run in a subprocess.

    PYTHONPATH=. .venv/bin/python scripts/glucose_compat.py --old-wheel /tmp/sg022 --out /tmp/gc
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from twinjax.physiology import load_patients, load_settings, outcomes, patient_names, simulate
from twinjax.physiology.params import age_group

MEALS = ((60, 50.0), (360, 90.0), (720, 70.0))  # (minute, grams): a large lunch
MINUTES = 1440

# runs in a subprocess whose first path entry is the old simglucose: one patient, one minute
# at a time, as T1DPatient.step takes actions (grams per minute for one minute, U/min)
_OLD = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import pandas as pd
from simglucose.patient import t1dpatient
from simglucose.patient.t1dpatient import Action, T1DPatient
job = json.loads(sys.stdin.read())
table = pd.read_csv(t1dpatient.PATIENT_PARA_FILE)
out = {}
for name in job["names"]:
    params = table[table.Name == name].iloc[0]
    # (0.2.2 indexes its initial state by position, which today's pandas refuses: given here)
    p = T1DPatient(params, init_state=params.iloc[2:15].to_numpy(float))
    bg = []
    for m in range(job["minutes"]):
        p.step(Action(CHO=job["meals"][m], insulin=job["insulin"][name][m]))
        bg.append(float(p.observation.Gsub))
    out[name] = bg
print(json.dumps(out))
"""


def therapy(names) -> tuple[np.ndarray, np.ndarray]:
    """Meals ``[minutes]`` (grams announced) and insulin ``[patients, minutes]`` (U/min): the
    steady basal, and at each meal ``grams / carb ratio`` over its first minute."""
    meals = np.zeros(MINUTES)
    for minute, grams in MEALS:
        meals[minute] = grams
    p, st = load_patients(names), load_settings(names)
    basal = np.asarray(p.get("u2ss") * p.get("BW") / 6000.0)
    insulin = np.repeat(basal[:, None], MINUTES, 1)
    for minute, grams in MEALS:
        insulin[:, minute] += grams / np.asarray(st.carb_ratio)
    return meals, insulin


def ours(names, meals, insulin, compat: str) -> np.ndarray:
    p = load_patients(names)
    one = lambda pi, u: simulate(pi, jnp.asarray(meals), u, compat=compat)[0]
    return np.asarray(jax.jit(jax.vmap(one))(p, jnp.asarray(insulin, p.x0.dtype)))


def old_simglucose(wheel: Path, names, meals, insulin) -> np.ndarray:
    """simglucose 0.2.2's glucose per minute (its patient stepped one minute at a time; the
    meal is given as grams per minute for one minute, which it eats at 5 g/min)."""
    job = {"names": list(names), "minutes": MINUTES, "meals": meals.tolist(),
           "insulin": {n: insulin[i].tolist() for i, n in enumerate(names)}}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", _OLD, str(wheel)], input=json.dumps(job),
                          capture_output=True, text=True, check=True)  # fmt: skip
    got = json.loads(done.stdout)
    return np.array([got[n] for n in names])


def table(names, a: np.ndarray, b: np.ndarray, label_a: str, label_b: str) -> pd.DataFrame:
    rows = []
    for i, name in enumerate(names):
        oa, ob = outcomes(jnp.asarray(a[i])), outcomes(jnp.asarray(b[i]))
        d = a[i] - b[i]
        rows.append({"patient": name, "group": age_group(name),
                     "rms": float(np.sqrt(np.mean(d**2))), "max": float(np.abs(d).max()),
                     f"tir {label_a}": float(oa.tir), f"tir {label_b}": float(ob.tir),
                     f"below70 {label_a}": float(oa.below70), f"below70 {label_b}": float(ob.below70),
                     f"above180 {label_a}": float(oa.above180),
                     f"above180 {label_b}": float(ob.above180),
                     f"peak {label_a}": float(a[i].max()), f"peak {label_b}": float(b[i].max())})  # fmt: skip
    return pd.DataFrame(rows)


def main(a) -> dict:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = patient_names()
    meals, insulin = therapy(names)
    new, old = (
        ours(names, meals, insulin, "simglucose"),
        ours(names, meals, insulin, "simglucose<0.2.3"),
    )
    diff = table(names, new, old, "0.2.11", "<0.2.3")
    diff.to_csv(out / "compat_difference.csv", index=False)
    summary = {"therapy": {"meals": MEALS, "minutes": MINUTES},
               "difference": diff.groupby("group")[["rms", "max"]].median().to_dict(),
               "largest_rms": float(diff.rms.max()), "largest_max": float(diff["max"].max())}  # fmt: skip
    if a.old_wheel:
        ref = old_simglucose(Path(a.old_wheel), names, meals, insulin)
        check = table(names, old, ref, "twinjax", "simglucose0.2.2")
        check.to_csv(out / "vs_simglucose_0.2.2.csv", index=False)
        summary["vs_simglucose_0.2.2"] = {"largest_rms": float(check.rms.max()),
                                          "largest_max": float(check["max"].max())}  # fmt: skip
    (out / "compat.json").write_text(json.dumps(summary, indent=1))
    print(diff.groupby("group")[["rms", "max", "tir 0.2.11", "tir <0.2.3", "above180 0.2.11",
                                 "above180 <0.2.3", "peak 0.2.11", "peak <0.2.3"]].median()
          .round(3).to_string())  # fmt: skip
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--old-wheel", help="simglucose 0.2.2 unpacked (the folder holding simglucose/)"
    )
    ap.add_argument("--out", default="runs/glucose_compat")
    main(ap.parse_args())
