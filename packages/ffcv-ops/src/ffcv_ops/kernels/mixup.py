"""Mixup (Zhang et al., 2018): each sample of a batch blended with the one before it."""
import numpy as np
from numba import njit

from .random import beta_variate, sample_key


@njit(nogil=True, cache=True)
def mixup_lambdas(indices, seed, alpha, same_lambda, out):
    """``out[i]``: the weight of sample ``indices[i]`` in its blend, drawn from
    Beta(``alpha``, ``alpha``) with the key of (``seed``, ``indices[i]``); with
    ``same_lambda`` every row gets the draw of the batch's last sample, ``indices[-1]``."""
    n = indices.shape[0]
    if n == 0:
        return
    if same_lambda:
        lam, _ = beta_variate(sample_key(seed, indices[n - 1]), 0, alpha, alpha)
        for i in range(n):
            out[i] = lam
        return
    for i in range(n):
        lam, _ = beta_variate(sample_key(seed, indices[i]), 0, alpha, alpha)
        out[i] = lam


@njit(nogil=True, cache=True)
def mixup_rows(rows, indices, seed, alpha, same_lambda, out):
    """``out[i] = lam_i * rows[i] + (1 - lam_i) * rows[i - 1]`` (row 0 with the last row),
    computed in float64 and stored in ``out``'s type (integers truncated toward zero).

    ``rows`` and ``out`` are ``(n, values per sample)``: one image per row."""
    n = rows.shape[0]
    lams = np.empty(n, np.float64)
    mixup_lambdas(indices, seed, alpha, same_lambda, lams)
    for i in range(n):
        j = i - 1 if i > 0 else n - 1
        lam = lams[i]
        rest = 1.0 - lam
        a = rows[i]
        b = rows[j]
        o = out[i]
        for k in range(a.shape[0]):
            o[k] = lam * a[k] + rest * b[k]


@njit(nogil=True, cache=True)
def mixup_label_rows(labels, indices, seed, alpha, same_lambda, out):
    """``out[i] = (labels[i, 0], labels[i - 1, 0], lam_i)``: the labels ``mixup_rows``
    blends and the weight of the first, with the same pairing and draws."""
    n = labels.shape[0]
    lams = np.empty(n, np.float64)
    mixup_lambdas(indices, seed, alpha, same_lambda, lams)
    for i in range(n):
        j = i - 1 if i > 0 else n - 1
        out[i, 0] = labels[i, 0]
        out[i, 1] = labels[j, 0]
        out[i, 2] = lams[i]
