# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # paretune from Python
#
# A small study run from a notebook: one trial in this process, then a study of gradual
# magnitude pruning against AdapMTL on the built-in scene data set, its trials as a pandas
# frame, the Pareto fronts, the comparison at 90% sparsity and the front figure.
#
# This file is a notebook in jupytext's percent format: open it in Jupyter (with jupytext)
# or VS Code, or run it as a script (`.venv/bin/python examples/notebook.py`). With
# `PARETUNE_EXAMPLE_SCALE=tiny` it trains tiny models for a few iterations (the test suite
# runs it so); `PARETUNE_EXAMPLE_DIR` is where the study goes (default `paretune-runs`).

# %%
import os
from pathlib import Path

import analysis
import study
import trials

TINY = os.environ.get("PARETUNE_EXAMPLE_SCALE") == "tiny"
FOLDER = Path(os.environ.get("PARETUNE_EXAMPLE_DIR", "paretune-runs")) / "notebook"
DATA = {"resolution": 32, "num_train": 48, "num_val": 16, "num_test": 16} if TINY else {}
MODEL = {"options": {"width": 8}, "head_options": {"hidden": 8}} if TINY else {}
ITERATIONS = 12 if TINY else 300
TRIALS = 2 if TINY else 6

# %% [markdown]
# ## One trial, in this process
#
# `trials.run_trial` trains, prunes and evaluates one multi-task model from a config (a
# dict or a `trials.TrialConfig`). No Ray, no database.

# %%
result = trials.run_trial(
    {
        "dataset": "scenes-nyu",
        "dataset_options": DATA,
        "model_options": MODEL.get("options", {}),
        "head_options": MODEL.get("head_options", {}),
        "method": "magnitude",
        "method_params": {"target_sparsity": 0.8},
        "iterations": ITERATIONS,
        "batch_size": 4 if TINY else 16,
        "calibration": "short-budget",
    }
)
print(f"magnitude: sparsity {result.sparsity['overall']:.1%}, metrics {result.metrics}")

# %% [markdown]
# ## A study
#
# The same settings as a YAML study file, here as a dict checked by `study.parse_config`.
# `study.run_study` starts a local Ray on 127.0.0.1, trains the dense reference, searches
# each method's hyperparameters with Optuna and stores every trial in a SQLite database in
# the study's folder. It returns a handle; `study.open_study` gives the same handle later.

# %%
config = study.parse_config(
    {
        "name": "notebook",
        "dataset": {"name": "scenes-nyu", "options": DATA},
        "model": {"backbone": "resnet-tiny", **MODEL},
        "methods": [{"name": "dense"}, {"name": "magnitude"}, {"name": "adapmtl"}],
        "budget": {
            "trials_per_method": TRIALS,
            "iterations": ITERATIONS,
            "batch_size": 4 if TINY else 16,
            "seeds": [0],
        },
        "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
        "calibration": "short-budget",
        "study_dir": str(FOLDER),
    }
)
# run before? then read it
ran = (FOLDER / "paretune.db").exists()
handle = study.open_study(config) if ran else study.run_study(config)
print(f"study {handle.name}: {handle.status}, stored in {handle.url}")

# %% [markdown]
# ## Its trials, fronts and summary
#
# `handle.trials` is a pandas frame with one row per trial (method, seed, searched
# parameters, sparsity, Delta_T, per-task metrics, timings). `handle.front(method)` is a
# method's Pareto set, `handle.summary()` one row per method.

# %%
columns = ["trial_id", "method", "status", "sparsity", "delta_t"]
print(handle.trials[columns].to_string(index=False))

# %%
print(handle.front("magnitude")[["trial_id", "sparsity", "delta_t", "params"]].to_string())

# %%
summary = handle.summary()
print(summary[["n_complete", "pareto_size", "hypervolume", "best_delta_t"]].to_string())

# %% [markdown]
# ## The analysis functions
#
# The handle is a shortcut over `analysis`: load a study's frames, flag the Pareto fronts,
# compute hypervolumes against one reference point and compare the methods at sparsity
# levels (best trial at or above each level), on the frames of any study (or of several).

# %%
frames = analysis.load_study(handle.url, "notebook")
objectives = frames.objectives
fronts = analysis.method_fronts(frames.trials, objectives)
reference = analysis.objective_reference(frames.trials, objectives)
searched = fronts[fronts["on_front"] & (fronts["method"] != "dense")]
for method, rows in searched.groupby("method"):
    points = rows[[name for name, _ in objectives]].to_numpy(dtype=float)
    directions = [direction for _, direction in objectives]
    volume = analysis.hypervolume(points, directions, reference)
    print(f"{method}: {len(rows)} trials on its front, hypervolume {volume:.4g}")

# %%
comparison = analysis.compare_at_levels(frames.trials, [0.7, 0.9], objectives)
for line in analysis.level_sentences(comparison, unit="%"):
    print(line)

# %% [markdown]
# ## The front figure
#
# A plotly figure: it shows itself in a notebook and can be saved as HTML (or as PNG/SVG
# with kaleido). Hover a point for its trial and parameters.

# %%
figure = handle.front_figure()
figure.write_html(FOLDER / "fronts.html", include_plotlyjs=True)
print(f"wrote {FOLDER / 'fronts.html'}")
figure  # noqa: B018 (a notebook shows a cell's last value)
