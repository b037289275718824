"""The EM of chapter 12 on a Dask cluster (`book/bigdata.py`) against the in-memory fit.

A `distributed.LocalCluster` of two worker processes on 127.0.0.1 fits pixels read from a file
chunk by chunk; the result must equal `gmm_core.fit` on the same pixels in memory (1e-10), its
map-reduce statistics must equal responsibilities computed independently with scipy, and when
the cluster is closed no worker process may be left running.
"""

import os

import bigdata  # from book/, which conftest.py puts on sys.path
import numpy as np
import psutil
import pytest
from conftest import relative_error
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import gmm_core as g

distributed = pytest.importorskip("distributed")

TOL = 1e-10
CLUSTER = dict(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
               dashboard_address=None)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """One frame of chapter 12's video (240,000 pixels) in a file, and the pixels in memory."""
    path = bigdata.write_video(tmp_path_factory.mktemp("video"), 1)
    return path, np.array(bigdata.open_pixels(path))


def alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def cluster_run(video):
    """Fit on the cluster, then close it; returns what the tests check."""
    path, _ = video
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with distributed.LocalCluster(**CLUSTER) as cluster, distributed.Client(cluster) as client:
        workers = client.run(os.getpid)                 # {address: pid}
        x = bigdata.dask_pixels(path, chunk_rows=50_000)   # 5 chunks
        seconds = []
        result = bigdata.fit_dask(x, 4, seconds=seconds)
        X = np.array(bigdata.open_pixels(path))
        center, scale = g.moments(X).scaling()
        start = g.init_random(g.to_em_units(X, center, scale), 4, np.random.default_rng(3))
        stats = bigdata.stats_graph(x, center, scale, *start).compute()
        task_hosts = {addr.split("//")[1].split(":")[0] for addr in workers}
    children = psutil.Process().children(recursive=True)
    return dict(result=result, seconds=seconds, workers=workers, stats=stats, start=start,
                center=center, scale=scale, hosts=task_hosts, before=before,
                after=[p for p in children if p.pid not in before])


def test_dask_fit_equals_in_memory_fit(video, cluster_run):
    _, X = video
    reference = g.fit(X, 4)
    result = cluster_run["result"]
    assert reference.converged and reference.n_iter > 3
    assert (result.n_iter, result.converged) == (reference.n_iter, reference.converged)
    for name in ("weights", "means", "covariances"):
        error = relative_error(getattr(result, name), getattr(reference, name))
        assert error <= TOL, f"{name}: relative error {error:.2e}"
    assert relative_error(result.history, reference.history) <= TOL
    assert len(cluster_run["seconds"]) == result.n_iter + 1    # one graph per E-step


def test_map_reduce_statistics_against_scipy(video, cluster_run):
    """The summed chunk statistics equal those of responsibilities computed with scipy."""
    _, X = video
    weights, means, covariances = cluster_run["start"]
    Z = (X - cluster_run["center"]) / cluster_run["scale"]
    log_dens = np.column_stack([multivariate_normal(m, c).logpdf(Z)
                                for m, c in zip(means, covariances)]) + np.log(weights)
    log_lik = logsumexp(log_dens, axis=1)
    resp = np.exp(log_dens - log_lik[:, None])
    stats = cluster_run["stats"]
    assert stats.n == len(X)
    assert relative_error(stats.nk, resp.sum(axis=0)) <= TOL
    assert relative_error(stats.sum_z, resp.T @ Z) <= TOL
    assert relative_error(stats.sum_zz, np.einsum("ik,id,ie->kde", resp, Z, Z)) <= TOL
    assert abs(stats.log_likelihood - log_lik.sum()) <= TOL * abs(log_lik.sum())


def test_cluster_ran_two_worker_processes_on_localhost(cluster_run):
    workers = cluster_run["workers"]
    assert len(workers) == 2 and len(set(workers.values())) == 2
    assert os.getpid() not in workers.values()          # processes, not threads
    assert cluster_run["hosts"] == {"127.0.0.1"}


def test_no_worker_outlives_the_cluster(cluster_run):
    for address, pid in cluster_run["workers"].items():
        assert not alive(pid), f"worker {address} (pid {pid}) still running"
    leftover = [p for p in cluster_run["after"] if alive(p.pid)
                and "resource_tracker" not in " ".join(p.cmdline())]
    assert not leftover, [" ".join(p.cmdline()) for p in leftover]
