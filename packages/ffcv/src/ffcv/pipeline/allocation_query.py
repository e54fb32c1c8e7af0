"""FFCV 1.0's ``ffcv.pipeline.allocation_query``."""
from ffcv_ops import AllocationQuery

__all__ = ['AllocationQuery']
