"""FFCV 1.0's ``ffcv.pipeline``."""
from ffcv_ops import AllocationQuery, Compiler, Operation, PipelineSpec, State

__all__ = ['PipelineSpec', 'Operation', 'State', 'AllocationQuery', 'Compiler']
