"""numba kernels, one module per thing they compute."""
