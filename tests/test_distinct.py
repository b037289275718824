"""Integer data fitted on their distinct rows, each weighted by its count (`distinct_rows`).

`fit` keeps 8-bit pixels whose distinct rows are at most half of them as those rows and their
counts. Every sum of EM is then the same sum in another order, so the fit must equal the fit of
the same values as float64 (which are never counted) to rounding.
"""

import gallery  # from book/, which conftest.py puts on sys.path
import numpy as np
import pytest
from conftest import relative_error

import gmm_core as g


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.uint64, bool])
def test_distinct_rows_match_numpy_unique(dtype):
    rng = np.random.default_rng(3)
    high = 2 if dtype is bool else 6
    low = -5 if np.issubdtype(dtype, np.signedinteger) else 0
    X = rng.integers(low, high, size=(2000, 3)).astype(dtype)
    rows, counts = g.distinct_rows(X)
    expected_rows, expected_counts = np.unique(X, axis=0, return_counts=True)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(counts, expected_counts)
    assert rows.dtype == X.dtype and counts.sum() == len(X)


def test_distinct_rows_of_a_span_too_wide_to_number():
    X = np.array([[0, 2**40, 1], [-(2**40), 0, 1], [0, 2**40, 1]], dtype=np.int64)
    rows, counts = g.distinct_rows(X)
    np.testing.assert_array_equal(rows, [[-(2**40), 0, 1], [0, 2**40, 1]])
    np.testing.assert_array_equal(counts, [1, 2])


def test_counts_in_the_e_step_equal_repeated_rows():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 3))
    counts = rng.integers(1, 5, size=300)
    weights, means, covariances = g.init_random(Z, 4, rng)
    counted = g._EStep(weights, means, covariances).stats(Z, counts=counts.astype(float))
    repeated = g.block_stats(np.repeat(Z, counts, axis=0), weights, means, covariances)
    assert counted.n == repeated.n == counts.sum()
    for name in ("nk", "sum_z", "sum_zz", "log_likelihood"):
        assert relative_error(getattr(counted, name), getattr(repeated, name)) < 1e-12, name


@pytest.mark.parametrize("seed", range(6))
def test_fit_of_pixels_equals_the_fit_of_the_same_values_as_floats(seed):
    X, k = gallery.pixel_like(seed)
    X = np.asarray(X, dtype=np.uint8)
    assert 2 * len(g.distinct_rows(X)[0]) <= len(X)    # so that the counted path runs
    counted, plain = g.fit(X, k), g.fit(X.astype(np.float64), k)
    assert counted.n_iter == plain.n_iter and counted.converged == plain.converged
    assert abs(counted.log_likelihood - plain.log_likelihood) <= 1e-10 * abs(
        plain.log_likelihood)
    for name in ("weights", "means", "covariances"):
        assert relative_error(getattr(counted, name), getattr(plain, name)) < 1e-8, name


def test_the_photo_is_fitted_on_its_distinct_colours():
    from sklearn.datasets import load_sample_image

    X = load_sample_image("china.jpg").reshape(-1, 3)
    data = g._Data(X, whiten=True)
    assert data.n == len(X) and len(data.Z) == len(np.unique(X, axis=0))
    assert data.counts.sum() == len(X)
    counted, plain = g.fit(X, 5, max_iter=10), g.fit(X.astype(np.float64), 5, max_iter=10)
    assert abs(counted.log_likelihood - plain.log_likelihood) <= 1e-12 * abs(
        plain.log_likelihood)
    assert relative_error(counted.means, plain.means) < 1e-10


def test_integers_with_few_repeats_are_not_counted():
    X = np.arange(3000).reshape(-1, 3)
    data = g._Data(X, whiten=True)
    assert data.counts is None and len(data.Z) == 1000


def test_the_estimator_counts_integer_pixels_too():
    X, k = gallery.pixel_like(1)
    X = np.asarray(X, dtype=np.uint8)
    counted = g.GaussianMixture(k, random_state=0).fit(X)
    plain = g.GaussianMixture(k, random_state=0).fit(X.astype(np.float64))
    assert counted.n_iter_ == plain.n_iter_
    assert abs(counted.lower_bound_ - plain.lower_bound_) <= 1e-10 * abs(plain.lower_bound_)
    assert relative_error(counted.means_, plain.means_) < 1e-8
    np.testing.assert_array_equal(counted.predict(X), plain.predict(X))


def test_distinct_rows_at_the_ends_of_the_integer_ranges():
    for dtype in (np.int8, np.int32, np.uint32, np.int64):
        info = np.iinfo(dtype)
        X = np.array([[info.min, info.max], [info.max, info.min], [info.min, info.max]],
                     dtype=dtype)
        rows, counts = g.distinct_rows(X)
        np.testing.assert_array_equal(rows, [[info.min, info.max], [info.max, info.min]])
        np.testing.assert_array_equal(counts, [2, 1])
