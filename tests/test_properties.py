"""Property tests: the painless fit on pathological data.

Constant columns, exact duplicates, features on scales from 1e-130 to 1e130, offsets far larger
than the spread, d up to 50, k up to the number of points (more than the distinct points too),
float32 input; and 8-bit pixel-like data with saturation, constant and collinear channels, flat
patches and single pixels (`gallery.pixel_like`). Whatever the data, every fitted parameter is
finite, the weights sum to 1, the covariances are symmetric positive definite, the
log-likelihood never decreases (the constrained M-step is an exact M-step), and `converged` is
honest.

Each example is built by numpy from a seed and a few sizes that hypothesis draws, so a failing
example is reproducible from the printed draw. The runs are derandomized and use no database,
so CI sees the same examples every time.
"""

import gallery  # from book/, which conftest.py puts on sys.path
import numpy as np
import pytest
from conftest import assert_valid_mixture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gmm_core as g

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pathological_data(draw):
    """(X, k, init, seed): data with some of every pathology, and a valid k."""
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    n = draw(st.integers(1, 120), label="n")
    d = draw(st.sampled_from([1, 2, 3, 7, 20, 50]), label="d")
    n_clusters = draw(st.integers(1, 4), label="n_clusters")
    n_distinct = draw(st.one_of(st.none(), st.integers(1, 6)), label="n_distinct")
    n_constant = draw(st.integers(0, d), label="n_constant")
    float32 = draw(st.booleans(), label="float32")
    offset = draw(st.sampled_from([0, 3, 8]), label="log10(offset / spread)")
    # Values reach about 10^(exponent + offset + 1): at most 1e130 (1e20 in float32), inside
    # gmm_core.SCALE_RANGE (test_fit_names_a_scale_out_of_range covers the outside).
    limit = 20 if float32 else 130
    low = draw(st.integers(-limit, limit - offset - 1), label="lowest exponent")
    high = draw(st.integers(low, limit - offset - 1), label="highest exponent")

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)) * 5
    X = centres[rng.integers(0, n_clusters, size=n)] + rng.normal(size=(n, d))
    if n_distinct is not None:  # exact duplicates: only a few distinct rows
        X = X[rng.integers(0, min(n_distinct, n), size=n)]
    X[:, rng.choice(d, size=n_constant, replace=False)] = rng.normal(size=n_constant)
    if offset:
        X = X + 10.0**offset
    X = X * 10.0 ** rng.integers(low, high + 1, size=d)
    if float32:
        X = X.astype(np.float32)
    k = draw(st.integers(1, min(n, 8)), label="k")
    init = draw(st.sampled_from(["kmeans", "random"]), label="init")
    return X, k, init, seed


def start_of(X, k, init, seed):
    """The starting parameters `fit` uses for this init, built from the public functions."""
    rng = np.random.default_rng(seed)
    make = g.init_from_kmeans if init == "kmeans" else g.init_random
    Xw, center, scale = g.whiten(X)
    weights, means, covs = make(Xw, k, rng)
    return (weights, *g.unwhiten(means, covs, center, scale))


def rounding(history, n, ulps=None):
    """How far L may fall between two E-steps by rounding alone.

    Every M-step, the clip included, maximises EM's lower bound exactly (`clip_covariance`), so
    L can only fall by the rounding of its own evaluation: a few ulps of |L| while the
    covariances are well conditioned. Clipped at tau, their condition numbers reach 1e6 and
    every quadratic form loses about 6 digits (the worst fall seen over 200 pixel-like sets was
    1.5e-14 of |L|, about 150 ulps): the bound is then EM's own, `DECREASE_TOL` (1e-10) of
    |L| + N, the fall EM would report as a decrease.
    """
    history = np.abs(np.asarray(history[:-1]))
    if ulps is not None:
        return ulps * np.finfo(np.float64).eps * history
    return g.DECREASE_TOL * (history + n)


def check_monotone(history, n, ulps=None):
    """EM's log-likelihood never decreases, beyond rounding."""
    history = np.asarray(history)
    assert np.all(np.diff(history) >= -rounding(history, n, ulps)), np.diff(history)


def check_converged(result, n, ulps=None, max_iter=g.MAX_ITER, rel_tol=g.REL_TOL):
    """`converged` is True exactly when the last gain is non-negative and below the threshold
    (the per-point rule: log(1 + rel_tol) per point), and no earlier gain was."""
    gains = np.diff(result.history)
    threshold = np.log1p(rel_tol) * n
    if result.converged:
        assert len(gains) >= 1, gains
        assert -rounding(result.history, n, ulps)[-1] <= gains[-1] < threshold, gains
        assert np.all(gains[:-1] >= threshold), gains
    else:
        assert result.n_iter == max_iter and np.all(gains >= threshold), gains


@PROPERTY_SETTINGS
@given(pathological_data())
def test_fit_on_pathological_data(case):
    X, k, init, seed = case
    result = g.fit(X, k, init=init, rng=seed)
    assert_valid_mixture(result.weights, result.means, result.covariances)
    assert result.means.shape == (k, X.shape[1])
    assert np.isfinite(result.log_likelihood)
    assert np.all(np.isfinite(result.history))
    assert 1 <= len(result.history) <= g.MAX_ITER + 1
    check_monotone(result.history, len(X))
    check_converged(result, len(X))


@PROPERTY_SETTINGS
@given(pathological_data())
def test_em_steps_on_pathological_data(case):
    X, k, init, seed = case
    start = start_of(X, k, init, seed)
    states = list(g.em_steps(X, *start))
    for state in states:
        assert_valid_mixture(state.weights, state.means, state.covariances)
        if state.step != "init":
            assert np.all(np.isfinite(state.resp))
            np.testing.assert_allclose(state.resp.sum(axis=1), 1.0, atol=1e-12)
            assert np.isfinite(state.log_likelihood)
    check_monotone([s.log_likelihood for s in states if s.step == "E"], len(X))


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["kmeans", "random"]))
def test_fit_on_pixel_like_data(seed, init):
    X, k = gallery.pixel_like(seed)
    result = g.fit(X, k, init=init, rng=seed)
    assert_valid_mixture(result.weights, result.means, result.covariances)
    check_monotone(result.history, len(X))
    check_converged(result, len(X))


@pytest.mark.parametrize("exponent", [-160, 160])
def test_fit_names_a_scale_out_of_range(exponent):
    X = np.random.default_rng(0).normal(size=(50, 2)) * [1.0, 10.0**exponent]
    for whiten in (True, False):
        with pytest.raises(ValueError, match="feature 1 of X has a standard deviation"):
            g.fit(X, 2, whiten=whiten)
