"""What changes over an ImageNet run: the training resolution (progressive resizing) and
the learning rate, both plain functions of where training is."""
import numpy as np


def train_resolution(epoch: int, epochs: int, min_res: int, max_res: int, res_step: int,
                     ramp_start: float, ramp_end: float) -> int:
    """The crop size of ``epoch`` (0-based): ``min_res`` up to ``ramp_start * epochs``, then
    growing linearly to reach ``max_res`` at ``ramp_end * epochs``, rounded down to a
    multiple of ``res_step`` (and never outside ``min_res..max_res``).

    >>> [train_resolution(e, 10, 160, 192, 16, 0.3, 0.7) for e in range(10)]
    [160, 160, 160, 160, 160, 176, 176, 192, 192, 192]
    """
    if min_res > max_res:
        raise ValueError(f"min_res ({min_res}) is larger than max_res ({max_res})")
    start, end = ramp_start * epochs, ramp_end * epochs
    if epoch <= start or end <= start:
        size = min_res if epoch < end else max_res
    else:
        size = np.interp(epoch, [start, end], [min_res, max_res])
    size = int(size) // res_step * res_step
    return int(min(max(size, min_res), max_res))


def learning_rate(step: int, steps_per_epoch: int, epochs: int, peak: float, warmup_epochs: float,
                  warmup_start: float, end: float) -> float:
    """Linear warm-up from ``warmup_start * peak`` to ``peak`` over ``warmup_epochs``, then
    linear decay to ``end * peak`` at the last step."""
    position = step / steps_per_epoch
    warmup = min(warmup_epochs, epochs)
    return float(peak * np.interp(position, [0, warmup, epochs], [warmup_start, 1.0, end]))
