"""The painless EM (`em_steps`, `fit`) against scikit-learn, its monotone log-likelihood,
whitening, the stopping rule, and bad input."""

import warnings

import gallery
import numpy as np
import pytest
from conftest import assert_valid_mixture, record_sklearn_diff
from scipy.special import logsumexp as scipy_logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gmm_core as g

TINY_TOL = 1e-300  # rel_tol for "run exactly max_iter iterations"


def data_set(name):
    if name == "friendly":
        return gallery.friendly_2d(500, seed=1)[0], 3
    if name == "faithful":
        return gallery.faithful(standardise=False), 2
    if name == "wine":  # 13 raw features on scales from 0.1 to 1000
        return load_wine().data, 3
    if name == "blobs5d":
        r = np.random.default_rng(11)
        centres = r.normal(size=(4, 5)) * 3
        labels = r.integers(0, 4, size=400)
        return centres[labels] + r.normal(size=(400, 5)), 4
    raise KeyError(name)


def reference_log_likelihood(X, weights, means, covs):
    joint = np.stack([multivariate_normal(m, c).logpdf(X) + np.log(w)
                      for w, m, c in zip(weights, means, covs)], axis=1)
    return scipy_logsumexp(joint, axis=1).sum()


def sklearn_fit(X, start, max_iter):
    weights, means, covs = start
    sk = SkGaussianMixture(len(weights), covariance_type="full", weights_init=weights,
                           means_init=means, precisions_init=np.linalg.inv(covs),
                           reg_covar=0.0, tol=0.0, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sk.fit(X)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


# --------------------------------------------------------------------------------------------
# fit against sklearn.mixture.GaussianMixture from the same start
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["friendly", "faithful", "wine", "blobs5d"])
@pytest.mark.parametrize("max_iter", [1, 10, 20])
@pytest.mark.parametrize("whiten", [True, False])
def test_fit_matches_sklearn_from_the_same_start(name, max_iter, whiten):
    X, k = data_set(name)
    start = g.init_random(X, k, np.random.default_rng(3))  # not yet converged after 20 steps
    ours = g.fit(X, k, init=start, max_iter=max_iter, rel_tol=TINY_TOL, whiten=whiten)
    sk = sklearn_fit(X, start, max_iter)
    assert ours.n_iter == max_iter == sk.n_iter_
    sk_ll = sk.score(X) * len(X)
    where = f"{name}, max_iter={max_iter}, whiten={whiten}"
    d_ll = abs(ours.log_likelihood - sk_ll) / abs(sk_ll)
    d_w, d_m, d_c = (rel(ours.weights, sk.weights_), rel(ours.means, sk.means_),
                     rel(ours.covariances, sk.covariances_))
    for quantity, value in [("log-likelihood", d_ll), ("weights", d_w), ("means", d_m),
                            ("covariances", d_c)]:
        record_sklearn_diff(quantity, value, where)
    msg = (f"{where}: relative differences log-likelihood {d_ll:.2e}, weights {d_w:.2e}, "
           f"means {d_m:.2e}, covariances {d_c:.2e}")
    print(msg)
    assert d_ll <= 1e-8, msg
    assert max(d_w, d_m, d_c) <= 1e-7, msg
    # Our log-likelihood is the one of the parameters we return (scipy reference).
    assert ours.log_likelihood == pytest.approx(
        reference_log_likelihood(X, ours.weights, ours.means, ours.covariances), rel=1e-9)
    # ... and it has grown over the run: the start was far from converged.
    assert ours.history[-1] - ours.history[0] > 1e-3 * abs(ours.history[0])


def test_first_history_entry_is_the_start_likelihood():
    """history[0] is the log-likelihood of the starting parameters (scipy reference)."""
    X, k = data_set("friendly")
    start = g.init_random(X, k, np.random.default_rng(0))
    ours = g.fit(X, k, init=start, max_iter=1, rel_tol=TINY_TOL)
    assert ours.history[0] == pytest.approx(reference_log_likelihood(X, *start), rel=1e-12)
    assert len(ours.history) == 2


# --------------------------------------------------------------------------------------------
# EM's log-likelihood never decreases
# --------------------------------------------------------------------------------------------

def monotone_violations(history, tol):
    steps = np.diff(np.asarray(history))
    return [(i, s) for i, s in enumerate(steps) if s < -tol]


@pytest.mark.parametrize("name", ["friendly", "faithful", "wine", "blobs5d"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("init", ["kmeans", "random"])
def test_history_never_decreases(name, seed, init):
    X, k = data_set(name)
    result = g.fit(X, k, init=init, rng=seed, max_iter=60, rel_tol=TINY_TOL)
    # Rounding only: a few units in the last place of the sum over N points.
    tol = 1e-12 * (abs(result.history[0]) + len(X))
    assert monotone_violations(result.history, tol) == []
    assert len(result.history) > 5
    assert_valid_mixture(result.weights, result.means, result.covariances)


def test_em_steps_yields_init_then_e_and_m_states():
    X, k = data_set("friendly")
    start = g.init_random(X, k, np.random.default_rng(0))
    states = list(g.em_steps(X, *start, max_iter=3, rel_tol=TINY_TOL))
    assert [s.step for s in states] == ["init", "E", "M", "E", "M", "E", "M", "E"]
    assert [s.iteration for s in states] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert states[0].resp is None and states[0].log_likelihood is None
    for s in states[1:]:
        np.testing.assert_allclose(s.resp.sum(axis=1), 1.0, atol=1e-12)
    # Each E-state's log-likelihood is that of its parameters; each M-state's parameters are
    # the M-step of the previous E-state's responsibilities.
    for e_state in states[1::2]:
        assert e_state.log_likelihood == pytest.approx(
            reference_log_likelihood(X, e_state.weights, e_state.means, e_state.covariances),
            rel=1e-12)
    for e_state, m_state in zip(states[1::2], states[2::2]):
        w, m, c = g.m_step(X, e_state.resp)
        np.testing.assert_allclose(m_state.weights, w, rtol=1e-12)
        np.testing.assert_allclose(m_state.means, m, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m_state.covariances, c, rtol=1e-10, atol=1e-12)
    result = g.fit(X, k, init=start, max_iter=3, rel_tol=TINY_TOL)
    assert result.history == tuple(s.log_likelihood for s in states if s.step == "E")


# --------------------------------------------------------------------------------------------
# Whitening inside fit
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["friendly", "faithful", "blobs5d"])
def test_fit_with_and_without_whitening_agree(name):
    X, k = data_set(name)
    start = g.init_random(X, k, np.random.default_rng(5))
    # 8 iterations: still moving on all three (at convergence, a gain of rounding size may
    # stop one run an iteration before the other).
    a = g.fit(X, k, init=start, max_iter=8, rel_tol=TINY_TOL, whiten=True)
    b = g.fit(X, k, init=start, max_iter=8, rel_tol=TINY_TOL, whiten=False)
    assert a.n_iter == b.n_iter == 8
    # The whitened run reports L - N sum log(sigma) + N sum log(sigma): the same number.
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-9)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-9)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.covariances, b.covariances, rtol=1e-7, atol=1e-9)


def test_whitened_log_likelihood_is_in_original_units():
    """The log-likelihood that fit reports is log p(z) of the original data, checked with scipy
    on data whose features differ in scale by 10^4."""
    X, _ = data_set("friendly")
    X = X * [1e-2, 1e2]
    result = g.fit(X, 3, rng=0)
    assert result.log_likelihood == pytest.approx(
        reference_log_likelihood(X, result.weights, result.means, result.covariances),
        rel=1e-10)


# --------------------------------------------------------------------------------------------
# The stopping rule
# --------------------------------------------------------------------------------------------

def test_stops_when_the_likelihood_grows_by_less_than_rel_tol():
    X, k = data_set("faithful")
    for per_point, rel_tol in [(True, 1e-4), (False, 1e-4), (True, 1e-7)]:
        r = g.fit(X, k, rng=1, rel_tol=rel_tol, per_point=per_point)
        assert r.converged and r.n_iter < g.MAX_ITER
        threshold = np.log1p(rel_tol) * (len(X) if per_point else 1)
        gains = np.diff(r.history)
        assert gains[-1] < threshold          # the last gain fired the rule
        assert np.all(gains[:-1] >= threshold)  # no earlier gain did
        assert len(r.history) == r.n_iter + 1


def test_max_iter_stops_without_convergence():
    X, k = data_set("wine")
    r = g.fit(X, k, rng=0, max_iter=2, rel_tol=1e-12)
    assert r.n_iter == 2 and not r.converged and len(r.history) == 3


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

X_OK = np.random.default_rng(0).normal(size=(20, 2))


def with_value(i, j, value):
    X = X_OK.copy()
    X[i, j] = value
    return X


START = g.init_random(X_OK, 2, np.random.default_rng(0))


@pytest.mark.parametrize("args, kwargs, match", [
    ((with_value(3, 1, np.nan), 2), {}, "NaN or infinity.*row 3, column 1"),
    ((with_value(0, 0, np.inf), 2), {}, "NaN or infinity"),
    ((with_value(5, 0, -np.inf), 2), {}, "NaN or infinity"),
    ((X_OK[None], 2), {}, "2-D"),
    ((np.zeros((0, 2)), 1), {}, "at least one point"),
    ((np.zeros((4, 0)), 1), {}, "at least one point"),
    ((np.array(["a", "b"]), 1), {}, "numeric"),
    ((X_OK, 0), {}, "at least 1"),
    ((X_OK, -2), {}, "at least 1"),
    ((X_OK, 21), {}, "more than the number of points"),
    ((X_OK, 2.0), {}, "integer"),
    ((X_OK, "2"), {}, "integer"),
    ((X_OK, True), {}, "integer"),
    ((X_OK, None), {}, "integer"),
    ((X_OK, 2), {"rel_tol": 0}, "rel_tol"),
    ((X_OK, 2), {"rel_tol": -1e-4}, "rel_tol"),
    ((X_OK, 2), {"rel_tol": np.nan}, "rel_tol"),
    ((X_OK, 2), {"rel_tol": np.inf}, "rel_tol"),
    ((X_OK, 2), {"max_iter": 0}, "max_iter"),
    ((X_OK, 2), {"max_iter": -5}, "max_iter"),
    ((X_OK, 2), {"max_iter": 2.5}, "max_iter"),
    ((X_OK, 2), {"min_variance": 0.0}, "min_variance"),
    ((X_OK, 2), {"min_variance": -1e-6}, "min_variance"),
    ((X_OK, 2), {"min_variance": np.nan}, "min_variance"),
    ((X_OK, 2), {"init": "foo"}, "init must be"),
    ((X_OK, 2), {"init": (START[0][:1], START[1], START[2])}, "shapes"),
    ((X_OK, 2), {"init": (START[0], START[1][:, :1], START[2])}, "shapes"),
    ((X_OK, 2), {"init": (START[0], START[1], START[2][:, :1])}, "shapes"),
    ((X_OK, 3), {"init": START}, "components but k = 3"),
    ((X_OK[:, :1], 2), {"init": START}, "features"),
    ((X_OK, 2), {"init": (np.array([0.3, 0.3]), START[1], START[2])}, "sum to 1"),
    ((X_OK, 2), {"init": (np.array([1.5, -0.5]), START[1], START[2])}, "non-negative"),
    ((X_OK, 2), {"init": (START[0], START[1] * np.nan, START[2])}, "NaN"),
])
def test_fit_rejects_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        g.fit(*args, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_iter": 0}, "max_iter"),
    ({"rel_tol": 0.0}, "rel_tol"),
    ({"min_variance": 0.0}, "min_variance"),
])
def test_em_steps_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        next(g.em_steps(X_OK, *START, **kwargs))


def test_one_dimensional_x_is_one_feature():
    x = np.concatenate([np.random.default_rng(1).normal(size=100),
                        np.random.default_rng(2).normal(size=100) + 8])
    a = g.fit(x, 2, rng=0)
    b = g.fit(x[:, None], 2, rng=0)
    assert a.means.shape == (2, 1) and a.covariances.shape == (2, 1, 1)
    np.testing.assert_array_equal(a.means, b.means)
    assert sorted(a.means[:, 0].round()) == [0.0, 8.0]


@pytest.mark.parametrize("seed", range(10))
def test_one_dimensional_collapse_onto_repeated_values_is_guarded(seed):
    """15 copies of one value in 1-D: a component that settles on them has a variance of
    rounding noise unless guarded (it was 1.8e-32 for seed 1, with a log-likelihood of +397
    that fell by 59 on the next step)."""
    r = np.random.default_rng(seed)
    x = np.concatenate([np.full(15, 1.0), r.normal(size=40) * 3])
    result = g.fit(x, 2, init="random", rng=seed)
    _, _, scale = g.whiten(x)
    assert np.all(result.covariances[:, 0, 0] / scale[0] ** 2 >= g.MIN_VARIANCE * (1 - 1e-12))
    assert result.log_likelihood == pytest.approx(
        reference_log_likelihood(x[:, None], result.weights, result.means, result.covariances),
        rel=1e-9)
    start = g.init_random(g.whiten(x)[0], 2, np.random.default_rng(seed))
    states = list(g.em_steps(x, start[0], *g.unwhiten(start[1], start[2], *g.whiten(x)[1:])))
    previous, guarded = None, False
    for state in states:
        if state.step == "M":
            guarded = state.n_guarded > 0
        elif state.step == "E":
            if previous is not None and not guarded:
                assert state.log_likelihood >= previous - 1e-12 * (abs(previous) + len(x))
            previous = state.log_likelihood


def test_fit_accepts_integer_and_float32_data():
    X, k = data_set("friendly")
    a = g.fit(X.astype(np.float32), k, rng=0)
    b = g.fit(X.astype(np.float32).astype(np.float64), k, rng=0)
    np.testing.assert_array_equal(a.means, b.means)
    c = g.fit(np.round(X * 10).astype(int), k, rng=0)
    assert_valid_mixture(c.weights, c.means, c.covariances)
