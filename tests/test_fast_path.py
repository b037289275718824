"""The fast path of `em_steps` (`_fast_e_step`, `_fast_m_step`) against the teaching functions.

`log_e_step` and `m_step_guarded` are what the book teaches; `em_steps` and `fit` run the fast
path (chapter 11). These tests prove the two agree to about 1e-10 on varied data, the
pathological cases of the pain gallery included, and that the fast path keeps every guard.
"""

import gallery  # from book/, which conftest.py puts on sys.path
import numpy as np
import pytest

import gmm_core as g

TINY_TOL = 1e-300  # rel_tol that (almost) never stops EM early


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = np.maximum(np.abs(expected).max(), np.finfo(float).tiny)
    return float(np.abs(actual - expected).max() / scale)


def mixture_data(n, d, k, seed, spread=3.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, spread, size=(k, d))
    factors = rng.normal(size=(k, d, d)) * rng.uniform(0.1, 1.0, size=(k, 1, 1))
    covariances = factors @ factors.transpose(0, 2, 1) + 0.05 * np.eye(d)
    X, _ = g.sample(rng.dirichlet(np.ones(k) * 3), means, covariances, n, rng)
    return X


def whitened_start(X, k, seed):
    """Whitened data and random, guarded starting parameters on them."""
    Xw, _, _ = g.whiten(X)
    weights, means, covariances = g.init_random(Xw, k, np.random.default_rng(seed))
    return Xw, weights, means, covariances


def teaching_em(X, weights, means, covariances, max_iter, *, whiten=True):
    """EM typed from the teaching functions alone: log_e_step, exp, m_step_guarded."""
    X = g.check_data(X)
    if whiten:
        Xw, center, scale = g.whiten(X)
        means, covariances = g.whiten_params(means, covariances, center, scale)
        jacobian = -X.shape[0] * np.log(scale).sum()
    else:
        Xw, center, scale, jacobian = X, np.zeros(X.shape[1]), np.ones(X.shape[1]), 0.0
    covariances = np.array([g.guard_covariance(c)[0] for c in covariances])
    history, guarded = [], []
    for iteration in range(max_iter + 1):
        log_resp, log_lik = g.log_e_step(Xw, weights, means, covariances)
        history.append(log_lik.sum() + jacobian)
        if iteration == max_iter:
            break
        weights, means, covariances, n_guarded = g.m_step_guarded(
            Xw, np.exp(log_resp), means, covariances)
        guarded.append(n_guarded)
    return np.array(history), guarded, (weights, *g.unwhiten(means, covariances, center, scale))


# Every case: (X, k, starting parameters in original units).
def pathological_cases():
    rng = np.random.default_rng(11)
    cases = {name: (c.X, c.params) for name, c in gallery.cases().items()}
    X = rng.normal(size=(300, 3))
    X[:, 1] = 7.0                                              # a constant column
    cases["constant column"] = (X, g.init_random(X, 3, np.random.default_rng(1)))
    X = np.repeat(rng.normal(size=(20, 2)), 15, axis=0)         # every point 15 times
    cases["duplicates"] = (X, g.init_random(X, 4, np.random.default_rng(2)))
    X = rng.integers(0, 4, size=(400, 3)).astype(float)          # 64 distinct 2-bit colours
    cases["few levels"] = (X, g.init_random(X, 5, np.random.default_rng(2)))
    X = rng.normal(size=(1000, 12)) * np.logspace(-3, 3, 12) + 1e4  # 12 scales
    cases["12 scales"] = (X, g.init_random(X, 3, np.random.default_rng(2)))
    X = mixture_data(1500, 20, 3, seed=8)                        # d > MOMENTS_MAX_D
    X[:, 5] = X[:, 4]                                            # two equal columns
    cases["20 features"] = (X, g.init_random(X, 3, np.random.default_rng(4)))
    X = np.vstack([rng.normal(size=(500, 3)),                  # a narrow cluster far out
                   5.0 + 1e-5 * rng.normal(size=(60, 3))])
    cases["narrow and far"] = (X, g.init_from_kmeans(X, 3, np.random.default_rng(0)))
    X = mixture_data(2000, 3, 8, seed=4)
    cases["rgb-like"] = (X, g.init_random(X, 8, np.random.default_rng(3)))
    return cases


CASES = pathological_cases()


# --------------------------------------------------------------------------------------------
# The E-step
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, d, k", [(1, 1, 1), (257, 1, 3), (5000, 3, 8), (3000, 2, 5),
                                     (600, 8, 4), (400, 12, 3), (300, 50, 2)])
def test_fast_e_step_matches_log_e_step(n, d, k):
    X = mixture_data(n, d, k, seed=n + d + k) if n > 1 else np.zeros((1, d))
    Xw, weights, means, covariances = whitened_start(X, k, seed=1)
    log_resp, log_lik = g.log_e_step(Xw, weights, means, covariances)
    resp, fast_log_lik = g._fast_e_step(Xw, weights, means, covariances)
    assert resp.shape == (n, k) and fast_log_lik.shape == (n,)
    np.testing.assert_allclose(resp, np.exp(log_resp), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fast_log_lik, log_lik, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-14)


def test_fast_e_step_blocks_do_not_matter(monkeypatch):
    X = mixture_data(3001, 3, 4, seed=2)
    Xw, weights, means, covariances = whitened_start(X, 4, seed=3)
    resp, log_lik = g._fast_e_step(Xw, weights, means, covariances)
    monkeypatch.setattr(g, "BLOCK_FLOATS", 1)                 # the smallest blocks ...
    monkeypatch.setattr(g, "BLOCK_MIN_ROWS", 100)             # ... of 100 rows
    small_resp, small_log_lik = g._fast_e_step(Xw, weights, means, covariances)
    np.testing.assert_array_equal(small_resp, resp)
    np.testing.assert_array_equal(small_log_lik, log_lik)


def test_fast_e_step_zero_weight_and_far_point():
    # A component with weight 0 gets p ~ 0 (at most exp(EXP_FLOOR) ~ 1e-304); a point far
    # from everything still gets responsibilities that sum to 1 (naive EM: 0/0 = nan).
    case = gallery.outlier_case()
    Xw, center, scale = g.whiten(case.X)
    means, covariances = g.whiten_params(case.means, case.covariances, center, scale)
    weights = np.array([0.5, 0.5, 0.0])
    resp, log_lik = g._fast_e_step(Xw, weights, means, covariances)
    log_resp, reference = g.log_e_step(Xw, weights, means, covariances)
    assert np.all(resp[:, 2] <= np.exp(g.EXP_FLOOR))
    assert np.all(np.isfinite(resp)) and np.all(np.isfinite(log_lik))
    np.testing.assert_allclose(resp, np.exp(log_resp), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(log_lik, reference, rtol=1e-12)


def test_fast_e_step_out_overwrites_the_same_array():
    X = mixture_data(1000, 3, 3, seed=5)
    Xw, weights, means, covariances = whitened_start(X, 3, seed=6)
    first, _ = g._fast_e_step(Xw, weights, means, covariances)
    fresh, _ = g._fast_e_step(Xw, weights, means[::-1].copy(), covariances)
    again, _ = g._fast_e_step(Xw, weights, means[::-1].copy(), covariances, out=first)
    assert np.shares_memory(again, first)
    np.testing.assert_array_equal(again, fresh)


# --------------------------------------------------------------------------------------------
# The M-step
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["moments", "two-pass"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_m_step_matches_m_step_guarded(name, path, monkeypatch):
    # Both ways to the covariances, whatever d: all K from second moments, or one by one.
    monkeypatch.setattr(g, "MOMENTS_MAX_D", 1000 if path == "moments" else 0)
    X, start = CASES[name]
    Xw, center, scale = g.whiten(X)
    means, covariances = g.whiten_params(start[1], start[2], center, scale)
    covariances = np.array([g.guard_covariance(c)[0] for c in covariances])
    log_resp, _ = g.log_e_step(Xw, start[0], means, covariances)
    resp = np.exp(log_resp)
    expected = g.m_step_guarded(Xw, resp, means, covariances)
    for layout in (resp, np.ascontiguousarray(resp.T).T):      # C order, and the fast E's
        actual = g._fast_m_step(Xw, layout, means, covariances)
        assert actual[3] == expected[3]                        # the same covariances guarded
        for a, e in zip(actual[:3], expected[:3]):
            assert relative_error(a, e) < 1e-10


def test_fast_m_step_empty_component_keeps_its_parameters():
    X = mixture_data(500, 3, 2, seed=7)
    Xw, weights, means, covariances = whitened_start(X, 3, seed=8)
    resp = np.exp(g.log_e_step(Xw, weights[:2] / weights[:2].sum(), means[:2],
                                covariances[:2])[0])
    resp = np.hstack([resp, np.zeros((500, 1))])               # N_3 = 0
    new_weights, new_means, new_covs, _ = g._fast_m_step(Xw, resp, means, covariances)
    assert new_weights[2] == 0.0
    np.testing.assert_array_equal(new_means[2], means[2])
    np.testing.assert_array_equal(new_covs[2], covariances[2])
    assert np.all(np.isfinite(new_means)) and np.all(np.isfinite(new_covs))


def test_second_moments_need_centred_data():
    # Data near 1e8 with unit spread: sum p z z^T / N_k - mu mu^T about 0 cancels all the
    # digits (chapter 11); the fast M-step subtracts the data's mean first and stays exact.
    rng = np.random.default_rng(9)
    X = 1e8 + rng.normal(size=(2000, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
    resp = np.full((2000, 1), 1.0)
    exact = np.cov(X.T, bias=True)
    naive = g._second_moments(X, resp.T, np.zeros(2))[0] / 2000 - np.outer(X.mean(0), X.mean(0))
    assert relative_error(naive, exact) > 1e-3
    _, _, covariances, _ = g._fast_m_step(X, resp, X[:1], np.eye(2)[None])
    assert relative_error(covariances[0], exact) < 1e-10


def test_fast_m_step_falls_back_to_two_pass_for_a_narrow_far_component(monkeypatch):
    X, start = CASES["narrow and far"]
    Xw, center, scale = g.whiten(X)
    resp = np.zeros((len(X), 2))
    resp[:500, 0] = 1.0
    resp[500:, 1] = 1.0
    means = np.zeros((2, 3))
    covariances = np.repeat(np.eye(3)[None], 2, axis=0)
    expected = g.m_step_guarded(Xw, resp, means, covariances)
    actual = g._fast_m_step(Xw, resp, means, covariances)
    assert relative_error(actual[2][1], expected[2][1]) < 1e-10
    monkeypatch.setattr(g, "MOMENTS_MAX_LOSS", np.inf)         # the shortcut, unchecked
    shortcut = g._fast_m_step(Xw, resp, means, covariances)
    assert relative_error(shortcut[2][1], expected[2][1]) > 1e-8


# --------------------------------------------------------------------------------------------
# em_steps and fit run the fast path
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_em_steps_matches_the_teaching_loop(name):
    X, start = CASES[name]
    history, guarded, params = teaching_em(X, *start, max_iter=12)
    states = list(g.em_steps(X, *start, max_iter=12, rel_tol=TINY_TOL))
    fast = np.array([s.log_likelihood for s in states if s.step == "E"])
    assert np.all(np.isfinite(fast))
    n = len(fast)          # EM stops early where the log-likelihood stalls exactly
    assert relative_error(fast, history[:n]) < 1e-10
    assert [s.n_guarded for s in states if s.step == "M"] == guarded[:n - 1]
    if n == len(history):
        last = states[-1]
        for a, e in zip((last.weights, last.means, last.covariances), params):
            assert relative_error(a, e) < 1e-8


@pytest.mark.parametrize("name", ["rgb-like", "empty", "outlier"])
def test_em_steps_without_whitening_matches_the_teaching_loop(name):
    X, start = CASES[name]
    history, _, _ = teaching_em(X, *start, max_iter=10, whiten=False)
    states = list(g.em_steps(X, *start, max_iter=10, rel_tol=TINY_TOL, whiten=False))
    fast = np.array([s.log_likelihood for s in states if s.step == "E"])
    assert relative_error(fast, history[:len(fast)]) < 1e-10


def test_em_steps_yields_fresh_responsibilities():
    X, start = CASES["rgb-like"]
    states = [s for s in g.em_steps(X, *start, max_iter=4, rel_tol=TINY_TOL) if s.step == "E"]
    kept = [s.resp.copy() for s in states]
    for state, copy in zip(states, kept):
        np.testing.assert_array_equal(state.resp, copy)        # nothing overwrote it
        assert state.resp.shape == (len(X), 8)
    assert not np.allclose(kept[0], kept[-1])
    reused = [s.resp for s in g.em_steps(X, *start, max_iter=4, rel_tol=TINY_TOL,
                                         fresh_resp=False) if s.step == "E"]
    assert all(np.shares_memory(r, reused[0]) for r in reused)


def test_fit_equals_em_steps():
    X, start = CASES["rgb-like"]
    result = g.fit(X, 8, init=start, max_iter=6, rel_tol=TINY_TOL)
    states = list(g.em_steps(X, *start, max_iter=6, rel_tol=TINY_TOL))
    assert result.history == tuple(s.log_likelihood for s in states if s.step == "E")
    np.testing.assert_array_equal(result.covariances, states[-1].covariances)


def test_em_steps_leaves_the_callers_arrays_alone():
    X, start = CASES["saturated"]
    weights, means, covariances = (np.array(a, dtype=float) for a in start)
    covariances[1] = 0.0                                       # guarded at the start
    copies = [a.copy() for a in (weights, means, covariances)]
    for whiten in (True, False):
        list(g.em_steps(X, weights, means, covariances, max_iter=2, whiten=whiten))
        for a, c in zip((weights, means, covariances), copies):
            np.testing.assert_array_equal(a, c)
