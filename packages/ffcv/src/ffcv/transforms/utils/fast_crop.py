"""FFCV 1.0's ``ffcv.transforms.utils.fast_crop``: the crop functions of FFCV 1.0's crop
decoders (compiled, drawing from ``np.random``). FFCV 1.0's ``resize_crop`` (OpenCV called
from compiled code) is not provided; see docs/migrating-from-ffcv1.md."""
from ffcv_ops.adapter import get_center_crop, get_random_crop

__all__ = ['get_random_crop', 'get_center_crop']
