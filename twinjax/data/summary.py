"""Before training: subjects too short or sparse to split are set aside (by name), and a summary of
what was read (subjects, grid, fraction observed, rows merged or dropped) with its warnings."""

from dataclasses import replace

import numpy as np

from twinjax.data.cohort import Cohort

SPARSE_GRID = 0.05  # a grid observed in fewer cells than this gets a warning


def _plain(x):
    """A JSON-friendly subject id (numpy scalars to Python)."""
    return x.item() if isinstance(x, np.generic) else x


def _ids(cohort: Cohort) -> list:
    return [_plain(s) for s in cohort.subject_ids] or list(range(cohort.n_individuals))


def exclude_unsplittable(
    cohort: Cohort, *, val_fraction: float, test_fraction: float, min_observed: int = 2
) -> Cohort:
    """The cohort without subjects too short or too sparse for a time split.

    A subject is excluded when its span gives fewer than 2 training steps after the validation
    and test periods, or when fewer than ``min_observed`` of its training steps hold an
    observation. ``meta["excluded_subjects"]`` lists them as ``{"subject", "length", "reason"}``
    (an empty list when none is).

    >>> import numpy as np
    >>> mask = np.zeros((2, 20, 1), bool); mask[0, ::2] = True; mask[1, :2] = True
    >>> c = Cohort(np.zeros((2, 20, 1), np.float32), mask, np.zeros((2, 20, 0), np.float32),
    ...            np.zeros((2, 0), np.float32), np.array([20, 2], np.int32), subject_ids=("a", "b"))
    >>> kept = exclude_unsplittable(c, val_fraction=0.15, test_fraction=0.15)
    >>> kept.subject_ids, kept.meta["excluded_subjects"][0]["subject"]
    (('a',), 'b')
    """
    lengths = np.asarray(cohort.lengths)
    train_end = np.floor(lengths * (1 - val_fraction - test_fraction)).astype(np.int64)
    seen = cohort.mask.any(-1) & (np.arange(cohort.n_steps)[None, :] < train_end[:, None])
    n_seen = seen.sum(1)
    excluded = []
    for i, s in enumerate(_ids(cohort)):
        if train_end[i] < 2:
            reason = (
                f"too short: {lengths[i]} grid step(s) leave {train_end[i]} for training after "
                f"the validation and test periods (need 2)"
            )
        elif n_seen[i] < min_observed:
            reason = f"too sparse: {n_seen[i]} observed step(s) in its training period (need {min_observed})"
        else:
            continue
        excluded.append({"subject": s, "length": int(lengths[i]), "reason": reason})
    drop = {e["subject"] for e in excluded}
    keep = np.array([i for i, s in enumerate(_ids(cohort)) if s not in drop], np.int64)
    out = cohort.take(keep) if len(excluded) else cohort
    return replace(out, meta={**cohort.meta, "excluded_subjects": excluded})


def median_gap(cohort: Cohort) -> float:
    """Median gap (in time units) between consecutive observed grid steps of one subject."""
    i, t = np.nonzero(cohort.mask.any(-1))
    same = np.diff(i) == 0
    gaps = np.diff(t)[same]
    return float(np.median(gaps) * cohort.step) if len(gaps) else float("nan")


def _period_warnings(no_val: list, no_test: list, n: int, val_fraction, test_fraction) -> list:
    """Warnings for validation and test periods without an observed target (none: a zero
    fraction, said once; some subjects: named, first ten)."""
    out = []
    if val_fraction == 0:
        out.append(
            "no validation period (data.val_fraction=0): the predictive scales are not "
            "recalibrated (factor 1.0) and the run has no validation objective (null)"
        )
    elif len(no_val) == n:
        out.append(
            f"no subject has an observed target in its validation period (the {val_fraction:.0%} "
            "of its timeline before the test period): the target's predictive scale is not "
            "recalibrated (factor 1.0) and the run has no validation objective (null); a "
            "larger data.val_fraction or data.step puts observations there"
        )
    elif no_val:
        out.append(
            f"{len(no_val)} subject(s) have no observed target in their validation period: they "
            f"are left out of the validation objective and get the cohort's pooled calibration "
            f"factor: {no_val[:10]}"
        )
    if test_fraction > 0 and no_test:
        out.append(
            f"{len(no_test)} subject(s) have no observed target in their test period and add "
            f"nothing to the test metrics: {no_test[:10]}"
        )
    return out


def data_summary(cohort: Cohort, *, target: int, val_fraction: float, test_fraction: float) -> dict:
    """What was read and how it was handled, with warnings (a JSON-friendly dict).

    Keys: ``subjects``, ``variables``, ``intervention_kinds``, ``static_covariates``,
    ``grid_steps``, ``step``, ``fraction_observed`` (observed cells over the cells inside the
    subjects' spans, all variables), ``rows_read`` and ``rows_in_grid`` (per table: the data rows
    read, and those in the cohort before subjects were excluded; see
    :func:`twinjax.data.read_cohort`), ``rows_merged`` (rows averaged into a cell shared with
    another row), ``rows_dropped``, ``duplicate_rows_removed``,
    ``interventions_after_last_observation``, ``subjects_excluded``,
    ``subjects_without_test_targets`` and ``subjects_without_validation_targets`` (no
    observation of ``target`` in that period),
    ``notes`` and ``warnings``.
    """
    meta = cohort.meta
    inside = cohort.valid()[..., None] & np.ones(cohort.n_features, bool)
    fraction = float(cohort.mask.sum() / max(inside.sum(), 1))
    lengths = np.asarray(cohort.lengths)
    val_start = np.floor(lengths * (1 - test_fraction - val_fraction))  # as in time_split
    test_start = np.floor(lengths * (1 - test_fraction))
    t = np.arange(cohort.n_steps)[None, :]
    test = (t >= test_start[:, None]) & (t < lengths[:, None])
    val = (t >= val_start[:, None]) & (t < test_start[:, None])
    no_target = lambda period: [
        s for s, n in zip(_ids(cohort), (cohort.mask[..., target] & period).sum(1), strict=True)
        if n == 0
    ]  # fmt: skip
    no_test, no_val = no_target(test), no_target(val)
    excluded = meta.get("excluded_subjects", [])
    clock = meta.get("time", {})
    warnings = []
    if fraction < SPARSE_GRID:
        warnings.append(
            f"the grid is only {fraction:.2%} observed: the step ({clock.get('step', cohort.step)}) "
            f"is much finer than the data (the median gap between a subject's observations is "
            f"{median_gap(cohort):g} time units); a larger data.step would fit better"
        )
    merged, rows = int(meta.get("merged_observations", 0)), meta.get("rows", {}).get("observations")
    if rows and merged > 0.1 * rows:
        warnings.append(
            f"{merged} of {rows} observation rows ({merged / rows:.0%}) share a grid cell with "
            "another row of the same subject and variable and were averaged (mean within the "
            "cell); a smaller data.step keeps more of them apart"
        )
    warnings += _period_warnings(no_val, no_test, cohort.n_individuals, val_fraction, test_fraction)
    if excluded:
        warnings.append(
            f"{len(excluded)} subject(s) excluded: "
            + "; ".join(f"{e['subject']} ({e['reason']})" for e in excluded[:10])
        )
    return {
        "subjects": cohort.n_individuals,
        "variables": list(cohort.variables),
        "target": cohort.variables[target] if cohort.variables else target,
        "intervention_kinds": list(cohort.intervention_kinds),
        "static_covariates": list(cohort.static_names),
        "grid_steps": cohort.n_steps,
        "step": clock.get("step", cohort.step),
        "time": clock.get("kind", "number"),
        "origin": clock.get("origin", "subject"),
        "fraction_observed": fraction,
        "rows_read": meta.get("rows", {}),
        "rows_in_grid": meta.get("rows_in_grid", {}),
        "rows_merged": int(meta.get("merged_observations", 0)),
        "rows_dropped": int(meta.get("dropped_rows", {}).get("count", 0)),
        "duplicate_rows_removed": int(meta.get("duplicate_rows_removed", 0)),
        "interventions_after_last_observation": int(
            meta.get("interventions_after_last_observation", 0)
        ),
        "subjects_excluded": excluded,
        "subjects_without_test_targets": no_test,
        "subjects_without_validation_targets": no_val,
        "notes": list(meta.get("notes", [])),
        "warnings": warnings,
    }
