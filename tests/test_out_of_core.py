"""`gmm_core.fit` on data that stay on disk (chapter 12): a numpy.memmap of uint8 pixels.

The out-of-core fit must give the in-memory fit's parameters and log-likelihood (1e-10, any
block size), read the data block by block (never the whole array at once), and allocate a
bounded amount of memory that does not grow with N: measured with tracemalloc in a fresh
Python process, at two sizes, far below the size of the data.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import relative_error

import gmm_core as g

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-10


def pixel_file(path, n, seed=0):
    """n rows of 8-bit (R, G, B) colours from four colour clusters, written to `path`."""
    rng = np.random.default_rng(seed)
    centres = np.array([[200.0, 60, 90], [40, 110, 50], [20, 30, 40], [230, 200, 210]])
    spreads = np.array([18.0, 12, 6, 10])
    label = rng.choice(4, size=n, p=[0.3, 0.35, 0.2, 0.15])
    pixels = centres[label] + spreads[label, None] * rng.standard_normal((n, 3))
    np.clip(np.rint(pixels), 0, 255).astype(np.uint8).tofile(path)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3))


def assert_same_fit(result, reference, tol=TOL):
    assert result.n_iter == reference.n_iter
    assert result.converged == reference.converged
    for name in ("weights", "means", "covariances"):
        error = relative_error(getattr(result, name), getattr(reference, name))
        assert error <= tol, f"{name}: relative error {error:.2e}"
    error = abs(result.log_likelihood - reference.log_likelihood) / abs(reference.log_likelihood)
    assert error <= tol, f"log-likelihood: relative error {error:.2e}"


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """200,000 pixels on disk (more than the K-means sample, so that the sample is drawn)."""
    path = tmp_path_factory.mktemp("pixels") / "pixels.u8"
    return pixel_file(path, 200_000)


@pytest.fixture(scope="module")
def in_memory_fit(pixels):
    X = np.array(pixels)                     # an ordinary ndarray: the in-memory path
    assert type(X) is np.ndarray
    return g.fit(X, 4)


@pytest.mark.parametrize("block_rows", [1_000, 8_192, 50_000])
def test_memmap_fit_equals_in_memory_fit(pixels, in_memory_fit, block_rows):
    assert isinstance(pixels, np.memmap)
    result = g.fit(pixels, 4, block_rows=block_rows)
    assert in_memory_fit.converged and in_memory_fit.n_iter > 3
    assert_same_fit(result, in_memory_fit)


class SpyArray:
    """An array-like over a memmap that records the rows of every read."""

    def __init__(self, data):
        self.data, self.shape, self.dtype = data, data.shape, data.dtype
        self.reads = []

    def __getitem__(self, index):
        block = np.asarray(self.data[index])
        self.reads.append(block.shape[0])
        return block


def test_fit_reads_block_by_block(pixels, in_memory_fit):
    spy = SpyArray(pixels)
    result = g.fit(spy, 4, block_rows=10_000)
    assert_same_fit(result, in_memory_fit)
    # Blocks of 10,000 rows, and the K-means sample once; never all 200,000 rows at once.
    assert max(spy.reads) <= max(10_000, g.KMEANS_SAMPLE) < len(pixels)
    assert spy.reads.count(g.KMEANS_SAMPLE) == 1
    passes = (sum(spy.reads) - g.KMEANS_SAMPLE) / len(pixels)
    assert passes == 1 + result.n_iter + 1    # moments, then one per E-step


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, tracemalloc
    import numpy as np
    import gmm_core
    path, n = sys.argv[1], int(sys.argv[2])
    X = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3))
    tracemalloc.start()
    result = gmm_core.fit(X, 2, max_iter=1, n_threads=2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"peak": peak, "n_iter": result.n_iter}))
""")


def peak_of_fit(path, n):
    """The peak of what `fit` allocates on a memmap of n pixels, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path), str(n)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"]


def test_peak_memory_is_bounded_by_the_block_not_n(tmp_path):
    # Both sizes above 50 x KMEANS_SAMPLE: below that, numpy's choice without replacement
    # (the K-means sample) permutes all N row numbers, 8 N bytes (at most 26 MB).
    small, large = 3_500_000, 7_000_000
    rng = np.random.default_rng(2)                 # any colours will do here
    rng.integers(0, 256, size=(large, 3), dtype=np.uint8).tofile(tmp_path / "pixels.u8")
    peak_small = peak_of_fit(tmp_path / "pixels.u8", small)   # the file's first rows
    peak_large = peak_of_fit(tmp_path / "pixels.u8", large)
    as_uint8 = large * 3           # the file: 21 MB
    as_float64 = large * 3 * 8     # the float64 copy an in-memory fit makes: 168 MB
    # Twice the data, the same memory (within the jitter of two threads' blocks): blocks of
    # BLOCK_ROWS rows and the K-means sample of KMEANS_SAMPLE rows, whatever N.
    assert abs(peak_large - peak_small) < 2e6, (peak_small, peak_large)
    # Far below the data: under half its bytes on disk, under 1/16 of its float64 copy.
    assert peak_large < as_uint8 / 2, peak_large
    assert peak_large < as_float64 / 16, peak_large
