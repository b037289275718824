"""A compiled floor for one EM iteration: the fused block E-step of `gmm_core`, in numba.

Per block of rows, on every core (a pool of threads, as in `gmm_core`; the compiled blocks
release the GIL): the log-densities from the Cholesky factors,
the log-sum-exp, the responsibilities and the sufficient statistics N_k, sum_i p_ki z_i and
sum_i p_ki z_i z_i^T and the block's log-likelihood, while the block is in cache; the N x K
responsibilities are never stored. The block statistics are summed in a fixed order and the
M-step is `gmm_core.m_step_stats` (the same guarded M-step as `fit`), so the floor computes what
`gmm_core.fit` computes, only compiled: its time is what numpy's overheads leave on the table.

Benchmark only: numba is not a dependency of the book or of `gmm_core`. Import fails with
ImportError when numba is missing (`bench_fit` then skips the column and says why).
"""

from __future__ import annotations

import math

import numba
import numpy as np

import gmm_core

#: Rows per block of the compiled E-step (its per-block work space is B x K floats); the
#: fastest of 4096, 8192 and 16384 on the machine of `results.md`.
FLOOR_BLOCK = 8192
#: Up to this many features the kernel is scalar loops on every core; above, BLAS products.
SMALL_D = 8


LOG2E = 1.4426950408889634
LN2_HI = 0.6931471803691238       # ln 2 = LN2_HI + LN2_LO, LN2_HI with 21 zero trailing bits
LN2_LO = 1.9082149292705877e-10


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _exp(x, low, out, bits):
    """out = exp(max(x, low)) for x <= 0 and low >= -708, in loops the compiler vectorises.

    numba's math.exp calls the C library one value at a time (4x slower here). exp(x) =
    2^n exp(r) with n = round(x / ln 2) and |r| <= ln 2 / 2; exp(r) by its Taylor series to
    r^12 / 12! (relative error under 4e-16); 2^n built from its exponent bits.
    """
    m = x.shape[0]
    for i in range(m):
        v = max(x[i], low)
        n = math.floor(v * LOG2E + 0.5)
        r = v - n * LN2_HI - n * LN2_LO
        p = 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        out[i] = p * r + 1.0
        bits[i] = (np.int64(n) + 1023) << 52
    scale = bits.view(np.float64)
    for i in range(m):
        out[i] *= scale[i]


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _fused_block(Z, start, stop, rows, shift, log_norm, exp_floor):
    """Small d: E-step and statistics of the rows start:stop, compiled loops only, without the
    GIL (the caller runs blocks on a pool of threads, as gmm_core does).

    rows is (d, K d): column k d + j is column j of P_k / sqrt 2; shift (K d) is
    mu_k^T P_k / sqrt 2, so entry k d + j of z_i^T rows - shift is (P_k^T (z_i - mu_k))_j / sqrt 2
    and the sum of their squares over j is half the quadratic form of component k. Every inner
    loop runs along the rows of the block (contiguous), so that the compiler vectorises it.
    """
    d = Z.shape[1]
    k = log_norm.shape[0]
    m = stop - start
    nk = np.zeros(k)
    sum_z = np.zeros((k, d))
    sum_zz = np.zeros((k, d, d))
    zt = np.empty((d, m))                                   # the block, a row per feature
    for a in range(d):
        for i in range(m):
            zt[a, i] = Z[start + i, a]
    w = np.empty((k, m))                                    # w_ki, then p_ki
    t = np.empty(m)
    top = np.full(m, -np.inf)
    for j in range(k):
        for i in range(m):
            w[j, i] = log_norm[j]
        for e in range(d):
            c = j * d + e
            for i in range(m):
                t[i] = -shift[c]
            for a in range(d):
                r = rows[a, c]
                for i in range(m):
                    t[i] += zt[a, i] * r
            for i in range(m):
                w[j, i] -= t[i] * t[i]
        for i in range(m):
            top[i] = max(top[i], w[j, i])
    total = np.zeros(m)
    bits = np.empty(m, dtype=np.int64)
    for j in range(k):
        for i in range(m):
            t[i] = w[j, i] - top[i]
        _exp(t, exp_floor, w[j], bits)
        for i in range(m):
            total[i] += w[j, i]
    ll = 0.0
    for i in range(m):
        ll += top[i] + math.log(total[i])
        total[i] = 1.0 / total[i]
    for j in range(k):
        acc = 0.0
        for i in range(m):
            w[j, i] *= total[i]                             # p_ki
            acc += w[j, i]
        nk[j] = acc
        for a in range(d):
            for i in range(m):
                t[i] = w[j, i] * zt[a, i]
            acc = 0.0
            for i in range(m):
                acc += t[i]
            sum_z[j, a] = acc
            for c in range(a, d):
                acc = 0.0
                for i in range(m):
                    acc += t[i] * zt[c, i]
                sum_zz[j, a, c] = acc
                sum_zz[j, c, a] = acc
    return nk, sum_z, sum_zz, ll


@numba.njit(cache=True)
def _fused_blas(Z, rows, shift, log_norm, block, exp_floor):
    """Larger d: the products by BLAS (on every core itself), block after block; the rest
    (quadratic forms, log-sum-exp, responsibilities) in compiled loops."""
    n, d = Z.shape
    k = log_norm.shape[0]
    n_blocks = (n + block - 1) // block
    nk = np.zeros((n_blocks, k))
    sum_z = np.zeros((n_blocks, k, d))
    sum_zz = np.zeros((n_blocks, k, d, d))
    ll = np.zeros(n_blocks)
    for b in range(n_blocks):
        Zb = np.ascontiguousarray(Z[b * block:min(n, (b + 1) * block)])
        m = Zb.shape[0]
        Y = Zb @ rows                                       # (B, K d)
        p = np.empty((k, m))
        block_ll = 0.0
        for i in range(m):
            top = -np.inf
            for j in range(k):
                q = 0.0
                for a in range(d):
                    t = Y[i, j * d + a] - shift[j * d + a]
                    q += t * t
                p[j, i] = log_norm[j] - q
                top = max(top, p[j, i])
            total = 0.0
            for j in range(k):
                p[j, i] = math.exp(max(p[j, i] - top, exp_floor))
                total += p[j, i]
            block_ll += top + math.log(total)
            inv = 1.0 / total
            for j in range(k):
                p[j, i] *= inv
        ll[b] = block_ll
        sum_z[b] = p @ Zb
        W = np.empty_like(Zb)
        for j in range(k):
            nk[b, j] = p[j].sum()
            for i in range(m):
                for a in range(d):
                    W[i, a] = Zb[i, a] * p[j, i]
            sum_zz[b, j] = W.T @ Zb
    return nk, sum_z, sum_zz, ll


def _in_order(parts):
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def stats(Z, weights, means, covariances, block=FLOOR_BLOCK):
    """The `gmm_core.SuffStats` of all rows of Z (EM units), computed by the compiled kernel."""
    k, d = means.shape
    prec = gmm_core._precision_cholesky(covariances)                 # P_k = L_k^-T
    with np.errstate(divide="ignore"):
        log_norm = (np.log(weights) + np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
                    - 0.5 * d * math.log(2 * math.pi))
    half = prec * math.sqrt(0.5)
    rows = np.ascontiguousarray(half.transpose(1, 0, 2).reshape(d, k * d))
    shift = np.einsum("kd,kde->ke", means, half).reshape(k * d)
    n = Z.shape[0]
    if d > SMALL_D:
        nk, sum_z, sum_zz, ll = _fused_blas(Z, rows, shift, log_norm, block,
                                            gmm_core.EXP_FLOOR)
        return gmm_core.SuffStats(n, _in_order(nk), _in_order(sum_z), _in_order(sum_zz),
                                  float(_in_order(ll)))

    def one(start):
        stop = min(n, start + block)
        return gmm_core.SuffStats(stop - start, *_fused_block(
            Z, start, stop, rows, shift, log_norm, gmm_core.EXP_FLOOR))

    # gmm_core's pool of threads (the compiled blocks release the GIL) and its ordered sum
    return gmm_core._sum_in_order(gmm_core._map_in_order(one, range(0, n, block), None))


def fit(X, weights, means, covariances, n_iter, *, min_variance=gmm_core.MIN_VARIANCE):
    """`n_iter` EM iterations (n_iter M-steps, n_iter + 1 E-steps) from the given start.

    The data are whitened as `gmm_core.fit` does; returns the final log-likelihood in X's units.
    """
    center, scale = gmm_core.moments(X).scaling(True)
    Z = np.ascontiguousarray(gmm_core.to_em_units(X, center, scale))
    weights = np.asarray(weights, dtype=np.float64)
    means, covariances = gmm_core.whiten_params(means, covariances, center, scale)
    covariances = np.array(covariances)
    gmm_core.clip_covariances(covariances, min_variance=min_variance)
    log_jacobian = -X.shape[0] * float(np.sum(np.log(scale)))
    for _ in range(n_iter):
        s = stats(Z, weights, means, covariances)
        weights, means, covariances, _ = gmm_core.m_step_stats(s, means, covariances,
                                                               min_variance=min_variance)
    return stats(Z, weights, means, covariances).log_likelihood + log_jacobian


def warm_up():
    """Compile both paths of the kernel (small d and BLAS) once, outside any timing."""
    rng = np.random.default_rng(0)
    for d in (2, 9):
        X = rng.normal(size=(300, d))
        start = gmm_core.init_random(X, 2, rng)
        fit(X, *start, 1)
