"""Chapter 12: pixels that do not fit in memory, and gmm_core's EM on a Dask cluster.

Two parts, each small enough to read in one sitting:

- **The data.** Frames of a video of the dahlia of chapter 10 (`flower.jpg`, shipped
  with scikit-learn): each frame is a 400 x 600 crop of the photograph at a random
  offset (camera shake), its brightness scaled by a random gain (flicker), with sensor
  noise, rounded to 8-bit colours. Frame t depends only on (seed, t). The pixels go to
  a raw file of uint8 rows (R, G, B), which `open_pixels` maps as a `numpy.memmap`.
- **EM on Dask.** `gmm_core` stays numpy only. A cluster needs a little glue on top:
  read a chunk of rows from the file (`PixelFile`), reduce a chunk to its sufficient
  statistics (`chunk_stats`: `gmm_core.block_stats` on blocks of `BLOCK_ROWS` rows),
  add them up (`total`), and let `gmm_core.fit_stats` run the EM loop and its stopping
  rule (`fit_dask`). The workers run functions of this module and of `gmm_core`: both
  must be importable where the workers run (on a real cluster, install them there, or
  send this file with `Client.upload_file`).
"""

import time
from pathlib import Path

import numpy as np

import gmm_core

#: Rows and columns of a frame, and its number of pixels.
FRAME_SHAPE = (400, 600)
FRAME_PIXELS = FRAME_SHAPE[0] * FRAME_SHAPE[1]
#: Colour channels per pixel: d.
CHANNELS = 3
#: Standard deviation of the sensor noise, in grey levels.
NOISE = 3.0
#: The brightness gain of a frame is drawn from this range.
GAIN = (0.85, 1.15)
#: Rows per block inside a chunk: the block size of `gmm_core.fit`.
BLOCK_ROWS = gmm_core.BLOCK_ROWS


# ------------------------------------------------------------------------------------
# The data: frames of a video, on disk
# ------------------------------------------------------------------------------------

def flower():
    """The photograph of chapter 10, shape (427, 640, 3), uint8."""
    from sklearn.datasets import load_sample_image
    return load_sample_image("flower.jpg")


def frame(t, seed=0, image=None):
    """Frame t of the video, shape (400, 600, 3), uint8, the same for the same seed."""
    image = flower() if image is None else image
    rng = np.random.default_rng([seed, t])
    rows, cols = FRAME_SHAPE
    dy = rng.integers(0, image.shape[0] - rows + 1)
    dx = rng.integers(0, image.shape[1] - cols + 1)
    crop = image[dy:dy + rows, dx:dx + cols].astype(np.float64)
    crop *= rng.uniform(*GAIN)
    crop += rng.normal(0.0, NOISE, crop.shape)
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8)


def video_path(folder, n_frames, seed=0):
    """Where `write_video` puts a video: one file per (n_frames, seed)."""
    return Path(folder) / f"video-seed{seed}-{n_frames}frames.u8"


def write_video(folder, n_frames, seed=0):
    """Write n_frames frames as rows of (R, G, B) bytes; returns the file's path.

    The file holds n_frames * FRAME_PIXELS rows of 3 bytes, frame after frame. A file of
    the right size from an earlier run is kept: its frames are the same.
    """
    path = video_path(folder, n_frames, seed)
    if path.exists() and path.stat().st_size == n_frames * FRAME_PIXELS * CHANNELS:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    image = flower()
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as out:
        for t in range(n_frames):
            out.write(frame(t, seed, image).tobytes())
    partial.replace(path)  # the whole file, or none
    return path


def open_pixels(path):
    """The pixels of a video file as a read-only numpy.memmap, shape (N, 3), uint8."""
    n = Path(path).stat().st_size // CHANNELS
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, CHANNELS))


# ------------------------------------------------------------------------------------
# What the workers run: read a chunk, reduce it to statistics, add them up
# ------------------------------------------------------------------------------------

class PixelFile:
    """The pixels of a video file as an array-like that travels as its path.

    Indexing it opens the file (`open_pixels`) and reads only the rows asked for, as an
    in-memory array. Pickled, to go to a worker, it is its path, shape and dtype: a few
    bytes, where numpy pickles a memmap as an ordinary array, all its data included.
    """

    def __init__(self, path):
        self.path = str(path)
        self.shape = (Path(path).stat().st_size // CHANNELS, CHANNELS)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 2

    def __getitem__(self, index):
        return np.array(open_pixels(self.path)[index])


def chunk_moments(chunk):
    """The `gmm_core.Moments` of a chunk of rows, block by block."""
    return total([gmm_core.moments(chunk[s:s + BLOCK_ROWS])
                  for s in range(0, len(chunk), BLOCK_ROWS)])


def chunk_stats(chunk, center, scale, weights, means, covariances):
    """The `gmm_core.SuffStats` of a chunk of raw rows, parameters in EM units.

    Block by block: to EM units (`gmm_core.to_em_units`), then the E-step reduced to
    statistics (`gmm_core.block_stats`), summed in order. One block at a time is in
    float64.
    """
    parts = []
    for s in range(0, len(chunk), BLOCK_ROWS):
        Z = gmm_core.to_em_units(chunk[s:s + BLOCK_ROWS], center, scale)
        parts.append(gmm_core.block_stats(Z, weights, means, covariances))
    return total(parts)


def total(parts):
    """The sum of a list of statistics (or of moments), in the list's order."""
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result


# ------------------------------------------------------------------------------------
# The driver: a dask.array over the file, and gmm_core's EM loop
# ------------------------------------------------------------------------------------

def dask_pixels(path, chunk_rows):
    """A dask.array of shape (N, 3) over a video file, in chunks of chunk_rows rows.

    Each chunk is a task that reads its rows from the file (`PixelFile`): what travels to
    a worker is the path and the rows to read, never the data.
    """
    import dask
    import dask.array as da

    pixels = PixelFile(path)
    name = "read_rows-" + dask.base.tokenize(pixels.path, pixels.shape, chunk_rows)
    return da.from_array(pixels, chunks=(chunk_rows, CHANNELS), name=name,
                         inline_array=True)


def stats_graph(x, center, scale, weights, means, covariances):
    """One E-step as a Dask graph: `chunk_stats` mapped over x's chunks, then `total`.

    The parameters (a few hundred numbers) go inside every task: the broadcast. Every
    call makes new tasks (pure=False), even for the same parameters.
    """
    import dask

    stats = dask.delayed(chunk_stats, pure=False)
    parts = [stats(chunk, center, scale, weights, means, covariances)
             for chunk in x.to_delayed().ravel()]
    return dask.delayed(total, pure=False)(parts)


def moments_of(x):
    """The `gmm_core.Moments` of all of x, computed where x's chunks are."""
    import dask

    moments = dask.delayed(chunk_moments, pure=False)
    parts = [moments(chunk) for chunk in x.to_delayed().ravel()]
    return dask.delayed(total, pure=False)(parts).compute()


def start_of(x, k, rng, center, scale, *, min_variance=gmm_core.MIN_VARIANCE):
    """`gmm_core.fit`'s K-means start, in EM units: the same rows, the same generator.

    `fit` runs K-means on a seeded sample of `KMEANS_SAMPLE` rows (all rows when N is
    smaller): the sample is read where the data are, the K-means runs here.
    """
    rows = gmm_core.sample_rows(x.shape[0], rng)   # the rows fit uses
    sample = x[rows].compute() if len(rows) < x.shape[0] else x.compute()
    Z = gmm_core.to_em_units(sample, center, scale)
    return gmm_core.init_from_kmeans(Z, k, rng, min_variance=min_variance)


def fit_dask(x, k, *, rng=0, max_iter=gmm_core.MAX_ITER, rel_tol=gmm_core.REL_TOL,
             min_variance=gmm_core.MIN_VARIANCE, seconds=None):
    """`gmm_core.fit(X, k)` for a dask.array x, on Dask's scheduler (a cluster's, when a
    `distributed.Client` is open).

    The steps of `fit`: the moments in one pass, the K-means start on the same sample,
    then EM by sufficient statistics with the same stopping rule (`gmm_core.fit_stats`),
    each E-step one `stats_graph`, computed.

    Parameters
    ----------
    x : dask.array of shape (N, d)
    k : int
    rng : int or numpy.random.Generator
        As in `gmm_core.fit`: the same seed, the same start.
    max_iter, rel_tol, min_variance
        As in `gmm_core.fit`.
    seconds : list or None
        If a list, the wall-clock seconds of every E-step are appended to it.

    Returns
    -------
    result : gmm_core.GMMFit
    """
    rng = np.random.default_rng(rng)
    center, scale = moments_of(x).scaling(whiten=True)
    start = start_of(x, k, rng, center, scale, min_variance=min_variance)

    def stats_of(weights, means, covariances):
        began = time.perf_counter()
        stats = stats_graph(x, center, scale, weights, means, covariances).compute()
        if seconds is not None:
            seconds.append(time.perf_counter() - began)
        return stats

    return gmm_core.fit_stats(stats_of, x.shape[0], *start, center, scale,
                              max_iter=max_iter, rel_tol=rel_tol,
                              min_variance=min_variance)
