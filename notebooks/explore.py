# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore a run of cohort
# Reads the published tables in `results/` and the patient-level tables in `data/processed/`
# (run `make` first). It computes nothing new: every number comes from the pipeline. Set
# `RESULTS`, `PROCESSED` and `PATIENT` (or the environment variables of the same names) to look
# at another run or patient.

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cohort.io.outputs import read_csv, read_notes  # noqa: E402

ROOT = Path(os.environ.get("COHORT_ROOT", Path.cwd()))
RESULTS = ROOT / os.environ.get("RESULTS", "results")
PROCESSED = ROOT / os.environ.get("PROCESSED", "data/processed")

# %% [markdown]
# ## The flow of patients and the headline numbers

# %%
flow = read_csv(RESULTS / "tables/flow.csv")
print(flow[["kind", "label", "n"]].to_string(index=False))
print(read_csv(RESULTS / "tables/responders_vs_paper.csv").to_string(index=False))
for note in read_notes(RESULTS / "tables/responders_vs_paper.csv"):
    print("#", note)

# %% [markdown]
# ## Key figures

# %%
for name in ("flow", "outcome_trajectories", "threshold_sweep", "predictors_forest"):
    image = plt.imread(RESULTS / f"figures/{name}.png")
    fig, ax = plt.subplots(figsize=(10, 10 * image.shape[0] / image.shape[1]))
    ax.imshow(image)
    ax.axis("off")
    ax.set_title(name)

# %% [markdown]
# ## One patient's course
# Patient-level data: stays on this machine (`data/processed/` is never committed).

# %%
patients = pd.read_parquet(PROCESSED / "patients.parquet")
sessions = pd.read_parquet(PROCESSED / "sessions.parquet")
responders = pd.read_parquet(PROCESSED / "responders.parquet")
patient = os.environ.get("PATIENT") or patients.loc[patients["analysis_set"], "patient_id"].iloc[0]
row = patients.set_index("patient_id").loc[patient]
outcome_columns = [c for c in patients.columns if c.split("_")[0] in set(responders["outcome"]) and not c.startswith("received")]
print(f"Patient {patient}: {row['flow_status']}, {int(row['n_sessions'])} sessions over {row['programme_months']:.1f} months")
print(row[outcome_columns].to_string())
print(sessions.loc[sessions["patient_id"] == patient, ["session_date", "interventions"]].to_string(index=False))
print(responders.loc[responders["patient_id"] == patient, ["outcome", "occasion", "start", "value", "improvement", "category"]].to_string(index=False))
