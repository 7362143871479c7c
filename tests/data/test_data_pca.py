"""PCA in JAX vs numpy's covariance eigenvalues and SVD; exact reconstruction at full rank; masks."""

import numpy as np
import pytest

from twinjax.data.pca import pca_fit, pca_inverse, pca_transform


def correlated(seed=0, n=400, f=5):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(f, f)) * np.array([3.0, 2.0, 1.0, 0.5, 0.1])[:f, None]
    return (rng.normal(size=(n, f)) @ mix + rng.normal(size=f)).astype(np.float32)


def test_matches_numpy_eigenvalues_and_svd():
    x = correlated()
    state = pca_fit(x, n_components=5)
    eig = np.sort(np.linalg.eigvalsh(np.cov(x.astype(np.float64), rowvar=False)))[::-1]
    np.testing.assert_allclose(state.explained_variance_ratio, eig / eig.sum(), atol=1e-5)
    np.testing.assert_allclose(state.explained_variance, eig, rtol=1e-4)
    xc = x.astype(np.float64) - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    np.testing.assert_allclose(state.explained_variance, s**2 / (len(x) - 1), rtol=1e-4)
    # components equal the right singular vectors up to sign
    np.testing.assert_allclose(
        np.abs(np.sum(np.asarray(state.components) * vt, axis=1)), 1.0, atol=1e-4
    )
    np.testing.assert_allclose(state.components @ state.components.T, np.eye(5), atol=1e-5)
    np.testing.assert_allclose(state.mean, x.mean(0), rtol=1e-5, atol=1e-5)


def test_full_rank_reconstructs_exactly_and_truncation_keeps_top_components():
    x = correlated(1)
    full = pca_fit(x, n_components=5)
    np.testing.assert_allclose(
        pca_inverse(full, pca_transform(full, x)), x, atol=1e-5 * np.abs(x).max()
    )
    two = pca_fit(x, n_components=2)
    np.testing.assert_allclose(two.components, full.components[:2], atol=1e-6)
    z = pca_transform(two, x)
    assert z.shape == (len(x), 2)
    # residual variance of a rank-2 reconstruction is the sum of the dropped eigenvalues
    resid = ((pca_inverse(two, z) - x) ** 2).sum(1).sum() / (len(x) - 1)
    np.testing.assert_allclose(resid, full.explained_variance[2:].sum(), rtol=1e-3)


def test_masked_rows_are_excluded_and_batch_axes_are_rows():
    x = correlated(2, n=240).reshape(4, 60, 5)
    rows = np.random.default_rng(0).random((4, 60)) < 0.7
    garbage = np.where(rows[..., None], x, np.nan)  # excluded rows hold junk
    state = pca_fit(garbage, rows, n_components=3)
    ref = pca_fit(x[rows], n_components=3)
    np.testing.assert_allclose(state.explained_variance, ref.explained_variance, rtol=1e-4)
    np.testing.assert_allclose(state.components, ref.components, atol=1e-4)
    # a [..., F] feature mask keeps a row only if every feature is observed
    feat = np.broadcast_to(rows[..., None], x.shape).copy()
    feat[0, 0, 1] = False
    rows2 = rows.copy()
    rows2[0, 0] = False
    ref2 = pca_fit(x[rows2], n_components=3)
    np.testing.assert_allclose(pca_fit(garbage, feat, n_components=3).mean, ref2.mean, rtol=1e-5)
    assert pca_transform(state, x).shape == (4, 60, 3)


def test_bad_n_components():
    with pytest.raises(ValueError, match="n_components"):
        pca_fit(correlated(), n_components=6)
