"""Linear mixed models (random intercept and slope): a frequentist baseline for growth twins.

For individual ``i`` with ``n_i`` observed rows,

    y_i = X_i beta + Z_i b_i + e_i,   b_i ~ Normal(0, D),   e_i ~ Normal(0, sigma^2 I),

so ``y_i ~ Normal(X_i beta, sigma^2 W_i)`` with ``W_i = I + Z_i Delta Z_i^T`` and the relative
covariance ``Delta = D / sigma^2 = L L^T`` (``L`` lower triangular, log diagonal). Given
``Delta``, ``beta`` is the GLS estimate and ``sigma^2`` has a closed form, so the likelihood is
profiled down to the ``q (q + 1) / 2`` entries of ``L`` (Pinheiro and Bates 2000, ch. 2; Bates et
al. 2015, lme4) and maximized with Nelder-Mead, ML or REML. Forecasts are the BLUPs of the new
rows with the prediction-error variance of known variance components, including the uncertainty
of ``beta``.

Arrays are padded per individual (``[N, T, ...]`` with a ``mask``); padded rows never count. The
arithmetic is float64 NumPy: a baseline's fit must not depend on the accelerator's precision.
"""

from typing import NamedTuple

import numpy as np
from jaxtyping import Bool, Float
from scipy.optimize import minimize

_LOG_2PI = float(np.log(2.0 * np.pi))


class MixedFit(NamedTuple):
    """A fitted linear mixed model.

    Attributes:
        beta: fixed effects ``[p]``.
        cov_beta: their covariance ``[p, p]`` (given the variance components).
        D: random-effect covariance ``[q, q]``.
        sigma2: residual variance.
        loglik: the maximized log-likelihood (ML) or restricted log-likelihood (REML).
        method: ``"ml"`` or ``"reml"``.
        converged: whether the optimizer reported success.
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    D: np.ndarray
    sigma2: float
    loglik: float
    method: str
    converged: bool


class _Terms(NamedTuple):
    beta: np.ndarray
    xtwx: np.ndarray  # sum_i X_i^T W_i^-1 X_i
    quad: float  # sum_i r_i^T W_i^-1 r_i at beta
    logdet_w: float
    n: int


def _masked(y, mask, X, Z):
    m = np.asarray(mask, bool)
    y = np.where(m, np.asarray(y, np.float64), 0.0)
    X = np.asarray(X, np.float64) * m[..., None]
    Z = np.asarray(Z, np.float64) * m[..., None]
    return y, m, X, Z


def _w(delta, Z):
    """``W_i = I + Z_i Delta Z_i^T`` ``[N, T, T]`` (identity on padded rows, whose Z is 0)."""
    t = Z.shape[1]
    return np.eye(t) + Z @ delta @ np.swapaxes(Z, 1, 2)


def _gls(delta, y, X, Z, n) -> _Terms:
    w = _w(delta, Z)
    chol = np.linalg.cholesky(w)
    logdet = 2.0 * float(np.log(np.diagonal(chol, axis1=1, axis2=2)).sum())
    winv_x = np.linalg.solve(w, X)
    winv_y = np.linalg.solve(w, y[..., None])[..., 0]
    xtwx = np.einsum("ntp,ntk->pk", X, winv_x)
    xtwy = np.einsum("ntp,nt->p", X, winv_y)
    beta = np.linalg.solve(xtwx, xtwy)
    r = y - X @ beta
    quad = float(np.einsum("nt,nt->", r, np.linalg.solve(w, r[..., None])[..., 0]))
    return _Terms(beta, xtwx, quad, logdet, n)


def _delta(theta: np.ndarray, q: int) -> np.ndarray:
    L = np.zeros((q, q))
    L[np.tril_indices(q)] = theta
    L[np.diag_indices(q)] = np.exp(np.diag(L))
    return L @ L.T


def _neg2ll(terms: _Terms, method: str) -> float:
    """-2 log-likelihood profiled over beta and sigma^2."""
    p = terms.beta.shape[0]
    dof = terms.n - (p if method == "reml" else 0)
    out = terms.logdet_w + dof * (np.log(terms.quad / dof) + 1.0 + _LOG_2PI)
    if method == "reml":
        out += np.linalg.slogdet(terms.xtwx)[1]
    return float(out)


def gls(
    y: Float[np.ndarray, "individuals time"],
    mask: Bool[np.ndarray, "individuals time"],
    X: Float[np.ndarray, "individuals time p"],
    Z: Float[np.ndarray, "individuals time q"],
    D: Float[np.ndarray, "q q"],
    sigma2: float,
) -> tuple[np.ndarray, np.ndarray]:
    """GLS fixed effects ``beta`` and their covariance for known ``D`` and ``sigma2``."""
    y, m, X, Z = _masked(y, mask, X, Z)
    terms = _gls(np.asarray(D) / sigma2, y, X, Z, int(m.sum()))
    return terms.beta, sigma2 * np.linalg.inv(terms.xtwx)


def fit_lme(
    y: Float[np.ndarray, "individuals time"],
    mask: Bool[np.ndarray, "individuals time"],
    X: Float[np.ndarray, "individuals time p"],
    Z: Float[np.ndarray, "individuals time q"],
    *,
    method: str = "reml",
    max_iter: int = 4000,
) -> MixedFit:
    """Fits the linear mixed model by profiled ML or REML.

    Args:
        y, mask: responses and which are observed, padded per individual.
        X: fixed-effect design (e.g. a column of ones, time and covariates).
        Z: random-effect design (e.g. ones and time: random intercept and slope).
        method: ``"reml"`` (unbiased variance components) or ``"ml"``.
        max_iter: Nelder-Mead iterations.

    Returns:
        A :class:`MixedFit`.

    Raises:
        ValueError: bad method, shapes that disagree, or a rank-deficient fixed-effect design.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> t = np.tile(np.arange(5.0), (200, 1))
        >>> b = rng.normal(size=(200, 2)) * [1.0, 0.3]
        >>> y = 2.0 + 0.5 * t + b[:, :1] + b[:, 1:] * t + 0.2 * rng.normal(size=t.shape)
        >>> design = np.stack([np.ones_like(t), t], -1)
        >>> fit = fit_lme(y, np.ones_like(t, bool), design, design)
        >>> fit.beta.round(2).tolist(), np.sqrt(np.diag(fit.D)).round(2).tolist()
        ([1.88, 0.52], [0.98, 0.3])
        >>> round(float(np.sqrt(fit.sigma2)), 3), fit.converged
        (0.197, True)
    """
    if method not in ("ml", "reml"):
        raise ValueError(f"method={method!r}: use ml or reml")
    y, m, X, Z = _masked(y, mask, X, Z)
    if X.shape[:2] != y.shape or Z.shape[:2] != y.shape:
        raise ValueError(f"X {X.shape} and Z {Z.shape} must have the rows of y {y.shape}")
    n, p, q = int(m.sum()), X.shape[-1], Z.shape[-1]
    if np.linalg.matrix_rank(X[m]) < p:
        raise ValueError(f"the fixed-effect design ({p} columns) is rank-deficient")
    objective = lambda th: _neg2ll(_gls(_delta(th, q), y, X, Z, n), method)
    res = minimize(
        objective,
        np.zeros(q * (q + 1) // 2),
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": max_iter, "maxfev": 2 * max_iter},
    )
    delta = _delta(res.x, q)
    terms = _gls(delta, y, X, Z, n)
    sigma2 = terms.quad / (n - (p if method == "reml" else 0))
    return MixedFit(
        beta=terms.beta,
        cov_beta=sigma2 * np.linalg.inv(terms.xtwx),
        D=sigma2 * delta,
        sigma2=float(sigma2),
        loglik=-0.5 * float(res.fun),
        method=method,
        converged=bool(res.success),
    )


def blup(
    fit: MixedFit,
    y: Float[np.ndarray, "individuals time"],
    mask: Bool[np.ndarray, "individuals time"],
    X: Float[np.ndarray, "individuals time p"],
    Z: Float[np.ndarray, "individuals time q"],
) -> Float[np.ndarray, "individuals q"]:
    """Each individual's predicted random effects ``D Z_i^T V_i^-1 (y_i - X_i beta)``."""
    y, _, X, Z = _masked(y, mask, X, Z)
    delta = fit.D / fit.sigma2
    r = y - X @ fit.beta
    return np.einsum("qk,ntk,nt->nq", delta, Z, np.linalg.solve(_w(delta, Z), r[..., None])[..., 0])


def predict_lme(
    fit: MixedFit,
    y: Float[np.ndarray, "individuals time"],
    mask: Bool[np.ndarray, "individuals time"],
    X: Float[np.ndarray, "individuals time p"],
    Z: Float[np.ndarray, "individuals time q"],
    X_new: Float[np.ndarray, "individuals new p"],
    Z_new: Float[np.ndarray, "individuals new q"],
) -> tuple[Float[np.ndarray, "individuals new"], Float[np.ndarray, "individuals new"]]:
    """Forecasts of new rows of each individual from that individual's observed rows.

    The mean is ``x* beta + z* b_i`` (the BLUP); the SD is that of the prediction error
    ``y* - mean`` for known variance components: the conditional variance of ``y*`` given
    ``y_i`` plus ``a Cov(beta) a^T`` with ``a = x* - z* Delta Z_i^T W_i^-1 X_i`` (``beta`` is
    estimated from all individuals; ``y*`` is independent of the others).

    Returns:
        ``(mean, sd)`` of the new rows.
    """
    y, _, X, Z = _masked(y, mask, X, Z)
    delta = fit.D / fit.sigma2
    w = _w(delta, Z)
    zd = np.asarray(Z_new, np.float64) @ delta  # [N, H, q]
    cross = zd @ np.swapaxes(Z, 1, 2)  # z* Delta Z_i^T  [N, H, T]
    cross_winv = np.swapaxes(np.linalg.solve(w, np.swapaxes(cross, 1, 2)), 1, 2)
    r = y - X @ fit.beta
    mean = np.asarray(X_new) @ fit.beta + np.einsum("nht,nt->nh", cross_winv, r)
    a = np.asarray(X_new) - cross_winv @ X
    cond = np.einsum("nhq,nhq->nh", zd, Z_new) + 1.0 - np.einsum("nht,nht->nh", cross_winv, cross)
    var = fit.sigma2 * cond + np.einsum("nhp,pk,nhk->nh", a, fit.cov_beta, a)
    return mean, np.sqrt(var)
