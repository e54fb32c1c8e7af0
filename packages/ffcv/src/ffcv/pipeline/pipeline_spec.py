"""FFCV 1.0's ``ffcv.pipeline.pipeline_spec``."""
from ffcv_ops import PipelineSpec

__all__ = ['PipelineSpec']
