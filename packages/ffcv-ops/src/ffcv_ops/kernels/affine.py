"""Affine warps of uint8 images ``(height, width, channels)`` by inverse mapping, nearest
neighbour, the output the size of the input, and the random ``RandomAffine`` and
``RandomRotation`` of a batch built on them (in place, one scratch image per call).

Coordinates are torchvision's for tensors: pixel centres relative to the image centre
``((width - 1) / 2, (height - 1) / 2)``, x to the right, y down. The inverse matrix maps an
output pixel to the point it reads; that point is rounded half to even to a pixel
(``grid_sample``'s nearest mode), and points outside the image read ``fill``.
"""
import math

import numpy as np
from numba import njit

from .random import sample_key, uniform


@njit(nogil=True, cache=True)
def inverse_affine_matrix(center_x, center_y, angle, translate_x, translate_y, scale, shear_x, shear_y, out):
    """``out[:6]``: the inverse of the map "about (``center_x``, ``center_y``): shear
    (``shear_x`` along x then ``shear_y`` along y, degrees), scale, rotate by ``angle``
    degrees (clockwise on screen, y pointing down), then translate" as a row-major 2x3
    matrix from output to input points (centred coordinates)."""
    rotation = math.radians(angle)
    shear_x_rad = math.radians(shear_x)
    shear_y_rad = math.radians(shear_y)
    # forward linear part [[a, b], [c, d]] = rotation * shear_y * shear_x (before scaling)
    a = math.cos(rotation - shear_y_rad) / math.cos(shear_y_rad)
    b = -(a * math.tan(shear_x_rad) + math.sin(rotation))
    c = math.sin(rotation - shear_y_rad) / math.cos(shear_y_rad)
    d = math.cos(rotation) - c * math.tan(shear_x_rad)
    # its inverse (determinant 1) divided by the scale, then the translations undone about the centre
    out[0] = d / scale
    out[1] = -b / scale
    out[3] = -c / scale
    out[4] = a / scale
    moved_x = center_x + translate_x
    moved_y = center_y + translate_y
    out[2] = center_x - out[0] * moved_x - out[1] * moved_y
    out[5] = center_y - out[3] * moved_x - out[4] * moved_y


@njit(nogil=True, cache=True)
def warp_nearest(source, out, matrix, fill):
    """``out[y, x] = source[round(sy), round(sx)]`` where ``(sx, sy) = matrix @ (x, y, 1)``
    in centred coordinates, or ``fill`` where that pixel is outside ``source``."""
    height, width, channels = source.shape
    half_width = (width - 1) * 0.5
    half_height = (height - 1) * 0.5
    for y in range(height):
        yc = y - half_height
        row_x = matrix[1] * yc + matrix[2]
        row_y = matrix[4] * yc + matrix[5]
        for x in range(width):
            xc = x - half_width
            source_x = np.rint(matrix[0] * xc + row_x + half_width)
            source_y = np.rint(matrix[3] * xc + row_y + half_height)
            if 0.0 <= source_x <= width - 1 and 0.0 <= source_y <= height - 1:
                sx = int(source_x)
                sy = int(source_y)
                for c in range(channels):
                    out[y, x, c] = source[sy, sx, c]
            else:
                for c in range(channels):
                    out[y, x, c] = fill[c]


@njit(nogil=True, cache=True)
def warp_inplace(image, scratch, matrix, fill):
    """``warp_nearest`` of ``image`` into itself (through ``scratch``, an image of its shape)."""
    scratch[:] = image
    warp_nearest(scratch, image, matrix, fill)


@njit(nogil=True, cache=True)
def affine_draws(key, width, height, degrees, translate, scales, shears, out):
    """One sample's RandomAffine parameters from its ``key``, into ``out``:
    ``(angle, translate_x, translate_y, scale, shear_x, shear_y)``.

    Draw k is uniform ``u_k``. Angle: ``degrees[0] + (degrees[1] - degrees[0]) * u_0``;
    translations: ``rint(m * (2 u - 1))`` with ``m = translate[0] * width`` (draw 1) and
    ``translate[1] * height`` (draw 2), 0 when ``translate[0] < 0`` (none asked); scale
    from ``scales`` (draw 3); shears from ``shears[0:2]`` (draw 4) and ``shears[2:4]``
    (draw 5), as the angle.
    """
    out[0] = degrees[0] + (degrees[1] - degrees[0]) * uniform(key, 0)
    if translate[0] >= 0.0:
        largest_x = translate[0] * width
        largest_y = translate[1] * height
        out[1] = np.rint(-largest_x + 2.0 * largest_x * uniform(key, 1))
        out[2] = np.rint(-largest_y + 2.0 * largest_y * uniform(key, 2))
    else:
        out[1] = 0.0
        out[2] = 0.0
    out[3] = scales[0] + (scales[1] - scales[0]) * uniform(key, 3)
    out[4] = shears[0] + (shears[1] - shears[0]) * uniform(key, 4)
    out[5] = shears[2] + (shears[3] - shears[2]) * uniform(key, 5)


@njit(nogil=True, cache=True)
def random_affine_inplace(images, indices, seed, degrees, translate, scales, shears, fill):
    """RandomAffine of ``images`` ``(n, height, width, channels)``, in place, about each
    image's centre (parameters from ``affine_draws``)."""
    n, height, width, channels = images.shape
    scratch = np.empty((height, width, channels), images.dtype)
    parameters = np.empty(6, np.float64)
    matrix = np.empty(6, np.float64)
    for i in range(n):
        affine_draws(sample_key(seed, indices[i]), width, height, degrees, translate, scales, shears,
                     parameters)
        inverse_affine_matrix(0.0, 0.0, parameters[0], parameters[1], parameters[2], parameters[3],
                              parameters[4], parameters[5], matrix)
        warp_inplace(images[i], scratch, matrix, fill)


@njit(nogil=True, cache=True)
def rotation_matrix(angle, out):
    """``out[:6]``: the inverse matrix of a rotation by ``angle`` degrees counter-clockwise on
    screen about the centre (torchvision's ``rotate``; its ``affine`` turns the other way)."""
    inverse_affine_matrix(0.0, 0.0, -angle, 0.0, 0.0, 1.0, 0.0, 0.0, out)


@njit(nogil=True, cache=True)
def random_rotation_inplace(images, indices, seed, degrees, fill):
    """RandomRotation of ``images``, in place: angle ``degrees[0] + (degrees[1] - degrees[0]) * u_0``."""
    n, height, width, channels = images.shape
    scratch = np.empty((height, width, channels), images.dtype)
    matrix = np.empty(6, np.float64)
    for i in range(n):
        angle = degrees[0] + (degrees[1] - degrees[0]) * uniform(sample_key(seed, indices[i]), 0)
        rotation_matrix(angle, matrix)
        warp_inplace(images[i], scratch, matrix, fill)
