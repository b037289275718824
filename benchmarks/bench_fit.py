"""gmm_core against scikit-learn, OpenCV and a compiled floor, side by side (`make bench`).

Three measurements, in one run, on this machine:

1. **Per EM iteration.** Every implementation fits the same data from the same start: 8-bit
   RGB-like pixels (N = 10^4, 10^5, 10^6; d = 3; K = 8) and wider data (N = 10^5; d = 16, 64).
   A fit of n iterations does n M-steps and n + 1 E-steps plus its setup; the time of one
   iteration is (t(1 + n) - t(1)) / n, the difference of a fit of 1 + n iterations and a fit of
   1, so that setup, the extra E-step and data checks cancel. The implementations:
   scikit-learn's `GaussianMixture` (full covariances, reg_covar=0, tol=0, the start given),
   OpenCV's `cv2.ml.EM` (generic covariances, `trainE` from the start, maxIters = n + 1),
   `gmm_core.fit` (init given, no early stop) and the floor, a fused compiled EM iteration
   (`floor.py`, numba; skipped with a message when numba is missing). They run in alternation,
   several times; the table gives the best (the least disturbed by the rest of the machine)
   and the median. n is 10, fewer for an implementation whose 1-iteration fit takes seconds
   (OpenCV), and the log-likelihoods after one iteration are compared with scikit-learn's.
2. **A whole fit of a photo**: `gmm_core.fit(X, 5)` (defaults) on the 273,280 pixels of
   scikit-learn's china.jpg, split into preparation (`_Data`), K-means start
   (`_initial_params`) and EM (`fit_stats`), against `sklearn.mixture.GaussianMixture(5)`
   (defaults, random_state=0), with both log-likelihoods.
3. **Peak extra memory** of `gmm_core.fit(X, 8)` (defaults) at N = 10^6, d = 3, in a fresh
   process: what it allocates (tracemalloc) and its resident-memory peak above the loaded data.

The results go to `benchmarks/results.json` (what chapter 11 reads) and `benchmarks/results.md`
(the printed report), with the machine: cores, CPU, BLAS kernel and threads (threadpoolctl).
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from this process's environment (it restarts
itself without them) so that OpenBLAS picks its own kernel.

Usage: python benchmarks/bench_fit.py [--quick] [--repeats R] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import gmm_core  # noqa: E402

#: (N, d, K) of the per-iteration table.
SIZES = [(10_000, 3, 8), (100_000, 3, 8), (1_000_000, 3, 8), (100_000, 16, 8),
         (100_000, 64, 8)]
#: A run of about a minute (`--quick`).
QUICK_SIZES = [(10_000, 3, 8), (100_000, 3, 8), (20_000, 16, 8)]
#: Environment variables that select a slower OpenBLAS kernel on some machines.
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: rel_tol for "never stop early": EM stops only if the log-likelihood does not grow at all.
NO_EARLY_STOP = 1e-300
#: Iterations timed per fit (the n of t(1 + n) - t(1)), at most ...
N_ITER = 10
#: ... and fewer when a fit of 1 iteration takes longer than this (seconds): n ~ this / t(1).
SECONDS_PER_FIT = 4.0
#: A fit of 1 iteration slower than this (seconds) is timed with n = 1 (OpenCV at large N).
SLOW = 10.0
#: An implementation is repeated at most REPEATS times per size, and fewer when one pair of
#: fits takes more than this share of the time (seconds).
SECONDS_PER_SIZE = 30.0
REPEATS = 3
#: The photo of the end-to-end row, and its number of components.
PHOTO, PHOTO_K = "china.jpg", 5
#: The size of the memory measurement.
MEMORY_SIZE = (1_000_000, 3, 8)
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"


# --------------------------------------------------------------------------------------------
# Data and starting parameters
# --------------------------------------------------------------------------------------------

def make_data(n, d, k, seed=0):
    """N points from a K-component mixture in d features, on the scale of 8-bit colours.

    The means lie in [30, 225] in every feature, the standard deviations between about 3 and
    20: for d = 3, RGB-like pixels (not rounded to integers, so no duplicates).

    Returns
    -------
    X : ndarray of shape (n, d)
    """
    rng = np.random.default_rng(seed)
    means = rng.uniform(30, 225, size=(k, d))
    factors = rng.normal(size=(k, d, d)) * rng.uniform(3, 20, size=(k, 1, 1)) / np.sqrt(d)
    covariances = factors @ factors.transpose(0, 2, 1) + 9.0 * np.eye(d)
    weights = rng.dirichlet(np.full(k, 5.0))
    X, _ = gmm_core.sample(weights, means, covariances, n, rng)
    return X


def start_params(X, k, seed=3):
    """The common start: K random data points as means, the data's variances, equal weights.

    Seed 3: from it no component of any size of the table empties within the timed
    iterations (from seed 1, one kept 10 of 100,000 points at d = 16, a singular covariance
    on which scikit-learn with reg_covar=0 stops with an error)."""
    return gmm_core.init_random(X, k, np.random.default_rng(seed))


def photo_pixels(name=PHOTO, dtype=np.float64):
    """The pixels of one of scikit-learn's sample images, as an (N, 3) array of `dtype`
    (np.uint8: as the image holds them)."""
    from sklearn.datasets import load_sample_image

    image = load_sample_image(name)
    return image.reshape(-1, 3).astype(dtype)


# --------------------------------------------------------------------------------------------
# One fit of each implementation: (seconds, final log-likelihood) or a message saying why not
# --------------------------------------------------------------------------------------------

def run_ours(X, start, n_iter):
    """gmm_core.fit from `start`, exactly `n_iter` iterations."""
    t0 = time.perf_counter()
    result = gmm_core.fit(X, len(start[0]), init=start, max_iter=n_iter, rel_tol=NO_EARLY_STOP)
    seconds = time.perf_counter() - t0
    if result.n_iter != n_iter:
        return f"gmm_core stopped after {result.n_iter} iterations"
    return seconds, result.log_likelihood


def run_sklearn(X, start, n_iter):
    """scikit-learn's GaussianMixture: full covariances, reg_covar=0, tol=0, same start."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    weights, means, covariances = start
    model = GaussianMixture(
        len(weights), covariance_type="full", reg_covar=0.0, tol=0.0, max_iter=n_iter,
        weights_init=weights, means_init=means, precisions_init=np.linalg.inv(covariances),
        init_params="random_from_data", random_state=0)  # cheap: every parameter is given
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        try:
            model.fit(X)
        except ValueError as exc:
            return f"scikit-learn: {type(exc).__name__}: {str(exc)[:60]}"
        seconds = time.perf_counter() - t0
    return seconds, float(model.score(X)) * X.shape[0]


def opencv_em():
    """OpenCV (with its ml module), or a message saying why it is not there."""
    try:
        import cv2
    except ImportError:
        return None, "OpenCV: cv2 is not installed"
    if not hasattr(cv2, "ml"):
        return None, (f"OpenCV: cv2 {cv2.__version__} has no ml module (OpenCV 5 has it in "
                      "opencv-contrib-python-headless)")
    return cv2, ""


def run_opencv(X, start, n_iter):
    """OpenCV's cv2.ml.EM: generic covariances, trainE from the same start.

    Its loop is E, then (M, E) repeated: n M-steps is maxIters = n + 1.
    """
    cv2, why = opencv_em()
    if cv2 is None:
        return why
    weights, means, covariances = start
    em = cv2.ml.EM_create()
    em.setClustersNumber(len(weights))
    em.setCovarianceMatrixType(cv2.ml.EM_COV_MAT_GENERIC)
    em.setTermCriteria((cv2.TERM_CRITERIA_COUNT, n_iter + 1, 0.0))
    t0 = time.perf_counter()
    try:
        _, log_likelihoods, _, _ = em.trainE(X, means, cv2.Mat(covariances, wrap_channels=False),
                                             weights.reshape(1, -1))
    except cv2.error as exc:
        return f"OpenCV: cv2.error: {str(exc).strip().splitlines()[-1][:60]}"
    seconds = time.perf_counter() - t0
    return seconds, float(np.sum(log_likelihoods))


def compiled_floor():
    """The floor module (numba), or a message saying why it is not there."""
    try:
        import floor
    except ImportError as exc:
        return None, (f"floor: skipped, {exc} (pip install numba to measure the compiled "
                      "floor; it is not a dependency of the book)")
    return floor, ""


def run_floor(X, start, n_iter):
    """The fused compiled EM iteration of floor.py, exactly `n_iter` iterations."""
    floor, why = compiled_floor()
    if floor is None:
        return why
    t0 = time.perf_counter()
    log_likelihood = floor.fit(X, *start, n_iter)
    return time.perf_counter() - t0, log_likelihood


IMPLEMENTATIONS = {"sklearn": run_sklearn, "opencv": run_opencv, "ours": run_ours,
                   "floor": run_floor}
LABELS = {"sklearn": "scikit-learn", "opencv": "OpenCV cv2.ml.EM", "ours": "gmm_core",
          "floor": "compiled floor"}


# --------------------------------------------------------------------------------------------
# 1. Per EM iteration
# --------------------------------------------------------------------------------------------

def per_iteration(sizes=SIZES, implementations=tuple(IMPLEMENTATIONS), repeats=REPEATS,
                  progress=None):
    """Seconds per EM iteration of every implementation at every size; one dict per size.

    For each implementation: a fit of 1 iteration, then n (at most `N_ITER`, fewer when that
    fit takes seconds), and pairs of fits of 1 and 1 + n iterations, in alternation with the
    other implementations (a different order in each repetition). An implementation that fails
    keeps its message.

    Returns
    -------
    rows : list of dict
        n, d, k and, for each implementation name: "<name>_s" (best seconds per iteration),
        "<name>_median_s", "<name>_runs" (every per-iteration estimate), "<name>_n_iter" (n),
        "<name>_ll1" (log-likelihood after 1 iteration), "<name>_error" (a message or None).
    """
    rows = []
    for n, d, k in sizes:
        X = make_data(n, d, k)
        start = start_params(X, k)
        row = {"n": n, "d": d, "k": k}
        lo, hi, count, reps = {}, {}, {}, {}
        for name in implementations:
            row[f"{name}_error"] = None
            outcome = IMPLEMENTATIONS[name](X, start, 1)       # a first fit: warm, and cost
            if isinstance(outcome, str):
                row[f"{name}_error"] = outcome
                continue
            row[f"{name}_ll1"] = outcome[1]
            # n iterations: about SECONDS_PER_FIT of work, at least 3 (one iteration's time is
            # too small against the noise of t(1)) unless a single fit takes SLOW seconds
            least = 1 if outcome[0] > SLOW else 3
            count[name] = int(np.clip(SECONDS_PER_FIT // outcome[0], least, N_ITER))
            pair = outcome[0] * (2 + count[name])
            reps[name] = int(np.clip(SECONDS_PER_SIZE // pair, 1, repeats))
            # a slow first fit is a fair sample of t(1): keep it rather than run it again
            lo[name], hi[name] = ([outcome[0]] if outcome[0] > 1.0 else []), []
        for rep in range(repeats):
            order = [name for name in implementations if name in lo and rep < reps[name]]
            shift = rep % max(len(order), 1)
            for name in order[shift:] + order[:shift]:
                fits = [(1, lo)] * (len(lo[name]) <= rep) + [(1 + count[name], hi)]
                for m, store in fits[::1 - 2 * (rep % 2)]:
                    outcome = IMPLEMENTATIONS[name](X, start, m)
                    if isinstance(outcome, str):
                        row[f"{name}_error"] = outcome
                        break
                    store[name].append(outcome[0])
                    if m > 1:
                        row[f"{name}_ll"] = outcome[1]
        for name in lo:
            if row[f"{name}_error"] is not None or not hi[name]:
                continue
            runs = [(b - a) / count[name] for a, b in zip(lo[name], hi[name])]
            row[f"{name}_runs"] = runs
            best = (min(hi[name]) - min(lo[name])) / count[name]
            # a loaded machine can make t(1) of one run longer than t(1 + n) of another:
            # then the difference says nothing, and the table says "noisy"
            row[f"{name}_s"] = best if best > 0 else None
            row[f"{name}_median_s"] = statistics.median(runs)
            if best <= 0:
                row[f"{name}_error"] = (f"{LABELS[name]}: t(1 + n) - t(1) <= 0 at N = {n:,}, "
                                        f"d = {d}: timings too noisy (machine busy)")
            row[f"{name}_n_iter"] = count[name]
        rows.append(row)
        if progress:
            progress(row)
    return rows


def relative_difference(a, b):
    """|a - b| / |b|, or None when either is missing."""
    if a is None or b is None:
        return None
    return abs(a - b) / abs(b)


def _ms(value):
    if value is None:
        return "-"
    return f"{1e3 * value:,.0f}" if value >= 0.1 else f"{1e3 * value:.2f}"


def format_table(rows, implementations=tuple(IMPLEMENTATIONS)):
    """The per-iteration table as text: ms per iteration (best of the repetitions, median in
    parentheses), each implementation's time as a multiple of scikit-learn's, gmm_core's as a
    multiple of the floor's, and the largest |dL|/|L| after one iteration against
    scikit-learn; then the messages of implementations that did not run."""
    shown = [name for name in implementations if any(f"{name}_s" in r for r in rows)]
    header = ["N", "d", "K"] + [f"{name} ms/it" for name in shown]
    header += [f"{name}/sklearn" for name in shown if name != "sklearn"]
    header += ["ours/floor"] * ("floor" in shown and "ours" in shown) + ["|dL|/|L|"]
    lines, notes = [header], []
    for r in rows:
        line = [f"{r['n']:,}", str(r["d"]), str(r["k"])]
        for name in shown:
            best, median = r.get(f"{name}_s"), r.get(f"{name}_median_s")
            if best is None:
                cell = "noisy" if "noisy" in (r.get(f"{name}_error") or "") else "n/a"
            else:
                cell = _ms(best) if median is None else f"{_ms(best)} ({_ms(median)})"
            if r.get(f"{name}_n_iter") and r[f"{name}_n_iter"] < N_ITER:
                cell += f" n={r[f'{name}_n_iter']}"
            line.append(cell)
        base = r.get("sklearn_s")
        for name in shown:
            if name != "sklearn":
                value = r.get(f"{name}_s")
                line.append("-" if not (value and base) else f"{value / base:.3f}")
        if "floor" in shown and "ours" in shown:
            ours, fl = r.get("ours_s"), r.get("floor_s")
            line.append("-" if not (ours and fl) else f"{ours / fl:.2f}")
        diffs = [relative_difference(r.get(f"{name}_ll1"), r.get("sklearn_ll1"))
                 for name in shown if name != "sklearn"]
        diffs = [x for x in diffs if x is not None]
        line.append(f"{max(diffs):.0e}" if diffs else "-")
        lines.append(line)
        for name in implementations:
            error = r.get(f"{name}_error")
            if error and error not in notes:
                notes.append(error)
    return _columns(lines) + "".join(f"\n  {note}" for note in notes)


def _columns(lines):
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


# --------------------------------------------------------------------------------------------
# 2. A whole fit of a photo
# --------------------------------------------------------------------------------------------

def fit_parts(X, k, rng=0, **options):
    """gmm_core.fit(X, k, rng=rng, **options), run in its three parts and each part timed.

    Returns
    -------
    seconds : dict
        prepare_s (`_Data`: checks, moments, the whitened copy), kmeans_s (`_initial_params`:
        the K-means start), em_s (`fit_stats`: EM, with `options`), total_s.
    result : gmm_core.GMMFit
    """
    t0 = time.perf_counter()
    data = gmm_core._Data(X, whiten=True)
    t1 = time.perf_counter()
    start = gmm_core._initial_params(data, k, "kmeans", np.random.default_rng(rng),
                                     gmm_core.MIN_VARIANCE)
    t2 = time.perf_counter()
    result = gmm_core.fit_stats(data.stats, data.n, *start, data.center, data.scale,
                                **options)
    t3 = time.perf_counter()
    return ({"prepare_s": t1 - t0, "kmeans_s": t2 - t1, "em_s": t3 - t2, "total_s": t3 - t0},
            result)


def fit_in_parts(X, k, rng=0):
    """`fit_parts` with fit's defaults: its seconds, n_iter and log_likelihood in one dict."""
    seconds, result = fit_parts(X, k, rng)
    return {**seconds, "n_iter": result.n_iter, "log_likelihood": result.log_likelihood}


def fit_whole(X, k):
    """gmm_core.fit(X, k) with every default, timed as one call."""
    t0 = time.perf_counter()
    result = gmm_core.fit(X, k)
    return {"total_s": time.perf_counter() - t0, "n_iter": result.n_iter,
            "log_likelihood": result.log_likelihood}


def fit_sklearn(X, k):
    """sklearn.mixture.GaussianMixture(k).fit(X): defaults, random_state=0 (reproducible)."""
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(k, random_state=0)
    t0 = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - t0
    return {"total_s": seconds, "n_iter": int(model.n_iter_),
            "log_likelihood": float(model.score(X)) * X.shape[0],
            "converged": bool(model.converged_)}


def photo(repeats=REPEATS, name=PHOTO, k=PHOTO_K):
    """The end-to-end row: gmm_core's parts and whole fit against scikit-learn's, in
    alternation; best and median of `repeats` runs of each.

    gmm_core is given the pixels as the image holds them (uint8), which it fits on their
    distinct colours (`gmm_core.distinct_rows`), and, as a second row, the same values as
    float64, which it fits pixel by pixel. scikit-learn is given float64: on uint8 it computes
    in uint8 and its log-probabilities wrap around."""
    X = photo_pixels(name, np.uint8)
    Xf = X.astype(np.float64)
    makers = {"parts": lambda k: fit_in_parts(X, k), "ours": lambda k: fit_whole(X, k),
              "ours_float": lambda k: fit_whole(Xf, k), "sklearn": lambda k: fit_sklearn(Xf, k)}
    runs = {key: [] for key in makers}
    for rep in range(repeats):
        keys = list(makers)
        for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:
            runs[key].append(makers[key](k))
    summary = {"image": name, "n": X.shape[0], "d": X.shape[1], "k": k,
               "distinct": len(gmm_core.distinct_rows(X)[0])}
    for key, results in runs.items():
        for field in results[0]:
            values = [r[field] for r in results]
            if field.endswith("_s"):
                summary[f"{key}_{field}"] = min(values)
                summary[f"{key}_{field}_median"] = statistics.median(values)
                summary[f"{key}_{field}_runs"] = values
            else:
                summary[f"{key}_{field}"] = values[0]
    return summary


def format_photo(p):
    lines = [
        [f"{p['image']}: N = {p['n']:,}, d = {p['d']}, K = {p['k']}", "best s", "median s",
         "iterations", "log-likelihood"],
        [f"gmm_core on uint8 ({p['distinct']:,} distinct colours)", "", "", "", ""],
        ["gmm_core: prepare (_Data)", f"{p['parts_prepare_s']:.3f}",
         f"{p['parts_prepare_s_median']:.3f}", "", ""],
        ["gmm_core: K-means start", f"{p['parts_kmeans_s']:.3f}",
         f"{p['parts_kmeans_s_median']:.3f}", "", ""],
        ["gmm_core: EM (fit_stats)", f"{p['parts_em_s']:.3f}", f"{p['parts_em_s_median']:.3f}",
         str(p["parts_n_iter"]), f"{p['parts_log_likelihood']:,.2f}"],
        ["gmm_core.fit, total", f"{p['ours_total_s']:.3f}", f"{p['ours_total_s_median']:.3f}",
         str(p["ours_n_iter"]), f"{p['ours_log_likelihood']:,.2f}"],
        ["gmm_core.fit on float64, total", f"{p['ours_float_total_s']:.3f}",
         f"{p['ours_float_total_s_median']:.3f}", str(p["ours_float_n_iter"]),
         f"{p['ours_float_log_likelihood']:,.2f}"],
        ["scikit-learn on float64", "", "", "", ""],
        ["scikit-learn GaussianMixture.fit", f"{p['sklearn_total_s']:.3f}",
         f"{p['sklearn_total_s_median']:.3f}", str(p["sklearn_n_iter"]),
         f"{p['sklearn_log_likelihood']:,.2f}"],
    ]
    return _columns(lines)


# --------------------------------------------------------------------------------------------
# 3. Peak memory, in a fresh process
# --------------------------------------------------------------------------------------------

# The resident peak is VmHWM, reset just before the fit (clear_refs 5): ru_maxrss would not do,
# Linux keeps it across fork and exec, so it would include the benchmark process itself.
_MEMORY_SCRIPT = """
import json, sys, tracemalloc
import numpy as np
sys.path.insert(0, {root!r})
import gmm_core

def status(field):
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024

X = np.load({path!r})
gmm_core.fit(X[:5000], {k})                        # the thread pool and imports, once
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                                   # the peak starts again from here
base = status("VmRSS")
gmm_core.fit(X, {k})
peak_rss = status("VmHWM") - base
tracemalloc.start()
gmm_core.fit(X, {k})
peak_traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({{"rss_bytes": peak_rss, "traced_bytes": peak_traced, "x_bytes": X.nbytes}}))
"""


def peak_memory(size=MEMORY_SIZE):
    """Peak extra memory of gmm_core.fit(X, k) (defaults), X excluded, in a fresh process.

    rss_bytes: the resident-memory peak above what the process held after loading X (Linux:
    VmHWM, reset before the fit);
    traced_bytes: the peak of what fit allocates (tracemalloc sees numpy's allocations).
    """
    n, d, k = size
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        np.save(path, make_data(n, d, k))
        script = _MEMORY_SCRIPT.format(root=str(HERE.parent), path=path, k=k)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(n=n, d=d, k=k)
    return result


# --------------------------------------------------------------------------------------------
# The machine, the goals, the report
# --------------------------------------------------------------------------------------------

def machine():
    """Cores, CPU, library versions, the BLAS kernel and its threads, the load."""
    info = {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                           if line.startswith("model name"))
        flags = next(line for line in text.splitlines() if line.startswith("flags")).split()
        info["simd"] = " ".join(f for f in ("avx", "avx2", "fma", "avx512f") if f in flags)
    except (OSError, StopIteration):
        pass
    for module in ("sklearn", "cv2", "numba"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {"api": i.get("internal_api"), "version": i.get("version"),
             "kernel": i.get("architecture"), "threads": i.get("num_threads"),
             "library": os.path.basename(i.get("filepath", "")),
             "of": next((p for p in ("numpy", "scipy", "opencv")
                         if f"/{p}" in i.get("filepath", "")), "?")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        info["blas"] = None
    info["blas_variables"] = {name: os.environ.get(name) for name in BLAS_VARIABLES}
    info["load_average"] = load_average()
    return info


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def format_machine(info):
    blas = "; ".join(f"{b['of']}'s {b['api']} {b['version']} kernel {b['kernel']}, "
                     f"{b['threads']} threads" for b in info.get("blas") or []) or "unknown"
    unset = ", ".join(f"{k}={v}" if v else f"{k} unset"
                      for k, v in info["blas_variables"].items())
    return "\n".join([
        f"machine: {info['cores']} cores, {info['cpu']} ({info.get('simd', '')})",
        f"BLAS: {blas} ({unset})",
        f"python {info['python']}, numpy {info['numpy']}, scikit-learn {info['sklearn']}, "
        f"OpenCV {info['cv2']}, numba {info['numba'] or 'not installed'}",
        f"load average at start: {info['load_average']}"])


def goals(rows, photo_row, memory):
    """Issue 12's goals, each with its measured value and whether it is met."""
    out = []
    big = next((r for r in rows if (r["n"], r["d"]) == (1_000_000, 3)), None)
    if big and big.get("ours_s") and big.get("floor_s"):
        ratio = big["ours_s"] / big["floor_s"]
        out.append({"goal": "per EM iteration at N = 10^6, d = 3, K = 8: gmm_core at most 2x "
                            "the compiled floor", "value": round(ratio, 2), "met": ratio <= 2})
    if big and big.get("ours_s") and big.get("sklearn_s"):
        ratio = big["ours_s"] / big["sklearn_s"]
        out.append({"goal": "per EM iteration at N = 10^6: about 0.05x scikit-learn",
                    "value": round(ratio, 3), "met": ratio <= 0.05})
    if photo_row:
        ratio = photo_row["ours_total_s"] / photo_row["sklearn_total_s"]
        out.append({"goal": f"whole fit of {photo_row['image']}, K = {photo_row['k']}: at most "
                            "0.1x scikit-learn's GaussianMixture(5).fit",
                    "value": round(ratio, 3), "met": ratio <= 0.1})
        ratio = photo_row["ours_float_total_s"] / photo_row["sklearn_total_s"]
        out.append({"goal": "... the same, the pixels given as float64 (no counting)",
                    "value": round(ratio, 3), "met": ratio <= 0.1})
        gain = photo_row["ours_log_likelihood"] - photo_row["sklearn_log_likelihood"]
        out.append({"goal": "... with a log-likelihood at least as high",
                    "value": round(gain, 2), "met": gain >= 0})
        ratio = photo_row["parts_kmeans_s"] / photo_row["parts_em_s"]
        out.append({"goal": "... and the K-means start no longer than the EM after it",
                    "value": round(ratio, 3), "met": ratio <= 1})
    if memory:
        mb = max(memory["rss_bytes"], memory["traced_bytes"]) / 1e6
        out.append({"goal": "peak extra memory of fit at N = 10^6, d = 3, K = 8 under 64 MB",
                    "value": round(mb, 1), "met": mb < 64})
    ratios = [r["ours_s"] / r["sklearn_s"] for r in rows if r.get("ours_s") and r.get("sklearn_s")]
    if ratios:
        out.append({"goal": "faster than scikit-learn at every size of the table",
                    "value": round(max(ratios), 3), "met": max(ratios) < 1})
    measured = any(r.get("opencv_s") for r in rows)
    out.append({"goal": "cv2.ml.EM measured", "value": measured, "met": measured})
    return out


def format_goals(items):
    return "\n".join(f"  [{'met' if g['met'] else 'NOT met'}] {g['goal']}: {g['value']}"
                     for g in items)


def _progress(row):
    cells = ", ".join(f"{name} {_ms(row.get(f'{name}_s'))} ms" for name in IMPLEMENTATIONS
                      if row.get(f"{name}_s") is not None)
    print(f"  N = {row['n']:,}, d = {row['d']}: {cells}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="fits per implementation")
    parser.add_argument("--no-write", action="store_true", help="do not write results.*")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    info = machine()
    print(format_machine(info), flush=True)
    floor, why = compiled_floor()
    if floor is None:
        print(why, flush=True)
    else:
        t0 = time.perf_counter()
        floor.warm_up()
        print(f"floor: numba kernel compiled in {time.perf_counter() - t0:.1f} s", flush=True)
    sizes = QUICK_SIZES if args.quick else SIZES
    print(f"\n1. Per EM iteration: (t(1 + n) - t(1)) / n, n = {N_ITER} unless shown; best of up "
          f"to {args.repeats} (median)", flush=True)
    rows = per_iteration(sizes, repeats=args.repeats, progress=_progress)
    table = format_table(rows)
    print("\n" + table + "\n", flush=True)
    print("2. A whole fit of a photo (defaults), in alternation", flush=True)
    photo_row = photo(repeats=args.repeats)
    photo_text = format_photo(photo_row)
    print(photo_text + "\n", flush=True)
    print("3. Peak extra memory of gmm_core.fit(X, 8) at N = 10^6, d = 3 (fresh process)",
          flush=True)
    memory = None if args.quick else peak_memory()
    memory_text = ("  skipped (--quick)" if memory is None else
                   f"  resident {memory['rss_bytes'] / 1e6:.1f} MB, allocated (tracemalloc) "
                   f"{memory['traced_bytes'] / 1e6:.1f} MB; X itself is "
                   f"{memory['x_bytes'] / 1e6:.0f} MB")
    print(memory_text + "\n", flush=True)
    goal_items = goals(rows, photo_row, memory)
    goal_text = format_goals(goal_items)
    print("Issue 12's goals\n" + goal_text, flush=True)
    info["load_average_end"] = load_average()
    info["seconds"] = round(time.perf_counter() - began, 1)
    tail = f"load average at the end: {info['load_average_end']}; {info['seconds']} s in all"
    print(tail)
    if not args.no_write and not args.quick:
        results = {"date": datetime.date.today().isoformat(), "machine": info,
                   "per_iteration": rows, "photo": photo_row, "memory": memory,
                   "goals": goal_items}
        RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
        report = "\n\n".join([format_machine(info), table, photo_text, memory_text,
                              "Issue 12's goals\n" + goal_text, tail])
        RESULTS_MD.write_text("# `make bench` results\n\nWritten by `benchmarks/bench_fit.py` "
                              f"on {results['date']}.\n\n```text\n{report}\n```\n")
        print(f"wrote {RESULTS_JSON.relative_to(HERE.parent)} and "
              f"{RESULTS_MD.relative_to(HERE.parent)}")
    return rows


if __name__ == "__main__":
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE can pick a slower kernel: run without them (this
    # process only; numpy's BLAS is already loaded, so start again without them).
    if any(name in os.environ for name in BLAS_VARIABLES):
        env = {key: value for key, value in os.environ.items() if key not in BLAS_VARIABLES}
        print(f"restarting without {', '.join(BLAS_VARIABLES)}", flush=True)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    main()
