"""The painless EM passes every input of the pain gallery (chapter 3) that breaks the naive one:
finite parameters, weights summing to 1, covariances symmetric positive definite, no warning."""

import gallery
import numpy as np
import pytest
from conftest import assert_valid_mixture
from scipy.special import logsumexp as scipy_logsumexp
from scipy.stats import multivariate_normal

import gmm_core as g

CASES = ["outlier", "saturated", "empty", "high_dim"]


def reference_log_likelihood(X, weights, means, covs):
    with np.errstate(divide="ignore"):
        joint = np.stack([multivariate_normal(m, c).logpdf(X) + np.log(w)
                          for w, m, c in zip(weights, means, covs)], axis=1)
    return scipy_logsumexp(joint, axis=1).sum()


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("init", ["case", "kmeans", "random"])
def test_painless_fit_passes_every_gallery_case(name, init):
    case = gallery.cases()[name]
    start = case.params if init == "case" else init
    result, message = gallery.symptom(g.fit, case.X, len(case.weights), init=start)
    assert message == "ok"  # no exception and no numpy warning at all
    assert_valid_mixture(result.weights, result.means, result.covariances)
    assert np.isfinite(result.log_likelihood) and np.all(np.isfinite(result.history))
    assert result.log_likelihood == pytest.approx(
        reference_log_likelihood(case.X, result.weights, result.means, result.covariances),
        rel=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_painless_run_reports_ok(name):
    result, message = gallery.painless_run(gallery.cases()[name])
    assert message == "ok"
    assert_valid_mixture(result.weights, result.means, result.covariances)


@pytest.mark.parametrize("name", CASES)
def test_painless_fit_passes_the_cases_in_float32(name):
    case = gallery.cases()[name]
    X32 = case.X.astype(np.float32)
    result, message = gallery.symptom(g.fit, X32, len(case.weights), init=case.params)
    assert message == "ok"
    assert_valid_mixture(result.weights, result.means, result.covariances)


def test_painless_fit_passes_600_friendly_points():
    X, _ = gallery.friendly_2d(600)
    result, message = gallery.symptom(g.fit, X, 3, init=gallery.friendly_start(X))
    assert message == "ok"
    assert_valid_mixture(result.weights, result.means, result.covariances)
    assert result.log_likelihood < -2000  # the naive likelihood exp(L) would be 0.0


@pytest.mark.parametrize("name", CASES)
def test_gallery_histories_never_decrease_between_unguarded_steps(name):
    """EM's guarantee holds after every M-step in which the guard replaced nothing."""
    case = gallery.cases()[name]
    states = list(g.em_steps(case.X, *case.params, rel_tol=1e-12, max_iter=30))
    previous = None
    for state in states:
        if state.step == "M":
            guarded = state.n_guarded > 0
        elif state.step == "E":
            if previous is not None and not guarded:
                tol = 1e-12 * (abs(previous) + len(case.X))  # rounding only
                assert state.log_likelihood >= previous - tol, state.iteration
            previous = state.log_likelihood


def test_saturated_patch_gets_a_guarded_component():
    case = gallery.saturated_case()
    states = list(g.em_steps(case.X, *case.params))
    assert any(s.n_guarded for s in states if s.step == "M")
    final = states[-1]
    white = int(np.argmax(final.means[:, 0]))
    np.testing.assert_allclose(final.means[white], 255.0)
    # Every eigenvalue of the white patch's covariance (all 0) is clipped to min_variance: in
    # whitened units tau I, in the original units diag(scale^2) * 1e-6.
    _, _, scale = g.whiten(case.X)
    expected = np.diag(scale**2) * g.MIN_VARIANCE
    np.testing.assert_allclose(final.covariances[white], expected, rtol=1e-12,
                               atol=1e-12 * expected.max())
    assert final.weights[white] == pytest.approx(50 / 250, rel=1e-9)


def test_empty_component_keeps_its_start_and_gets_weight_zero():
    case = gallery.empty_case()
    result = g.fit(case.X, 4, init=case.params)
    np.testing.assert_allclose(result.means[3], [100.0, 100.0], rtol=1e-12)
    np.testing.assert_allclose(result.covariances[3], np.eye(2), rtol=1e-12, atol=1e-15)
    assert result.weights[3] < 1e-15
