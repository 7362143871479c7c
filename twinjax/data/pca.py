"""Principal component analysis in JAX over the feature axis, with masked rows left out of the fit."""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

_HI = jax.lax.Precision.HIGHEST


class PCAState(NamedTuple):
    mean: Float[Array, " features"]
    components: Float[Array, "components features"]  # orthonormal rows, by decreasing variance
    explained_variance: Float[Array, " components"]  # eigenvalues of the covariance (ddof 1)
    explained_variance_ratio: Float[Array, " components"]  # share of the total variance


@partial(jax.jit, static_argnames="n_components")
def pca_fit(
    x: Float[ArrayLike, "*rows features"],
    mask: Bool[ArrayLike, "*rows"] | Bool[ArrayLike, "*rows features"] | None = None,
    *,
    n_components: int,
) -> PCAState:
    """Fits PCA to the rows of ``x`` (all leading axes are rows).

    ``mask`` selects the rows that enter the fit: shape ``x.shape[:-1]``, or ``x.shape`` (then a row
    counts only if every feature is observed). The covariance (ddof 1, over the selected rows) is
    eigendecomposed, so the cost is linear in the number of rows. Each component's sign makes its
    largest-magnitude loading positive.

    Args:
        x: data ``[..., F]``; every leading index is a row.
        mask: which rows (or cells) enter the fit, or None for all.
        n_components: number of components kept (static).

    Returns:
        A :class:`PCAState` (mean, components, explained variance and its ratio).

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
        >>> state = pca_fit(x, n_components=1)
        >>> state.explained_variance_ratio.tolist()
        [1.0]
        >>> pca_transform(state, x)[:, 0].round(3).tolist()
        [-1.414, 0.0, 1.414]
    """
    x = jnp.asarray(x)
    f = x.shape[-1]
    if not 0 < n_components <= f:
        raise ValueError(f"n_components must be in 1..{f}, got {n_components}")
    rows = x.reshape(-1, f)
    if mask is None:
        w = jnp.ones(rows.shape[0], rows.dtype)
    else:
        mask = jnp.asarray(mask, dtype=bool)
        mask = mask.all(axis=-1) if mask.shape == x.shape else mask
        w = mask.reshape(-1).astype(rows.dtype)
    keep = w[:, None] > 0
    rows = jnp.where(keep, rows, 0.0)  # excluded rows may hold NaN or junk
    n = w.sum()
    mean = rows.sum(axis=0) / jnp.maximum(n, 1)
    centred = jnp.where(keep, rows - mean, 0.0)
    cov = jnp.matmul(centred.T, centred, precision=_HI) / jnp.maximum(n - 1, 1)
    eigval, eigvec = jnp.linalg.eigh(cov)  # ascending
    eigval, eigvec = jnp.clip(eigval[::-1], 0.0), eigvec[:, ::-1].T
    pivot = jnp.argmax(jnp.abs(eigvec), axis=1)
    sign = jnp.sign(eigvec[jnp.arange(f), pivot])
    eigvec = eigvec * jnp.where(sign == 0, 1.0, sign)[:, None]
    ratio = eigval / jnp.maximum(eigval.sum(), jnp.finfo(eigval.dtype).tiny)
    k = n_components
    return PCAState(mean, eigvec[:k], eigval[:k], ratio[:k])


def pca_transform(
    state: PCAState, x: Float[ArrayLike, "*rows features"]
) -> Float[Array, "*rows components"]:
    """Scores of ``x`` on the components: ``(x - mean) @ components.T``."""
    return jnp.matmul(jnp.asarray(x) - state.mean, state.components.T, precision=_HI)


def pca_inverse(
    state: PCAState, z: Float[ArrayLike, "*rows components"]
) -> Float[Array, "*rows features"]:
    """Back to feature space: ``z @ components + mean`` (exact at full rank)."""
    return jnp.matmul(jnp.asarray(z), state.components, precision=_HI) + state.mean
