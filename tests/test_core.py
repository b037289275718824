"""The building blocks of the painless EM, each against an independent reference.

References: scipy.special.logsumexp, scipy.stats.multivariate_normal, numpy.linalg.cond,
numpy.cov with aweights, explicit loops, and hand values.
"""

import warnings

import numpy as np
import pytest
import scipy.special
from scipy.stats import multivariate_normal

import gmm_core as g


def rng(seed):
    return np.random.default_rng(seed)


def random_spd(d, seed, *, scales=None, decay=0.0):
    """A correlated covariance: Q diag(eig) Q^T with random Q, scaled per feature."""
    r = rng(seed)
    q, _ = np.linalg.qr(r.normal(size=(d, d)))
    eig = np.exp(-decay * np.arange(d)) * r.uniform(0.5, 2.0, size=d)
    cov = (q * eig) @ q.T
    if scales is not None:
        cov = cov * np.outer(scales, scales)
    return 0.5 * (cov + cov.T)


def no_warnings():
    """A context in which any warning, or any numpy floating-point error, raises."""
    class _Ctx:
        def __enter__(self):
            self._w = warnings.catch_warnings()
            self._w.__enter__()
            warnings.simplefilter("error")
            self._e = np.errstate(all="raise", under="ignore")
            self._e.__enter__()

        def __exit__(self, *exc):
            self._e.__exit__(*exc)
            return self._w.__exit__(*exc)
    return _Ctx()


# --------------------------------------------------------------------------------------------
# logsumexp against scipy.special.logsumexp
# --------------------------------------------------------------------------------------------

def scipy_lse(a, **kw):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return scipy.special.logsumexp(a, **kw)


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_axes_match_scipy(axis, keepdims):
    a = rng(0).normal(scale=30, size=(3, 4, 5))
    ours = g.logsumexp(a, axis=axis, keepdims=keepdims)
    ref = scipy_lse(a, axis=axis, keepdims=keepdims)
    assert np.shape(ours) == np.shape(ref)
    np.testing.assert_allclose(ours, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("rows", [
    [[-np.inf, -np.inf, -np.inf]],                     # all -inf: -inf, no warning
    [[-np.inf, 0.0, -np.inf]],                         # -inf entries are zero terms
    [[-np.inf, -1e3, -1e3]],
    [[np.inf, 0.0, 1.0]],                              # +inf wins
    [[np.inf, -np.inf, 0.0]],
    [[1e308, 1e308, 1e308]],                           # huge: a plain sum of exp overflows
    [[-1e308, -1e308, 0.0]],
    [[1e308, -1e308, 0.0]],
    [[5e-324, 1e-300, 0.0]],                           # tiny values are ~0
    [[-1000.0, -1000.0, -1000.0]],                     # all terms underflow in exp
    [[-745.0, -746.0, -800.0]],
    [[0.0, -40.0, -80.0]],
    [[1e-16, -1e-16, 0.0]],
])
def test_logsumexp_special_values_match_scipy(rows):
    a = np.array(rows, dtype=float)
    with no_warnings():
        ours = g.logsumexp(a, axis=1)
        ours_all = g.logsumexp(a)
    np.testing.assert_allclose(ours, scipy_lse(a, axis=1), rtol=1e-15, atol=0)
    np.testing.assert_allclose(ours_all, scipy_lse(a), rtol=1e-15, atol=0)


def test_logsumexp_all_minus_inf_rows_give_minus_inf_without_warning():
    a = np.full((4, 3), -np.inf)
    a[1] = [0.0, 1.0, 2.0]
    with no_warnings():
        lse = g.logsumexp(a, axis=1)
        lse0 = g.logsumexp(a.T, axis=0, keepdims=True)
    assert lse[0] == -np.inf and lse[2] == -np.inf and lse[3] == -np.inf
    assert np.isfinite(lse[1])
    assert lse0.shape == (1, 4)
    np.testing.assert_array_equal(lse0[0], lse)


def test_logsumexp_nan_propagates_like_scipy():
    a = np.array([[np.nan, 0.0], [0.0, 1.0]])
    with no_warnings():
        ours = g.logsumexp(a, axis=1)
    np.testing.assert_array_equal(ours, scipy_lse(a, axis=1))


def test_logsumexp_log1p_form_is_accurate():
    # log(e^0 + e^-40) = log1p(e^-40) = 4.248354255291589e-18; the plain shifted form,
    # m + log(sum exp(a - m)), adds 1 + 4e-18 = 1 and returns 0.
    hand = np.log1p(np.exp(-40.0))
    assert hand == 4.248354255291589e-18
    assert scipy_lse([0.0, -40.0]) == hand
    assert g.logsumexp([0.0, -40.0]) == hand
    assert np.log(np.sum(np.exp([0.0, -40.0]))) == 0.0  # the inaccurate form, for contrast
    # The same for many small terms, against an exact sum of the tail (math.fsum).
    a = np.concatenate([[0.0], -40.0 - np.arange(50.0)])
    tail = np.exp(a[1:])
    assert g.logsumexp(a) == pytest.approx(np.log1p(np.sum(tail)), rel=1e-15)


def test_logsumexp_scalar_and_integer_input():
    assert g.logsumexp(3.0) == 3.0
    assert g.logsumexp([1, 2, 3]) == pytest.approx(scipy_lse([1.0, 2.0, 3.0]), rel=1e-15)


# --------------------------------------------------------------------------------------------
# Gaussian densities against scipy.stats.multivariate_normal
# --------------------------------------------------------------------------------------------

DIMS = [1, 2, 3, 10, 50]


def case_points(d, seed, mean, cov, n=200, spread=3.0):
    """Points around `mean` out to about `spread` standard deviations, some far beyond."""
    r = rng(seed)
    L = np.linalg.cholesky(cov)
    X = mean + (r.normal(size=(n, d)) * spread) @ L.T
    X[:5] = mean + (r.normal(size=(5, d)) * 10 * spread) @ L.T  # far out: tiny densities
    return X


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_gaussian_logpdf_matches_scipy(d, decay):
    mean = rng(d).normal(size=d) * 5
    cov = random_spd(d, seed=10 + d, decay=decay, scales=rng(d + 1).uniform(0.1, 10, size=d))
    X = case_points(d, 20 + d, mean, cov)
    ref = multivariate_normal(mean, cov).logpdf(X)
    ours = g.gaussian_logpdf(X, mean, cov)
    assert ours.shape == (len(X),)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10 * d)


def test_gaussian_logpdf_strongly_correlated():
    # rho = 0.999: RCOND about 5e-4, still an honest covariance.
    cov = np.array([[1.0, 0.999], [0.999, 1.0]]) * 4.0
    mean = np.array([1.0, -2.0])
    X = case_points(2, 5, mean, cov)
    np.testing.assert_allclose(g.gaussian_logpdf(X, mean, cov),
                               multivariate_normal(mean, cov).logpdf(X), rtol=1e-9)


@pytest.mark.parametrize("d", DIMS)
def test_log_gaussian_prob_matches_scipy(d):
    k = 4
    r = rng(100 + d)
    means = r.normal(size=(k, d)) * 2
    covs = np.stack([random_spd(d, seed=200 + 7 * d + j, decay=0.1) for j in range(k)])
    X = r.normal(size=(150, d)) * 2
    ours = g.log_gaussian_prob(X, means, covs)
    assert ours.shape == (150, k)
    for j in range(k):
        ref = multivariate_normal(means[j], covs[j]).logpdf(X)
        np.testing.assert_allclose(ours[:, j], ref, rtol=1e-9, atol=1e-9 * d)
        np.testing.assert_allclose(g.gaussian_logpdf(X, means[j], covs[j]), ref,
                                   rtol=1e-10, atol=1e-10 * d)


def test_gaussian_logpdf_accepts_one_dimensional_x():
    x = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(g.gaussian_logpdf(x, [0.5], [[2.0]]),
                               multivariate_normal(0.5, 2.0).logpdf(x), rtol=1e-13)


def test_gaussian_logpdf_rejects_indefinite_covariance():
    with pytest.raises(ValueError, match="positive definite"):
        g.gaussian_logpdf(np.zeros((3, 2)), np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="positive definite"):
        g.log_gaussian_prob(np.zeros((3, 2)), np.zeros((1, 2)), np.zeros((1, 2, 2)))


@pytest.mark.parametrize("d", [1, 2, 3, 10])
def test_gaussian_pdf_matches_scipy_where_it_does_not_underflow(d):
    mean = rng(d).normal(size=d)
    cov = random_spd(d, seed=30 + d, decay=0.2)
    X = case_points(d, 40 + d, mean, cov, spread=1.5)[5:]
    ref = multivariate_normal(mean, cov).pdf(X)
    assert np.all(ref > 1e-300)
    np.testing.assert_allclose(g.gaussian_pdf(X, mean, cov), ref, rtol=1e-10)


# --------------------------------------------------------------------------------------------
# The log-domain E-step
# --------------------------------------------------------------------------------------------

def reference_log_e_step(X, weights, means, covs):
    with np.errstate(divide="ignore"):
        joint = np.stack([multivariate_normal(m, c).logpdf(X) + np.log(w)
                          for w, m, c in zip(weights, means, covs)], axis=1)
    log_lik = scipy_lse(joint, axis=1)
    return joint - log_lik[:, None], log_lik


@pytest.mark.parametrize("d", [1, 2, 5, 20])
def test_log_e_step_matches_scipy_reference(d):
    k = 3
    r = rng(300 + d)
    weights = r.dirichlet(np.ones(k))
    means = r.normal(size=(k, d)) * 3
    covs = np.stack([random_spd(d, seed=400 + 5 * d + j) for j in range(k)])
    X = r.normal(size=(300, d)) * 3
    X[0] = 1e3  # a far outlier: every density underflows, the log-domain copes
    log_resp, log_lik = g.log_e_step(X, weights, means, covs)
    ref_resp, ref_lik = reference_log_e_step(X, weights, means, covs)
    np.testing.assert_allclose(log_lik, ref_lik, rtol=1e-10)
    np.testing.assert_allclose(np.exp(log_resp), np.exp(ref_resp), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(log_resp))


def test_log_e_step_zero_weight_gives_minus_inf_without_warning():
    X = rng(1).normal(size=(50, 2))
    weights = np.array([0.0, 1.0])
    means = np.array([[0.0, 0.0], [1.0, 1.0]])
    covs = np.stack([np.eye(2), np.eye(2)])
    with no_warnings():
        log_resp, log_lik = g.log_e_step(X, weights, means, covs)
    assert np.all(log_resp[:, 0] == -np.inf)
    np.testing.assert_array_equal(log_resp[:, 1], 0.0)
    np.testing.assert_allclose(log_lik, multivariate_normal([1, 1], np.eye(2)).logpdf(X),
                               rtol=1e-12)


# --------------------------------------------------------------------------------------------
# RCOND and the covariance guard
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("decay", [0.0, 1.0, 3.0, 6.0])
@pytest.mark.parametrize("d", [2, 5, 10])
def test_rcond_matches_numpy_cond(d, decay):
    cov = random_spd(d, seed=d, decay=decay)
    ref = 1.0 / np.linalg.cond(cov, 1)
    assert g.rcond(cov) == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (2.0, 8.0), (1e-3, 1.0), (5.0, 1e-12),
                                  (1e100, 1e90)])
def test_rcond_of_diagonal_is_min_over_max(a, b):
    assert g.rcond(np.diag([a, b])) == pytest.approx(min(a, b) / max(a, b), rel=1e-15)


@pytest.mark.parametrize("cov", [
    np.zeros((2, 2)),
    np.ones((3, 3)),                                    # rank 1
    np.array([[1.0, 2.0], [2.0, 4.0]]),                 # rank 1
    np.array([[np.nan, 0.0], [0.0, 1.0]]),
    np.array([[np.inf, 0.0], [0.0, 1.0]]),
])
def test_rcond_of_singular_is_zero(cov):
    with no_warnings():
        assert g.rcond(cov) == 0.0


def test_rcond_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        g.rcond(np.zeros((2, 3)))


def test_guard_keeps_a_good_matrix_unchanged():
    for d in (1, 2, 10):
        cov = random_spd(d, seed=d, decay=0.5)
        out, replaced = g.guard_covariance(cov)
        assert not replaced
        np.testing.assert_array_equal(out, cov)
    # Just above the threshold: RCOND = 2e-10 > 1e-10 and positive definite.
    cov = np.diag([1.0, 2e-10])
    out, replaced = g.guard_covariance(cov)
    assert not replaced
    np.testing.assert_array_equal(out, cov)


def check_replacement(cov, out, min_variance):
    d = cov.shape[0]
    assert out.shape == (d, d)
    np.testing.assert_array_equal(out, np.diag(np.diag(out)))   # diagonal
    assert np.all(np.diag(out) == out[0, 0])                     # a multiple of I
    assert g.rcond(out) == 1.0 == 1.0 / np.linalg.cond(out, 1)
    assert out[0, 0] >= min_variance
    np.linalg.cholesky(out)


@pytest.mark.parametrize("cov", [
    np.zeros((3, 3)),                                            # a single point
    np.ones((3, 3)) * 4.0,                                       # identical features
    np.diag([1.0, 1e-11]),                                       # RCOND 1e-11
    np.diag([1.0, 0.5e-10]),                                     # RCOND just under 1e-10
    np.array([[1.0, 1 - 1e-12], [1 - 1e-12, 1.0]]),             # nearly singular, correlated
    np.array([[1.0, 2.0], [2.0, 1.0]]),                          # indefinite, RCOND 1/3
    -np.eye(2),                                                  # negative definite
    np.array([[np.nan, 0.0], [0.0, 1.0]]),                       # not finite
])
@pytest.mark.parametrize("min_variance", [1e-6, 0.5])
def test_guard_replaces_bad_matrices_by_a_diagonal(cov, min_variance):
    with no_warnings():
        out, replaced = g.guard_covariance(cov, min_variance=min_variance)
    assert replaced
    check_replacement(cov, out, min_variance)
    if np.all(np.isfinite(cov)) and np.trace(cov) / len(cov) > min_variance:
        # The documented size: the mean variance of the replaced matrix.
        assert out[0, 0] == pytest.approx(np.trace(cov) / len(cov), rel=1e-15)


@pytest.mark.parametrize("cov", [np.array([[1e-30]]), np.array([[1.8e-32]]),
                                 1e-20 * np.eye(3), np.diag([1e-17, 2e-17])])
def test_guard_replaces_a_collapsed_covariance_that_rcond_cannot_see(cov):
    """A component on copies of one point has variances at rounding level (about 1e-32 of the
    data's) with RCOND 1 in 1-D (and for an isotropic collapse in any d)."""
    assert 1.0 / np.linalg.cond(cov, 1) > 0.4
    out, replaced = g.guard_covariance(cov)
    assert replaced
    np.testing.assert_array_equal(out, g.MIN_VARIANCE * np.eye(len(cov)))
    # ... while a narrow but real component is kept: mean variance above 1e-10 * min_variance.
    for narrow in (np.array([[1e-15]]), 1e-12 * np.eye(3)):
        out, replaced = g.guard_covariance(narrow)
        assert not replaced
        np.testing.assert_array_equal(out, narrow)


def test_guard_threshold_is_rcond_min():
    assert g.RCOND_MIN == 1e-10
    for ratio, expect in [(1e-9, False), (3e-10, False), (0.9e-10, True), (1e-12, True)]:
        cov = np.diag([1.0, ratio])
        assert (1.0 / np.linalg.cond(cov, 1) <= 1e-10) == expect
        assert g.guard_covariance(cov)[1] == expect


# --------------------------------------------------------------------------------------------
# The M-step
# --------------------------------------------------------------------------------------------

def reference_m_step(X, resp):
    """Explicit loops over points: the M-step formulas as written."""
    n, d = X.shape
    k = resp.shape[1]
    nk = np.zeros(k)
    means = np.zeros((k, d))
    covs = np.zeros((k, d, d))
    for j in range(k):
        for i in range(n):
            nk[j] += resp[i, j]
            means[j] += resp[i, j] * X[i]
        means[j] /= nk[j]
        for i in range(n):
            diff = X[i] - means[j]
            covs[j] += resp[i, j] * np.outer(diff, diff)
        covs[j] /= nk[j]
    return nk / n, means, covs


@pytest.mark.parametrize("d, k", [(1, 2), (2, 3), (5, 4)])
def test_m_step_matches_loops_and_numpy_cov(d, k):
    r = rng(d * 10 + k)
    X = r.normal(size=(120, d)) * 3 + 1
    resp = r.dirichlet(np.ones(k), size=120)
    weights, means, covs = g.m_step(X, resp)
    ref_w, ref_m, ref_c = reference_m_step(X, resp)
    np.testing.assert_allclose(weights, ref_w, rtol=1e-13)
    np.testing.assert_allclose(means, ref_m, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(covs, ref_c, rtol=1e-12, atol=1e-13)
    for j in range(k):
        cov = np.cov(X.T, aweights=resp[:, j], bias=True).reshape(d, d)
        np.testing.assert_allclose(covs[j], cov, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(means[j], np.average(X, axis=0, weights=resp[:, j]),
                                   rtol=1e-12, atol=1e-13)


def test_m_step_guarded_matches_m_step_on_healthy_input():
    r = rng(7)
    X = r.normal(size=(200, 3))
    resp = r.dirichlet(np.ones(3), size=200)
    prev_m, prev_c = r.normal(size=(3, 3)), np.stack([np.eye(3)] * 3)
    w, m, c, n_guarded = g.m_step_guarded(X, resp, prev_m, prev_c)
    ref_w, ref_m, ref_c = reference_m_step(X, resp)
    assert n_guarded == 0
    np.testing.assert_allclose(w, ref_w, rtol=1e-13)
    np.testing.assert_allclose(m, ref_m, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c, ref_c, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("empty_mass", [0.0, 1e-300, 1e-17])
def test_m_step_guarded_keeps_an_empty_component(empty_mass):
    r = rng(8)
    X = r.normal(size=(100, 2))
    resp = np.column_stack([r.dirichlet(np.ones(2), size=100), np.full(100, empty_mass)])
    resp /= resp.sum(axis=1, keepdims=True)
    prev_m = np.array([[0.0, 0.0], [1.0, 1.0], [50.0, -50.0]])
    prev_c = np.stack([np.eye(2), np.eye(2), np.array([[2.0, 0.5], [0.5, 3.0]])])
    assert g.empty_components(resp.sum(axis=0), 100).tolist() == [False, False, True]
    with no_warnings():
        w, m, c, n_guarded = g.m_step_guarded(X, resp, prev_m, prev_c)
    np.testing.assert_array_equal(m[2], prev_m[2])
    np.testing.assert_array_equal(c[2], prev_c[2])
    assert 0.0 <= w[2] <= 1e-15
    assert w.sum() == pytest.approx(1.0, abs=1e-15)
    assert n_guarded == 0
    ref_w, ref_m, ref_c = reference_m_step(X, resp[:, :2])
    np.testing.assert_allclose(m[:2], ref_m, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c[:2], ref_c, rtol=1e-12, atol=1e-13)


def test_m_step_guarded_replaces_a_singular_covariance():
    # Component 1 owns only copies of one point: its covariance is 0.
    X = np.vstack([rng(9).normal(size=(50, 2)), np.tile([[5.0, 5.0]], (10, 1))])
    resp = np.zeros((60, 2))
    resp[:50, 0] = 1.0
    resp[50:, 1] = 1.0
    with no_warnings():
        w, m, c, n_guarded = g.m_step_guarded(X, resp, np.zeros((2, 2)),
                                              np.stack([np.eye(2)] * 2), min_variance=1e-3)
    assert n_guarded == 1
    np.testing.assert_array_equal(m[1], [5.0, 5.0])
    np.testing.assert_array_equal(c[1], 1e-3 * np.eye(2))
    np.testing.assert_allclose(w, [50 / 60, 10 / 60], rtol=1e-15)


def test_empty_components_threshold():
    n = 1000
    eps = np.finfo(np.float64).eps
    nk = np.array([0.0, n * eps, 2 * n * eps, 1e-3, 500.0])
    assert g.empty_components(nk, n).tolist() == [True, True, False, False, False]


# --------------------------------------------------------------------------------------------
# K-means with Forgy initialisation, and the initialisation from its clusters
# --------------------------------------------------------------------------------------------

def blobs(centres, n_each, std, seed):
    r = rng(seed)
    centres = np.asarray(centres, dtype=float)
    labels = np.repeat(np.arange(len(centres)), n_each)
    std = np.broadcast_to(np.asarray(std, dtype=float), (len(centres),))[labels, None]
    X = centres[labels] + std * r.normal(size=(len(labels), centres.shape[1]))
    return X, labels


TWO_CENTRES = [[0.0, 0.0], [20.0, 5.0]]
FOUR_CENTRES = [[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [20.0, 20.0]]


def match_centres(found, true):
    """The largest distance from each true centre to its nearest found centre, and whether the
    nearest centres are all different."""
    dist = np.linalg.norm(found[:, None, :] - np.asarray(true)[None], axis=2)
    nearest = dist.argmin(axis=0)
    return dist.min(axis=0).max(), len(set(nearest.tolist())) == len(true)


# Tolerance: each true centre is estimated by the mean of n = 200 points with standard
# deviation 1 per feature, so its error has a standard deviation 1 / sqrt(200) = 0.071 per
# feature (0.1 in distance, in 2-D). 0.5 is five of those: a wrong clustering (a centroid
# between two blobs 20 apart, or in the wrong blob) is off by 10 or more.
CENTRE_TOL = 0.5


@pytest.mark.parametrize("seed", range(10))
def test_kmeans_recovers_two_blobs_from_any_seed(seed):
    X, labels = blobs(TWO_CENTRES, 200, 1.0, seed=123)
    centroids, found = g.kmeans(X, 2, rng(seed))
    err, distinct = match_centres(centroids, TWO_CENTRES)
    assert distinct and err < CENTRE_TOL, (err, centroids)
    # The labels are the true clusters (up to renaming).
    assert len(set(zip(found.tolist(), labels.tolist()))) == 2


def test_kmeans_four_blobs_fixed_points_and_best_of_seeds():
    """Forgy + Lloyd can stop in a local minimum (two centroids in one blob) on four blobs;
    every run must still end at a Lloyd fixed point, and the best run of ten recovers the
    true centres."""
    X, _ = blobs(FOUR_CENTRES, 200, 1.0, seed=321)
    runs = []
    for seed in range(10):
        centroids, labels = g.kmeans(X, 4, rng(seed))
        d2 = ((X[:, None, :] - centroids[None]) ** 2).sum(axis=2)
        np.testing.assert_array_equal(labels, d2.argmin(axis=1))
        for j in range(4):
            if np.any(labels == j):
                np.testing.assert_allclose(centroids[j], X[labels == j].mean(axis=0),
                                           rtol=1e-12, atol=1e-12)
        inertia = d2[np.arange(len(X)), labels].sum()
        runs.append((inertia, centroids))
    best = min(runs, key=lambda run: run[0])[1]
    err, distinct = match_centres(best, FOUR_CENTRES)
    assert distinct and err < CENTRE_TOL, (err, best)


def test_kmeans_is_deterministic_given_the_seed():
    X, _ = blobs(FOUR_CENTRES, 50, 3.0, seed=5)
    a = g.kmeans(X, 4, 17)
    b = g.kmeans(X, 4, rng(17))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = g.init_from_kmeans(X, 4, rng(17))
    d = g.init_from_kmeans(X, 4, rng(17))
    for x, y in zip(c, d):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("seed", range(20))
def test_forgy_picks_distinct_points_among_heavy_duplicates(seed):
    # 1000 copies of one point and one copy each of two others: k = 3 needs all three.
    X = np.vstack([np.tile([[1.0, 1.0]], (1000, 1)), [[5.0, 0.0]], [[0.0, 7.0]]])
    centroids, labels = g.kmeans(X, 3, rng(seed))
    assert sorted(map(tuple, centroids)) == [(0.0, 7.0), (1.0, 1.0), (5.0, 0.0)]
    assert np.bincount(labels).tolist() in ([1000, 1, 1], [1, 1000, 1], [1, 1, 1000])
    _, means, _ = g.init_random(X, 3, rng(seed))
    assert np.unique(means, axis=0).shape[0] == 3


def test_kmeans_with_more_clusters_than_distinct_points():
    X = np.vstack([np.zeros((10, 2)), np.ones((10, 2))])
    centroids, labels = g.kmeans(X, 5, np.random.default_rng(0))
    # Both distinct points are centroids; the 3 extra centroids repeat them and stay empty.
    assert {tuple(c) for c in centroids} == {(0.0, 0.0), (1.0, 1.0)}
    assert np.bincount(labels, minlength=5).tolist().count(0) == 3
    np.testing.assert_array_equal(centroids[labels], X)
    with pytest.raises(ValueError, match="more than the number of points"):
        g.kmeans(X, 21, np.random.default_rng(0))


@pytest.mark.parametrize("seed", range(3))
def test_init_from_kmeans_uses_cluster_sizes_centroids_and_variances(seed):
    X, _ = blobs([[0.0, 0.0, 0.0], [8.0, 0.0, 1.0], [0.0, 9.0, -3.0]], [50, 120, 30],
                 [1.0, 0.5, 2.0], seed=seed)
    X = X * np.array([1.0, 3.0, 0.2])
    centroids, labels = g.kmeans(X, 3, rng(seed))
    weights, means, covs = g.init_from_kmeans(X, 3, rng(seed))
    np.testing.assert_array_equal(means, centroids)
    np.testing.assert_array_equal(weights, np.bincount(labels, minlength=3) / len(X))
    for j in range(3):
        members = X[labels == j]
        var = ((members - members.mean(axis=0)) ** 2).sum(axis=0) / len(members)
        np.testing.assert_allclose(covs[j], np.diag(var), rtol=1e-12, atol=0)


def test_init_from_kmeans_guards_a_single_point_cluster():
    X = np.vstack([rng(0).normal(size=(30, 2)), [[100.0, 100.0]]])
    weights, means, covs = g.init_from_kmeans(X, 2, rng(0), min_variance=1e-4)
    lone = int(np.argmax(means[:, 0]))
    np.testing.assert_array_equal(means[lone], [100.0, 100.0])
    np.testing.assert_array_equal(covs[lone], 1e-4 * np.eye(2))
    assert weights[lone] == 1 / 31


def test_init_random_is_forgy_with_data_variances():
    X = rng(3).normal(size=(40, 3)) * [1.0, 10.0, 0.1]
    weights, means, covs = g.init_random(X, 4, rng(3))
    np.testing.assert_array_equal(weights, 0.25)
    assert all(any(np.array_equal(m, x) for x in X) for m in means)
    for c in covs:
        np.testing.assert_allclose(c, np.diag(X.var(axis=0)), rtol=1e-13)


# --------------------------------------------------------------------------------------------
# Whitening
# --------------------------------------------------------------------------------------------

def test_whiten_is_centre_and_scale():
    X = rng(4).normal(size=(100, 3)) * [1e-3, 1.0, 1e4] + [5.0, -2.0, 1e5]
    Xw, center, scale = g.whiten(X)
    np.testing.assert_allclose(center, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(scale, X.std(axis=0), rtol=1e-13)
    # Centring a feature whose mean is m times its spread loses about log10(m) digits: the
    # tolerance is a few rounding errors of that size (m = 5000 for the first feature).
    atol = 10 * np.finfo(float).eps * np.abs(X).max(axis=0) / X.std(axis=0)
    assert np.all(np.abs(Xw - (X - X.mean(axis=0)) / X.std(axis=0)) <= atol)
    assert np.all(np.abs(Xw.mean(axis=0)) <= atol)
    np.testing.assert_allclose(Xw.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(Xw * scale + center, X, rtol=1e-12)


def test_whiten_zero_variance_column_does_not_divide_by_zero():
    X = rng(5).normal(size=(20, 3))
    X[:, 1] = 7.25
    with no_warnings():
        Xw, center, scale = g.whiten(X)
    assert np.all(np.isfinite(Xw)) and np.all(np.isfinite(scale)) and np.all(scale > 0)
    np.testing.assert_array_equal(Xw[:, 1], 0.0)
    assert center[1] == 7.25
    np.testing.assert_allclose(Xw * scale + center, X, rtol=1e-13)
    X0 = np.zeros((4, 2))
    with no_warnings():
        Xw, center, scale = g.whiten(X0)
    np.testing.assert_array_equal(Xw, 0.0)
    assert np.all(scale > 0)


def test_whiten_huge_and_tiny_values_do_not_overflow():
    X = rng(6).normal(size=(50, 2)) * [1e200, 1e-200]
    with no_warnings():
        Xw, center, scale = g.whiten(X)
    assert np.all(np.isfinite(Xw))
    np.testing.assert_allclose(Xw.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(scale / (X / [1e200, 1e-200]).std(axis=0), [1e200, 1e-200],
                               rtol=1e-12)


def test_whiten_params_and_unwhiten_round_trip():
    r = rng(7)
    center, scale = r.normal(size=3), r.uniform(0.01, 100, size=3)
    means = r.normal(size=(4, 3))
    covs = np.stack([random_spd(3, seed=j) for j in range(4)])
    mw, cw = g.whiten_params(means, covs, center, scale)
    m2, c2 = g.unwhiten(mw, cw, center, scale)
    np.testing.assert_allclose(m2, means, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c2, covs, rtol=1e-13, atol=1e-15)
    # unwhiten is mu = T mu_w + c, Sigma = T Sigma_w T with T = diag(scale).
    T = np.diag(scale)
    m3, c3 = g.unwhiten(means, covs, center, scale)
    np.testing.assert_allclose(m3, means @ T + center, rtol=1e-13)
    np.testing.assert_allclose(c3, T @ covs @ T, rtol=1e-13)


def test_log_likelihood_jacobian_of_whitening():
    """L(original) = L(whitened) - N sum_j log sigma_j, for any parameters."""
    r = rng(8)
    # Scales within a factor 300 of each other: scipy's eigh-based logpdf keeps 12 digits
    # here (at a covariance condition number of 1e9 it keeps only 9).
    X = r.normal(size=(300, 3)) * [0.1, 1.0, 30.0] + [1.0, 2.0, 3.0]
    Xw, center, scale = g.whiten(X)
    weights = np.array([0.3, 0.7])
    means = X[[0, 1]]
    covs = np.stack([np.diag(X.var(axis=0)), np.cov(X.T)])
    ll = reference_log_e_step(X, weights, means, covs)[1].sum()
    mw, cw = g.whiten_params(means, covs, center, scale)
    llw = reference_log_e_step(Xw, weights, mw, cw)[1].sum()
    assert ll == pytest.approx(llw - len(X) * np.log(scale).sum(), rel=1e-12)
