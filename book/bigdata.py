"""Chapter 12: pixels larger than memory, and the block EM of gmm_core on a Dask cluster.

Two parts, both small enough to read in one sitting:

- **The data.** Frames of a video of the dahlia of chapter 10 (`flower.jpg`, shipped with
  scikit-learn): each frame is a 400 x 600 crop of the photograph at a random offset (camera
  shake), its brightness scaled by a random gain (flicker), with sensor noise, rounded to 8-bit
  colours. Frame t depends only on (seed, t), so any frame can be made again on its own. The
  pixels go to a raw file of uint8 rows (R, G, B), which `open_pixels` maps as a `numpy.memmap`.
- **EM on Dask.** `gmm_core` stays numpy only. What a cluster needs on top is glue: read a
  chunk of rows from the file (`read_rows`), reduce a chunk to its sufficient statistics under
  given parameters (`chunk_stats`, with `gmm_core.block_stats` on blocks of `BLOCK_ROWS`), add
  them up (`total`), and let `gmm_core.fit_stats` run the EM loop with its stopping rule
  (`fit_dask`). The workers run the functions of this module and of `gmm_core`: both must be
  importable where the workers run (on a real cluster, install them there or send this file
  with `Client.upload_file`).
"""

from pathlib import Path

import numpy as np

import gmm_core

#: Rows and columns of a frame, and its pixels.
FRAME_SHAPE = (400, 600)
FRAME_PIXELS = FRAME_SHAPE[0] * FRAME_SHAPE[1]
#: Colour channels per pixel: d.
CHANNELS = 3
#: Standard deviation of the sensor noise, in grey levels.
NOISE = 3.0
#: The frame's brightness gain is drawn from this range.
GAIN = (0.85, 1.15)
#: Rows per block inside a chunk: the block size of `gmm_core.fit`.
BLOCK_ROWS = gmm_core.BLOCK_ROWS


# --------------------------------------------------------------------------------------------
# The data: frames of a video, on disk
# --------------------------------------------------------------------------------------------

def flower():
    """The photograph of chapter 10, shape (427, 640, 3), uint8."""
    from sklearn.datasets import load_sample_image
    return load_sample_image("flower.jpg")


def frame(t, seed=0, image=None):
    """Frame t of the video: shape (400, 600, 3), uint8, the same for the same (seed, t)."""
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
    """Where `write_video` puts the video of n_frames frames: one file per (n_frames, seed)."""
    return Path(folder) / f"video-seed{seed}-{n_frames}frames.u8"


def write_video(folder, n_frames, seed=0):
    """Write n_frames frames as rows of (R, G, B) bytes; returns the file's path.

    The file holds n_frames * FRAME_PIXELS rows of 3 bytes, frame after frame. A file of the
    right size from an earlier run is kept (the frames are the same for the same seed).
    """
    path = video_path(folder, n_frames, seed)
    size = n_frames * FRAME_PIXELS * CHANNELS
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    image = flower()
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as out:
        for t in range(n_frames):
            out.write(frame(t, seed, image).tobytes())
    partial.replace(path)  # complete, or not there at all
    return path


def open_pixels(path):
    """The pixels of a video file as a read-only numpy.memmap of shape (N, 3), uint8."""
    n = Path(path).stat().st_size // CHANNELS
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, CHANNELS))


# --------------------------------------------------------------------------------------------
# What the workers run: read a chunk, reduce it to statistics, add them up
# --------------------------------------------------------------------------------------------

def read_rows(path, start, stop):
    """Rows start..stop-1 of a video file, as an in-memory uint8 array of shape (B, 3)."""
    return np.array(open_pixels(path)[start:stop])


def chunk_moments(chunk):
    """`gmm_core.Moments` of a chunk of rows, block by block (as `gmm_core.fit` reads X)."""
    return total([gmm_core.moments(chunk[s:s + BLOCK_ROWS])
                  for s in range(0, len(chunk), BLOCK_ROWS)])


def chunk_stats(chunk, center, scale, weights, means, covariances):
    """The `gmm_core.SuffStats` of a chunk of raw rows under parameters in EM units.

    Block by block: to EM units (`gmm_core.to_em_units`), E-step and statistics
    (`gmm_core.block_stats`), summed in order. Only one block is ever in float64.
    """
    return total([gmm_core.block_stats(gmm_core.to_em_units(chunk[s:s + BLOCK_ROWS],
                                                            center, scale),
                                       weights, means, covariances)
                  for s in range(0, len(chunk), BLOCK_ROWS)])


def total(parts):
    """The sum of a list of statistics (or moments), in the list's order."""
    result = parts[0]
    for part in parts[1:]:
        result = result + part
    return result


# --------------------------------------------------------------------------------------------
# The driver: a dask.array over the file, and the EM loop of gmm_core
# --------------------------------------------------------------------------------------------

def dask_pixels(path, chunk_rows):
    """A dask.array of shape (N, 3) over a video file, chunks of chunk_rows rows.

    Each chunk is a task that opens the file by its path and reads its rows: what travels to
    a worker is the path and two numbers, never the data. (`da.from_array` on the memmap
    itself would pickle the memmap, and numpy pickles a memmap with all its data.)
    """
    import dask
    import dask.array as da

    n = Path(path).stat().st_size // CHANNELS
    read = dask.delayed(read_rows, pure=True)
    return da.concatenate([
        da.from_delayed(read(str(path), s, min(s + chunk_rows, n)),
                        shape=(min(s + chunk_rows, n) - s, CHANNELS), dtype=np.uint8)
        for s in range(0, n, chunk_rows)])


def stats_graph(x, center, scale, weights, means, covariances):
    """One E-step as a Dask graph: map `chunk_stats` over x's chunks, reduce with `total`.

    The parameters (a few hundred numbers) travel inside every task: that is the broadcast.
    """
    import dask

    stats = dask.delayed(chunk_stats, pure=True)
    parts = [stats(chunk, center, scale, weights, means, covariances)
             for chunk in x.to_delayed().ravel()]
    return dask.delayed(total, pure=True)(parts)


def moments_of(x):
    """The `gmm_core.Moments` of all of x, computed on the cluster."""
    import dask

    parts = [dask.delayed(chunk_moments, pure=True)(chunk) for chunk in x.to_delayed().ravel()]
    return dask.delayed(total, pure=True)(parts).compute()


def start_of(x, k, rng, center, scale, *, min_variance=gmm_core.MIN_VARIANCE):
    """`gmm_core.fit`'s K-means start, in EM units: the same sample of rows, the same rng.

    `fit` clusters a seeded sample of `KMEANS_SAMPLE` rows (all of them when N is smaller);
    the sample is read from the cluster, the K-means runs here.
    """
    rows = gmm_core.sample_rows(x.shape[0], rng)   # the rule of fit (see chapter 6)
    sample = x[rows].compute() if len(rows) < x.shape[0] else x.compute()
    Z = gmm_core.to_em_units(sample, center, scale)
    return gmm_core.init_from_kmeans(Z, k, rng, min_variance=min_variance)


def fit_dask(x, k, *, rng=0, max_iter=gmm_core.MAX_ITER, rel_tol=gmm_core.REL_TOL,
             min_variance=gmm_core.MIN_VARIANCE, seconds=None):
    """`gmm_core.fit(X, k)` for a dask.array x, run by Dask's scheduler (a cluster's if a
    `distributed.Client` is open).

    The same steps as `fit`: moments in one pass, the K-means start on the same sample, then
    EM by sufficient statistics with the same stopping rule (`gmm_core.fit_stats`); each E-step
    is one `stats_graph`, computed.

    Parameters
    ----------
    x : dask.array of shape (N, d)
    k : int
    rng : int or numpy.random.Generator
        As in `gmm_core.fit` (the same seed gives the same start).
    max_iter, rel_tol, min_variance
        As in `gmm_core.fit`.
    seconds : list or None
        If given, the wall-clock seconds of every E-step are appended to it.

    Returns
    -------
    result : gmm_core.GMMFit
    """
    import time

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
                              max_iter=max_iter, rel_tol=rel_tol, min_variance=min_variance)
