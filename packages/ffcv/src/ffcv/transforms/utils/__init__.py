"""FFCV 1.0's ``ffcv.transforms.utils``."""
