"""Chapter 12 at full size: 10^8 pixels fitted in memory, out of core and on Dask.

Writes the video of `book/bigdata.py` (417 frames of 240,000 pixels: 100,080,000 pixels,
300 MB of uint8) under `_build/ch12/`, then fits K = 8 components to it

- in memory: `gmm_core.fit` on the pixels read into an ndarray of uint8 (which it fits on
  their distinct colours, `gmm_core.distinct_rows`), and on the same pixels as float64
  (fitted pixel by pixel);
- out of core: `gmm_core.fit` on a `numpy.memmap` of the file;
  (both in a fresh process with one BLAS thread per block thread, as Dask's workers);
- on Dask: `bigdata.fit_dask` on a `distributed.LocalCluster` on 127.0.0.1 with 2 worker
  processes (1 thread each), and with 1;

each for a fixed number of EM iterations from `fit`'s K-means start (rel_tol tiny, so that no
run stops early), and compares every result with the in-memory one. Measured:

- seconds per iteration, wall clock and CPU (all threads and worker processes), as the
  difference between a long (5) and a short (1) run divided by the difference of their
  iterations; on one machine the EM (`fit_stats`) is timed apart from the preparation and the
  K-means start, on Dask the one-off passes cancel out in the difference; for Dask, also the
  median wall time of one E-step (one graph);
- peak memory: what `fit` allocates (tracemalloc), each fit in a fresh process, and that
  process's resident memory split into anonymous (its own) and file-backed (the file's pages
  in the page cache, mapped into it); each Dask worker's peak resident memory;
- on Dask, one E-step per chunk size, and where its time goes: the task stream's compute time
  per worker against the wall time.

The results go to `book/data/ch12_full_size.json`, which chapter 12 prints and its text cites.
Run it once on an otherwise idle machine (about 15-30 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_big.py
    .venv/bin/python benchmarks/bench_big.py --frames 8 --out /tmp/small.json   # a dry run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))

import bigdata  # noqa: E402

import gmm_core  # noqa: E402

K = 8
FRAMES = 417                 # 100,080,000 pixels
LONG, SHORT = 5, 1           # EM iterations of the long and the short run
CHUNK_ROWS = 2**20           # rows per Dask chunk (3 MB of uint8)
CHUNK_SIZES = (2**18, 2**20)
NO_EARLY_STOP = 1e-300
CLUSTER = dict(threads_per_worker=1, processes=True, host="127.0.0.1",
               dashboard_address=None)
#: One BLAS thread per thread that runs blocks, as Dask's nanny sets for its workers
#: (distributed's `pre-spawn-environ`): fit's pool of 2 block threads, each calling a
#: multi-threaded OpenBLAS, would put 4 busy threads on 2 cores.
ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "OPENBLAS_NUM_THREADS": "1"}


def clock():
    return time.perf_counter(), time.process_time()


def since(start):
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def relative_difference(result, reference):
    """The largest relative difference of weights, means, covariances and log-likelihood."""
    worst = abs(result.log_likelihood - reference.log_likelihood) / abs(reference.log_likelihood)
    for name in ("weights", "means", "covariances"):
        a, b = getattr(result, name), getattr(reference, name)
        worst = max(worst, float(np.abs(a - b).max() / np.abs(b).max()))
    return worst


def summary(result, n):
    return {"n_iter": result.n_iter, "converged": result.converged,
            "log_likelihood": result.log_likelihood,
            "log_likelihood_per_pixel": result.log_likelihood / n,
            "weights": result.weights.round(4).tolist()}


# --------------------------------------------------------------------------------------------
# One machine: gmm_core.fit in memory and on a memmap
# --------------------------------------------------------------------------------------------

FIT_SCRIPT = textwrap.dedent("""
    import json, os, sys, time, tracemalloc
    import numpy as np
    sys.path.insert(0, "benchmarks")
    from bench_fit import fit_parts
    path, how, k, max_iter, out = sys.argv[1:6]
    n = os.path.getsize(path) // 3
    if how == "memory":
        X = np.fromfile(path, dtype=np.uint8).reshape(n, 3)
    elif how == "float":
        X = np.fromfile(path, dtype=np.uint8).reshape(n, 3).astype(np.float64)
    else:
        X = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3))
    tracemalloc.start()
    cpu = time.process_time()
    seconds, result = fit_parts(X, int(k), max_iter=int(max_iter), rel_tol=1e-300)
    cpu = time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.savez(out, weights=result.weights, means=result.means,
             covariances=result.covariances, log_likelihood=result.log_likelihood,
             n_iter=result.n_iter, converged=result.converged)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    memory = {key: int(status[key].split()[0]) * 1024
              for key in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}
    print(json.dumps({"seconds": seconds["total_s"], "em_seconds": seconds["em_s"],
                      "cpu_seconds": cpu, "tracemalloc_peak": peak, **memory}))
""")


def fit_in_process(path, how, max_iter, folder):
    """`gmm_core.fit` (max_iter iterations, no early stop, its EM timed apart) in a fresh Python
    process, with tracemalloc on (its cost is a few allocations per block: negligible)."""
    out = Path(folder) / f"{how}-{max_iter}.npz"
    run = subprocess.run([sys.executable, "-c", FIT_SCRIPT, str(path), how, str(K),
                          str(max_iter), str(out)], env={**os.environ, **ONE_BLAS_THREAD},
                         cwd=ROOT, capture_output=True, text=True, check=True)
    record = json.loads(run.stdout.strip().splitlines()[-1])
    with np.load(out) as saved:
        result = gmm_core.GMMFit(saved["weights"], saved["means"], saved["covariances"],
                                 float(saved["log_likelihood"]), (), int(saved["n_iter"]),
                                 bool(saved["converged"]))
    print(f"  {how}: {max_iter} iterations in {record['seconds']:.1f} s", flush=True)
    return result, record


def one_machine(path, how, folder):
    """A long and a short fit of `gmm_core.fit`; returns (long result, short result, record)."""
    long, long_run = fit_in_process(path, how, LONG, folder)
    short, short_run = fit_in_process(path, how, SHORT, folder)
    record = {
        "seconds_per_iteration":
            (long_run["em_seconds"] - short_run["em_seconds"]) / (LONG - SHORT),
        "seconds_before_em": long_run["seconds"] - long_run["em_seconds"],
        "cpu_seconds_per_iteration":
            (long_run["cpu_seconds"] - short_run["cpu_seconds"]) / (LONG - SHORT),
        "seconds_total": long_run["seconds"],
        "memory": {key: max(long_run[key], short_run[key])
                   for key in ("tracemalloc_peak", "VmHWM", "RssAnon", "RssFile")},
    }
    return long, short, record


# --------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------

def worker_peak_rss():
    """This process's peak resident memory in bytes (run on a worker): VmHWM, which starts
    afresh with the process's image (ru_maxrss would not: Linux keeps it across exec, so a
    worker would report its parent's peak)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def on_dask(path, n_workers, reference_long, reference_short, chunk_sizes=()):
    from distributed import Client, LocalCluster, get_task_stream

    record = {"n_workers": n_workers, "chunk_rows": CHUNK_ROWS}
    with LocalCluster(n_workers=n_workers, **CLUSTER) as cluster, Client(cluster) as client:
        x = bigdata.dask_pixels(path, CHUNK_ROWS)
        runs = {}
        for iterations in (SHORT, LONG) if n_workers > 1 else (SHORT,):
            seconds = []
            cpu0 = sum(client.run(time.process_time).values())
            start = clock()
            result = bigdata.fit_dask(x, K, max_iter=iterations, rel_tol=NO_EARLY_STOP,
                                      seconds=seconds)
            wall, here = since(start)       # here: this process (client and scheduler)
            cpu = sum(client.run(time.process_time).values()) - cpu0 + here
            runs[iterations] = (result, wall, cpu, seconds)
            print(f"  dask, {n_workers} worker(s): {iterations} iterations in {wall:.1f} s",
                  flush=True)
        short, short_wall, short_cpu, short_seconds = runs[SHORT]
        record["difference_short"] = relative_difference(short, reference_short)
        record["e_step_seconds_median"] = float(np.median(short_seconds[1:]))
        record["e_step_cpu_seconds"] = short_cpu / (SHORT + 1)   # approximate: includes setup
        if LONG in runs:
            long, long_wall, long_cpu, long_seconds = runs[LONG]
            record["difference_long"] = relative_difference(long, reference_long)
            record["seconds_per_iteration"] = (long_wall - short_wall) / (LONG - SHORT)
            record["cpu_seconds_per_iteration"] = (long_cpu - short_cpu) / (LONG - SHORT)
            record["e_step_seconds_median"] = float(np.median(long_seconds[1:]))
            record["seconds_total"] = long_wall
        record["worker_peak_rss"] = sorted(client.run(worker_peak_rss).values())
        if chunk_sizes:
            center, scale = bigdata.moments_of(x).scaling()
            params = (reference_long.weights, *gmm_core.whiten_params(
                reference_long.means, reference_long.covariances, center, scale))
            record["chunks"] = [chunk_breakdown(path, rows, center, scale, params,
                                                get_task_stream, n_workers)
                                for rows in chunk_sizes]
    return record


def chunk_breakdown(path, rows, center, scale, params, get_task_stream, n_workers):
    """Wall time of one E-step with chunks of `rows` rows, and the task stream's compute time."""
    x = bigdata.dask_pixels(path, rows)
    graph = bigdata.stats_graph(x, center, scale, *params)
    graph.compute()                                       # warm up (imports, page cache)
    with get_task_stream() as stream:
        start = clock()
        graph.compute()
        wall, _ = since(start)
    compute = sum(part["stop"] - part["start"] for task in stream.data
                  for part in task["startstops"] if part["action"] == "compute")
    other = sum(part["stop"] - part["start"] for task in stream.data
                for part in task["startstops"] if part["action"] != "compute")
    entry = {"chunk_rows": rows, "chunks": len(x.chunks[0]), "tasks": len(stream.data),
             "seconds": wall, "compute_seconds": compute, "transfer_seconds": other,
             "overhead_fraction": max(0.0, 1 - compute / n_workers / wall)}
    print(f"  chunks of {rows:,} rows: {wall:.2f} s, compute {compute:.2f} s", flush=True)
    return entry


# --------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--out", default=str(ROOT / "book" / "data" / "ch12_full_size.json"))
    parser.add_argument("--skip-dask", action="store_true",
                        help="measure the one-machine fits only")
    args = parser.parse_args()

    start = clock()
    path = bigdata.write_video(ROOT / "_build" / "ch12", args.frames)
    n = path.stat().st_size // 3
    print(f"{path}: {n:,} pixels in {since(start)[0]:.0f} s", flush=True)
    out = {
        "frames": args.frames, "n_pixels": n, "k": K, "file_bytes": path.stat().st_size,
        "float64_bytes": n * 3 * 8, "iterations_long": LONG, "iterations_short": SHORT,
        "one_machine_environment": ONE_BLAS_THREAD,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "load_average_before": os.getloadavg()},
    }
    print("in memory", flush=True)
    folder = path.parent
    memory_long, memory_short, out["in_memory"] = one_machine(path, "memory", folder)
    print("in memory, as float64", flush=True)
    float_long, float_short, out["in_memory_float"] = one_machine(path, "float", folder)
    out["in_memory_float"]["difference_long"] = relative_difference(float_long, memory_long)
    out["in_memory_float"]["difference_short"] = relative_difference(float_short, memory_short)
    print("out of core", flush=True)
    memmap_long, memmap_short, out["out_of_core"] = one_machine(path, "memmap", folder)
    out["in_memory"]["result"] = summary(memory_long, n)
    out["out_of_core"]["difference_long"] = relative_difference(memmap_long, memory_long)
    out["out_of_core"]["difference_short"] = relative_difference(memmap_short, memory_short)
    if not args.skip_dask:
        import dask
        import distributed
        out["dask_version"] = dask.__version__
        out["distributed_version"] = distributed.__version__
        print("dask", flush=True)
        out["dask_2_workers"] = on_dask(path, 2, memory_long, memory_short, CHUNK_SIZES)
        out["dask_1_worker"] = on_dask(path, 1, memory_long, memory_short, (CHUNK_ROWS,))
    # last: the sort needs some GB, and Dask's worker processes are started from this one
    out["in_memory"]["distinct_rows"] = int(len(gmm_core.distinct_rows(
        np.fromfile(path, dtype=np.uint8).reshape(n, 3))[0]))
    out["machine"]["load_average_after"] = os.getloadavg()
    out["seconds_total"] = since(start)[0]
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
