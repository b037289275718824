"""gmm_core.GaussianMixture as a scikit-learn estimator: clone, Pipeline, GridSearchCV, the checks.

The references are scikit-learn itself (its clone, Pipeline, GridSearchCV, estimator checks and
its own GaussianMixture), closed forms (the log-likelihood under a change of units) and data
drawn with numpy from a mixture whose number of components is known.
"""

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

import gmm_core as g

ROOT = Path(__file__).resolve().parent.parent

#: The mixture the grid searches must recover: K = 3, well separated, tilted.
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
TRUE_COVARIANCES = np.array([[[1.0, 0.3], [0.3, 0.6]],
                             [[0.5, -0.2], [-0.2, 1.2]],
                             [[0.8, 0.0], [0.0, 0.4]]])


def draw_true_mixture(n, seed):
    """n points of the true mixture, drawn with numpy alone (not with gmm_core.sample)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    X = np.empty((n, 2))
    for j in range(3):
        idx = labels == j
        X[idx] = rng.multivariate_normal(TRUE_MEANS[j], TRUE_COVARIANCES[j], size=idx.sum())
    return X, labels


def neg_bic(estimator, X, y=None):
    """A scorer: GridSearchCV maximises, BIC is better when lower."""
    return -estimator.bic(X)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # scikit-learn's K-means start runs OpenMP threads; on a shared, busy machine they make
    # each small fit ten times slower. One thread is what these tiny problems need.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def data():
    X, labels = draw_true_mixture(600, seed=0)
    # features in very different units, as StandardScaler is there for
    return X * np.array([1000.0, 0.01]) + np.array([5000.0, -2.0]), labels


# --------------------------------------------------------------------------------------------
# numpy alone
# --------------------------------------------------------------------------------------------

def test_gmm_core_imports_and_fits_with_scikit_learn_blocked():
    code = """
import sys

class NoSklearn:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sklearn":
            raise ImportError("scikit-learn is blocked in this test")

sys.meta_path.insert(0, NoSklearn())
import numpy as np
import gmm_core as g

X = np.random.default_rng(0).normal(size=(60, 2))
model = g.GaussianMixture(2, n_init=2, random_state=0)
assert model.fit(X) is model and model.predict(X).shape == (60,)
assert g.GaussianMixture(**model.get_params()).fit(X).score(X) == model.score(X)
try:
    g.GaussianMixture().predict(X)
except g.NotFittedError as exc:
    assert type(exc) is g.NotFittedError, type(exc).__mro__
assert not any(name.split(".")[0] == "sklearn" for name in sys.modules)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# --------------------------------------------------------------------------------------------
# The protocol: parameters, clone, tags, the not-fitted error
# --------------------------------------------------------------------------------------------

def test_get_params_are_the_constructor_arguments():
    model = g.GaussianMixture(3, n_init=2, init="random", random_state=7)
    params = model.get_params()
    assert params == model.get_params(deep=False)  # no nested estimators
    assert set(params) == {"n_components", "n_init", "init", "max_iter", "rel_tol", "whiten",
                           "per_point", "min_variance", "random_state"}
    assert params["n_components"] == 3 and params["n_init"] == 2
    assert params["init"] == "random" and params["random_state"] == 7
    # The repr is a call that builds an estimator with the same parameters.
    rebuilt = eval(repr(model), {"GaussianMixture": g.GaussianMixture})
    assert rebuilt.get_params() == params


def test_set_params_returns_self_and_validates_only_names():
    model = g.GaussianMixture()
    assert model.set_params(n_components=4, random_state=1) is model
    assert (model.n_components, model.random_state) == (4, 1)
    assert model.set_params() is model
    with pytest.raises(ValueError, match="invalid parameter 'n_clusters'"):
        model.set_params(n_clusters=3)
    # Values are checked by fit, as in scikit-learn, so that set_params never half-fails.
    model.set_params(n_components=-1)
    with pytest.raises(ValueError, match="at least 1"):
        model.fit(np.zeros((5, 2)))


def test_clone_copies_parameters_not_the_fit(data):
    X, _ = data
    start = g.GaussianMixture(3, random_state=0).fit(X)
    model = g.GaussianMixture(3, init=(start.weights_, start.means_, start.covariances_),
                              n_init=2, random_state=np.random.default_rng(5)).fit(X)
    copy = clone(model)
    assert type(copy) is g.GaussianMixture and copy is not model
    assert set(copy.get_params()) == set(model.get_params())
    assert copy.n_components == 3 and copy.n_init == 2
    for a, b in zip(copy.init, model.init):  # deep copies of the given start
        assert a is not b
        np.testing.assert_array_equal(a, b)
    assert not hasattr(copy, "means_")
    with pytest.raises(SkNotFittedError):
        check_is_fitted(copy)
    check_is_fitted(model)
    # A clone fitted again from the given start finds the same mixture.
    np.testing.assert_allclose(copy.fit(X).means_, model.means_, rtol=1e-12)


def test_nested_parameters_through_a_pipeline():
    pipe = Pipeline([("scale", StandardScaler()), ("gmm", g.GaussianMixture(3))])
    params = pipe.get_params(deep=True)
    assert params["gmm__n_components"] == 3 and params["gmm__n_init"] == 1
    pipe.set_params(gmm__n_components=2, gmm__n_init=4)
    assert pipe.named_steps["gmm"].n_components == 2
    assert pipe.named_steps["gmm"].n_init == 4


def test_tags_are_those_of_sklearns_gaussian_mixture():
    ours, theirs = get_tags(g.GaussianMixture()), get_tags(SkGaussianMixture())
    assert ours.estimator_type == theirs.estimator_type == "density_estimator"
    assert ours.target_tags.required is theirs.target_tags.required is False
    assert ours.requires_fit and not ours.input_tags.allow_nan
    assert not ours.input_tags.sparse


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_not_fitted_error_is_sklearns_too(method):
    model = g.GaussianMixture(2)
    with pytest.raises(SkNotFittedError, match="not fitted") as caught:
        getattr(model, method)(np.zeros((4, 2)))
    exc = caught.value
    assert isinstance(exc, g.NotFittedError)
    assert isinstance(exc, ValueError) and isinstance(exc, AttributeError)
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, SkNotFittedError) and str(again) == str(exc)
    assert not hasattr(model, "weights_")


# --------------------------------------------------------------------------------------------
# random_state and n_init
# --------------------------------------------------------------------------------------------

def test_random_state_follows_sklearns_conventions(data):
    X, _ = data
    fitted = g.GaussianMixture(3, random_state=0).fit(X)

    def draws(random_state):
        fitted.random_state = random_state
        return fitted.sample(5)[0], fitted.sample(5)[0]

    a, b = draws(3)  # an int: the same draw every call
    np.testing.assert_array_equal(a, b)
    saved = np.random.get_state()  # noqa: NPY002 (numpy's global state is the subject)
    try:
        np.random.seed(11)  # noqa: NPY002 (None: the global state, a new draw every call ...)
        a, b = draws(None)
        assert not np.array_equal(a, b)
        np.random.seed(11)  # noqa: NPY002 (... repeatable by seeding it)
        np.testing.assert_array_equal(draws(None)[0], a)
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    for state in (np.random.default_rng(1), np.random.RandomState(1)):  # advanced
        a, b = draws(state)
        assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="random_state"):
        g.GaussianMixture(random_state="zero").fit(X)


def test_n_init_keeps_the_best_start(data):
    X, _ = data
    options = dict(init="random", max_iter=30)
    # The starts, by hand: one generator, consumed start after start.
    rng = np.random.default_rng(3)
    starts = [g.fit(X, 4, rng=rng, **options) for _ in range(6)]
    lls = [s.log_likelihood for s in starts]
    assert max(lls) - min(lls) > 1.0  # the starts matter on these data
    model = g.GaussianMixture(4, n_init=6, random_state=3, **options).fit(X)
    best = starts[int(np.argmax(lls))]
    assert model.lower_bound_ * len(X) == pytest.approx(best.log_likelihood, rel=1e-14)
    np.testing.assert_array_equal(model.means_, best.means)
    # Start 1 of several is the fit of n_init = 1, which the best can only beat.
    single = g.GaussianMixture(4, n_init=1, random_state=3, **options).fit(X)
    assert single.lower_bound_ * len(X) == pytest.approx(lls[0], rel=1e-14)
    assert model.lower_bound_ >= single.lower_bound_


@pytest.mark.parametrize("n_init", [0, 1.5, True])
def test_bad_n_init_raises(n_init, data):
    X, _ = data
    with pytest.raises(ValueError, match="n_init"):
        g.GaussianMixture(2, n_init=n_init).fit(X)


# --------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------

def test_pipeline_equals_the_steps_done_by_hand(data):
    X, _ = data
    pipe = Pipeline([("scale", StandardScaler()),
                     ("gmm", g.GaussianMixture(3, random_state=0))]).fit(X)
    scaler = StandardScaler().fit(X)
    Z = scaler.transform(X)
    by_hand = g.GaussianMixture(3, random_state=0).fit(Z)
    np.testing.assert_array_equal(pipe.named_steps["gmm"].means_, by_hand.means_)
    np.testing.assert_array_equal(pipe.predict(X), by_hand.predict(Z))
    np.testing.assert_array_equal(pipe.predict_proba(X), by_hand.predict_proba(Z))
    np.testing.assert_array_equal(pipe.score_samples(X), by_hand.score_samples(Z))
    assert pipe.score(X) == by_hand.score(Z)
    np.testing.assert_array_equal(clone(pipe).fit_predict(X), by_hand.predict(Z))


def test_pipeline_score_is_the_fit_in_original_units_plus_the_jacobian(data):
    # fit whitens inside, so fitting the scaled data finds the image of the fit of the raw
    # data, and the log-densities differ by log |det T| = sum_j log sigma_j (chapter 7).
    X, labels = data
    pipe = Pipeline([("scale", StandardScaler()),
                     ("gmm", g.GaussianMixture(3, random_state=0))]).fit(X)
    raw = g.GaussianMixture(3, random_state=0).fit(X)
    log_det = np.log(pipe.named_steps["scale"].scale_).sum()
    assert pipe.score(X) == pytest.approx(raw.score(X) + log_det, rel=1e-10)
    np.testing.assert_array_equal(pipe.predict(X), raw.predict(X))
    # the components found are the true ones, up to renaming
    found = pipe.predict(X)
    purity = sum(np.bincount(labels[found == j]).max() for j in range(3)) / len(X)
    assert purity > 0.97


def test_pipeline_reaches_sklearns_optimum(data):
    X, _ = data

    def pipeline(gmm):
        return Pipeline([("scale", StandardScaler()), ("gmm", gmm)]).fit(X)

    ours = pipeline(g.GaussianMixture(3, rel_tol=1e-12, max_iter=500, random_state=0))
    theirs = pipeline(SkGaussianMixture(3, tol=1e-12, reg_covar=0.0, max_iter=500,
                                        random_state=0))
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-9)
    np.testing.assert_allclose(np.sort(ours.named_steps["gmm"].weights_),
                               np.sort(theirs.named_steps["gmm"].weights_), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# GridSearchCV: choosing K
# --------------------------------------------------------------------------------------------

GRID = {"n_components": [1, 2, 3, 4, 5]}


@pytest.fixture(scope="module")
def searches():
    """The same grid over K, by mean log-likelihood and by BIC, with ours and sklearn's class.

    Three starts each (n_init=3): with one, a fold's fit can stop in a poor local optimum
    (chapter 6), for scikit-learn's class as for ours.
    """
    X, _ = draw_true_mixture(600, seed=0)
    runs = {}
    for name, estimator in (("ours", g.GaussianMixture(n_init=3, random_state=0)),
                            ("sklearn", SkGaussianMixture(n_init=3, random_state=0))):
        for scoring in ("loglik", "bic"):
            search = GridSearchCV(estimator, GRID,
                                  scoring=None if scoring == "loglik" else neg_bic)
            runs[name, scoring] = search.fit(X)
    return X, runs


@pytest.mark.parametrize("scoring", ["loglik", "bic"])
def test_grid_search_chooses_the_true_k_as_sklearn_does(searches, scoring):
    _, runs = searches
    ours, theirs = runs["ours", scoring], runs["sklearn", scoring]
    assert ours.best_params_ == theirs.best_params_ == {"n_components": 3}
    # At the true K both classes find the same optimum in every fold.
    k3 = GRID["n_components"].index(3)
    np.testing.assert_allclose(ours.cv_results_["split0_test_score"][k3],
                               theirs.cv_results_["split0_test_score"][k3], rtol=1e-4)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"][k3],
                               theirs.cv_results_["mean_test_score"][k3], rtol=1e-4)


def test_default_scoring_is_the_mean_log_likelihood(searches):
    X, runs = searches
    search = runs["ours", "loglik"]
    best = search.best_estimator_  # refitted on all the data
    assert isinstance(best, g.GaussianMixture) and best.n_components == 3
    assert best.score(X) == pytest.approx(best.score_samples(X).mean(), rel=1e-15)
    # One K above the truth barely changes the held-out likelihood: 6 more parameters fitted
    # to 480 points cost about 6 / (2 * 480) = 0.006 per held-out point, a tenth of the
    # bound below (it is a poor judge of K). BIC adds (free parameters) log N to -2 L: 6 more
    # parameters add 6 log 120 = 29 on a fold of 120 points, and separate the two clearly.
    loglik = search.cv_results_["mean_test_score"]
    bic = -runs["ours", "bic"].cv_results_["mean_test_score"]
    assert abs(loglik[3] - loglik[2]) < 0.05 < loglik[2] - loglik[1]
    assert bic[3] - bic[2] > 20


def test_bic_choices_refit_to_the_same_mixture(searches):
    # (BIC itself equals sklearn's for the same parameters: tests/test_estimator.py.)
    X, runs = searches
    ours = runs["ours", "bic"].best_estimator_
    theirs = runs["sklearn", "bic"].best_estimator_
    assert ours.bic(X) == pytest.approx(theirs.bic(X), rel=1e-4)
    np.testing.assert_allclose(np.sort(ours.weights_), np.sort(theirs.weights_), atol=1e-3)


# --------------------------------------------------------------------------------------------
# scikit-learn's estimator checks
# --------------------------------------------------------------------------------------------

#: Checks that cannot apply, with the reason. None today: every check runs and passes.
#: (check_array_api_input skips itself unless SCIPY_ARRAY_API=1: gmm_core is numpy only and
#: its tags say array_api_support=False.)
EXPECTED_FAILED_CHECKS = {}

with warnings.catch_warnings():
    # "does not inherit from sklearn.base.BaseEstimator": on purpose, so that gmm_core needs
    # numpy alone; it implements the protocol instead.
    warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base")
    ESTIMATOR_CHECKS = parametrize_with_checks(
        [g.GaussianMixture(),
         g.GaussianMixture(2, n_init=2, init="random", random_state=0)],
        expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)


@ESTIMATOR_CHECKS
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base")
        check(estimator)
