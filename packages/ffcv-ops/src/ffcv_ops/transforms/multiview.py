"""Several differently augmented views of each image, for self-supervised learning
(SimCLR, BYOL, DINO: two or more crops of one image, each with its own augmentations).

How it fits the pipeline model: a loader's output is one pipeline, and several pipelines
may read the same field (``PipelineSpec(source=...)``). Each view is therefore its own
pipeline reading the image field, with its own decoder (a random resized crop) and
transforms. Every pipeline gets its own seeds (they derive from the loader's seed, the
epoch, the pipeline's position and the operation's position), so two views built from
the same list of operations still draw different crops, flips, colours, for every sample;
and, as for any pipeline, the draws do not depend on the number of worker threads.

The cost: each view decodes the JPEG again (``benchmarks/transform_costs.py`` prints what
a decode costs next to the transforms). To decode once, use
``MultiViewRandomResizedCropRGBImageDecoder(output_size, views)`` instead: one pipeline whose
samples are ``(views, height, width, channels)``, every view a random resized crop of one
decode, and the transforms after it run on each view with draws of its own (the same list
of operations for every view). These pipelines remain the way to give views different
sizes or different lists of augmentations.

Example::

    from ffcv_ops import RandomResizedCropRGBImageDecoder, RandomHorizontalFlip, ToTensor, ToTorchImage

    def view(k):
        return [RandomResizedCropRGBImageDecoder((224, 224), scale=(0.08, 1.0)),
                RandomHorizontalFlip(), GaussianBlur(23, p=1.0 if k == 0 else 0.1),
                Solarization(0.0 if k == 0 else 0.2), ToTensor(), ToTorchImage()]

    pipelines = {'label': [IntDecoder(), ToTensor()], **multi_view_pipelines('image', view, views=2)}
    loader = Loader('train.beton', batch_size=256, pipelines=pipelines)
    for image, label, image_view1 in loader:   # the file's fields in order, then extra outputs
        ...
"""
from typing import Callable, Dict, List, Optional, Sequence

from ..decoders import Decoder
from ..operation import Operation
from ..pipeline import PipelineSpec

__all__ = ['multi_view_pipelines']


def multi_view_pipelines(source: str, make_view: Callable[[int], List[Operation]], views: int = 2,
                         names: Optional[Sequence[str]] = None) -> Dict[str, PipelineSpec]:
    """``{output name: PipelineSpec}`` for ``views`` augmented views of field ``source``.

    ``make_view(k)`` returns view ``k``'s operations (a decoder first, or none for the
    field's default decoder, then transforms); it is called once per view so that no
    operation object is shared between pipelines (each keeps its own state and buffers).
    ``names``: the output names, by default ``source`` for view 0 (the field's own
    output) and ``f"{source}_view{k}"`` for the others. The loader returns extra outputs
    after the file's fields, in the order of this mapping.

    >>> from ffcv_ops import RandomResizedCropRGBImageDecoder
    >>> specs = multi_view_pipelines('image', lambda k: [RandomResizedCropRGBImageDecoder((96, 96))])
    >>> list(specs)
    ['image', 'image_view1']
    """
    if not isinstance(source, str) or not source:
        raise ValueError(f"multi_view_pipelines source must be a field name, got {source!r}")
    if not callable(make_view):
        raise ValueError(f"multi_view_pipelines make_view must be a function of the view number returning "
                         f"a list of operations, got {make_view!r}")
    if isinstance(views, bool) or not isinstance(views, int) or views < 1:
        raise ValueError(f"multi_view_pipelines views must be a positive integer, got {views!r}")
    if names is None:
        names = [source] + [f"{source}_view{k}" for k in range(1, views)]
    names = list(names)
    if len(names) != views or len(set(names)) != views or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"multi_view_pipelines names must be {views} different non-empty strings "
                         f"(one per view), got {names!r}")
    specs = {}
    seen = set()
    for k, name in enumerate(names):
        operations = make_view(k)
        if isinstance(operations, Operation):
            operations = [operations]
        operations = list(operations)
        if not all(isinstance(op, Operation) for op in operations):
            raise ValueError(f"multi_view_pipelines make_view({k}) must return a list of operations, "
                             f"got {operations!r}")
        shared = [op for op in operations if id(op) in seen]
        if shared:
            raise ValueError(f"multi_view_pipelines make_view({k}) returned operations already used by an "
                             f"earlier view ({shared!r}): create new ones on every call")
        seen.update(id(op) for op in operations)
        decoder = operations[0] if operations and isinstance(operations[0], Decoder) else None
        transforms = operations[1:] if decoder is not None else operations
        specs[name] = PipelineSpec(source, decoder=decoder, transforms=transforms)
    return specs
