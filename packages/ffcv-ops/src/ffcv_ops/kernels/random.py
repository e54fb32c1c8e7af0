"""Counter-based randomness: every draw is a pure function of (seed, sample index, k).

The loader gives each random operation a 64-bit ``seed`` per epoch (from the loader's
seed, the epoch, the field and the operation's position); an operation derives a key per
sample with ``sample_key(seed, index)`` and its k-th uniform number with
``uniform(key, k)``. No generator state is shared between threads, so results do not depend
on how samples are spread over worker threads, and a resumed epoch draws the same numbers.
"""
import hashlib

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
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
    return mix64(np.uint64(seed) ^ mix64(np.uint64(index) + _GOLDEN))


@njit(nogil=True, cache=True, inline='always')
def uniform(key, k):
    """The k-th uniform float in [0, 1) of a sample's key."""
    return np.float64(mix64(np.uint64(key) + np.uint64(k + 1) * _GOLDEN) >> _S11) * (1.0 / 9007199254740992.0)


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
