"""FFCV 1.0's ``ffcv.pipeline``."""
from ffcv_ops import AllocationQuery, Compiler, Operation, Pipeline, PipelineSpec, State

__all__ = ['Pipeline', 'PipelineSpec', 'Compiler', 'Operation', 'State', 'AllocationQuery']
