"""The constrained M-step (issue 10): the eigenvalue clip, honest convergence, and the data
the book is for (saturated 8-bit pixels, constant features, fewer distinct points than K)."""

import warnings

import gallery  # from book/, which conftest.py puts on sys.path
import numpy as np
import pytest
from conftest import assert_valid_mixture
from scipy.optimize import minimize
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gmm_core as g

TAU = g.MIN_VARIANCE


def objective(cov, scatter, nk):
    """The M-step objective of Sigma_k: -N_k/2 log|Sigma| - 1/2 tr(Sigma^-1 S_k)."""
    sign, log_det = np.linalg.slogdet(cov)
    assert sign > 0
    return -0.5 * nk * log_det - 0.5 * np.trace(np.linalg.solve(cov, scatter))


def random_scatter(rng, d, n_small):
    """C = S / N with `n_small` eigenvalues below tau (some exactly 0), random directions."""
    values = rng.uniform(0.01, 3.0, size=d)
    values[:n_small] = rng.choice([0.0, 1e-9, 0.3 * TAU], size=n_small)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (q * values) @ q.T


@pytest.mark.parametrize("seed", range(6))
def test_clip_is_the_constrained_maximum(seed):
    # Reference: maximise the objective numerically over every Sigma = tau I + L L^T (exactly
    # the matrices whose eigenvalues are all >= tau), L a free lower-triangular matrix. A tau of
    # 0.05 keeps that problem well conditioned for the optimiser.
    tau, d, nk = 0.05, 3, 50.0
    rng = np.random.default_rng(seed)
    values = np.array([rng.choice([0.0, 0.01, 0.04]), rng.uniform(0.2, 1.0), 2.0])
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    C = (q * values) @ q.T
    clipped, raised = g.clip_covariance(C, min_variance=tau)
    assert raised
    rows, cols = np.tril_indices(d)

    def negative(theta):
        L = np.zeros((d, d))
        L[rows, cols] = theta
        return -objective(tau * np.eye(d) + L @ L.T, nk * C, nk)

    best = minimize(negative, np.eye(d)[rows, cols], method="BFGS", options={"gtol": 1e-10})
    L = np.zeros((d, d))
    L[rows, cols] = best.x
    np.testing.assert_allclose(clipped, tau * np.eye(d) + L @ L.T, atol=1e-5)
    assert objective(clipped, nk * C, nk) >= -best.fun - 1e-9
    # ... and no feasible matrix near or far from it does better.
    for _ in range(200):
        step = rng.normal(size=(d, d)) * rng.choice([1e-6, 1e-3, 0.3])
        other = clipped + step @ step.T
        assert objective(other, nk * C, nk) <= objective(clipped, nk * C, nk)


@pytest.mark.parametrize("seed", range(4))
def test_clip_keeps_eigenvectors_and_the_directions_with_data(seed):
    rng = np.random.default_rng(seed)
    C = random_scatter(rng, 4, n_small=2)
    clipped, _ = g.clip_covariance(C)
    values, vectors = np.linalg.eigh(C)
    # Same eigenvectors: V^T Sigma V is diagonal, with max(lambda, tau) on it.
    rotated = vectors.T @ clipped @ vectors
    np.testing.assert_allclose(rotated, np.diag(np.maximum(values, TAU)), atol=1e-14)


def test_clip_leaves_a_healthy_covariance_alone():
    C = np.array([[2.0, 0.5], [0.5, 1.0]])
    out, raised = g.clip_covariance(C)
    assert not raised
    np.testing.assert_array_equal(out, C)


@pytest.mark.parametrize("seed", range(5))
def test_rcond_is_bounded_below_after_the_clip(seed):
    # For a symmetric positive definite Sigma, RCOND (1-norm) >= 1 / (d cond_2(Sigma)) =
    # lambda_min / (d lambda_max) >= tau / (d lambda_max): the RCOND test of chapter 5 passes
    # whenever lambda_max < tau / (d RCOND_MIN) = 2.5e3 in whitened units (d = 4).
    rng = np.random.default_rng(seed)
    C = random_scatter(rng, 4, n_small=3)
    C = C @ C                                        # the small eigenvalues squared: < 1e-12
    assert g.rcond(C) <= g.RCOND_MIN                 # the seed's guard would fire
    clipped, _ = g.clip_covariance(C)
    bound = TAU / (4 * np.linalg.eigvalsh(clipped)[-1])
    assert g.rcond(clipped) >= bound > g.RCOND_MIN


def sklearn_at_the_same_floor(X, start):
    """scikit-learn on the same whitened data, reg_covar = tau, from the same start; its
    log-likelihood in the original units."""
    Xw, center, scale = g.whiten(X)
    weights, means, covs = start
    means_w, covs_w = g.whiten_params(means, covs, center, scale)
    sk = SkGaussianMixture(len(weights), reg_covar=TAU, weights_init=weights, means_init=means_w,
                           precisions_init=np.linalg.inv(covs_w), tol=1e-10, max_iter=1000)
    sk.fit(Xw)
    return sk.score(Xw) * len(X) - len(X) * np.log(scale).sum()


def test_the_reproducer_climbs_to_scikit_learns_likelihood_and_converges_there():
    X = gallery.saturated_pixels()
    result = g.fit(X, 2)
    assert result.log_likelihood >= -61677.64
    assert result.converged and np.all(np.diff(result.history) >= 0)
    rng = np.random.default_rng(0)
    Xw, center, scale = g.whiten(X)
    w, m, c = g.init_from_kmeans(Xw, 2, rng)
    start = (w, *g.unwhiten(m, c, center, scale))
    reference = sklearn_at_the_same_floor(X, start)
    assert result.log_likelihood >= reference - 1e-9 * abs(reference)
    # The saturated cluster keeps its shape: variances about (225, 225) in red and green.
    sky = int(np.argmax(result.means[:, 2]))
    variances = np.diag(result.covariances[sky])
    assert np.all(np.abs(variances[:2] - 225) < 25) and variances[2] < 0.01


def test_the_seeds_guard_falls_and_is_reported_not_called_converged():
    X = gallery.saturated_pixels()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = g.fit(X, 2, guard=g.guard_covariances, max_iter=10)
    assert "decreased at iteration 1," in str(caught[0].message)
    assert all(w.category is RuntimeWarning for w in caught)
    assert not result.converged
    assert min(np.diff(result.history)) < -1e4


def test_constant_feature_keeps_the_correlations_of_the_others():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2000, 2)) @ np.array([[1.0, 0.9], [0.0, 0.3]])
    X = np.column_stack([z, np.full(2000, 500.0)])
    result = g.fit(X, 1)
    cov = result.covariances[0]
    np.testing.assert_allclose(cov[:2, :2], np.cov(z.T, bias=True), rtol=1e-10)
    # A constant feature is only centred (scale 1): its variance is tau in its own units.
    assert cov[2, 2] == pytest.approx(TAU, rel=1e-10)
    assert abs(cov[0, 2]) < 1e-12 and result.means[0, 2] == 500.0


@pytest.mark.parametrize("k", [1, 2, 5])
def test_one_colour_with_more_components_than_distinct_points(k):
    X = np.tile(np.array([[250, 250, 245]], dtype=np.uint8), (400, 1))   # a white wall
    result = g.fit(X, k)
    assert_valid_mixture(result.weights, result.means, result.covariances)
    np.testing.assert_array_equal(result.means, np.tile([250.0, 250.0, 245.0], (k, 1)))
    assert np.isfinite(result.log_likelihood) and result.converged
    with pytest.raises(ValueError, match="more than the number of points"):
        g.fit(X[:3], 4)


def test_two_colours_five_components():
    X = np.repeat(np.array([[10, 20, 30], [200, 100, 0]], dtype=np.uint8), [300, 100], axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = g.fit(X, 5)
    assert_valid_mixture(result.weights, result.means, result.covariances)
    # Every point sits on one of the two colours; the occupied components hold 3/4 and 1/4.
    assert {tuple(m) for m in np.round(result.means, 9)} <= {(10.0, 20.0, 30.0),
                                                            (200.0, 100.0, 0.0)}
    dark = np.all(np.round(result.means, 9) == [10.0, 20.0, 30.0], axis=1)
    assert result.weights[dark].sum() == pytest.approx(0.75, rel=1e-9)


@pytest.mark.parametrize("bad, message", [
    (np.array([[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]),
     r"covariances\[0\] \(component 1\) is not positive semi-definite"),
    (np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.5], [0.0, 1.0]]]),
     r"covariances\[1\] \(component 2\) is not symmetric"),
])
def test_bad_starting_covariances_name_the_component(bad, message):
    X = np.random.default_rng(0).normal(size=(50, 2))
    init = (np.array([0.5, 0.5]), np.zeros((2, 2)), bad)
    with pytest.raises(ValueError, match=message):
        g.fit(X, 2, init=init)
    with pytest.raises(ValueError, match=message):
        g.sample(*init, 10, 0)


def test_init_none_is_named():
    with pytest.raises(ValueError, match="init must be 'kmeans', 'random' or a tuple"):
        g.fit(np.zeros((5, 1)) + np.arange(5)[:, None], 2, init=None)
