"""Painless GMM: a Gaussian mixture model that does not break.

One module, numpy only, read top to bottom in the order of the book:

1. the model and sampling from it;
2. naive EM, the textbook formulas typed in as they stand (they fail, on purpose);
3. the log domain: log-sum-exp, Gaussian log-densities through a Cholesky factor, the log E-step;
4. singular covariances (the RCOND guard) and empty components;
5. initialisation: K-means with Forgy initialisation;
6. whitening and un-whitening;
7. the painless EM: ``em_steps`` and ``fit``;
8. a small scikit-learn-style estimator, ``GaussianMixture``.

Symbols: ``X`` is the data z (N x d), ``weights`` the mixing weights P(k) = pi_k, ``means`` mu_k,
``covariances`` Sigma_k, ``resp`` the responsibilities p(k | z_i) and ``log_resp`` their logs.
Copy this file into a project as it is: it needs nothing but numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RCOND_MIN", "MIN_VARIANCE", "REL_TOL", "MAX_ITER",
    "check_data", "check_params", "sample",
    "gaussian_pdf", "naive_e_step", "m_step", "naive_likelihood", "naive_em_steps", "naive_em",
    "logsumexp", "gaussian_logpdf", "log_gaussian_prob", "log_e_step",
    "rcond", "guard_covariance", "guard_covariances", "empty_components", "m_step_guarded",
    "kmeans", "init_from_kmeans", "init_random",
    "whiten", "unwhiten", "whiten_params",
    "EMState", "GMMFit", "em_steps", "fit",
    "GaussianMixture",
]

#: A covariance whose reciprocal condition number is at most this is replaced (chapter 5).
RCOND_MIN = 1e-10
#: The variance of the fallback diagonal covariance, in whitened units (chapter 5).
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
    if not np.allclose(covariances, covariances.transpose(0, 2, 1)):
        raise ValueError("covariances must be symmetric")
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
        raise ValueError("a covariance matrix is not positive definite; guard it first "
                         "(guard_covariance) or scale the data (whiten)") from None


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


def m_step_guarded(X, resp, means, covariances, *, min_variance=MIN_VARIANCE):
    """The M-step with both guards: empty components and singular covariances.

    An empty component (`empty_components`) keeps its previous mean and covariance and gets
    the weight N_k / N, about 0: nothing divides by zero, and EM's log-likelihood still never
    decreases. Every new covariance passes through `guard_covariance`.

    Parameters
    ----------
    X : array-like of shape (N, d)
    resp : array-like of shape (N, K)
    means : array-like of shape (K, d)
        The previous means, kept by empty components.
    covariances : array-like of shape (K, d, d)
        The previous covariances, kept by empty components.
    min_variance : float

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    n_guarded : int
        How many covariances `guard_covariance` replaced.
    """
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
    return weights, new_means, new_covs, guard_covariances(new_covs, min_variance=min_variance)


# --------------------------------------------------------------------------------------------
# 5. Initialisation: K-means with Forgy initialisation
# --------------------------------------------------------------------------------------------

def _forgy(X, k, rng):
    """k distinct data points, drawn at random (Forgy initialisation)."""
    idx = rng.choice(X.shape[0], size=k, replace=False)
    chosen = X[idx]
    if np.unique(chosen, axis=0).shape[0] == k:
        return chosen.copy()
    distinct = np.unique(X, axis=0)
    if distinct.shape[0] < k:
        raise ValueError(f"k = {k} components is more than the number of distinct points "
                         f"({distinct.shape[0]})")
    return distinct[rng.choice(distinct.shape[0], size=k, replace=False)]


def _sq_distances(X, centroids):
    """||z_i - c_j||^2 for all points and centroids, shape (N, k)."""
    d2 = (X * X).sum(axis=1)[:, None] - 2.0 * (X @ centroids.T) + (centroids**2).sum(axis=1)
    return np.maximum(d2, 0.0, out=d2)


def kmeans(X, k, rng, *, max_iter=MAX_ITER):
    """K-means (Lloyd's algorithm) started from k distinct random data points (Forgy).

    A cluster that loses all its points keeps its centroid.

    Parameters
    ----------
    X : array-like of shape (N, d)
    k : int
    rng : numpy.random.Generator or int
    max_iter : int
        At most this many assignment/update rounds; it stops earlier when no label changes.

    Returns
    -------
    centroids : ndarray of shape (k, d)
    labels : ndarray of shape (N,)
    """
    X = check_data(X)
    k = _check_k(k, X.shape[0])
    max_iter = _check_max_iter(max_iter)
    rng = np.random.default_rng(rng)
    centroids = _forgy(X, k, rng)
    labels = None
    for _ in range(max_iter):
        new_labels = np.argmin(_sq_distances(X, centroids), axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=X[:, j], minlength=k)
                         for j in range(X.shape[1])], axis=1)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, labels


def init_from_kmeans(X, k, rng, *, min_variance=MIN_VARIANCE):
    """Starting parameters from K-means clusters.

    P(k) = cluster size / N, mu_k = centroid, Sigma_k = diag(cluster variances), guarded.

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
        covariances[j] = guard_covariance(np.diag(variances), min_variance=min_variance)[0]
    if np.any(counts == 0):  # only when K-means emptied a cluster: give it a little weight
        weights = (counts + 1.0) / (X.shape[0] + k)
    return weights, centroids, covariances


def init_random(X, k, rng, *, min_variance=MIN_VARIANCE):
    """Random starting parameters: k distinct data points as means, the data's variances.

    P(k) = 1/k, mu_k = Forgy points, Sigma_k = diag(variances of all the data), guarded.

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
    cov = guard_covariance(np.diag(X.var(axis=0)), min_variance=min_variance)[0]
    return np.full(k, 1.0 / k), means, np.repeat(cov[None], k, axis=0)


# --------------------------------------------------------------------------------------------
# 6. Whitening
# --------------------------------------------------------------------------------------------

def whiten(X):
    """Centre each feature and divide it by its standard deviation.

    z_w = T^-1 (z - c) with c the feature means and T = diag(sigma). A feature with zero
    variance is only centred (its sigma is taken as 1), so nothing divides by zero.

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
    # Divide by each feature's largest magnitude first, so that squares of values near 1e200
    # do not overflow while the standard deviation is computed.
    peak = np.abs(X).max(axis=0)
    peak[peak == 0] = 1.0
    X = X / peak
    center = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[~(scale > 0)] = 1.0
    X_white = (X - center) / scale
    return X_white, center * peak, scale * peak


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


_whiten_data = whiten  # `em_steps` and `fit` take a flag of the same name


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


# The fast path (chapter 11). `em_steps` runs these two functions instead of `log_e_step` and
# `m_step_guarded`: the same formulas and the same guards, arranged for speed. They work on
# blocks of rows small enough to stay in the processor's cache, so no N x K*d temporary is ever
# made; they store the responsibilities component by component (K x N), so that every
# reduction over k runs along contiguous rows; and each quantity is computed once per step.

#: A block of rows holds about this many floats of work space (1 MB) in the fast path ...
BLOCK_FLOATS = 2**17
#: ... but at least this many rows, so that wide data do not cost thousands of small products.
BLOCK_MIN_ROWS = 2048
#: Up to this many features, the fast M-step takes all K covariances from one matrix product.
MOMENTS_MAX_D = 12
#: ... unless (mu_k - c)_a^2 > MOMENTS_MAX_LOSS * Sigma_k,aa: that would lose more than 4 digits.
MOMENTS_MAX_LOSS = 1e4
#: The fast E-step raises w_ki - m_i to at least this: exp(-700) ~ 1e-304 is 0 to every sum,
#: and exp is several times slower where its result would be subnormal or 0.
EXP_FLOOR = -700.0


def _block_rows(width):
    """Rows in one block of the fast path when each row needs `width` floats of work space."""
    return max(BLOCK_MIN_ROWS, BLOCK_FLOATS // width)


def _fast_e_step(Xw, weights, means, covariances, *, out=None):
    """The E-step of `log_e_step`, block by block, with one exp per responsibility.

    For each block of rows, the K quadratic forms come from one matrix product, as in
    `log_gaussian_prob`; then w_ki = l(z_i | k) + log P(k), m_i = max_k w_ki and

    p_ki = exp(w_ki - m_i) / s_i,   l(z_i) = m_i + log s_i,   s_i = sum_k exp(w_ki - m_i).

    One exp per entry gives both the responsibilities and the log-likelihood. Since s_i >= 1,
    log s_i is off by at most one rounding error (1e-16) absolute: no log-likelihood notices,
    so the log1p form of `logsumexp` (which matters when the result itself is tiny) is not
    needed here. A p_ki below exp(`EXP_FLOOR`) ~ 1e-304 (a weight of 0 included) is raised to
    about that: nothing changes by more than 1e-304, and exp stays fast.

    Parameters
    ----------
    Xw : ndarray of shape (N, d)
        The data EM runs on (whitened by `em_steps`).
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
        Positive definite (guarded).
    out : ndarray of shape (N, K) or None
        Responsibilities of an earlier call, to be overwritten; None allocates new ones.

    Returns
    -------
    resp : ndarray of shape (N, K)
        p(k | z_i), the transpose of a (K, N) array: ``resp.T`` is contiguous.
    log_lik : ndarray of shape (N,)
        l(z_i) = log p(z_i).
    """
    n, d = Xw.shape
    k = len(weights)
    prec = _precision_cholesky(covariances)                  # P_k = L_k^-T, (K, d, d)
    rows = prec.transpose(0, 2, 1).reshape(k * d, d)         # [P_1^T; ...; P_K^T], (K d, d)
    shift = np.einsum("kd,kde->ke", means, prec).reshape(k * d, 1)       # P_k^T mu_k
    with np.errstate(divide="ignore"):  # a weight of 0 is log 0 = -inf: its p_ki is 0
        log_norm = np.log(weights) + np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
    log_norm = (log_norm - 0.5 * d * math.log(2 * math.pi))[:, None]    # (K, 1)
    resp_t = np.empty((k, n)) if out is None else out.T                  # (K, N)
    log_lik = np.empty(n)
    size = _block_rows(k * d)
    y = np.empty((k * d, min(size, n)))
    for start in range(0, n, size):
        stop = min(start + size, n)
        yb = y[:, :stop - start]
        np.matmul(rows, Xw[start:stop].T, out=yb)           # P_k^T z_i for every k at once
        yb -= shift
        y3 = yb.reshape(k, d, stop - start)
        w = resp_t[:, start:stop]                            # (K, B), filled in place
        np.einsum("kdb,kdb->kb", y3, y3, out=w)              # (z - mu_k)^T Sigma_k^-1 (z - mu_k)
        w *= -0.5
        w += log_norm                                        # w_ki = l(z_i | k) + log P(k)
        top = w.max(axis=0)
        w -= top
        np.maximum(w, EXP_FLOOR, out=w)
        np.exp(w, out=w)
        total = w.sum(axis=0)
        w /= total
        log_lik[start:stop] = top + np.log(total)
    return resp_t.T, log_lik


def _second_moments(Xw, resp_t, center):
    """sum_i p_ki (z_i - c)(z_i - c)^T for every k: one product per block, shape (K, d, d)."""
    n, d = Xw.shape
    a, b = np.triu_indices(d)                                # the d(d+1)/2 distinct products
    sums = np.zeros((resp_t.shape[0], len(a)))
    size = _block_rows(3 * len(a))
    for start in range(0, n, size):
        z = np.ascontiguousarray((Xw[start:start + size] - center).T)   # (d, B): by feature
        sums += resp_t[:, start:start + size] @ (z[a] * z[b]).T
    moments = np.empty((resp_t.shape[0], d, d))
    moments[:, a, b] = sums
    moments[:, b, a] = sums
    return moments


def _fast_m_step(Xw, resp, means, covariances, *, min_variance=MIN_VARIANCE):
    """The M-step of `m_step_guarded`, with its guards, in fewer passes over the data.

    The means come from one product, resp^T Xw. Up to `MOMENTS_MAX_D` features, all K
    covariances come from second moments about the data's mean c (one product per block):

    Sigma_k = sum_i p_ki (z_i - c)(z_i - c)^T / N_k - (mu_k - c)(mu_k - c)^T.

    This subtracts two nearly equal numbers when a component is narrow and far from c: the
    relative error of Sigma_k,ab is about 1e-16 |(mu_k - c)_a (mu_k - c)_b| / Sigma_k,ab,
    harmless for most components once c is subtracted (chapter 11 shows the shortcut ruin
    uncentred data). c = sum_k N_k mu_k / N, the data's mean, costs nothing. A component that
    would lose more than 4 of the 16 digits (`MOMENTS_MAX_LOSS`), and every component when
    d > `MOMENTS_MAX_D`, takes the centred two-pass formula of `m_step_guarded` instead: one
    symmetric product of its weighted, centred data.

    Parameters
    ----------
    Xw : ndarray of shape (N, d)
    resp : ndarray of shape (N, K)
        From `_fast_e_step` (any layout works; that one is the fastest).
    means : ndarray of shape (K, d)
        The previous means, kept by empty components.
    covariances : ndarray of shape (K, d, d)
        The previous covariances, kept by empty components.
    min_variance : float

    Returns
    -------
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, d)
    covariances : ndarray of shape (K, d, d)
    n_guarded : int
        How many covariances `guard_covariance` replaced.
    """
    n, d = Xw.shape
    resp_t = resp.T                                          # (K, N)
    k = resp_t.shape[0]
    nk = resp_t.sum(axis=1)
    empty = empty_components(nk, n)
    safe_nk = np.where(empty, 1.0, nk)
    weights = nk / nk.sum()
    new_means = (resp_t @ Xw) / safe_nk[:, None]
    if d <= MOMENTS_MAX_D:
        center = nk @ new_means / nk.sum()
        offsets = new_means - center
        new_covs = _second_moments(Xw, resp_t, center) / safe_nk[:, None, None]
        new_covs -= offsets[:, :, None] * offsets[:, None, :]
        variances = np.diagonal(new_covs, axis1=1, axis2=2)
        lossy = ~np.all(offsets**2 <= MOMENTS_MAX_LOSS * variances, axis=1)
        two_pass = np.flatnonzero(lossy & ~empty)
    else:
        new_covs = np.empty((k, d, d))
        two_pass = np.flatnonzero(~empty)
    scaled = np.empty_like(Xw) if len(two_pass) else None    # one work array for them all
    for j in two_pass:
        np.subtract(Xw, new_means[j], out=scaled)
        scaled *= np.sqrt(resp_t[j])[:, None]
        new_covs[j] = (scaled.T @ scaled) / safe_nk[j]       # a symmetric product (BLAS syrk)
    new_means[empty] = means[empty]
    new_covs[empty] = covariances[empty]
    return weights, new_means, new_covs, guard_covariances(new_covs, min_variance=min_variance)


def em_steps(X, weights, means, covariances, *, max_iter=MAX_ITER, rel_tol=REL_TOL,
             whiten=True, per_point=True, min_variance=MIN_VARIANCE, fresh_resp=True):
    """The painless EM, one state at a time.

    Works in the log domain, guards covariances and empty components, and (by default) runs on
    whitened data, reporting parameters and log-likelihoods in the original units. It stops
    after the E-step whose log-likelihood gain is below log(1 + rel_tol), i.e. when the
    likelihood grows by less than `rel_tol` as a fraction, or after `max_iter` M-steps.

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
        The fallback variance of `guard_covariance`, in the units EM runs in.
    fresh_resp : bool
        Yield new responsibilities at every E-step, so that a kept state's `resp` never
        changes (the default). False overwrites one array instead: `fit`, which keeps no
        state, needs N x K floats less memory.

    Yields
    ------
    state : EMState
    """
    X = check_data(X)
    n, d = X.shape
    max_iter = _check_max_iter(max_iter)
    _check_positive(rel_tol, "rel_tol")
    _check_positive(min_variance, "min_variance")
    weights, means, covariances = check_params(weights, means, covariances)
    if means.shape[1] != d:
        raise ValueError(f"means have {means.shape[1]} features but X has {d}")
    _check_k(len(weights), n)

    if whiten:
        Xw, center, scale = _whiten_data(X)
        means, covariances = whiten_params(means, covariances, center, scale)
        jacobian = -n * float(np.sum(np.log(scale)))  # log-likelihood(original) - (whitened)
    else:
        Xw, center, scale, jacobian = X, np.zeros(d), np.ones(d), 0.0

    def state(iteration, step, resp, ll, converged=False, n_guarded=0):
        m, c = unwhiten(means, covariances, center, scale)
        return EMState(iteration, step, weights.copy(), m, c, resp, ll, converged, n_guarded)

    covariances = covariances.copy()  # guarded in place: the caller's array stays as it was
    n_guarded = guard_covariances(covariances, min_variance=min_variance)
    yield state(0, "init", None, None, n_guarded=n_guarded)

    threshold = math.log1p(rel_tol) * (n if per_point else 1)
    previous = None
    resp = None
    for iteration in range(max_iter + 1):
        # The fast path: `log_e_step` and `m_step_guarded` rearranged for speed (chapter 11).
        resp, log_lik = _fast_e_step(Xw, weights, means, covariances,
                                     out=None if fresh_resp else resp)
        ll = float(log_lik.sum()) + jacobian
        converged = previous is not None and not ll - previous >= threshold
        yield state(iteration, "E", resp, ll, converged)
        if converged or iteration == max_iter:
            return
        previous = ll
        weights, means, covariances, n_guarded = _fast_m_step(
            Xw, resp, means, covariances, min_variance=min_variance)
        yield state(iteration + 1, "M", resp, ll, n_guarded=n_guarded)


def _initial_params(X, k, init, rng, min_variance):
    if isinstance(init, str):
        if init == "kmeans":
            Xw, center, scale = whiten(X)
            w, m, c = init_from_kmeans(Xw, k, rng, min_variance=min_variance)
            return (w, *unwhiten(m, c, center, scale))
        if init == "random":  # on whitened data too, where min_variance is meant
            Xw, center, scale = whiten(X)
            w, m, c = init_random(Xw, k, rng, min_variance=min_variance)
            return (w, *unwhiten(m, c, center, scale))
        raise ValueError(f"init must be 'kmeans', 'random' or (weights, means, covariances), "
                         f"got {init!r}")
    weights, means, covariances = check_params(*init)
    if len(weights) != k:
        raise ValueError(f"init has {len(weights)} components but k = {k}")
    return weights, means, covariances


def fit(X, k, *, init="kmeans", max_iter=MAX_ITER, rel_tol=REL_TOL, whiten=True,
        per_point=True, min_variance=MIN_VARIANCE, rng=0):
    """Fit a K-component Gaussian mixture with the painless EM.

    Parameters
    ----------
    X : array-like of shape (N, d) or (N,)
        The data; a 1-D array is one feature.
    k : int
        The number of components, 1 <= k <= N.
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
        See `guard_covariance`.
    rng : numpy.random.Generator or int
        The source of randomness of the initialisation (seed 0 by default).

    Returns
    -------
    result : GMMFit
    """
    X = check_data(X)
    k = _check_k(k, X.shape[0])
    _check_positive(min_variance, "min_variance")
    weights, means, covariances = _initial_params(X, k, init, np.random.default_rng(rng),
                                                  min_variance)
    return _collect(em_steps(X, weights, means, covariances, max_iter=max_iter,
                             rel_tol=rel_tol, whiten=whiten, per_point=per_point,
                             min_variance=min_variance, fresh_resp=False))


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
        random generator as start j - 1 left it, so start 1 is the fit with n_init = 1.
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

        `y` is ignored (scikit-learn passes it).
        """
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
