"""Per-individual forecast metrics for Gaussian predictions."""

import numpy as np
from jaxtyping import ArrayLike, Bool, Float
from scipy.special import ndtri

_Z = {level: float(ndtri(0.5 + level / 2)) for level in (0.5, 0.9)}


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
    mean, scale, y, mask = map(np.asarray, (mean, scale, y, mask))
    count = mask.sum(-1)
    avg = lambda x: np.where(count > 0, np.where(mask, x, 0).sum(-1) / np.maximum(count, 1), np.nan)
    err = y - mean
    out = {
        "rmse": np.sqrt(avg(err**2)),
        "mae": avg(np.abs(err)),
        "nll": avg(0.5 * np.log(2 * np.pi) + np.log(scale) + 0.5 * (err / scale) ** 2),
        "count": count,
    }
    for level, z in _Z.items():
        out[f"coverage{int(level * 100)}"] = avg(np.abs(err) <= z * scale)
    return out


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
