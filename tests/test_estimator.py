"""The scikit-learn-style estimator, against scipy and sklearn.mixture.GaussianMixture."""

import warnings

import gallery
import numpy as np
import pytest
from conftest import assert_valid_mixture, record_sklearn_diff
from scipy.special import logsumexp as scipy_logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gmm_core as g


@pytest.fixture(scope="module")
def data():
    X, labels = gallery.friendly_2d(400, seed=2)
    X_new, _ = gallery.friendly_2d(50, seed=3)
    return X, labels, X_new


@pytest.fixture(scope="module")
def fitted(data):
    X, _, _ = data
    return g.GaussianMixture(3, random_state=0).fit(X)


def sklearn_with_our_parameters(model):
    """An sklearn GaussianMixture whose fitted attributes are ours."""
    sk = SkGaussianMixture(model.n_components, covariance_type="full")
    sk.weights_ = model.weights_
    sk.means_ = model.means_
    sk.covariances_ = model.covariances_
    # sklearn's precisions_cholesky_ is L^-T for Sigma = L L^T.
    sk.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(model.covariances_)) \
        .transpose(0, 2, 1)
    sk.precisions_ = np.linalg.inv(model.covariances_)
    sk.converged_ = True
    sk.n_iter_ = model.n_iter_
    sk.lower_bound_ = model.lower_bound_
    sk.n_features_in_ = model.n_features_in_
    return sk


def reference_joint(model, X):
    return np.stack([multivariate_normal(m, c).logpdf(X) + np.log(w)
                     for w, m, c in zip(model.weights_, model.means_, model.covariances_)],
                    axis=1)


def test_fit_returns_self_with_fitted_attributes(data):
    X, _, _ = data
    model = g.GaussianMixture(3, random_state=0)
    assert model.fit(X) is model
    assert model.weights_.shape == (3,) and model.means_.shape == (3, 2)
    assert model.covariances_.shape == (3, 2, 2)
    assert model.n_features_in_ == 2
    assert isinstance(model.converged_, bool) and model.n_iter_ >= 1
    assert_valid_mixture(model.weights_, model.means_, model.covariances_)
    assert model.lower_bound_ == pytest.approx(model.history_[-1] / len(X), rel=1e-15)


def test_same_random_state_same_fit(data):
    X, _, _ = data
    a = g.GaussianMixture(3, random_state=4).fit(X)
    b = g.GaussianMixture(3, random_state=4).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    c = g.fit(X, 3, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(a.means_, c.means)


def test_score_samples_and_score_match_scipy(fitted, data):
    X, _, X_new = data
    for Z in (X, X_new):
        ref = scipy_logsumexp(reference_joint(fitted, Z), axis=1)
        np.testing.assert_allclose(fitted.score_samples(Z), ref, rtol=1e-11)
        assert fitted.score(Z) == pytest.approx(ref.mean(), rel=1e-11)
    assert fitted.score(X) == pytest.approx(fitted.lower_bound_, rel=1e-12)


def test_predict_proba_and_predict(fitted, data):
    X, labels, X_new = data
    proba = fitted.predict_proba(X_new)
    assert proba.shape == (50, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    joint = reference_joint(fitted, X_new)
    np.testing.assert_allclose(proba, np.exp(joint - scipy_logsumexp(joint, axis=1)[:, None]),
                               rtol=1e-9, atol=1e-14)
    pred = fitted.predict(X_new)
    assert pred.shape == (50,)
    np.testing.assert_array_equal(pred, proba.argmax(axis=1))
    # On the friendly data the clusters are the true ones (up to renaming), but for a few
    # points in the overlap.
    found = fitted.predict(X)
    agree = max(np.mean(found[labels == j] == np.bincount(found[labels == j]).argmax())
                for j in range(3))
    assert agree > 0.95


def test_predictions_match_sklearn_with_the_same_parameters(fitted, data):
    _, _, X_new = data
    sk = sklearn_with_our_parameters(fitted)
    np.testing.assert_allclose(fitted.score_samples(X_new), sk.score_samples(X_new), rtol=1e-11)
    np.testing.assert_allclose(fitted.predict_proba(X_new), sk.predict_proba(X_new),
                               rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(fitted.predict(X_new), sk.predict(X_new))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_bic_and_aic_equal_sklearns(data, k):
    X, _, X_new = data
    model = g.GaussianMixture(k, random_state=1).fit(X)
    sk = sklearn_with_our_parameters(model)
    for Z in (X, X_new):
        for name in ("bic", "aic"):
            ours, ref = getattr(model, name)(Z), getattr(sk, name)(Z)
            diff = abs(ours - ref) / abs(ref)
            record_sklearn_diff(name, diff, f"k={k}, same parameters")
            assert diff <= 1e-8, (name, ours, ref)
    # The free parameters: K d (d + 1) / 2 + K d + K - 1, sklearn's count.
    assert model._n_parameters() == sk._n_parameters()


def test_estimator_fit_matches_sklearn_fit_from_the_same_start(data):
    X, _, X_new = data
    start = gallery.friendly_start(X, 3, seed=5)
    ours = g.GaussianMixture(3, init=start, max_iter=20, rel_tol=1e-300).fit(X)
    sk = SkGaussianMixture(3, covariance_type="full", weights_init=start[0], means_init=start[1],
                           precisions_init=np.linalg.inv(start[2]), reg_covar=0.0, tol=0.0,
                           max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk.fit(X)
    for name in ("score", "bic", "aic"):
        for Z in (X, X_new):
            ours_v, ref = getattr(ours, name)(Z), getattr(sk, name)(Z)
            diff = abs(ours_v - ref) / abs(ref)
            record_sklearn_diff(f"estimator {name}", diff, "friendly, 20 iterations")
            assert diff <= 1e-8, (name, ours_v, ref)


def test_sample_shapes_and_seed(fitted):
    X, comp = fitted.sample(500)
    assert X.shape == (500, 2) and comp.shape == (500,)
    assert set(np.unique(comp)) <= {0, 1, 2}
    X2, comp2 = fitted.sample(500)
    np.testing.assert_array_equal(X, X2)  # random_state=0: the same draw each time
    np.testing.assert_array_equal(comp, comp2)
    X1, _ = fitted.sample()
    assert X1.shape == (1, 2)
    # The samples come from the fitted mixture: component frequencies near the weights.
    Xbig, compbig = fitted.sample(20000)
    np.testing.assert_allclose(np.bincount(compbig, minlength=3) / 20000, fitted.weights_,
                               atol=0.02)
    for j in range(3):
        np.testing.assert_allclose(Xbig[compbig == j].mean(axis=0), fitted.means_[j],
                                   atol=0.1)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "bic", "aic"])
def test_methods_before_fit_raise_not_fitted_error(method, data):
    X, _, _ = data
    with pytest.raises(g.NotFittedError, match="not fitted"):
        getattr(g.GaussianMixture(2), method)(X)


def test_sample_before_fit_raises_not_fitted_error():
    with pytest.raises(g.NotFittedError, match="not fitted"):
        g.GaussianMixture(2).sample(5)


def test_fit_predict_is_fit_then_predict(fitted, data):
    X, _, _ = data
    np.testing.assert_array_equal(g.GaussianMixture(3, random_state=0).fit_predict(X),
                                  fitted.predict(X))


def test_estimator_takes_2d_data_only(fitted, data):
    # scikit-learn's convention: a 1-D array is refused (one feature or one point?), where
    # gmm_core.fit takes it as one feature.
    X, _, _ = data
    with pytest.raises(ValueError, match="Reshape your data"):
        g.GaussianMixture(1).fit(X[:, 0])
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.predict(X[0])
    one_feature = g.GaussianMixture(2, random_state=0).fit(X[:, :1])
    reference = g.fit(X[:, 0], 2, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(one_feature.means_, reference.means)


def test_wrong_number_of_features_raises(fitted):
    with pytest.raises(ValueError, match="features"):
        fitted.predict(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.score_samples(np.full((2, 2), np.nan))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_components": 0}, "at least 1"),
    ({"n_components": 1000}, "more than the number of points"),
    ({"n_components": 2.5}, "integer"),
    ({"n_components": 2, "max_iter": 0}, "max_iter"),
    ({"n_components": 2, "rel_tol": -1.0}, "rel_tol"),
    ({"n_components": 2, "min_variance": 0.0}, "min_variance"),
    ({"n_components": 2, "init": "nope"}, "init"),
    ({"n_components": 2, "n_init": 0}, "n_init"),
    ({"n_components": 2, "random_state": -1}, "random_state"),
])
def test_estimator_rejects_bad_parameters(kwargs, match, data):
    X, _, _ = data
    with pytest.raises(ValueError, match=match):
        g.GaussianMixture(**kwargs).fit(X)


def test_fit_reads_a_memmap_block_by_block_with_the_same_result(tmp_path):
    X = np.random.default_rng(5).integers(0, 256, size=(20_000, 3)).astype(np.uint8)
    path = tmp_path / "pixels.u8"
    X.tofile(path)
    on_disk = np.memmap(path, dtype=np.uint8, mode="r", shape=X.shape)
    a = g.GaussianMixture(3, random_state=0).fit(on_disk)
    b = g.GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-12)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-14)
