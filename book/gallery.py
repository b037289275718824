"""The data sets the book returns to, and the cases of the pain gallery (chapter 3).

Every case is small, seeded and built here once, so chapters 3, 4, 5, 8 and 9 show each fix
acting on the very input the reader watched fail.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import gmm_core

DATA = Path(__file__).resolve().parent / "data"


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------

#: The friendly 2-D mixture: three well-separated, tilted clusters.
FRIENDLY_WEIGHTS = np.array([0.5, 0.3, 0.2])
FRIENDLY_MEANS = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 6.0]])
FRIENDLY_COVARIANCES = np.array([
    [[2.0, 0.8], [0.8, 1.0]],
    [[1.0, -0.5], [-0.5, 1.5]],
    [[0.6, 0.0], [0.0, 0.6]],
])


def friendly_2d(n=100, seed=0):
    """Points from the friendly 2-D mixture; returns X (n, 2) and the true labels (n,).

    100 points by default: few enough that the naive likelihood, a product over points, stays
    above the smallest float64 (chapter 3 shows what more points do to it).
    """
    return gmm_core.sample(FRIENDLY_WEIGHTS, FRIENDLY_MEANS, FRIENDLY_COVARIANCES, n,
                           np.random.default_rng(seed))


def faithful(standardise=True):
    """The Old Faithful data (272, 2): eruption time and waiting time, in minutes.

    With `standardise`, each column has mean 0 and standard deviation 1, as in Bishop's Fig. 9.8.
    """
    X = np.loadtxt(DATA / "faithful.csv", delimiter=",", skiprows=1)
    if standardise:
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X


def saturated_pixels(seed=0, n=3000):
    """Issue 10's reproducer: two colour clusters, one with a saturated blue channel (255).

    Returns
    -------
    X : ndarray of uint8, shape (2 n, 3)
    """
    rng = np.random.default_rng(seed)
    dark = np.column_stack([rng.normal(60, 15, n), rng.normal(90, 15, n), rng.normal(70, 15, n)])
    sky = np.column_stack([rng.normal(180, 15, n), rng.normal(120, 15, n), np.full(n, 255.0)])
    return np.clip(np.rint(np.vstack([dark, sky])), 0, 255).astype(np.uint8)


def pixel_like(seed):
    """A random set of 8-bit pixel-like data with the troubles of real images, and a K.

    From the seed: 1-4 colour clusters of varied size and spread (a spread of 0 is a flat
    patch of one colour), rounded and clipped to 0..255 (saturation); then, each with some
    probability: a constant channel, a channel that copies or mirrors another (collinear),
    only a few distinct colours (exact duplicates, perhaps fewer than K), one single pixel of
    its own colour beside thousands. K is 1-8, at most N.

    Returns
    -------
    X : ndarray of uint8, shape (N, d)
    k : int
    """
    rng = np.random.default_rng(seed)
    d = int(rng.choice([1, 2, 3, 3, 4]))
    sizes = rng.integers(1, 3000, size=rng.integers(1, 5))
    parts = []
    for size in sizes:
        centre = rng.uniform(-40, 300, size=d)        # beyond 0..255: saturated after clipping
        spread = rng.choice([0.0, 0.5, 3.0, 15.0, 60.0], size=d)
        parts.append(centre + spread * rng.normal(size=(size, d)))
    X = np.clip(np.rint(np.vstack(parts)), 0, 255)
    if d > 1 and rng.random() < 0.3:
        X[:, rng.integers(d)] = rng.choice([0, 255, rng.integers(256)])
    if d > 1 and rng.random() < 0.3:
        i, j = rng.choice(d, size=2, replace=False)
        X[:, j] = X[:, i] if rng.random() < 0.5 else 255 - X[:, i]
    if rng.random() < 0.2:
        X = X[rng.integers(0, rng.integers(1, 6), size=len(X))]
    if rng.random() < 0.2:
        X = np.vstack([X, rng.integers(0, 256, size=(1, d))])
    k = int(min(rng.integers(1, 9), len(X)))
    return X.astype(np.uint8), k


def friendly_start(X, k=3, seed=0):
    """A plain starting point for EM: k data points as means, the data's variances (Forgy)."""
    return gmm_core.init_random(X, k, np.random.default_rng(seed))


# --------------------------------------------------------------------------------------------
# The pain gallery
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One input on which naive EM breaks: the data and the starting parameters."""

    name: str
    description: str
    X: np.ndarray
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    @property
    def params(self):
        """(weights, means, covariances), as `gmm_core`'s functions take them."""
        return self.weights, self.means, self.covariances


def outlier_case(seed=0):
    """The friendly data plus one point far from every component: its densities are all 0."""
    X, _ = friendly_2d(seed=seed)
    X = np.vstack([X, [[60.0, 60.0]]])
    return Case("outlier", "one point far from every component (a mistyped value)",
                X, FRIENDLY_WEIGHTS, FRIENDLY_MEANS, FRIENDLY_COVARIANCES)


def saturated_case(seed=0):
    """RGB pixels: a dark region and a saturated patch of 50 identical white pixels."""
    rng = np.random.default_rng(seed)
    dark = rng.integers(0, 120, size=(200, 3)).astype(float)
    white = np.full((50, 3), 255.0)
    X = np.vstack([dark, white])
    means = np.array([dark.mean(axis=0), [250.0, 250.0, 250.0]])
    covariances = np.array([np.cov(dark.T), 10.0 * np.eye(3)])
    return Case("saturated", "a patch of 50 identical saturated pixels (255, 255, 255)",
                X, np.array([0.8, 0.2]), means, covariances)


def empty_case(seed=0):
    """The friendly data and a fourth component started far from every point."""
    X, _ = friendly_2d(seed=seed)
    means = np.vstack([FRIENDLY_MEANS, [[100.0, 100.0]]])
    covariances = np.vstack([FRIENDLY_COVARIANCES, np.eye(2)[None]])
    weights = np.array([0.45, 0.25, 0.2, 0.1])
    return Case("empty", "a component started where there are no points", X, weights, means,
                covariances)


def high_dim_case(d=50, seed=0):
    """Two clusters in d = 50 features with standard deviations of 3e-4 (say, kilometres).

    Each covariance determinant is about (1e-7)^50 = 1e-350: below the smallest float64.
    """
    rng = np.random.default_rng(seed)
    scale = 3e-4
    centres = rng.normal(0, 1, size=(2, d)) * 4 * scale
    labels = rng.integers(0, 2, size=200)
    X = centres[labels] + rng.normal(0, scale, size=(200, d))
    covariances = np.repeat((scale**2 * np.eye(d))[None], 2, axis=0)
    return Case("high_dim", f"two clusters in d = {d}, features on a scale of 3e-4", X,
                np.array([0.5, 0.5]), centres, covariances)


def cases():
    """Every pain-gallery case that runs through EM, by name."""
    return {c.name: c for c in (outlier_case(), saturated_case(), empty_case(), high_dim_case())}


# --------------------------------------------------------------------------------------------
# Running a case and naming what went wrong
# --------------------------------------------------------------------------------------------

def symptom(fn, *args, **kwargs):
    """Call fn and describe what happened: (result, message).

    The message names the first numpy warning or the exception, or says that every number is
    finite. Warnings are recorded, not printed, so the notebook shows one clear line.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(divide="warn", over="warn", invalid="warn", under="ignore"):
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # the exception is the symptom
                return None, f"{type(exc).__name__}: {exc}"
    messages = [f"{w.category.__name__}: {w.message}" for w in caught]
    if messages:
        return result, messages[0]
    return result, "ok"


def naive_run(case, max_iter=20):
    """Run naive EM on a case; returns (GMMFit or None, message)."""
    return symptom(gmm_core.naive_em, case.X, *case.params, max_iter=max_iter)


def painless_run(case, max_iter=100):
    """Run the painless EM from the same start; returns (GMMFit, message)."""
    return symptom(gmm_core.fit, case.X, len(case.weights), init=case.params,
                   max_iter=max_iter)
