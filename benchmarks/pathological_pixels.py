"""Issue 10's acceptance run: 500 pathological pixel-like sets, fitted from the K-means start.

For each set (`gallery.pixel_like(seed)`, seeds 0..499): gmm_core.fit from the K-means start
that `fit` itself uses, then counts
- decreases: E-steps whose log-likelihood fell (any fall, and falls beyond DECREASE_TOL);
- false convergences: `converged=True` where the last gain is not in [-rounding, threshold);
- what 100 more EM iterations from the converged result change: the gain per point, and the
  share of pixels whose most responsible component changes;
and scikit-learn's GaussianMixture from the same start, its mean log-likelihood per pixel
against ours (or its failure): with its defaults (reg_covar = 1e-6 in pixel units, a far
narrower floor than ours, tol = 1e-3), and at the same floor (the same whitened data,
reg_covar = tau, tol = 1e-10; converted back to pixel units).

Usage: python benchmarks/pathological_pixels.py [n_sets]   (writes pathological_pixels.json)
"""

import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import gallery  # noqa: E402

import gmm_core as g  # noqa: E402


def kmeans_start(X, k, seed):
    """The start `fit(X, k, rng=seed)` uses, in the original units."""
    rng = np.random.default_rng(seed)
    center, scale = g.moments(X).scaling()
    Z = g.to_em_units(X[g.sample_rows(len(X), rng)], center, scale)
    weights, means, covs = g.init_from_kmeans(Z, k, rng)
    return (weights, *g.unwhiten(means, covs, center, scale))


def one(seed):
    X, k = gallery.pixel_like(seed)
    n = len(X)
    start = kmeans_start(X, k, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = g.fit(X, k, init=start)
    more = g.fit(X, k, init=(ours.weights, ours.means, ours.covariances), max_iter=100,
                 rel_tol=1e-300)
    gains = np.diff(ours.history)
    rounding = g.DECREASE_TOL * (np.abs(np.asarray(ours.history[:-1])) + n)
    before = g.log_e_step(X, ours.weights, ours.means, ours.covariances)[0].argmax(axis=1)
    after = g.log_e_step(X, more.weights, more.means, more.covariances)[0].argmax(axis=1)
    gain_after = (more.log_likelihood - ours.log_likelihood) / n
    row = {
        "seed": seed, "n": n, "d": X.shape[1], "k": k,
        "distinct": int(len(np.unique(X, axis=0))),
        "iterations": ours.n_iter, "converged": ours.converged,
        "falls": int(np.sum(gains < 0)), "falls_beyond_rounding": int(np.sum(gains < -rounding)),
        "worst_fall_relative": float(max(0.0, -(gains / np.abs(ours.history[:-1])).min()))
        if len(gains) else 0.0,
        "warnings": len(caught),
        "warning_texts": sorted({str(w.message)[:80] for w in caught}),
        "false_convergence": bool(ours.converged and not (
            len(gains) and -rounding[-1] <= gains[-1] < math.log1p(g.REL_TOL) * n)),
        "gain_per_point_after_100_more": gain_after,
        "moved_share": float(np.mean(before != after)),
        "ours_per_point": ours.log_likelihood / n,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk = GaussianMixture(k, weights_init=start[0], means_init=start[1],
                                 precisions_init=np.linalg.inv(start[2])).fit(X.astype(float))
        row["sklearn_per_point"] = float(sk.score(X.astype(float)))
    except ValueError as error:
        row["sklearn_error"] = str(error).split(".")[0]
    center, scale = g.moments(X).scaling()
    Z = g.to_em_units(X, center, scale)
    means_w, covs_w = g.whiten_params(start[1], start[2], center, scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        same = GaussianMixture(k, reg_covar=g.MIN_VARIANCE, tol=1e-10, max_iter=1000,
                               weights_init=start[0], means_init=means_w,
                               precisions_init=np.linalg.inv(covs_w)).fit(Z)
    row["sklearn_same_floor_per_point"] = float(same.score(Z) - np.log(scale).sum())
    return row


def main(n_sets=500):
    t0 = time.perf_counter()
    rows = [one(seed) for seed in range(n_sets)]
    both = [r for r in rows if "sklearn_per_point" in r]
    summary = {
        "sets": len(rows),
        "sets_with_fewer_distinct_points_than_k": sum(r["distinct"] < r["k"] for r in rows),
        "falls_any": sum(r["falls"] for r in rows),
        "falls_beyond_rounding": sum(r["falls_beyond_rounding"] for r in rows),
        "worst_fall_relative": max(r["worst_fall_relative"] for r in rows),
        "warnings": sum(r["warnings"] for r in rows),
        "false_convergences": sum(r["false_convergence"] for r in rows),
        "not_converged_in_100": sum(not r["converged"] for r in rows),
        "median_gain_per_point_after_100_more": float(np.median(
            [r["gain_per_point_after_100_more"] for r in rows])),
        "median_moved_share": float(np.median([r["moved_share"] for r in rows])),
        "max_moved_share": max(r["moved_share"] for r in rows),
        "sklearn_failed": len(rows) - len(both),
        "mean_per_point_ours_where_sklearn_fits": float(np.mean(
            [r["ours_per_point"] for r in both])),
        "mean_per_point_sklearn": float(np.mean([r["sklearn_per_point"] for r in both])),
        "ours_at_least_sklearn": sum(r["ours_per_point"] >= r["sklearn_per_point"] - 1e-9
                                     for r in both),
        "mean_per_point_ours": float(np.mean([r["ours_per_point"] for r in rows])),
        "mean_per_point_sklearn_same_floor": float(np.mean(
            [r["sklearn_same_floor_per_point"] for r in rows])),
        "ours_at_least_sklearn_same_floor": sum(
            r["ours_per_point"] >= r["sklearn_same_floor_per_point"] - 1e-6 for r in rows),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    out = Path(__file__).with_name("pathological_pixels.json")
    out.write_text(json.dumps({"summary": summary, "sets": rows}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
