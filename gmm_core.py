"""Painless GMM: a Gaussian mixture model that does not break.

One module, numpy only, read top to bottom in the order of the book:

1. the model and sampling from it;
2. naive EM, the textbook formulas typed in as they stand (they fail, on purpose);
3. the log domain: log-sum-exp, Gaussian log-densities through a Cholesky factor, the log E-step;
4. singular covariances: the RCOND test, the seed's guard, and the constrained M-step that
   clips eigenvalues at tau; empty components;
5. initialisation: K-means with Forgy initialisation;
6. whitening (feature moments in one pass) and un-whitening;
7. the painless EM, by sufficient statistics that add: ``block_stats``, ``m_step_stats``,
   ``em_steps``, ``fit`` and ``fit_stats`` (in memory, out of core, on a cluster);
8. a scikit-learn estimator, ``GaussianMixture``.

Symbols: ``X`` is the data z (N x d), ``weights`` the mixing weights P(k) = pi_k, ``means`` mu_k,
``covariances`` Sigma_k, ``resp`` the responsibilities p(k | z_i) and ``log_resp`` their logs.
Copy this file into a project as it is: it needs nothing but numpy.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RCOND_MIN", "MIN_VARIANCE", "REL_TOL", "MAX_ITER",
    "check_data", "check_params", "sample",
    "gaussian_pdf", "naive_e_step", "m_step", "naive_likelihood", "naive_em_steps", "naive_em",
    "logsumexp", "gaussian_logpdf", "log_gaussian_prob", "log_e_step",
    "rcond", "guard_covariance", "guard_covariances", "clip_covariance", "clip_covariances",
    "empty_components", "m_step_guarded",
    "kmeans", "init_from_kmeans", "init_random",
    "Moments", "moments", "whiten", "to_em_units", "unwhiten", "whiten_params",
    "EMState", "GMMFit", "SuffStats", "block_stats", "m_step_stats", "sample_rows",
    "em_steps", "fit", "fit_stats",
    "GaussianMixture", "NotFittedError",
]

#: A covariance whose reciprocal condition number is at most this cannot be factorised
#: reliably: the seed's guard replaces it (chapter 5).
RCOND_MIN = 1e-10
#: tau: no covariance eigenvalue may be smaller, in the units EM runs in (whitened: chapter 5).
MIN_VARIANCE = 1e-6
#: Stop when the likelihood grows by less than this fraction, 0.01 % (chapter 8).
REL_TOL = 1e-4
#: ... or after this many iterations.
MAX_ITER = 100


# --------------------------------------------------------------------------------------------
# Input checks (used everywhere)
# --------------------------------------------------------------------------------------------

def check_data(X, *, dtype=np.float64, name="X"):
    """Return `X` as a finite 2-D float array, or raise a ValueError that names the problem.

    Parameters
    ----------
    X : array-like of shape (N, d) or (N,)
        The data. A 1-D array is taken as N points with one feature each.
    dtype : numpy dtype or None
        The dtype of the result; None keeps a floating dtype as it is (the naive code uses this
        to show float32 failures).
    name : str
        The name used in error messages.

    Returns
    -------
    X : ndarray of shape (N, d)
    """
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    if np.iscomplexobj(X):
        raise ValueError(f"{name} must be real, got complex values")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N points x d features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one point and one feature, "
                         f"got shape {X.shape}")
    if dtype is None:
        dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
    X = np.asarray(X, dtype=dtype)
    if not np.all(np.isfinite(X)):
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{name} contains NaN or infinity "
                         f"(first at row {i}, column {j}: {X[i, j]})")
    return X


def _check_k(k, n_points):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"the number of components k must be an integer, got {k!r}")
    if k < 1:
        raise ValueError(f"the number of components k must be at least 1, got {k}")
    if k > n_points:
        raise ValueError(f"k = {k} components is more than the number of points ({n_points})")
    return int(k)


def _check_positive(value, name):
    if not (isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)
            and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_max_iter(max_iter):
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    return int(max_iter)


def check_params(weights, means, covariances):
    """Check the parameters of a mixture and return them as float64 arrays.

    Parameters
    ----------
    weights : array-like of shape (K,)
        Mixing weights P(k): non-negative, summing to 1.
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)
        Symmetric covariance matrices.

    Returns
    -------
    weights, means, covariances : ndarrays of shapes (K,), (K, d), (K, d, d)
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    if weights.ndim != 1 or means.ndim != 2 or covariances.ndim != 3:
        raise ValueError("weights, means, covariances must have shapes (K,), (K, d), (K, d, d); "
                         f"got {weights.shape}, {means.shape}, {covariances.shape}")
    k, d = means.shape
    if weights.shape != (k,) or covariances.shape != (k, d, d):
        raise ValueError("weights, means, covariances must have shapes (K,), (K, d), (K, d, d); "
                         f"got {weights.shape}, {means.shape}, {covariances.shape}")
    for name, a in (("weights", weights), ("means", means), ("covariances", covariances)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contain NaN or infinity")
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-8):
        raise ValueError(f"weights must be non-negative and sum to 1, got {weights}")
    for j, cov in enumerate(covariances):
        size = max(float(np.abs(cov).max()), np.finfo(np.float64).tiny)
        if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * size):
            raise ValueError(f"covariances[{j}] (component {j + 1}) is not symmetric")
        lowest = float(np.linalg.eigvalsh(cov / size)[0])
        if lowest < -1e-10:
            raise ValueError(f"covariances[{j}] (component {j + 1}) is not positive "
                             f"semi-definite: its smallest eigenvalue is {lowest * size:.3g}")
    return weights, means, covariances


# --------------------------------------------------------------------------------------------
# 1. The model: p(z) = sum_k P(k) N(z | mu_k, Sigma_k)
# --------------------------------------------------------------------------------------------

def sample(weights, means, covariances, n, rng):
    """Draw `n` points from a Gaussian mixture.

    Parameters
    ----------
    weights : array-like of shape (K,)
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)
        Symmetric positive semi-definite.
    n : int
        Number of points.
    rng : numpy.random.Generator or int
        The random generator, or a seed for one.

    Returns
    -------
    X : ndarray of shape (n, d)
    labels : ndarray of shape (n,)
        The component each point was drawn from.
    """
    weights, means, covariances = check_params(weights, means, covariances)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    rng = np.random.default_rng(rng)
    k, d = means.shape
    labels = rng.choice(k, size=n, p=weights / weights.sum())
    noise = rng.standard_normal((n, d))
    X = np.empty((n, d))
    for j in range(k):
        # An eigendecomposition works for singular (e.g. zero) covariances too.
        vals, vecs = np.linalg.eigh(covariances[j])
        factor = vecs * np.sqrt(np.clip(vals, 0, None))
        idx = labels == j
        X[idx] = means[j] + noise[idx] @ factor.T
    return X, labels


# --------------------------------------------------------------------------------------------
# 2. Naive EM: the textbook formulas, typed in as they stand
# --------------------------------------------------------------------------------------------

def gaussian_pdf(X, mean, cov):
    """The Gaussian density N(z | mu, Sigma), straight from the textbook.

    p(z | k) = exp(-1/2 (z - mu)^T Sigma^-1 (z - mu)) / sqrt((2 pi)^d det(Sigma)), with an
    explicit inverse and determinant. It underflows to 0 far from the mean and fails on a
    singular Sigma.

    Parameters
    ----------
    X : array-like of shape (N, d)
    mean : array-like of shape (d,)
    cov : array-like of shape (d, d)

    Returns
    -------
    pdf : ndarray of shape (N,)
    """
    X = check_data(X, dtype=None)
    dtype = X.dtype
    mean = np.asarray(mean, dtype=dtype)
    cov = np.asarray(cov, dtype=dtype)
    d = X.shape[1]
    diff = X - mean
    inv = np.linalg.inv(cov)
    det = np.linalg.det(cov)
    quad = np.sum((diff @ inv) * diff, axis=1)
    return np.exp(-0.5 * quad) / np.sqrt((2 * np.pi) ** d * det)


def naive_e_step(X, weights, means, covariances):
    """Responsibilities p(k | z_i) = p(z_i | k) P(k) / p(z_i), computed as written.

    Parameters
    ----------
    X : array-like of shape (N, d)
    weights : array-like of shape (K,)
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)

    Returns
    -------
    resp : ndarray of shape (N, K)
        0/0 = nan for a point whose density underflows in every component.
    """
    X = check_data(X, dtype=None)
    p = np.stack([w * gaussian_pdf(X, m, c) for w, m, c in zip(weights, means, covariances)],
                 axis=1)
    return p / p.sum(axis=1, keepdims=True)


def m_step(X, resp):
    """The M-step: new weights, means and covariances from the responsibilities.

    N_k = sum_i p_ki, P(k) = N_k / N, mu_k = sum_i p_ki z_i / N_k and
    Sigma_k = sum_i p_ki (z_i - mu_k)(z_i - mu_k)^T / N_k. A component with N_k = 0 divides by zero.

    Parameters
    ----------
    X : array-like of shape (N, d)
    resp : array-like of shape (N, K)

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    """
    X = check_data(X, dtype=None)
    resp = np.asarray(resp, dtype=X.dtype)
    nk = resp.sum(axis=0)
    weights = nk / X.shape[0]
    means = (resp.T @ X) / nk[:, None]
    return weights, means, _weighted_covariances(X, resp, means, nk)


def _weighted_covariances(X, resp, means, nk):
    """Sigma_k = sum_i p_ki (z_i - mu_k)(z_i - mu_k)^T / N_k, two-pass (centred) form."""
    k, d = means.shape
    covariances = np.empty((k, d, d), dtype=X.dtype)
    for j in range(k):
        diff = X - means[j]
        cov = (resp[:, j, None] * diff).T @ diff / nk[j]
        covariances[j] = 0.5 * (cov + cov.T)
    return covariances


def naive_likelihood(X, weights, means, covariances):
    """The likelihood of the data, p(z) = prod_i sum_k P(k) p(z_i | k), as a product.

    Parameters
    ----------
    X : array-like of shape (N, d)
    weights : array-like of shape (K,)
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)

    Returns
    -------
    likelihood : float
        Underflows to 0.0 long before N is large.
    """
    X = check_data(X, dtype=None)
    p = sum(w * gaussian_pdf(X, m, c) for w, m, c in zip(weights, means, covariances))
    return np.prod(p)


def naive_em_steps(X, weights, means, covariances, *, max_iter=MAX_ITER, rel_tol=REL_TOL):
    """Naive EM, one state at a time: the textbook loop with no safeguard at all.

    Yields an `EMState` after the start and after every E-step and M-step. It stops when the
    likelihood p(z) grows by less than `rel_tol` (as a fraction), or after `max_iter` M-steps, or
    when an exception (singular matrix) escapes from the formulas. Its log-likelihood is
    log(p(z)) of the product, so -inf once the product has underflowed.

    Parameters
    ----------
    X : array-like of shape (N, d)
    weights, means, covariances : array-likes of shapes (K,), (K, d), (K, d, d)
        The starting parameters.
    max_iter : int
    rel_tol : float

    Yields
    ------
    state : EMState
    """
    X = check_data(X, dtype=None)
    max_iter = _check_max_iter(max_iter)
    _check_positive(rel_tol, "rel_tol")
    weights, means, covariances = (np.asarray(a, dtype=X.dtype)
                                   for a in (weights, means, covariances))
    yield EMState(0, "init", weights, means, covariances, None, None)
    previous = None
    for iteration in range(max_iter + 1):
        resp = naive_e_step(X, weights, means, covariances)
        likelihood = naive_likelihood(X, weights, means, covariances)
        with np.errstate(divide="ignore"):
            log_likelihood = float(np.log(likelihood))
        converged = previous is not None and not likelihood > previous * (1 + rel_tol)
        yield EMState(iteration, "E", weights, means, covariances, resp, log_likelihood,
                      converged)
        if converged or iteration == max_iter:
            return
        previous = likelihood
        weights, means, covariances = m_step(X, resp)
        yield EMState(iteration + 1, "M", weights, means, covariances, resp, log_likelihood)


def naive_em(X, weights, means, covariances, *, max_iter=MAX_ITER, rel_tol=REL_TOL):
    """Run naive EM to the end of `naive_em_steps` and return the last state as a `GMMFit`.

    Parameters
    ----------
    X : array-like of shape (N, d)
    weights, means, covariances : array-likes of shapes (K,), (K, d), (K, d, d)
        The starting parameters.
    max_iter : int
    rel_tol : float

    Returns
    -------
    result : GMMFit
        ``history`` holds log p(z) after each E-step.
    """
    return _collect(naive_em_steps(X, weights, means, covariances,
                                   max_iter=max_iter, rel_tol=rel_tol))


# --------------------------------------------------------------------------------------------
# 3. The log domain: log-sum-exp and log-densities
# --------------------------------------------------------------------------------------------

def logsumexp(a, axis=None, keepdims=False):
    """log(sum(exp(a))) without overflow or underflow.

    Shifts by the maximum m and adds the rest with log1p, which keeps the digits of small terms:
    log sum_j exp(a_j) = m + log1p(sum_{j != argmax} exp(a_j - m)). A slice of all -inf gives
    -inf, without a warning.

    Parameters
    ----------
    a : array-like
    axis : int or None
        The axis to sum over; None sums over all entries.
    keepdims : bool
        Keep the summed axis with length 1.

    Returns
    -------
    lse : ndarray or float
    """
    a = np.asarray(a, dtype=np.float64)
    if axis is None:
        if keepdims:  # numpy's convention: every axis kept, with length 1
            return np.reshape(logsumexp(a), (1,) * a.ndim)
        a = a.reshape(-1)
        axis = 0
    if a.shape[axis] == 0:
        raise ValueError("logsumexp of an empty array")
    top = np.argmax(a, axis=axis)
    top = np.expand_dims(top, axis)
    m = np.take_along_axis(a, top, axis=axis)
    shift = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        terms = np.exp(a - shift)
    np.put_along_axis(terms, top, 0.0, axis=axis)  # the max's own term, exp(0) = 1, goes in log1p
    rest = terms.sum(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore"):
        lse = m + np.log1p(rest)
    if not keepdims:
        lse = np.squeeze(lse, axis=axis)
    return lse[()] if lse.ndim == 0 else lse


def gaussian_logpdf(X, mean, cov):
    """The Gaussian log-density l(z | k) = log N(z | mu, Sigma), one component.

    l = -d/2 log(2 pi) - 1/2 log det(Sigma) - 1/2 (z - mu)^T Sigma^-1 (z - mu), with Sigma = L L^T
    (Cholesky): log det(Sigma) = 2 sum log L_jj and the quadratic form is ||L^-1 (z - mu)||^2, from
    a solve, never an explicit inverse.

    Parameters
    ----------
    X : array-like of shape (N, d)
    mean : array-like of shape (d,)
    cov : array-like of shape (d, d)
        Symmetric positive definite.

    Returns
    -------
    logpdf : ndarray of shape (N,)
    """
    X = check_data(X)
    d = X.shape[1]
    L = _cholesky(np.asarray(cov, dtype=np.float64)[None])[0]
    y = np.linalg.solve(L, (X - mean).T)
    log_det = 2.0 * np.sum(np.log(np.diag(L)))
    return -0.5 * (d * math.log(2 * math.pi) + log_det + np.sum(y * y, axis=0))


def _cholesky(covariances):
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        raise ValueError("a covariance matrix is not positive definite; clip its eigenvalues "
                         "first (clip_covariance) or scale the data (whiten)") from None


def _precision_cholesky(covariances):
    """P_k = L_k^-T for Sigma_k = L_k L_k^T, so that Sigma_k^-1 = P_k P_k^T; shape (K, d, d)."""
    L = _cholesky(covariances)
    eye = np.broadcast_to(np.eye(L.shape[-1]), L.shape)
    return np.linalg.solve(L, eye).transpose(0, 2, 1)


def log_gaussian_prob(X, means, covariances):
    """l(z_i | k) for every point and component at once.

    The K quadratic forms come from one matrix product: with P_k = L_k^-T,
    (z - mu_k)^T Sigma_k^-1 (z - mu_k) = ||z P_k - mu_k P_k||^2. Accurate when the data are
    centred and scaled (whitened); `gaussian_logpdf` is the one-component reference.

    Parameters
    ----------
    X : array-like of shape (N, d)
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)

    Returns
    -------
    log_prob : ndarray of shape (N, K)
    """
    X = check_data(X)
    prec = _precision_cholesky(np.asarray(covariances, dtype=np.float64))
    return _log_gaussian_prob(X, np.asarray(means, dtype=np.float64), prec)


def _log_gaussian_prob(X, means, prec, out=None):
    n, d = X.shape
    k = means.shape[0]
    # log|Sigma_k|^(-1/2) = sum_j log (P_k)_jj, as the diagonal of L^-T is 1 / diag(L).
    half_log_det = np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
    stacked = prec.transpose(1, 0, 2).reshape(d, k * d)          # [P_1 | P_2 | ... | P_K]
    y = X @ stacked
    y -= np.einsum("kd,kde->ke", means, prec).reshape(k * d)
    y *= y
    maha = np.einsum("nkd->nk", y.reshape(n, k, d), out=out)
    maha *= -0.5
    maha += half_log_det - 0.5 * d * math.log(2 * math.pi)
    return maha


def log_e_step(X, weights, means, covariances):
    """The E-step in the log domain.

    l_ki = l(z_i | k) + log P(k) - l(z_i), with l(z_i) = LSE_k(l(z_i | k) + log P(k)).

    Parameters
    ----------
    X : array-like of shape (N, d)
    weights : array-like of shape (K,)
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)

    Returns
    -------
    log_resp : ndarray of shape (N, K)
        log p(k | z_i); exp(log_resp) sums to 1 over k.
    log_lik : ndarray of shape (N,)
        l(z_i) = log p(z_i); its sum is the log-likelihood of the data.
    """
    X = check_data(X)
    weighted = log_gaussian_prob(X, means, covariances)
    with np.errstate(divide="ignore"):  # a weight of 0 is log 0 = -inf, which LSE handles
        weighted += np.log(np.asarray(weights, dtype=np.float64))
    log_lik = logsumexp(weighted, axis=1)
    return weighted - log_lik[:, None], log_lik


# --------------------------------------------------------------------------------------------
# 4. Singular covariances and empty components
# --------------------------------------------------------------------------------------------

def rcond(cov):
    """The reciprocal condition number 1 / (||Sigma||_1 ||Sigma^-1||_1).

    1 for a multiple of the identity, 0 for a singular matrix, tiny for a nearly singular one.

    Parameters
    ----------
    cov : array-like of shape (d, d)

    Returns
    -------
    rcond : float
    """
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square matrix, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        return 0.0
    norm = np.linalg.norm(cov, 1)
    if norm == 0:
        return 0.0
    try:
        with np.errstate(all="ignore"):
            inv_norm = np.linalg.norm(np.linalg.inv(cov), 1)
    except np.linalg.LinAlgError:
        return 0.0
    if not np.isfinite(inv_norm) or inv_norm == 0:
        return 0.0
    return float(1.0 / (norm * inv_norm))


def guard_covariance(cov, *, min_variance=MIN_VARIANCE):
    """Return `cov` if it is safely invertible, else a small, well-conditioned diagonal.

    Safe means RCOND > 1e-10 (`RCOND_MIN`), positive definite, and not vanishingly small: a mean
    variance trace(Sigma) / d above RCOND_MIN * min_variance. (That last test catches a
    component collapsed onto copies of one point, whose variances are rounding noise; RCOND
    cannot see it in 1-D, where it is always 1.) The replacement is s I with
    s = max(trace(Sigma) / d, min_variance): it keeps the component's overall size where it has
    one, and its RCOND is 1.

    Parameters
    ----------
    cov : array-like of shape (d, d)
    min_variance : float
        The smallest variance of the replacement.

    Returns
    -------
    cov : ndarray of shape (d, d)
    replaced : bool
        Whether `cov` was replaced.
    """
    cov = np.asarray(cov, dtype=np.float64)
    if rcond(cov) > RCOND_MIN and np.trace(cov) / len(cov) > RCOND_MIN * min_variance:
        try:
            np.linalg.cholesky(cov)
            return cov, False
        except np.linalg.LinAlgError:
            pass
    d = cov.shape[0]
    size = np.trace(cov) / d if np.all(np.isfinite(cov)) else 0.0
    return np.eye(d) * max(size, min_variance), True


def guard_covariances(covariances, *, min_variance=MIN_VARIANCE):
    """Apply `guard_covariance` to every component, in place.

    Parameters
    ----------
    covariances : ndarray of shape (K, d, d)
        Overwritten where a covariance is replaced.
    min_variance : float

    Returns
    -------
    n_guarded : int
        How many covariances were replaced.
    """
    n_guarded = 0
    for j in range(len(covariances)):
        covariances[j], replaced = guard_covariance(covariances[j], min_variance=min_variance)
        n_guarded += replaced
    return n_guarded


def clip_covariance(cov, *, min_variance=MIN_VARIANCE):
    """The constrained M-step's covariance: every eigenvalue raised to at least tau.

    With C = V Lambda V^T (eigendecomposition), the maximiser of the M-step objective
    -N_k/2 log|Sigma| - 1/2 tr(Sigma^-1 S_k) under "every eigenvalue of Sigma >= tau" is
    Sigma = V max(Lambda, tau) V^T, with tau = `min_variance`. The directions that have data
    keep their variances and correlations; only those below tau are raised, so EM stays an
    exact (constrained) EM and its log-likelihood never decreases.

    Parameters
    ----------
    cov : array-like of shape (d, d)
        Symmetric, C = S_k / N_k.
    min_variance : float
        tau, in the units EM runs in.

    Returns
    -------
    cov : ndarray of shape (d, d)
    raised : bool
        Whether an eigenvalue was below tau (otherwise `cov` is returned as it was).
    """
    cov = np.array(cov, dtype=np.float64)
    raised = clip_covariances(cov[None], min_variance=min_variance)
    return cov, bool(raised)


def clip_covariances(covariances, *, min_variance=MIN_VARIANCE):
    """Apply `clip_covariance` to every component, in place.

    Parameters
    ----------
    covariances : ndarray of shape (K, d, d)
        Overwritten where an eigenvalue is raised.
    min_variance : float

    Returns
    -------
    n_guarded : int
        How many covariances had an eigenvalue raised to `min_variance`.
    """
    values, vectors = np.linalg.eigh(covariances)
    low = values[:, 0] < min_variance
    for j in np.flatnonzero(low):
        v = vectors[j]
        clipped = (v * np.maximum(values[j], min_variance)) @ v.T
        covariances[j] = 0.5 * (clipped + clipped.T)
    return int(low.sum())


def empty_components(nk, n):
    """Which components hold (almost) no points: N_k below one rounding error of N.

    Parameters
    ----------
    nk : array-like of shape (K,)
        N_k = sum_i p_ki.
    n : int
        The number of points N.

    Returns
    -------
    empty : ndarray of bool, shape (K,)
    """
    return np.asarray(nk) <= n * np.finfo(np.float64).eps


def m_step_guarded(X, resp, means, covariances, *, min_variance=MIN_VARIANCE,
                   guard=None):
    """The M-step with both guards: empty components and singular covariances.

    An empty component (`empty_components`) keeps its previous mean and covariance and gets
    the weight N_k / N, about 0: nothing divides by zero, and EM's log-likelihood still never
    decreases. Every new covariance passes through the guard: `clip_covariances`, the
    constrained M-step (the default), or the seed's `guard_covariances`.

    Parameters
    ----------
    X : array-like of shape (N, d)
    resp : array-like of shape (N, K)
    means : array-like of shape (K, d)
        The previous means, kept by empty components.
    covariances : array-like of shape (K, d, d)
        The previous covariances, kept by empty components.
    min_variance : float
    guard : callable or None
        ``guard(covariances, min_variance=...)`` changes (K, d, d) covariances in place and
        returns how many it changed; None is `clip_covariances`.

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    n_guarded : int
        How many covariances the guard changed.
    """
    guard = clip_covariances if guard is None else guard
    X = check_data(X)
    resp = np.asarray(resp, dtype=np.float64)
    nk = resp.sum(axis=0)
    empty = empty_components(nk, X.shape[0])
    safe_nk = np.where(empty, 1.0, nk)
    weights = nk / nk.sum()
    new_means = (resp.T @ X) / safe_nk[:, None]
    new_means[empty] = np.asarray(means)[empty]
    new_covs = _weighted_covariances(X, resp, new_means, safe_nk)
    new_covs[empty] = np.asarray(covariances)[empty]
    return weights, new_means, new_covs, guard(new_covs, min_variance=min_variance)


# --------------------------------------------------------------------------------------------
# 5. Initialisation: K-means with Forgy initialisation
# --------------------------------------------------------------------------------------------

#: K-means stops after a round in which at most this fraction of the points changed cluster.
KMEANS_TOL = 1e-3


def _forgy(X, k, rng):
    """k distinct data points, drawn at random (Forgy initialisation).

    With fewer than k distinct points, every distinct point and then repeats of them: the
    extra centroids coincide, and their clusters stay empty.
    """
    idx = rng.choice(X.shape[0], size=k, replace=False)
    chosen = X[idx]
    if np.unique(chosen, axis=0).shape[0] == k:
        return chosen.copy()
    distinct = np.unique(X, axis=0)
    if distinct.shape[0] >= k:
        return distinct[rng.choice(distinct.shape[0], size=k, replace=False)]
    repeats = distinct[rng.choice(distinct.shape[0], size=k - distinct.shape[0])]
    return np.concatenate([distinct, repeats])


def _nearest(X, centroids):
    """The index of the nearest centroid of every point, block by block.

    argmin_j ||z - c_j||^2 = argmin_j (||c_j||^2 - 2 z . c_j): one matrix product per block.
    """
    n = X.shape[0]
    labels = np.empty(n, dtype=np.intp)
    half_norms = 0.5 * (centroids**2).sum(axis=1)
    size = _block_rows(len(centroids))
    for start in range(0, n, size):
        block = X[start:start + size] @ centroids.T          # (B, k)
        np.subtract(half_norms, block, out=block)
        labels[start:start + size] = block.argmin(axis=1)
    return labels


def kmeans(X, k, rng, *, max_iter=MAX_ITER, tol=KMEANS_TOL):
    """K-means (Lloyd's algorithm) started from k distinct random data points (Forgy).

    Each round assigns every point to its nearest centroid and moves each centroid to the mean
    of its points; a cluster that loses all its points keeps its centroid. It stops after the
    round in which at most `tol` * N points changed cluster (0.1 %: none at all below 1,000
    points), or after `max_iter` rounds.

    Parameters
    ----------
    X : array-like of shape (N, d)
    k : int
    rng : numpy.random.Generator or int
    max_iter : int
        At most this many assignment/update rounds.
    tol : float
        The fraction of points that may still change cluster when K-means stops.

    Returns
    -------
    centroids : ndarray of shape (k, d)
    labels : ndarray of shape (N,)
    """
    X = check_data(X)
    n, d = X.shape
    k = _check_k(k, n)
    max_iter = _check_max_iter(max_iter)
    if not (np.isfinite(tol) and 0 <= tol < 1):
        raise ValueError(f"tol must be a fraction in [0, 1), got {tol!r}")
    rng = np.random.default_rng(rng)
    centroids = _forgy(X, k, rng)
    labels = np.full(n, -1)
    for _ in range(max_iter):
        new_labels = _nearest(X, centroids)
        changed = np.count_nonzero(new_labels != labels)
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=X[:, j], minlength=k)
                         for j in range(d)], axis=1)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        if changed <= tol * n:
            break
    return centroids, labels


def init_from_kmeans(X, k, rng, *, min_variance=MIN_VARIANCE):
    """Starting parameters from K-means clusters.

    P(k) = cluster size / N, mu_k = centroid, Sigma_k = diag(cluster variances), each variance
    at least `min_variance` (the clip of `clip_covariance`, for a diagonal).

    Parameters
    ----------
    X : array-like of shape (N, d)
    k : int
    rng : numpy.random.Generator or int
    min_variance : float

    Returns
    -------
    weights : ndarray of shape (k,)
    means : ndarray of shape (k, d)
    covariances : ndarray of shape (k, d, d)
    """
    X = check_data(X)
    centroids, labels = kmeans(X, k, rng)
    counts = np.bincount(labels, minlength=k)
    weights = counts / X.shape[0]
    covariances = np.empty((k, X.shape[1], X.shape[1]))
    for j in range(k):
        members = X[labels == j]
        variances = members.var(axis=0) if len(members) else np.zeros(X.shape[1])
        covariances[j] = np.diag(np.maximum(variances, min_variance))
    if np.any(counts == 0):  # only when K-means emptied a cluster: give it a little weight
        weights = (counts + 1.0) / (X.shape[0] + k)
    return weights, centroids, covariances


def init_random(X, k, rng, *, min_variance=MIN_VARIANCE):
    """Random starting parameters: k distinct data points as means, the data's variances.

    P(k) = 1/k, mu_k = Forgy points, Sigma_k = diag(variances of all the data), each at least
    `min_variance`.

    Parameters
    ----------
    X : array-like of shape (N, d)
    k : int
    rng : numpy.random.Generator or int
    min_variance : float

    Returns
    -------
    weights : ndarray of shape (k,)
    means : ndarray of shape (k, d)
    covariances : ndarray of shape (k, d, d)
    """
    X = check_data(X)
    k = _check_k(k, X.shape[0])
    rng = np.random.default_rng(rng)
    means = _forgy(X, k, rng)
    cov = np.diag(np.maximum(X.var(axis=0), min_variance))
    return np.full(k, 1.0 / k), means, np.repeat(cov[None], k, axis=0)


# --------------------------------------------------------------------------------------------
# 6. Whitening
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Moments:
    """Per-feature count, mean, spread and range of some rows: what whitening needs. They add.

    Attributes
    ----------
    n : int
        Number of rows.
    mean : ndarray of shape (d,)
    m2 : ndarray of shape (d,)
        sum_i (z_ij - mean_j)^2 / ref_j^2 (scaled by `ref` so that huge values cannot overflow).
    ref : ndarray of shape (d,)
        The largest magnitude of each feature (1 where all are 0).
    low, high : ndarrays of shape (d,)
        The smallest and largest value of each feature.
    """

    n: int
    mean: np.ndarray
    m2: np.ndarray
    ref: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def __add__(self, other):
        """Chan's pairwise update: the moments of the union of the two sets of rows."""
        if not isinstance(other, Moments):
            return NotImplemented
        n = self.n + other.n
        ref = np.maximum(self.ref, other.ref)
        delta = (other.mean - self.mean) / ref
        m2 = (self.m2 * (self.ref / ref) ** 2 + other.m2 * (other.ref / ref) ** 2
              + delta**2 * (self.n * other.n / n))
        mean = self.mean + (other.mean - self.mean) * (other.n / n)
        return Moments(n, mean, m2, ref, np.minimum(self.low, other.low),
                       np.maximum(self.high, other.high))

    def scaling(self, whiten=True):
        """Whitening's (center, scale): the feature means and standard deviations.

        A constant feature (every value the same) is only centred, exactly: its center is its
        value and its scale is 1, so its whitened values are exactly 0.

        Parameters
        ----------
        whiten : bool
            False gives scale 1 for every feature (EM in the data's units, only centred).

        Returns
        -------
        center, scale : ndarrays of shape (d,)
        """
        constant = self.low == self.high
        center = np.where(constant, self.low, self.mean)
        if not whiten:
            return center, np.ones_like(center)
        scale = np.sqrt(self.m2 / self.n) * self.ref
        scale[constant] = 1.0
        return center, scale

    def std(self):
        """The standard deviation of each feature, shape (d,)."""
        return np.sqrt(self.m2 / self.n) * self.ref


def moments(X, *, first_row=0):
    """The `Moments` of a block of rows (checked as `check_data` does).

    Parameters
    ----------
    X : array-like of shape (B, d)
    first_row : int
        The row number of X's first row in the whole data set, for error messages.

    Returns
    -------
    moments : Moments
    """
    try:
        X = check_data(X)
    except ValueError as error:
        if first_row and "row" in str(error):  # name the row of the whole data set
            i = int(str(error).split("row ")[1].split(",")[0])
            raise ValueError(str(error).replace(f"row {i},", f"row {i + first_row},")) from None
        raise
    ref = np.abs(X).max(axis=0)
    ref[ref == 0] = 1.0
    Y = X / ref
    mean = Y.mean(axis=0)
    m2 = ((Y - mean) ** 2).sum(axis=0)
    return Moments(X.shape[0], mean * ref, m2, ref, X.min(axis=0), X.max(axis=0))


def whiten(X):
    """Centre each feature and divide it by its standard deviation.

    z_w = T^-1 (z - c) with c the feature means and T = diag(sigma). A constant feature is
    only centred, exactly: its c is its value and its sigma is 1, so its whitened values are 0
    (see `Moments.scaling`).

    Parameters
    ----------
    X : array-like of shape (N, d)

    Returns
    -------
    X_white : ndarray of shape (N, d)
    center : ndarray of shape (d,)
        c, the feature means.
    scale : ndarray of shape (d,)
        sigma, the diagonal of T.
    """
    X = check_data(X)
    center, scale = moments(X).scaling()
    return to_em_units(X, center, scale), center, scale


def to_em_units(X, center, scale):
    """z_w = (z - c) / sigma for a block of rows (any numeric dtype), as float64.

    Parameters
    ----------
    X : array-like of shape (B, d)
    center, scale : array-likes of shape (d,)

    Returns
    -------
    Z : ndarray of shape (B, d)
    """
    Z = np.subtract(X, center, dtype=np.float64)
    Z /= scale
    return Z


def unwhiten(means, covariances, center, scale):
    """Map whitened parameters back to the original units: mu = T mu_w + c, Sigma = T Sigma_w T.

    Parameters
    ----------
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)
    center : array-like of shape (d,)
    scale : array-like of shape (d,)

    Returns
    -------
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    """
    scale = np.asarray(scale, dtype=np.float64)
    means = np.asarray(means) * scale + center
    covariances = np.asarray(covariances) * scale[:, None] * scale[None, :]
    return means, covariances


def whiten_params(means, covariances, center, scale):
    """The inverse of `unwhiten`: mu_w = T^-1 (mu - c), Sigma_w = T^-1 Sigma T^-1.

    Parameters
    ----------
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)
    center : array-like of shape (d,)
    scale : array-like of shape (d,)

    Returns
    -------
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    """
    scale = np.asarray(scale, dtype=np.float64)
    means = (np.asarray(means) - center) / scale
    covariances = np.asarray(covariances) / scale[:, None] / scale[None, :]
    return means, covariances


# --------------------------------------------------------------------------------------------
# 7. The painless EM
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EMState:
    """The state of EM after one step.

    Attributes
    ----------
    iteration : int
        How many M-steps have been done.
    step : str
        "init", "E" or "M".
    weights, means, covariances : ndarrays of shapes (K,), (K, d), (K, d, d)
        The current parameters, in the data's original units.
    resp : ndarray of shape (N, K) or None
        The responsibilities of the last E-step (None before the first).
    log_likelihood : float or None
        sum_i l(z_i) of the last E-step, in original units (None before the first).
    converged : bool
        True on the last state when the stopping rule fired.
    n_guarded : int
        Covariances replaced by the guard in this M-step.
    """

    iteration: int
    step: str
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    resp: np.ndarray | None
    log_likelihood: float | None
    converged: bool = False
    n_guarded: int = 0


@dataclass(frozen=True)
class GMMFit:
    """The result of `fit`.

    Attributes
    ----------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    log_likelihood : float
        sum_i log p(z_i) of the returned parameters, in the data's original units.
    history : tuple of float
        The log-likelihood after every E-step, the last one included.
    n_iter : int
        The number of M-steps done.
    converged : bool
        Whether the stopping rule fired before `max_iter`.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: float
    history: tuple
    n_iter: int
    converged: bool


def _collect(states):
    history = []
    last = None
    for state in states:
        if state.step == "E":
            history.append(state.log_likelihood)
        last = state
    return GMMFit(last.weights, last.means, last.covariances, last.log_likelihood,
                  tuple(history), last.iteration, last.converged)


# The fast path (chapter 11). `fit` and `em_steps` run the E-step of `log_e_step` and the
# guarded M-step of `m_step_guarded` rearranged: EM by sufficient statistics. Each block of
# rows, small enough to stay in the processor's cache, goes through the E-step and is reduced
# at once to a few sums (`SuffStats`); the M-step needs only their total. No N x K array of
# responsibilities is stored, blocks run on every core, and the same two pieces (`block_stats`,
# `m_step_stats`) run EM out of core and on a cluster (chapter 12).

#: Rows per block of the block EM (and of K-means' distances), unless a call says otherwise.
BLOCK_ROWS = 16384
#: The K-means start runs on a seeded sample of at most this many points (all of them below).
KMEANS_SAMPLE = 2**16
#: The E-step raises w_ki - m_i to at least this: exp(-700) ~ 1e-304 is 0 to every sum,
#: and exp is several times slower where its result would be subnormal or 0.
EXP_FLOOR = -700.0
#: Whitening scales a feature must lie between: its variances stay far inside float64's range.
SCALE_RANGE = (1e-140, 1e140)
#: Between two E-steps, a fall of the log-likelihood larger than this fraction of |L| + N is
#: reported as a decrease. Smaller falls are rounding: L's evaluation and the M-step's moments
#: lose up to 6 digits on covariances clipped at tau (falls up to 3e-11 of |L| + N were seen
#: in 500 pixel-like sets run 100 iterations past convergence).
DECREASE_TOL = 1e-10


def _block_rows(width):
    """Rows per block when each row needs `width` floats of work space (about 1 MB)."""
    return max(1024, min(BLOCK_ROWS, 2**17 // max(width, 1)))


@dataclass(frozen=True)
class SuffStats:
    """The sufficient statistics of some points under given parameters. They add: ``s1 + s2``.

    Everything the M-step and the stopping rule need from the data. With p_ki the
    responsibilities of an E-step and z_i the points in the units EM runs in:

    Attributes
    ----------
    n : int
        N, the number of points.
    nk : ndarray of shape (K,)
        N_k = sum_i p_ki.
    sum_z : ndarray of shape (K, d)
        sum_i p_ki z_i.
    sum_zz : ndarray of shape (K, d, d)
        sum_i p_ki z_i z_i^T.
    log_likelihood : float
        sum_i l(z_i), the log-likelihood of the points under the parameters of the E-step.
    """

    n: int
    nk: np.ndarray
    sum_z: np.ndarray
    sum_zz: np.ndarray
    log_likelihood: float

    def __add__(self, other):
        if not isinstance(other, SuffStats):
            return NotImplemented
        return SuffStats(self.n + other.n, self.nk + other.nk, self.sum_z + other.sum_z,
                         self.sum_zz + other.sum_zz, self.log_likelihood + other.log_likelihood)

    def __radd__(self, other):  # so that sum() of a list of statistics works
        return self if isinstance(other, int) and other == 0 else NotImplemented


_WORK = threading.local()
_FLOOR = np.full(BLOCK_ROWS, EXP_FLOOR)
_FLOOR.flags.writeable = False


def _work(name, rows, cols):
    """A (rows, cols) work array of the calling thread, kept for its next block.

    New arrays for every block cost little under most allocators' defaults, but Dask's workers
    run with MALLOC_TRIM_THRESHOLD_=65536, under which every large array is fresh memory
    from the system: an E-step four times slower there.
    """
    buffers = _WORK.__dict__
    if name not in buffers or buffers[name].size < rows * cols:
        buffers[name] = np.empty(rows * cols)
    return buffers[name][:rows * cols].reshape(rows, cols)


class _EStep:
    """What every block's E-step needs, computed once per iteration from the parameters."""

    def __init__(self, weights, means, covariances):
        k, d = means.shape
        prec = _precision_cholesky(covariances)                       # P_k = L_k^-T
        with np.errstate(divide="ignore"):  # a weight of 0 is log 0 = -inf: its p_ki is 0
            log_norm = (np.log(weights)
                        + np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1))
        self.log_norm = (log_norm - 0.5 * d * math.log(2 * math.pi))[:, None]   # (K, 1)
        half = prec * math.sqrt(0.5)        # ||half^T (z - mu)||^2 is half the quadratic form
        # Row a K + k of `lin` @ [z; 1] is (P_k^T (z - mu_k))_a / sqrt 2: one product for all K.
        lin = np.empty((d, k, d + 1))
        lin[:, :, :d] = half.transpose(2, 0, 1)
        lin[:, :, d] = -np.einsum("kb,kba->ak", means, half)
        self.lin = lin.reshape(d * k, d + 1)
        self.k, self.d = k, d
        self.pairs = np.triu_indices(d) if d <= 8 else ((), ())

    def stats(self, Z, resp_out=None, counts=None):
        """E-step and statistics of one block Z, shape (B, d); fills resp_out (K, B) if given.

        counts (B,), if given, says how many times each row stands in the data."""
        k, d, b = self.k, self.d, len(Z)
        a, c = self.pairs
        f = _work("f", d + 1 + len(a), b)            # rows: z_a, then 1, then z_a z_c (a <= c)
        f[:d] = Z.T
        f[d] = 1.0
        q = _work("q", k, b)                                  # half the quadratic forms
        if len(a):
            y = np.matmul(self.lin, f[:d + 1], out=_work("y", d * k, b))   # (d K, B)
            y *= y
            np.copyto(q, y[:k])
            for j in range(1, d):
                q += y[j * k:(j + 1) * k]
        else:                                                 # wide data: a product per k
            y = _work("y", d, b)
            for j in range(k):
                np.matmul(self.lin[j::k], f, out=y)
                y *= y
                y.sum(axis=0, out=q[j])
        w = np.subtract(self.log_norm, q, out=q)              # w_ki = l(z_i | k) + log P(k)
        top, total, log_total = _work("points", 3, b)
        w.max(axis=0, out=top)
        w -= top
        np.maximum(w, _FLOOR[:b] if b <= _FLOOR.size else EXP_FLOOR, out=w)  # (an array:
        np.exp(w, out=w)                                      # faster than a number here)
        w.sum(axis=0, out=total)
        np.log(total, out=log_total)
        if counts is None:
            log_likelihood = float(top.sum() + log_total.sum())
            n = b
            np.divide(1.0, total, out=total)
        else:                                                 # row i stands for c_i points
            log_likelihood = float(counts @ top + counts @ log_total)
            n = int(counts.sum())
            np.divide(counts, total, out=total)
        w *= total                                            # p_ki (times c_i), (K, B)
        if resp_out is not None:
            resp_out[...] = w
        for i in range(len(a)):
            np.multiply(f[a[i]], f[c[i]], out=f[d + 1 + i])
        sums = w @ f.T                                        # (K, d + 1 + pairs)
        sum_zz = np.empty((k, d, d))
        if len(a):
            sum_zz[:, a, c] = sums[:, d + 1:]
            sum_zz[:, c, a] = sums[:, d + 1:]
        else:
            for j in range(k):
                np.matmul(np.multiply(f[:d], w[j], out=y), Z, out=sum_zz[j])
        return SuffStats(n, sums[:, d].copy(), sums[:, :d].copy(), sum_zz, log_likelihood)


def block_stats(Z, weights, means, covariances):
    """The E-step on a block of points, reduced to its sufficient statistics.

    Parameters
    ----------
    Z : array-like of shape (B, d)
        Points in the units EM runs in (`to_em_units`).
    weights : array-like of shape (K,)
    means : array-like of shape (K, d)
    covariances : array-like of shape (K, d, d)
        Positive definite (guarded).

    Returns
    -------
    stats : SuffStats
    """
    weights, means, covariances = (np.asarray(a, dtype=np.float64)
                                   for a in (weights, means, covariances))
    return _EStep(weights, means, covariances).stats(np.asarray(Z, dtype=np.float64))


def m_step_stats(stats, means, covariances, *, min_variance=MIN_VARIANCE, guard=None):
    """The guarded M-step of `m_step_guarded`, from sufficient statistics.

    P(k) = N_k / N, mu_k = sum_i p_ki z_i / N_k and
    Sigma_k = sum_i p_ki z_i z_i^T / N_k - mu_k mu_k^T, then the guard (by default the clip of
    `clip_covariances`). An empty component keeps its previous mean and covariance.

    Parameters
    ----------
    stats : SuffStats
        The statistics of all the data, in the units EM runs in (centred: their mean is 0).
    means : array-like of shape (K, d)
        The previous means, kept by empty components.
    covariances : array-like of shape (K, d, d)
        The previous covariances, kept by empty components.
    min_variance : float
        tau, in the units EM runs in.
    guard : callable or None
        See `m_step_guarded`.

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    n_guarded : int
        How many covariances the guard changed.
    """
    guard = clip_covariances if guard is None else guard
    nk = stats.nk
    empty = empty_components(nk, stats.n)
    safe_nk = np.where(empty, 1.0, nk)
    weights = nk / nk.sum()
    new_means = stats.sum_z / safe_nk[:, None]
    new_covs = stats.sum_zz / safe_nk[:, None, None]
    new_covs -= new_means[:, :, None] * new_means[:, None, :]
    new_covs = 0.5 * (new_covs + new_covs.transpose(0, 2, 1))
    new_means[empty] = np.asarray(means)[empty]
    new_covs[empty] = np.asarray(covariances)[empty]
    return weights, new_means, new_covs, guard(new_covs, min_variance=min_variance)


_POOLS = {}


def _one_blas_thread():
    """Ask OpenBLAS, where numpy uses it, for one thread in the calling thread only.

    The pool's threads already keep every core busy; inside each block's small matrix products
    OpenBLAS would start threads of its own, several per core, that mostly wait for each other
    (ten times slower on a busy machine). `openblas_set_num_threads_local` (OpenBLAS 0.3.27)
    changes only the calling thread. Linux only (it reads /proc/self/maps); elsewhere, or with
    another BLAS, nothing changes.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps
                     if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return
    for path in paths:
        try:
            ctypes.CDLL(path).openblas_set_num_threads_local(1)
        except (OSError, AttributeError):
            pass


def _map_in_order(fn, items, n_threads):
    """fn(item) for item in items, yielded in order, computed on a pool of threads (numpy
    releases the GIL)."""
    items = list(items)
    if n_threads is None:
        n_threads = os.cpu_count() or 1
    if n_threads <= 1 or len(items) <= 1:
        return map(fn, items)
    if n_threads not in _POOLS:
        _POOLS[n_threads] = ThreadPoolExecutor(n_threads, thread_name_prefix="gmm_core",
                                               initializer=_one_blas_thread)
    return _POOLS[n_threads].map(fn, items)


def _sum_in_order(parts):
    """The sum of statistics, always added in the same order (the order of `parts`), each
    part as soon as it comes: memory does not grow with the number of blocks."""
    total = None
    for part in parts:
        total = part if total is None else total + part
    return total


class _Data:
    """The data prepared for EM in one pass: shape, scaling, and the blocks in EM units.

    An in-memory array is converted to EM units once and kept; integer data (8-bit pixels)
    whose distinct rows are at most half of them are kept as those rows and their counts
    (`distinct_rows`). Any other array-like that slices into numpy blocks (a numpy.memmap,
    say) is read block by block, every pass.
    """

    def __init__(self, X, *, whiten, block_rows=None, n_threads=None):
        in_memory = isinstance(X, np.ndarray) and not isinstance(X, np.memmap)
        if not in_memory and not (hasattr(X, "shape") and hasattr(X, "__getitem__")):
            X, in_memory = np.asarray(X), True
        if len(X.shape) == 1:
            X = X.reshape(-1, 1)
        if len(X.shape) != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError("X must be 2-D (N points x d features) and hold at least one point "
                             f"and one feature, got shape {tuple(X.shape)}")
        self.n, self.d = (int(v) for v in X.shape)
        self.block = int(block_rows) if block_rows else BLOCK_ROWS
        self.n_threads = n_threads
        parts = _map_in_order(lambda s: moments(X[s:s + self.block], first_row=s),
                              range(0, self.n, self.block), n_threads)
        self.moments = _sum_in_order(parts)
        if not whiten:
            _check_scale(self.moments)
        self.center, self.scale = self.moments.scaling(whiten)
        if whiten:
            _check_scale(self.moments)
        self.source = X
        self.Z = self.counts = None
        if in_memory:
            rows = X
            if X.dtype.kind in "iub":
                distinct = distinct_rows(X)
                if 2 * len(distinct[0]) <= self.n:
                    rows, self.counts = distinct
            self.Z = np.empty(rows.shape)
            for s in range(0, len(rows), self.block):
                self.Z[s:s + self.block] = to_em_units(rows[s:s + self.block], self.center,
                                                       self.scale)
        self.starts = range(0, self.n if self.Z is None else len(self.Z), self.block)

    def block_at(self, start):
        if self.Z is not None:
            return self.Z[start:start + self.block]
        return to_em_units(np.asarray(self.source[start:start + self.block]), self.center,
                           self.scale)

    def rows(self, index):
        """Some rows of X in EM units (index sorted)."""
        if self.Z is not None and self.counts is None:
            return self.Z[index]
        return to_em_units(np.asarray(self.source[index]), self.center, self.scale)

    def stats(self, weights, means, covariances, resp_out=None):
        """The statistics of all the data: per block, on the thread pool, summed in order."""
        e_step = _EStep(weights, means, covariances)
        if resp_out is not None and self.counts is not None:
            raise ValueError("per-point responsibilities need the data row by row")

        def one(start):
            out = None if resp_out is None else resp_out[:, start:start + self.block]
            counts = None if self.counts is None else self.counts[start:start + self.block]
            return e_step.stats(self.block_at(start), out, counts)

        return _sum_in_order(_map_in_order(one, self.starts, self.n_threads))

    @property
    def log_jacobian(self):
        """log-likelihood(original units) - log-likelihood(EM units)."""
        return -self.n * float(np.sum(np.log(self.scale)))


def _check_scale(stats):
    spread = stats.std()
    varying = stats.low != stats.high
    low, high = SCALE_RANGE
    for j in np.flatnonzero(varying & ~((spread >= low) & (spread <= high))):
        raise ValueError(
            f"feature {j} of X has a standard deviation of {spread[j]:.3g}, outside "
            f"[{low:g}, {high:g}]: its variances cannot be held in float64 with room to "
            f"spare; rescale that feature (divide it by about {spread[j]:.0e}) and fit again")


def distinct_rows(X):
    """The distinct rows of integer data and how many times each occurs.

    A photo's 8-bit pixels repeat: china.jpg has 96,615 distinct colours among 273,280 pixels.
    Every sum of EM over the points is the same sum over the distinct rows, each term times
    its count, so `fit` runs EM on these rows when they are at most half of X.

    Parameters
    ----------
    X : ndarray of integers, shape (N, d)

    Returns
    -------
    rows : ndarray of shape (U, d), X's dtype
        The distinct rows, sorted.
    counts : ndarray of float64, shape (U,)
        counts[u] rows of X equal rows[u]; they add up to N.
    """
    X = np.asarray(X)
    low, high = X.min(axis=0), X.max(axis=0)
    span = [int(h) - int(lo) + 1 for lo, h in zip(low, high)]
    if math.prod(span) >= 2**62 or X.dtype.itemsize > 4:  # compare whole rows instead
        # (numbering 8-byte integers could overflow int64 on the way)
        rows, counts = np.unique(X, axis=0, return_counts=True)
        return rows, counts.astype(np.float64)
    key = np.zeros(len(X), dtype=np.int64)       # each row as one number, in base `span`
    for j in range(X.shape[1]):
        key *= span[j]
        key += X[:, j]
        key -= int(low[j])
    key.sort()                                    # in place: np.unique would sort a copy
    first = np.empty(len(key), dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=len(key))
    key = key[starts]
    rows = np.empty((len(key), X.shape[1]), dtype=X.dtype)
    for j in reversed(range(X.shape[1])):
        key, digit = np.divmod(key, span[j])
        rows[:, j] = digit + int(low[j])
    return rows, counts.astype(np.float64)


def sample_rows(n, rng, size=None):
    """The rows the K-means start of `fit` uses: all N, or a seeded sample.

    Parameters
    ----------
    n : int
        N, the number of rows.
    rng : numpy.random.Generator
        Drawn from only when N > size.
    size : int or None
        The sample's size; None is `KMEANS_SAMPLE`.

    Returns
    -------
    rows : ndarray of int, shape (min(N, size),)
        Sorted row indices: all N rows when N <= size, else `size` rows drawn without
        replacement.
    """
    size = KMEANS_SAMPLE if size is None else size
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def _initial_params(data, k, init, rng, min_variance):
    """Starting parameters in the units EM runs in."""
    if isinstance(init, str):
        if init not in ("kmeans", "random"):
            raise ValueError(f"init must be 'kmeans', 'random' or a tuple (weights, means, "
                             f"covariances), got {init!r}")
        Zs = data.rows(sample_rows(data.n, rng))
        make = init_from_kmeans if init == "kmeans" else init_random
        return make(Zs, k, rng, min_variance=min_variance)
    if not isinstance(init, (tuple, list)) or len(init) != 3:
        raise ValueError(f"init must be 'kmeans', 'random' or a tuple (weights, means, "
                         f"covariances), got {type(init).__name__} {init!r:.60}")
    weights, means, covariances = check_params(*init)
    if len(weights) != k:
        raise ValueError(f"init has {len(weights)} components but k = {k}")
    if means.shape[1] != data.d:
        raise ValueError(f"init's means have {means.shape[1]} features but X has {data.d}")
    return (weights, *whiten_params(means, covariances, data.center, data.scale))


def _em_loop(stats_of, n, weights, means, covariances, *, max_iter, rel_tol, per_point,
             min_variance, guard, log_jacobian=0.0):
    """EM from sufficient statistics: yields (step, iteration, params, stats, ll, converged,
    n_guarded) after the start and after every E-step and M-step, in EM units."""
    guard = clip_covariances if guard is None else guard
    covariances = np.array(covariances, dtype=np.float64)
    n_guarded = guard(covariances, min_variance=min_variance)
    yield "init", 0, (weights, means, covariances), None, None, False, n_guarded
    threshold = math.log1p(rel_tol) * (n if per_point else 1)
    previous = None
    for iteration in range(max_iter + 1):
        stats = stats_of(weights, means, covariances)
        ll = stats.log_likelihood + log_jacobian
        converged = False
        if not math.isfinite(ll):
            raise FloatingPointError(f"the log-likelihood is {ll} at iteration {iteration}")
        if previous is not None:
            gain = ll - previous
            if gain < -DECREASE_TOL * (abs(previous) + n):
                warnings.warn(f"EM's log-likelihood decreased at iteration {iteration}, from "
                              f"{previous:.10g} to {ll:.10g}: the M-step is not an exact "
                              f"(constrained) M-step", RuntimeWarning, stacklevel=3)
            else:
                converged = gain < threshold
        yield "E", iteration, (weights, means, covariances), stats, ll, converged, 0
        if converged or iteration == max_iter:
            return
        previous = ll
        weights, means, covariances, n_guarded = m_step_stats(
            stats, means, covariances, min_variance=min_variance, guard=guard)
        yield "M", iteration + 1, (weights, means, covariances), stats, ll, False, n_guarded


def _check_options(max_iter, rel_tol, min_variance):
    max_iter = _check_max_iter(max_iter)
    _check_positive(rel_tol, "rel_tol")
    _check_positive(min_variance, "min_variance")
    return max_iter


def em_steps(X, weights, means, covariances, *, max_iter=MAX_ITER, rel_tol=REL_TOL,
             whiten=True, per_point=True, min_variance=MIN_VARIANCE, guard=None):
    """The painless EM, one state at a time.

    Works in the log domain, guards covariances (the constrained M-step of
    `clip_covariances`) and empty components, and (by default) runs on whitened data,
    reporting parameters and log-likelihoods in the original units. It stops after the E-step
    whose log-likelihood gain is non-negative and below log(1 + rel_tol), i.e. when the
    likelihood grows by less than `rel_tol` as a fraction, or after `max_iter` M-steps. A
    decrease (impossible for an exact M-step, beyond rounding) is reported with a
    RuntimeWarning naming the iteration, and EM goes on.

    Parameters
    ----------
    X : array-like of shape (N, d)
    weights, means, covariances : array-likes of shapes (K,), (K, d), (K, d, d)
        The starting parameters, in the original units.
    max_iter : int
    rel_tol : float
        0.0001 is the 0.01 % of the stopping rule.
    whiten : bool
        Fit on whitened data (`whiten`), then map back (`unwhiten`).
    per_point : bool
        Apply `rel_tol` to the likelihood per point (its geometric mean, the same rule for
        every N) rather than to the likelihood of all the data (a rule that tightens with N).
    min_variance : float
        tau, the smallest covariance eigenvalue, in the units EM runs in.
    guard : callable or None
        The covariance guard (see `m_step_guarded`); None is `clip_covariances`.

    Yields
    ------
    state : EMState
    """
    X = check_data(X)
    max_iter = _check_options(max_iter, rel_tol, min_variance)
    data = _Data(X, whiten=whiten)
    k = _check_k(len(np.atleast_1d(weights)), data.n)
    start = _initial_params(data, k, (weights, means, covariances), None, min_variance)
    resp_t = [np.empty((k, data.n))]   # filled by the E-step; a new one for every E-step
    resp = None
    for step, iteration, (w, m, c), _, ll, converged, n_guarded in _em_loop(
            lambda *p: data.stats(*p, resp_out=resp_t[0]), data.n, *start,
            max_iter=max_iter, rel_tol=rel_tol, per_point=per_point,
            min_variance=min_variance, guard=guard, log_jacobian=data.log_jacobian):
        if step == "E":
            resp = resp_t[0].T
            resp_t[0] = np.empty((k, data.n))
        m, c = unwhiten(m, c, data.center, data.scale)
        yield EMState(iteration, step, w.copy(), m, c, resp, ll, converged, n_guarded)


def fit(X, k, *, init="kmeans", max_iter=MAX_ITER, rel_tol=REL_TOL, whiten=True,
        per_point=True, min_variance=MIN_VARIANCE, rng=0, guard=None, block_rows=None,
        n_threads=None):
    """Fit a K-component Gaussian mixture with the painless EM.

    The data are checked and whitened in one pass; the K-means start runs on all the points,
    or on a seeded sample of `KMEANS_SAMPLE` when there are more; EM then runs by sufficient
    statistics, block by block on every core, and never stores the N x K responsibilities.
    Integer data whose distinct rows are at most half of them (8-bit pixels) run EM on those
    rows, each weighted by its count (`distinct_rows`): the same sums in another order.
    X may be any array-like that slices into numpy blocks, such as a `numpy.memmap` larger
    than memory: it is then read block by block, never whole.

    Parameters
    ----------
    X : array-like of shape (N, d) or (N,)
        The data; a 1-D array is one feature.
    k : int
        The number of components, 1 <= k <= N (K above the number of distinct points leaves
        some components empty or on top of one another).
    init : "kmeans", "random" or tuple (weights, means, covariances)
        K-means clusters (`init_from_kmeans`, on whitened data), random data points
        (`init_random`), or given starting parameters in the original units.
    max_iter : int
        At most this many iterations (100).
    rel_tol : float
        Stop when the likelihood grows by less than this fraction (0.01 %).
    whiten : bool
        Run EM on whitened data.
    per_point : bool
        See `em_steps`.
    min_variance : float
        tau, the smallest covariance eigenvalue in the units EM runs in (`clip_covariance`).
    rng : numpy.random.Generator or int
        The source of randomness of the initialisation (seed 0 by default).
    guard : callable or None
        The covariance guard (see `m_step_guarded`); None is `clip_covariances`.
    block_rows : int or None
        Rows per block (`BLOCK_ROWS`); the result does not depend on it beyond rounding.
    n_threads : int or None
        Threads for the blocks (None: one per core); the result does not depend on it.

    Returns
    -------
    result : GMMFit
    """
    max_iter = _check_options(max_iter, rel_tol, min_variance)
    data = _Data(X, whiten=whiten, block_rows=block_rows, n_threads=n_threads)
    k = _check_k(k, data.n)
    start = _initial_params(data, k, init, np.random.default_rng(rng), min_variance)
    return fit_stats(data.stats, data.n, *start, data.center, data.scale, max_iter=max_iter,
                     rel_tol=rel_tol, per_point=per_point, min_variance=min_variance,
                     guard=guard)


def fit_stats(stats_of, n, weights, means, covariances, center, scale, *, max_iter=MAX_ITER,
              rel_tol=REL_TOL, per_point=True, min_variance=MIN_VARIANCE, guard=None):
    """EM on data seen only through their sufficient statistics (out of core, on a cluster).

    Each iteration calls ``stats_of(weights, means, covariances)`` for the `SuffStats` of all
    the data (e.g. `block_stats` of every block, summed), then `m_step_stats`; the stopping
    rule is that of `em_steps`. Parameters are in the units EM runs in, z_w = (z - c) / sigma.

    Parameters
    ----------
    stats_of : callable
        (weights, means, covariances) -> SuffStats of all N points.
    n : int
        N.
    weights, means, covariances : array-likes of shapes (K,), (K, d), (K, d, d)
        The starting parameters, in EM units.
    center, scale : array-likes of shape (d,)
        c and sigma of `to_em_units`: the result is reported in the original units.
    max_iter, rel_tol, per_point, min_variance, guard
        As in `fit`.

    Returns
    -------
    result : GMMFit
    """
    max_iter = _check_options(max_iter, rel_tol, min_variance)
    scale = np.asarray(scale, dtype=np.float64)
    log_jacobian = -n * float(np.sum(np.log(scale)))
    history, last = [], None
    for state in _em_loop(stats_of, n, *_params_as_float(weights, means, covariances),
                          max_iter=max_iter, rel_tol=rel_tol, per_point=per_point,
                          min_variance=min_variance, guard=guard, log_jacobian=log_jacobian):
        if state[0] == "E":
            history.append(state[4])
        last = state
    _, iteration, (weights, means, covariances), _, ll, converged, _ = last
    means, covariances = unwhiten(means, covariances, center, scale)
    if not (np.all(np.isfinite(covariances)) and np.all(np.isfinite(means))):
        raise ValueError("the fitted covariances overflow in X's units: rescale X")
    return GMMFit(weights, means, covariances, ll, tuple(history), iteration, converged)


def _params_as_float(weights, means, covariances):
    """weights, means, covariances as float64 arrays of shapes (K,), (K, d), (K, d, d)."""
    return tuple(np.array(a, dtype=np.float64) for a in (weights, means, covariances))


# --------------------------------------------------------------------------------------------
# 8. The estimator
# --------------------------------------------------------------------------------------------

class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before `fit`.

    Both a ValueError and an AttributeError, like scikit-learn's own NotFittedError. When
    scikit-learn is loaded, the error raised is also an instance of its NotFittedError (see
    `_not_fitted_error`), so that ``except NotFittedError`` catches it with either import.
    """

    def __reduce__(self):  # pickles as a message; unpickles as whichever class fits there
        return _not_fitted_error, (str(self),)


#: NotFittedError subclasses that are scikit-learn's NotFittedError too, made when first needed.
_SKLEARN_NOT_FITTED = {}


def _not_fitted_error(message):
    """A NotFittedError, which is also scikit-learn's if scikit-learn has been imported.

    Looking in ``sys.modules`` never imports scikit-learn: where it is not loaded, nothing can
    be waiting to catch its class.
    """
    import sys
    exceptions = sys.modules.get("sklearn.exceptions")
    if exceptions is None:
        return NotFittedError(message)
    theirs = exceptions.NotFittedError
    if theirs not in _SKLEARN_NOT_FITTED:
        _SKLEARN_NOT_FITTED[theirs] = type("NotFittedError", (NotFittedError, theirs),
                                           {"__module__": __name__})
    return _SKLEARN_NOT_FITTED[theirs](message)


def _random_generator(random_state):
    """A numpy Generator from a `random_state` in scikit-learn's conventions.

    None draws a seed from numpy's global random state (a new start on every call, repeatable
    after ``np.random.seed``); an int seeds a new generator (the same start on every call); a
    Generator or a RandomState is used, and advanced, as it is.
    """
    if random_state is None:  # numpy's global RandomState, on purpose: as in scikit-learn
        return np.random.default_rng(np.random.randint(2**32, dtype=np.int64))  # noqa: NPY002
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**32, dtype=np.int64))
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) \
            and random_state >= 0:
        return np.random.default_rng(int(random_state))
    raise ValueError("random_state must be None, a non-negative int, a numpy Generator or a "
                     f"numpy RandomState, got {random_state!r}")


def _estimator_data(X):
    """`check_data` in scikit-learn's conventions, with the messages its estimator checks expect.

    X must be 2-D: a 1-D array could be N points or one point, so the estimator refuses to guess
    (`fit` takes it as one feature). Sparse and complex input is refused; an object array of
    numbers is converted (anything else in it raises numpy's TypeError).
    """
    if type(X).__module__.startswith("scipy.sparse"):
        raise ValueError("sparse input is not supported: pass a dense array (X.toarray())")
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise ValueError("Complex data not supported: X must be real")
    if X.dtype == object:
        X = X.astype(np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (N points x d features), got shape {X.shape}. "
                         "Reshape your data: X.reshape(-1, 1) if it has one feature, "
                         "X.reshape(1, -1) if it is one point")
    for count, what in ((X.shape[0], "sample(s)"), (X.shape[1], "feature(s)")):
        if count == 0:
            raise ValueError(f"X has 0 {what} (shape={X.shape}) while a minimum of 1 is "
                             "required.")
    return check_data(X)


class GaussianMixture:
    """A Gaussian mixture with full covariances, as a scikit-learn estimator.

    It follows scikit-learn's estimator protocol (`get_params`, `set_params`, tags, fitted
    attributes with a trailing underscore), so `sklearn.base.clone`, `Pipeline` and
    `GridSearchCV` take it, without deriving from scikit-learn: gmm_core still needs numpy alone.

    Parameters
    ----------
    n_components : int
        K, the number of components, 1 <= K <= N.
    n_init : int
        Fit from this many starts and keep the one of highest log-likelihood. Start j uses the
        random generator as start j - 1 left it, so start 1 is the fit with n_init = 1. (With
        `init` given as parameters, every start is the same run.)
    init : "kmeans", "random" or tuple (weights, means, covariances)
    max_iter : int
    rel_tol : float
    whiten : bool
    per_point : bool
    min_variance : float
        See `fit`.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        The randomness of the starts and of `sample`, in scikit-learn's conventions: None uses
        numpy's global random state (seed it with ``np.random.seed``), an int gives the same
        fit every time.

    Attributes
    ----------
    weights_ : ndarray of shape (K,)
    means_ : ndarray of shape (K, d)
    covariances_ : ndarray of shape (K, d, d)
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The mean log-likelihood per point of the fitted parameters.
    history_ : tuple of float
        The total log-likelihood after every E-step of the best start.
    n_features_in_ : int
        d, the number of features seen by `fit`.
    """

    def __init__(self, n_components=1, *, n_init=1, init="kmeans", max_iter=MAX_ITER,
                 rel_tol=REL_TOL, whiten=True, per_point=True, min_variance=MIN_VARIANCE,
                 random_state=None):
        self.n_components = n_components
        self.n_init = n_init
        self.init = init
        self.max_iter = max_iter
        self.rel_tol = rel_tol
        self.whiten = whiten
        self.per_point = per_point
        self.min_variance = min_variance
        self.random_state = random_state

    # The estimator protocol: parameters are what __init__ takes, stored as given and
    # checked by fit (so that clone and set_params never fail).

    @classmethod
    def _param_names(cls):
        import inspect  # only for the protocol; kept out of the module's imports
        signature = inspect.signature(cls.__init__)
        return sorted(name for name, p in signature.parameters.items()
                      if name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep=True):
        """The parameters as a dict; with `deep`, those of parameters that are estimators too."""
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", v) for key, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params):
        """Set parameters (``name__key`` for a nested estimator's); returns self."""
        valid = self.get_params(deep=True)
        nested = {}
        for key, value in params.items():
            name, nest, subkey = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {self._param_names()}")
            if nest:
                nested.setdefault(name, {})[subkey] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self):
        import inspect
        signature = inspect.signature(type(self).__init__)
        shown = []
        for name, value in self.get_params(deep=False).items():
            default = signature.parameters[name].default
            try:
                same = type(value) is type(default) and bool(value == default)
            except (TypeError, ValueError):  # e.g. arrays in a given init
                same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_tags__(self):
        """scikit-learn's tags: a density estimator, as sklearn.mixture.GaussianMixture.

        Only scikit-learn calls this, so scikit-learn is imported here, not by the module.
        """
        from sklearn.utils import Tags, TargetTags
        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False))

    # Fitting

    def fit(self, X, y=None):
        """Fit the mixture to `X` of shape (N, d), best of `n_init` starts; returns self.

        `y` is ignored (scikit-learn passes it). A 2-D `numpy.memmap` is read block by block, as
        `fit` reads it, never whole; a 2-D array of integers (8-bit pixels) goes to `fit` as it
        is, which counts its repeated rows.
        """
        as_is = isinstance(X, np.ndarray) and X.ndim == 2 and (
            isinstance(X, np.memmap) or X.dtype.kind in "iu" and X.size > 0)
        if not as_is:
            X = _estimator_data(X)
        n_init = self.n_init
        if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
            raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
        rng = _random_generator(self.random_state)
        best = None
        for _ in range(n_init):
            result = fit(X, self.n_components, init=self.init, max_iter=self.max_iter,
                         rel_tol=self.rel_tol, whiten=self.whiten, per_point=self.per_point,
                         min_variance=self.min_variance, rng=rng)
            if best is None or result.log_likelihood > best.log_likelihood:
                best = result
        self.weights_ = best.weights
        self.means_ = best.means
        self.covariances_ = best.covariances
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.log_likelihood / X.shape[0]
        self.history_ = best.history
        self.n_features_in_ = X.shape[1]
        return self

    def fit_predict(self, X, y=None):
        """Fit to `X`, then return the most responsible component of each point, shape (N,)."""
        return self.fit(X).predict(X)

    # Using the fitted mixture

    def _check_fitted(self, X=None):
        if not hasattr(self, "means_"):
            raise _not_fitted_error(f"this {type(self).__name__} is not fitted yet: "
                                    "call fit(X) first")
        if X is None:
            return None
        X = _estimator_data(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        return X

    def _e_step(self, X):
        return log_e_step(self._check_fitted(X), self.weights_, self.means_, self.covariances_)

    def score_samples(self, X):
        """log p(z_i) of each point, shape (N,)."""
        return self._e_step(X)[1]

    def score(self, X, y=None):
        """The mean log-likelihood per point (the score `GridSearchCV` maximises by default)."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X):
        """Responsibilities p(k | z_i), shape (N, K)."""
        return np.exp(self._e_step(X)[0])

    def predict(self, X):
        """The most responsible component of each point, shape (N,)."""
        return self._e_step(X)[0].argmax(axis=1)

    def sample(self, n_samples=1):
        """Draw `n_samples` points; returns X of shape (n_samples, d) and their components.

        With an int `random_state`, every call draws the same points.
        """
        self._check_fitted()
        return sample(self.weights_, self.means_, self.covariances_, n_samples,
                      _random_generator(self.random_state))

    def _n_parameters(self):
        k, d = self.means_.shape
        return k * d * (d + 1) // 2 + k * d + k - 1

    def bic(self, X):
        """Bayesian information criterion: -2 log p(z) + (free parameters) log N."""
        log_lik = self.score_samples(X)
        return -2 * float(log_lik.sum()) + self._n_parameters() * math.log(len(log_lik))

    def aic(self, X):
        """Akaike information criterion: -2 log p(z) + 2 (free parameters)."""
        log_lik = self.score_samples(X)
        return -2 * float(log_lik.sum()) + 2 * self._n_parameters()
