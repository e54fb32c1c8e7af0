"""Counter-based randomness: every draw is a pure function of (seed, sample index, k).

The loader gives each random operation a 64-bit ``seed`` per epoch (from the loader's
seed, the epoch, the field and the operation's position); an operation derives a key per
sample with ``sample_key(seed, index)`` and its k-th uniform number with
``uniform(key, k)``. No generator state is shared between threads, so results do not depend
on how samples are spread over worker threads, and a resumed epoch draws the same numbers.
"""
import hashlib
import math

import numpy as np
from numba import njit

#: the step between the words of one key's stream (2^64 / golden ratio, splitmix64's increment);
#: kernels drawing many words from one key walk it: ``mix64(key + (k + 1) * GOLDEN)``
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_MASK64 = (1 << 64) - 1
# mixed into named streams' seeds, so that they never equal a (pipeline, position) seed
_STREAM_SALT = 0x5EED_57AE


@njit(nogil=True, cache=True, inline='always')
def mix64(z):
    """splitmix64's finaliser: a bijective scramble of a uint64."""
    z = np.uint64(z)
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(nogil=True, cache=True, inline='always')
def sample_key(seed, index):
    """The random key of one sample for one operation at one epoch."""
    return mix64(np.uint64(seed) ^ mix64(np.uint64(index) + GOLDEN))


@njit(nogil=True, cache=True, inline='always')
def uniform(key, k):
    """The k-th uniform float in [0, 1) of a sample's key."""
    return np.float64(mix64(np.uint64(key) + np.uint64(k + 1) * GOLDEN) >> _S11) * (1.0 / 9007199254740992.0)


def mix64_py(z):
    """``mix64`` in plain Python integers (for deriving seeds outside compiled code)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def derive_seed(*parts):
    """A uint64 seed from integers (e.g. loader seed, epoch, field, operation position)."""
    z = 0x6A09E667F3BCC909
    for part in parts:
        z = mix64_py(z ^ mix64_py((int(part) + 0x9E3779B97F4A7C15) & _MASK64))
    return z


def stream_seed(seed, epoch, stream):
    """The seed of the named random ``stream`` at ``epoch``: operations that share a stream
    (``Operation.random_stream``) draw the same numbers for the same sample, in any pipeline
    of a loader (e.g. ``ImageMixup`` and ``LabelMixup`` pair the same samples)."""
    name = int.from_bytes(hashlib.blake2b(str(stream).encode('utf-8'), digest_size=8).digest(), 'little')
    return derive_seed(seed, epoch, _STREAM_SALT, name)


def sample_key_py(seed, index):
    return mix64_py((seed & _MASK64) ^ mix64_py((int(index) + 0x9E3779B97F4A7C15) & _MASK64))


def uniform_py(key, k):
    return (mix64_py((key + (k + 1) * 0x9E3779B97F4A7C15) & _MASK64) >> 11) * (1.0 / 9007199254740992.0)


# ------------------------------------------------------------ distributions
#
# Samplers built on ``uniform(key, k)``: each takes the counter ``k`` of its first draw and
# returns ``(value, next counter)``, so that several can draw from one sample's key in turn.
# They are compiled; Python calls them as they are.

_TWO_PI = 6.283185307179586
_THIRD = 1.0 / 3.0


@njit(nogil=True, cache=True)
def standard_normal(key, k):
    """A N(0, 1) number from uniforms ``k`` and ``k + 1`` of ``key`` (Box-Muller, cosine
    half); returns ``(value, k + 2)``."""
    u1 = 1.0 - uniform(key, k)          # in (0, 1]: its logarithm is finite
    u2 = uniform(key, k + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2), k + 2


@njit(nogil=True, cache=True)
def log_gamma_variate(key, k, shape):
    """The logarithm of a Gamma(``shape``, 1) number (``shape > 0``) drawn from uniforms
    ``k, k + 1, ...`` of ``key``; returns ``(log value, next counter)``.

    Marsaglia & Tsang (2000): a normal ``x`` and a uniform ``u`` per try (3 uniforms), about
    1.05 tries on average at shape 1, fewer above. Shapes below 1 use the boost
    Gamma(a) = Gamma(a + 1) * U^(1/a), one more uniform first. The result is a logarithm so
    that tiny shapes (whose draws underflow a float64) still give a usable value.
    """
    boost = 0.0
    a = float(shape)
    if a < 1.0:
        boost = math.log(1.0 - uniform(key, k)) / a
        k += 1
        a += 1.0
    d = a - _THIRD
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x, k = standard_normal(key, k)
        u = 1.0 - uniform(key, k)       # in (0, 1]
        k += 1
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return math.log(d * v) + boost, k


@njit(nogil=True, cache=True)
def beta_variate(key, k, a, b):
    """A Beta(``a``, ``b``) number (``a, b > 0``) in [0, 1] drawn from uniforms ``k, k + 1,
    ...`` of ``key``, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) drawn in that order;
    returns ``(value, next counter)``."""
    log_x, k = log_gamma_variate(key, k, a)
    log_y, k = log_gamma_variate(key, k, b)
    t = log_y - log_x                   # value = 1 / (1 + e^t), without overflow
    if t > 0.0:
        e = math.exp(-t)
        return e / (1.0 + e), k
    return 1.0 / (1.0 + math.exp(t)), k
