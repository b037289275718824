"""The fast path of `em_steps` and `fit` (`block_stats`, `m_step_stats`) against the teaching
functions.

`log_e_step` and `m_step_guarded` are what the book teaches; `em_steps` and `fit` run EM by
sufficient statistics, block by block (chapter 11). These tests prove the two agree to about
1e-10 on varied data, the pathological cases of the pain gallery included, that the fast path
keeps every guard, and that blocks and threads change nothing beyond rounding.
"""

import gallery  # from book/, which conftest.py puts on sys.path
import numpy as np
import pytest
from conftest import relative_error

import gmm_core as g

TINY_TOL = 1e-300  # rel_tol that (almost) never stops EM early


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
    covariances = np.array([g.clip_covariance(c)[0] for c in covariances])
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

def teaching_stats(Z, weights, means, covariances):
    """The sufficient statistics, from the teaching E-step and plain numpy sums."""
    log_resp, log_lik = g.log_e_step(Z, weights, means, covariances)
    resp = np.exp(log_resp)
    return (resp.sum(axis=0), resp.T @ Z, np.einsum("ik,ia,ib->kab", resp, Z, Z),
            log_lik.sum())


@pytest.mark.parametrize("n, d, k", [(1, 1, 1), (257, 1, 3), (5000, 3, 8), (3000, 2, 5),
                                     (600, 8, 4), (400, 12, 3), (300, 50, 2)])
def test_block_stats_match_the_teaching_e_step(n, d, k):
    X = mixture_data(n, d, k, seed=n + d + k) if n > 1 else np.zeros((1, d))
    Xw, weights, means, covariances = whitened_start(X, k, seed=1)
    stats = g.block_stats(Xw, weights, means, covariances)
    nk, sum_z, sum_zz, ll = teaching_stats(Xw, weights, means, covariances)
    assert stats.n == n
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.sum_z, sum_z, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats.sum_zz, sum_zz, rtol=1e-10, atol=1e-10)
    assert stats.log_likelihood == pytest.approx(ll, rel=1e-12)


def test_block_stats_add_up():
    X = mixture_data(3001, 3, 4, seed=2)
    Xw, weights, means, covariances = whitened_start(X, 4, seed=3)
    whole = g.block_stats(Xw, weights, means, covariances)
    parts = [g.block_stats(Xw[a:a + 700], weights, means, covariances)
             for a in range(0, 3001, 700)]
    total = sum(parts)
    assert total.n == whole.n == 3001
    for field in ("nk", "sum_z", "sum_zz"):
        np.testing.assert_allclose(getattr(total, field), getattr(whole, field), rtol=1e-12)
    assert total.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-14)


def test_fit_does_not_depend_on_blocks_or_threads():
    X = mixture_data(5000, 3, 4, seed=12)
    reference = g.fit(X, 4, n_threads=1)
    same = g.fit(X, 4, n_threads=2)
    # The same blocks summed in the same order: identical, whatever the number of threads.
    assert same.history == reference.history
    np.testing.assert_array_equal(same.covariances, reference.covariances)
    for block_rows in (100, 1234, 5000):
        other = g.fit(X, 4, block_rows=block_rows)
        assert other.n_iter == reference.n_iter
        for a, e in zip((other.weights, other.means, other.covariances),
                        (reference.weights, reference.means, reference.covariances)):
            assert relative_error(a, e) < 1e-10


def test_block_stats_zero_weight_and_far_point():
    # A component with weight 0 gets p ~ 0 (at most exp(EXP_FLOOR) ~ 1e-304); a point far
    # from everything still counts once (naive EM: 0/0 = nan).
    case = gallery.outlier_case()
    Xw, center, scale = g.whiten(case.X)
    means, covariances = g.whiten_params(case.means, case.covariances, center, scale)
    weights = np.array([0.5, 0.5, 0.0])
    stats = g.block_stats(Xw, weights, means, covariances)
    assert stats.nk[2] <= len(Xw) * np.exp(g.EXP_FLOOR)
    assert stats.nk.sum() == pytest.approx(len(Xw), rel=1e-14)
    nk, _, _, ll = teaching_stats(Xw, weights, means, covariances)
    np.testing.assert_allclose(stats.nk, nk, rtol=1e-10, atol=1e-14)
    assert stats.log_likelihood == pytest.approx(ll, rel=1e-12)


# --------------------------------------------------------------------------------------------
# The M-step
# --------------------------------------------------------------------------------------------

#: Sigma_k = sum p z z^T / N_k - mu_k mu_k^T loses about eps |mu_k|^2 / lambda_min(Sigma_k)
#: relative: a component 2.5 whitened units from the centre and clipped at tau = 1e-6 keeps
#: 9 digits in its narrowest direction (chapter 11).
NARROW_TOL = {"narrow and far": 1e-8}


@pytest.mark.parametrize("name", sorted(CASES))
def test_m_step_stats_matches_m_step_guarded(name):
    X, start = CASES[name]
    Xw, center, scale = g.whiten(X)
    means, covariances = g.whiten_params(start[1], start[2], center, scale)
    covariances = np.array([g.clip_covariance(c)[0] for c in covariances])
    resp = np.exp(g.log_e_step(Xw, start[0], means, covariances)[0])
    expected = g.m_step_guarded(Xw, resp, means, covariances)
    actual = g.m_step_stats(g.block_stats(Xw, start[0], means, covariances), means,
                            covariances)
    assert actual[3] == expected[3]                            # the same covariances clipped
    for a, e in zip(actual[:3], expected[:3]):
        assert relative_error(a, e) < NARROW_TOL.get(name, 1e-10)


def test_m_step_stats_empty_component_keeps_its_parameters():
    X = mixture_data(500, 3, 2, seed=7)
    Xw, weights, means, covariances = whitened_start(X, 3, seed=8)
    weights = np.array([0.5, 0.5, 0.0])
    stats = g.block_stats(Xw, weights, means, covariances)
    new_weights, new_means, new_covs, _ = g.m_step_stats(stats, means, covariances)
    assert new_weights[2] <= 1e-300
    np.testing.assert_array_equal(new_means[2], means[2])
    np.testing.assert_array_equal(new_covs[2], covariances[2])
    assert np.all(np.isfinite(new_means)) and np.all(np.isfinite(new_covs))


def test_moments_need_centred_data():
    # Data near 1e8 with unit spread: sum p z z^T / N_k - mu mu^T about 0 cancels all the
    # digits (chapter 11); EM's units are centred, so the same formula stays exact there.
    rng = np.random.default_rng(9)
    X = 1e8 + rng.normal(size=(2000, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
    exact = np.cov(X.T, bias=True)
    one = (np.ones(1), np.zeros((1, 2)), np.eye(2)[None])
    raw = g.m_step_stats(g.block_stats(X, *one), *one[1:])[2][0]
    assert relative_error(raw, exact) > 1e-3
    result = g.fit(X, 1, whiten=False)
    assert relative_error(result.covariances[0], exact) < 1e-10


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
