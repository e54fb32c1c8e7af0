"""ffcv_ops_example: a plugin of ffcv operations (``ChannelShuffle``).

Installed, it registers its operations under the ``ffcv.ops`` entry points, so that a
pipeline given as data names them like the built-ins::

    pipeline_from_data(["SimpleRGBImageDecoder", {"op": "ChannelShuffle", "p": 0.5}])
"""
from .__about__ import __version__
from .channel_shuffle import ChannelShuffle

__all__ = ['ChannelShuffle', '__version__']
