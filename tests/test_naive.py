"""The naive functions fail the way the book says they do, on the book's own small seeded inputs
(`gallery.py`), and the painless functions pass the same inputs.

The failures are asserted with `pytest.warns` / `pytest.raises`: pyproject.toml turns any other
RuntimeWarning raised inside gmm_core into an error.
"""

import math

import gallery
import numpy as np
import pytest
from scipy.special import logsumexp as scipy_logsumexp
from scipy.stats import multivariate_normal

import gmm_core as g


def underflow_threshold(dtype):
    """The x below which exp(x) rounds to 0 in `dtype`: log(smallest subnormal / 2), from finfo.

    exp(x) is rounded to the nearest representable number, so it becomes 0 once it falls below
    half the smallest subnormal.
    """
    return math.log(float(np.finfo(dtype).smallest_subnormal)) - math.log(2.0)


# --------------------------------------------------------------------------------------------
# Underflow: where float64 and float32 give up
# --------------------------------------------------------------------------------------------

def test_exp_underflow_thresholds_from_finfo():
    assert np.exp(-1000.0) == 0.0
    t64, t32 = underflow_threshold(np.float64), underflow_threshold(np.float32)
    assert t64 == pytest.approx(-745.1332191019412, abs=1e-12)
    assert t32 == pytest.approx(-103.97207708399179, abs=1e-12)
    for dtype, t in [(np.float64, t64), (np.float32, t32)]:
        assert np.exp(dtype(t - 0.01)) == 0.0
        assert np.exp(dtype(t + 0.01)) == np.finfo(dtype).smallest_subnormal
        # Below log(tiny), exp is subnormal: it keeps fewer and fewer digits.
        assert np.exp(dtype(math.log(float(np.finfo(dtype).tiny)) - 1.0)) < np.finfo(dtype).tiny
    assert np.float32(np.exp(-104.0)) == 0.0          # float32 gives up 7 times sooner
    assert np.exp(-104.0) > 0.0


def test_gaussian_pdf_underflows_sooner_in_float32():
    """N(x | 0, 1) = exp(-x^2 / 2) / sqrt(2 pi) is 0 once x^2 / 2 passes the threshold."""
    def distance(dtype):  # just beyond the point where the density rounds to 0
        return math.sqrt(2 * (-underflow_threshold(dtype) - math.log(math.sqrt(2 * math.pi))))
    x32, x64 = distance(np.float32), distance(np.float64)
    assert 14.0 < x32 < 14.5 and 38.5 < x64 < 39.0
    near32 = np.array([[x32 - 0.05]], dtype=np.float32)
    far32 = np.array([[x32 + 0.05]], dtype=np.float32)
    assert g.gaussian_pdf(near32, [0.0], [[1.0]])[0] > 0
    assert g.gaussian_pdf(far32, [0.0], [[1.0]]).dtype == np.float32
    assert g.gaussian_pdf(far32, [0.0], [[1.0]])[0] == 0.0
    # float64 still has the density there, to full accuracy ...
    p64 = g.gaussian_pdf(far32.astype(np.float64), [0.0], [[1.0]])[0]
    assert p64 == pytest.approx(multivariate_normal(0, 1).pdf(float(far32[0, 0])), rel=1e-12)
    # ... until its own threshold.
    assert g.gaussian_pdf([[x64 - 0.05]], [0.0], [[1.0]])[0] > 0
    assert g.gaussian_pdf([[x64 + 0.05]], [0.0], [[1.0]])[0] == 0.0
    assert g.gaussian_logpdf([[x64 + 0.05]], [0.0], [[1.0]])[0] == pytest.approx(
        multivariate_normal(0, 1).logpdf(x64 + 0.05), rel=1e-14)


def test_naive_e_step_nan_in_float32_but_not_in_float64():
    params = ([0.5, 0.5], [[0.0], [1.0]], [[[1.0]], [[1.0]]])
    x = np.array([[16.0]])  # x^2/2 = 128 and 112.5: both beyond float32's 104
    with pytest.warns(RuntimeWarning, match="invalid value"):
        resp32 = g.naive_e_step(x.astype(np.float32), *params)
    assert np.all(np.isnan(resp32))
    resp64 = g.naive_e_step(x, *params)
    log_resp, _ = g.log_e_step(x, *params)
    np.testing.assert_allclose(resp64, np.exp(log_resp), rtol=1e-9)


# --------------------------------------------------------------------------------------------
# The likelihood as a product
# --------------------------------------------------------------------------------------------

def test_naive_likelihood_of_600_friendly_points_is_zero():
    params = (gallery.FRIENDLY_WEIGHTS, gallery.FRIENDLY_MEANS, gallery.FRIENDLY_COVARIANCES)
    X100, _ = gallery.friendly_2d(100)
    X600, _ = gallery.friendly_2d(600)
    assert g.naive_likelihood(X100, *params) > 0.0      # the book's default size still works
    assert g.naive_likelihood(X600, *params) == 0.0
    # The true log-likelihood is about -2600, far below log(smallest subnormal) = -744.
    joint = np.stack([multivariate_normal(m, c).logpdf(X600) + np.log(w)
                      for w, m, c in zip(*params)], axis=1)
    ref = scipy_logsumexp(joint, axis=1).sum()
    assert ref < underflow_threshold(np.float64)
    assert g.log_e_step(X600, *params)[1].sum() == pytest.approx(ref, rel=1e-12)
    # And naive EM's log-likelihood is log(0) = -inf on every E-step.
    result = g.naive_em(X600, *params, max_iter=2)
    assert result.history[0] == -np.inf


def test_naive_em_is_the_textbook_em_on_friendly_data():
    """Where nothing underflows, the naive and painless EM compute the same iterates."""
    X, _ = gallery.friendly_2d(100)
    start = gallery.friendly_start(X)
    naive = g.naive_em(X, *start, max_iter=15, rel_tol=1e-300)
    painless = g.fit(X, 3, init=start, max_iter=15, rel_tol=1e-300, whiten=False)
    np.testing.assert_allclose(naive.history, painless.history, rtol=1e-10)
    np.testing.assert_allclose(naive.means, painless.means, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(naive.covariances, painless.covariances, rtol=1e-9, atol=1e-10)


# --------------------------------------------------------------------------------------------
# The pain gallery, case by case
# --------------------------------------------------------------------------------------------

def test_outlier_case_gives_nan_responsibilities():
    case = gallery.outlier_case()
    with pytest.warns(RuntimeWarning, match="invalid value"):
        resp = g.naive_e_step(case.X, *case.params)
    bad = np.isnan(resp).any(axis=1)
    assert bad.tolist() == [False] * (len(case.X) - 1) + [True]   # only the outlier's row
    assert np.all(np.isnan(resp[-1]))
    with pytest.warns(RuntimeWarning, match="invalid value"):
        g.naive_em(case.X, *case.params, max_iter=3)
    # The painless E-step: finite, sums to 1, the outlier goes to the component whose
    # log-density is highest there (scipy reference).
    log_resp, log_lik = g.log_e_step(case.X, *case.params)
    assert np.all(np.isfinite(log_resp)) and np.all(np.isfinite(log_lik))
    np.testing.assert_allclose(np.exp(log_resp).sum(axis=1), 1.0, atol=1e-12)
    scores = [multivariate_normal(m, c).logpdf(case.X[-1]) + np.log(w)
              for w, m, c in zip(*case.params)]
    assert int(np.argmax(log_resp[-1])) == int(np.argmax(scores))
    assert log_lik[-1] == pytest.approx(scipy_logsumexp(scores), rel=1e-12)


def test_saturated_case_singular_matrix_on_the_naive_path():
    case = gallery.saturated_case()
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        g.naive_em(case.X, *case.params)
    # The cause: one M-step gives the white patch a zero covariance, RCOND 0.
    resp = g.naive_e_step(case.X, *case.params)
    _, means, covs = g.m_step(case.X, resp)
    np.testing.assert_allclose(means[1], 255.0)
    np.testing.assert_array_equal(covs[1], np.zeros((3, 3)))
    assert g.rcond(covs[1]) == 0.0
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        g.gaussian_pdf(case.X, means[1], covs[1])


def test_empty_case_naive_m_step_gives_nan_means():
    case = gallery.empty_case()
    resp = g.naive_e_step(case.X, *case.params)
    # The fourth component, at (100, 100), gets nothing: its densities underflow to 0.
    assert np.all(resp[:, 3] == 0.0)
    with pytest.warns(RuntimeWarning, match="divide"):
        weights, means, covs = g.m_step(case.X, resp)
    assert weights[3] == 0.0
    assert np.all(np.isnan(means[3])) and np.all(np.isnan(covs[3]))
    assert np.all(np.isfinite(means[:3]))
    with pytest.warns(RuntimeWarning) as caught:
        g.naive_em(case.X, *case.params, max_iter=3)
    assert "divide" in str(caught[0].message)   # the first thing that goes wrong


def test_high_dim_case_determinant_underflows():
    case = gallery.high_dim_case()
    d = case.X.shape[1]
    cov = case.covariances[0]
    assert d == 50
    assert np.linalg.det(cov) == 0.0
    sign, logdet = np.linalg.slogdet(cov)
    assert sign == 1.0 and logdet == pytest.approx(d * math.log(3e-4**2), rel=1e-14)
    assert logdet < underflow_threshold(np.float64)
    with pytest.warns(RuntimeWarning) as caught:
        pdf = g.gaussian_pdf(case.X, case.means[0], cov)
    messages = {str(w.message) for w in caught}
    assert "divide by zero encountered in divide" in messages   # x / sqrt(0) = inf
    assert messages <= {"divide by zero encountered in divide",
                        "invalid value encountered in divide"}  # 0 / 0 = nan
    assert not np.any(np.isfinite(pdf))
    # The log-density through the Cholesky factor is fine (scipy reference).
    np.testing.assert_allclose(g.gaussian_logpdf(case.X, case.means[0], cov),
                               multivariate_normal(case.means[0], cov).logpdf(case.X),
                               rtol=1e-11)


@pytest.mark.parametrize("name", ["outlier", "saturated", "empty", "high_dim"])
def test_naive_run_reports_the_failure(name):
    """gallery.naive_run, as chapter 3 uses it, names a failure on every case."""
    result, message = gallery.naive_run(gallery.cases()[name])
    assert message != "ok"
    assert message.startswith(("RuntimeWarning", "LinAlgError"))
