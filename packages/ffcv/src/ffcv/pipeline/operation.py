"""FFCV 1.0's ``ffcv.pipeline.operation``."""
from ffcv_ops import AllocationQuery, Operation, State

__all__ = ['Operation', 'State', 'AllocationQuery']
