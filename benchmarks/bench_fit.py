"""gmm_core.fit against scikit-learn's GaussianMixture, per EM iteration (`make bench`).

Every implementation fits the same data from the same starting parameters for the same number
of iterations (N + 1 E-steps and N M-steps, full covariances, no regularisation, no early stop),
in alternation, several times; the table gives the median seconds per iteration, the ratio to
scikit-learn, the final log-likelihood's relative difference from scikit-learn's, and the peak
memory of our fit (tracemalloc: what `fit` allocates, the data excluded) beside the goal, the
data plus two N x K float64 arrays.

Also timed, where they run: OpenCV's compiled EM (`cv2.ml.EM`, generic covariances, `trainE`
from the same parameters), and the naive EM of chapter 2 (`naive_e_step` and `m_step`).

Usage: python benchmarks/bench_fit.py [--quick] [--iterations N] [--repeats R]

Chapter 11 imports `benchmark` and `format_table` from here for a small run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import warnings

import numpy as np

import gmm_core

#: (N, d, K): RGB-like data at three sizes, and 50 features.
SIZES = [(10_000, 3, 8), (100_000, 3, 8), (1_000_000, 3, 8), (100_000, 50, 8)]
#: A run of a few seconds (`--quick`, chapter 11).
QUICK_SIZES = [(3_000, 3, 8), (30_000, 3, 8), (10_000, 20, 8)]
#: Environment variables that select a slower OpenBLAS kernel on some machines.
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: rel_tol for "never stop early": EM stops only if the log-likelihood does not grow at all.
NO_EARLY_STOP = 1e-300


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


def start_params(X, k, seed=1):
    """The common start: K random data points as means, the data's variances, equal weights."""
    return gmm_core.init_random(X, k, np.random.default_rng(seed))


# --------------------------------------------------------------------------------------------
# One fit of each implementation: (seconds, final log-likelihood) or a failure message
# --------------------------------------------------------------------------------------------

def run_ours(X, start, n_iter):
    """gmm_core.fit from `start`, exactly `n_iter` iterations."""
    t0 = time.perf_counter()
    result = gmm_core.fit(X, len(start[0]), init=start, max_iter=n_iter, rel_tol=NO_EARLY_STOP)
    seconds = time.perf_counter() - t0
    if result.n_iter != n_iter:
        return f"stopped after {result.n_iter} iterations"
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
            return f"{type(exc).__name__}: {str(exc)[:60]}"
        seconds = time.perf_counter() - t0
    return seconds, float(model.score(X)) * X.shape[0]


def opencv_em():
    """OpenCV's EM class, or a message saying why it is not there."""
    try:
        import cv2
    except ImportError:
        return None, "cv2 is not installed"
    if not hasattr(cv2, "ml"):
        return None, (f"cv2 {cv2.__version__} has no ml module (OpenCV 5 moved it to "
                      "opencv-contrib-python-headless)")
    return cv2, ""


def run_opencv(X, start, n_iter):
    """OpenCV's cv2.ml.EM: generic covariances, trainE from the same start, n_iter iterations."""
    cv2, why = opencv_em()
    if cv2 is None:
        return why
    weights, means, covariances = start
    em = cv2.ml.EM_create()
    em.setClustersNumber(len(weights))
    em.setCovarianceMatrixType(cv2.ml.EM_COV_MAT_GENERIC)
    em.setTermCriteria((cv2.TERM_CRITERIA_COUNT, n_iter, 0.0))
    t0 = time.perf_counter()
    try:
        _, log_likelihoods, _, _ = em.trainE(X, means, list(covariances),
                                             weights.reshape(1, -1))
    except cv2.error as exc:
        return f"cv2.error: {str(exc).strip().splitlines()[-1][:60]}"
    seconds = time.perf_counter() - t0
    return seconds, float(np.sum(log_likelihoods))


def run_naive(X, start, n_iter):
    """The naive EM of chapter 2 (naive_e_step, m_step), the same E- and M-steps.

    Its likelihood, a product over points, is 0.0 at every size here, so `naive_em` would
    stop after one iteration: the loop is typed out. It fails where a responsibility is nan
    or a matrix singular; its final log-likelihood is evaluated in the log domain (untimed).
    """
    weights, means, covariances = start
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        try:
            resp = gmm_core.naive_e_step(X, weights, means, covariances)
            for _ in range(n_iter):
                if not np.all(np.isfinite(resp)):
                    return "nan responsibilities"
                weights, means, covariances = gmm_core.m_step(X, resp)
                resp = gmm_core.naive_e_step(X, weights, means, covariances)
        except np.linalg.LinAlgError as exc:
            return f"LinAlgError: {exc}"
    seconds = time.perf_counter() - t0
    if not np.all(np.isfinite(resp)):
        return "nan responsibilities"
    return seconds, float(gmm_core.log_e_step(X, weights, means, covariances)[1].sum())


IMPLEMENTATIONS = {"ours": run_ours, "sklearn": run_sklearn, "opencv": run_opencv,
                   "naive": run_naive}


def peak_memory(X, start, n_iter=2):
    """The peak of what gmm_core.fit allocates (tracemalloc), in bytes; X itself excluded."""
    tracemalloc.start()
    try:
        gmm_core.fit(X, len(start[0]), init=start, max_iter=n_iter, rel_tol=NO_EARLY_STOP)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------------------------
# The benchmark and its table
# --------------------------------------------------------------------------------------------

def benchmark(sizes=QUICK_SIZES, n_iter=5, repeats=3, implementations=tuple(IMPLEMENTATIONS),
              memory=True, progress=None):
    """Time every implementation on every size; one dict per size.

    The implementations run in alternation (a different order in each repetition), so a
    slow moment of the machine does not fall on one of them only. An implementation that
    fails is tried once and keeps its message.

    Returns
    -------
    rows : list of dict
        n, d, k, n_iter; for each implementation name, "<name>_s" (median seconds per
        iteration, or None), "<name>_ll" (final log-likelihood) and "<name>_error" (a message
        or None); "peak_bytes" and "budget_bytes" (the data plus two N x K float64 arrays).
    """
    rows = []
    for n, d, k in sizes:
        X = make_data(n, d, k)
        start = start_params(X, k)
        row = {"n": n, "d": d, "k": k, "n_iter": n_iter}
        times = {name: [] for name in implementations}
        for name in implementations:
            row[f"{name}_s"] = row[f"{name}_ll"] = row[f"{name}_error"] = None
        for rep in range(repeats):
            order = list(implementations)
            shift = rep % len(order)
            for name in order[shift:] + order[:shift]:
                if row[f"{name}_error"] is not None:
                    continue
                outcome = IMPLEMENTATIONS[name](X, start, n_iter)
                if isinstance(outcome, str):
                    row[f"{name}_error"] = outcome
                    continue
                times[name].append(outcome[0] / n_iter)
                row[f"{name}_ll"] = outcome[1]
        for name in implementations:
            if times[name] and row[f"{name}_error"] is None:
                row[f"{name}_s"] = float(np.median(times[name]))
        if memory:
            row["peak_bytes"] = peak_memory(X, start)
            row["budget_bytes"] = X.nbytes + 2 * n * k * 8
        rows.append(row)
        if progress:
            progress(row)
    return rows


def relative_difference(a, b):
    """|a - b| / |b|, or None when either is missing."""
    if a is None or b is None:
        return None
    return abs(a - b) / abs(b)


def _seconds(value, error):
    if error is not None:
        return "fails" if "nan" in error or "Error" in error else "n/a"
    return "" if value is None else f"{value:.4f}"


def format_table(rows):
    """The table as text: one line per size, then a line per failure message."""
    has = {name: any(f"{name}_s" in r for r in rows) for name in IMPLEMENTATIONS}
    header = ["N", "K", "d", "ours s/it", "sklearn s/it", "ours/sklearn"]
    header += ["opencv s/it"] * has["opencv"] + ["naive s/it"] * has["naive"]
    header += ["|dL|/|L|"]
    memory = any("peak_bytes" in r for r in rows)
    header += ["ours peak MB", "data+2NK MB"] * memory
    lines = [header]
    notes = []
    for r in rows:
        ratio = (r["ours_s"] / r["sklearn_s"]
                 if r.get("ours_s") and r.get("sklearn_s") else None)
        line = [f"{r['n']:,}", str(r["k"]), str(r["d"]),
                _seconds(r.get("ours_s"), r.get("ours_error")),
                _seconds(r.get("sklearn_s"), r.get("sklearn_error")),
                "" if ratio is None else f"{ratio:.3f}"]
        for name in ("opencv", "naive"):
            if has[name]:
                line.append(_seconds(r.get(f"{name}_s"), r.get(f"{name}_error")))
        diff = relative_difference(r.get("ours_ll"), r.get("sklearn_ll"))
        line.append("" if diff is None else f"{diff:.1e}")
        if memory:
            line += [f"{r['peak_bytes'] / 1e6:.0f}", f"{r['budget_bytes'] / 1e6:.0f}"]
        lines.append(line)
        for name in IMPLEMENTATIONS:
            error = r.get(f"{name}_error")
            if error and error not in notes:
                notes.append(error)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text += [f"  {note}" for note in notes]
    return "\n".join(text)


def environment():
    """Cores, the BLAS kernel and its threads (threadpoolctl), and the BLAS variables."""
    lines = [f"cores: {os.cpu_count()}", f"numpy {np.__version__}"]
    try:
        import sklearn
        lines.append(f"scikit-learn {sklearn.__version__}")
    except ImportError:
        lines.append("scikit-learn: not installed")
    try:
        from threadpoolctl import threadpool_info
        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(f"BLAS: {info.get('internal_api')} {info.get('version')}, kernel "
                             f"{info.get('architecture')}, {info.get('num_threads')} threads "
                             f"({os.path.basename(info.get('filepath', ''))})")
    except ImportError:
        lines.append("BLAS: threadpoolctl not installed")
    for name in BLAS_VARIABLES:
        lines.append(f"{name}: {os.environ.get(name, 'unset')}")
    lines.append(load_average())
    return "\n".join(lines)


def load_average():
    """The machine's load (other processes slow every timing down), where the OS tells it."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return "load average: unknown"
    return f"load average: {one:.2f} (1 min), {five:.2f} (5 min), {fifteen:.2f} (15 min)"


def _progress(row):
    seconds = ", ".join(f"{name} {row[f'{name}_s']:.4f} s/it" for name in IMPLEMENTATIONS
                        if row.get(f"{name}_s") is not None)
    print(f"  N = {row['n']:,}, d = {row['d']}: {seconds}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--iterations", type=int, default=None,
                        help="EM iterations per fit (10, or 5 with --quick)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per implementation")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    n_iter = args.iterations or (5 if args.quick else 10)
    print(environment())
    print(f"{n_iter} iterations per fit, {args.repeats} fits each, in alternation\n",
          flush=True)
    rows = benchmark(sizes, n_iter=n_iter, repeats=args.repeats, progress=_progress)
    print(f"\n{load_average()}\n")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE can pick a slower kernel: run without them (this
    # process only, before numpy's BLAS is loaded... which it is already, so start again).
    if any(name in os.environ for name in BLAS_VARIABLES):
        env = {key: value for key, value in os.environ.items() if key not in BLAS_VARIABLES}
        print(f"restarting without {', '.join(BLAS_VARIABLES)}", flush=True)
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    main()
