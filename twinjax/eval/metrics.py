"""Per-individual forecast metrics for Gaussian predictions (:func:`twinjax.eval.score.score`'s
per-individual rows, and the Gaussian NLL)."""

import numpy as np
from jaxtyping import ArrayLike, Bool, Float

from twinjax.eval.score import Forecast, score


def gaussian_metrics(
    mean: Float[ArrayLike, "individuals targets"],
    scale: Float[ArrayLike, "individuals targets"],
    y: Float[ArrayLike, "individuals targets"],
    mask: Bool[ArrayLike, "individuals targets"],
) -> dict[str, np.ndarray]:
    """RMSE, MAE, Gaussian NLL and central 50%/90% interval coverage, per individual.

    Only observed targets count; an individual without any gets NaN (and ``count`` 0).

    Args:
        mean: predictive means.
        scale: predictive standard deviations (> 0).
        y: observed targets (anything where ``mask`` is False is ignored).
        mask: True where a target was observed.

    Returns:
        Per-individual arrays ``[individuals]``: ``rmse``, ``mae``, ``nll``, ``count``,
        ``coverage50`` and ``coverage90``.

    Example:
        >>> import numpy as np
        >>> m = gaussian_metrics(np.zeros((2, 2)), np.ones((2, 2)), np.array([[1.0, -1.0], [3.0, 0.0]]),
        ...                      np.array([[True, True], [True, False]]))
        >>> m["rmse"].tolist(), m["coverage90"].tolist(), m["count"].tolist()
        ([1.0, 3.0], [1.0, 0.0], [2, 1])
    """
    mean, scale, y, mask = (np.asarray(a, np.float64) for a in (mean, scale, y, mask))
    mask = mask.astype(bool)
    rows = score(Forecast(mean=mean, scale=scale, y=y, mask=mask))["per_individual"]
    count = rows["n"].to_numpy()
    err = np.where(mask, y - mean, 0.0)
    nll = 0.5 * np.log(2 * np.pi) + np.log(scale) + 0.5 * (err / scale) ** 2
    return {
        "rmse": rows["rmse"].to_numpy(float),
        "mae": rows["mae"].to_numpy(float),
        "nll": np.where(count > 0, np.where(mask, nll, 0).sum(-1) / np.maximum(count, 1), np.nan),
        "count": count,
        "coverage50": rows["coverage_50"].to_numpy(float),
        "coverage90": rows["coverage_90"].to_numpy(float),
    }


def summarize(per_individual: dict[str, np.ndarray]) -> dict[str, float]:
    """Cohort summary: mean over individuals, and pooled coverage over all targets.

    Args:
        per_individual: the output of :func:`gaussian_metrics`.

    Returns:
        ``<metric>_mean`` over individuals with targets, ``coverage<level>_pooled``,
        ``rmse_median`` and ``n_targets``.
    """
    count = per_individual["count"]
    out = {}
    for k, v in per_individual.items():
        if k == "count":
            out["n_targets"] = int(count.sum())
            continue
        ok = count > 0
        out[f"{k}_mean"] = float(np.mean(v[ok]))
        if k.startswith("coverage"):
            out[f"{k}_pooled"] = float(np.sum(v[ok] * count[ok]) / count[ok].sum())
        if k == "rmse":
            out["rmse_median"] = float(np.median(v[ok]))
    return out
