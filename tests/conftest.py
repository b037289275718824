"""Shared fixtures and helpers for the gmm_core tests.

`book/` goes on sys.path so that the tests use the very data sets and pain-gallery cases the
chapters show (`gallery.py`). The sklearn comparison records its largest relative difference,
printed at the end of the run for the lead's note.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
if str(BOOK) not in sys.path:
    sys.path.insert(0, str(BOOK))

#: The largest relative differences of the sklearn comparison, by quantity (filled by tests).
SKLEARN_DIFFS = {}


def record_sklearn_diff(quantity, value, where):
    """Remember the largest relative difference seen for `quantity`."""
    best = SKLEARN_DIFFS.get(quantity)
    if best is None or value > best[0]:
        SKLEARN_DIFFS[quantity] = (float(value), where)


def pytest_terminal_summary(terminalreporter):
    if not SKLEARN_DIFFS:
        return
    terminalreporter.section("gmm_core against sklearn.mixture.GaussianMixture")
    for quantity, (value, where) in sorted(SKLEARN_DIFFS.items()):
        terminalreporter.write_line(f"largest relative difference of {quantity}: "
                                    f"{value:.3e}  ({where})")


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|, over all entries."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = np.maximum(np.abs(expected).max(), np.finfo(float).tiny)
    return float(np.abs(actual - expected).max() / scale)


def assert_valid_mixture(weights, means, covariances, *, weight_tol=1e-10):
    """Every parameter finite, weights a distribution, covariances symmetric positive definite."""
    weights, means, covariances = (np.asarray(a) for a in (weights, means, covariances))
    assert np.all(np.isfinite(weights)), weights
    assert np.all(np.isfinite(means)), means
    assert np.all(np.isfinite(covariances)), covariances
    assert np.all(weights >= 0), weights
    assert abs(weights.sum() - 1.0) <= weight_tol, weights.sum()
    for j, cov in enumerate(covariances):
        # Symmetric up to rounding, relative to the size of the entries involved.
        root = np.sqrt(np.diag(cov))
        size = np.outer(root, root)  # sqrt(S_ii S_jj), without overflow near 1e300
        asym = np.abs(cov - cov.T)
        assert np.all(asym <= 1e-12 * size), f"covariance {j} is not symmetric"
        np.linalg.cholesky(cov)  # raises LinAlgError unless positive definite


@pytest.fixture
def friendly():
    """The book's friendly 2-D data (500 points) and its true labels."""
    import gallery
    return gallery.friendly_2d(500, seed=1)
