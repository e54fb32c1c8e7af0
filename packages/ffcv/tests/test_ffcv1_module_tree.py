"""FFCV 1.0's module tree and names import, and the helpers there work as FFCV 1.0 code uses them."""
import importlib
import os

import numpy as np
import pytest

#: FFCV 1.0.2's public modules and the names FFCV 1.0 code imports from them
MODULES = {
    'ffcv': ['Loader', 'DatasetWriter'],
    'ffcv.fields': ['Field', 'IntField', 'FloatField', 'BytesField', 'JSONField', 'NDArrayField',
                    'TorchTensorField', 'RGBImageField'],
    'ffcv.fields.base': ['Field', 'ARG_TYPE'],
    'ffcv.fields.basics': ['IntField', 'FloatField', 'BasicDecoder', 'IntDecoder', 'FloatDecoder'],
    'ffcv.fields.bytes': ['BytesField', 'BytesDecoder'],
    'ffcv.fields.json': ['JSONField'],
    'ffcv.fields.ndarray': ['NDArrayField', 'TorchTensorField', 'NDArrayDecoder', 'NDArrayArgsType'],
    'ffcv.fields.rgb_image': ['RGBImageField', 'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder',
                              'RandomResizedCropRGBImageDecoder', 'CenterCropRGBImageDecoder', 'IMAGE_MODES',
                              'encode_jpeg', 'resizer', 'get_random_crop', 'get_center_crop'],
    'ffcv.fields.decoders': ['IntDecoder', 'FloatDecoder', 'BytesDecoder', 'NDArrayDecoder',
                             'SimpleRGBImageDecoder', 'RandomResizedCropRGBImageDecoder',
                             'CenterCropRGBImageDecoder'],
    'ffcv.libffcv': ['memcpy', 'read'],
    'ffcv.loader': ['Loader', 'OrderOption'],
    'ffcv.loader.loader': ['Loader', 'OrderOption', 'ORDER_TYPE', 'ORDER_MAP'],
    'ffcv.loader.epoch_iterator': ['EpochIterator'],
    'ffcv.memory_allocator': ['MemoryAllocator'],
    'ffcv.memory_managers': ['OSCacheManager', 'ProcessCacheManager', 'MemoryManager', 'MemoryContext'],
    'ffcv.memory_managers.base': ['MemoryManager', 'MemoryContext'],
    'ffcv.memory_managers.common': ['BATCHES_TYPE'],
    'ffcv.memory_managers.os_cache': ['OSCacheManager', 'OSCacheContext'],
    'ffcv.memory_managers.process_cache': ['ProcessCacheManager', 'ProcessCacheContext'],
    'ffcv.memory_managers.process_cache.context': ['ProcessCacheContext'],
    'ffcv.memory_managers.process_cache.manager': ['ProcessCacheManager'],
    'ffcv.pipeline': ['Pipeline', 'PipelineSpec', 'Compiler'],
    'ffcv.pipeline.allocation_query': ['AllocationQuery'],
    'ffcv.pipeline.compiler': ['Compiler'],
    'ffcv.pipeline.operation': ['Operation'],
    'ffcv.pipeline.pipeline': ['Pipeline'],
    'ffcv.pipeline.pipeline_spec': ['PipelineSpec'],
    'ffcv.pipeline.state': ['State'],
    'ffcv.reader': ['Reader'],
    'ffcv.transforms': ['ToTensor', 'ToDevice', 'ToTorchImage', 'NormalizeImage', 'Convert', 'Squeeze', 'View',
                        'RandomResizedCrop', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout', 'ImageMixup',
                        'LabelMixup', 'MixupToOneHot', 'Poison', 'ReplaceLabel', 'ModuleWrapper',
                        'RandomBrightness', 'RandomContrast', 'RandomSaturation'],
    'ffcv.transforms.color_jitter': ['RandomBrightness', 'RandomContrast', 'RandomSaturation'],
    'ffcv.transforms.common': ['Squeeze'],
    'ffcv.transforms.cutout': ['Cutout'],
    'ffcv.transforms.flip': ['RandomHorizontalFlip'],
    'ffcv.transforms.mixup': ['ImageMixup', 'LabelMixup', 'MixupToOneHot'],
    'ffcv.transforms.module': ['ModuleWrapper'],
    'ffcv.transforms.normalize': ['NormalizeImage'],
    'ffcv.transforms.ops': ['ToTensor', 'ToDevice', 'ToTorchImage', 'Convert', 'View'],
    'ffcv.transforms.poisoning': ['Poison'],
    'ffcv.transforms.random_resized_crop': ['RandomResizedCrop'],
    'ffcv.transforms.replace_label': ['ReplaceLabel'],
    'ffcv.transforms.translate': ['RandomTranslate'],
    'ffcv.transforms.utils': [],
    'ffcv.transforms.utils.fast_crop': ['get_random_crop', 'get_center_crop'],
    'ffcv.traversal_order': ['Sequential', 'Random', 'QuasiRandom'],
    'ffcv.traversal_order.base': ['TraversalOrder'],
    'ffcv.traversal_order.quasi_random': ['QuasiRandom'],
    'ffcv.traversal_order.random': ['Random'],
    'ffcv.traversal_order.sequential': ['Sequential'],
    'ffcv.types': ['CURRENT_VERSION', 'HeaderType', 'ALLOC_TABLE_TYPE', 'FieldDescType', 'TYPE_ID_HANDLER',
                   'get_handlers', 'get_metadata_type'],
    'ffcv.utils': ['chunks', 'is_power_of_2', 'align_to_page', 'decode_null_terminated_string',
                   'cast_int_to_byte_ptr', 's_print'],
    'ffcv.writer': ['DatasetWriter'],
}


@pytest.mark.parametrize('module', sorted(MODULES))
def test_module_and_names_import(module):
    imported = importlib.import_module(module)
    missing = [name for name in MODULES[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


def test_the_same_objects_under_every_path():
    from ffcv.fields.decoders import SimpleRGBImageDecoder
    from ffcv.fields.rgb_image import SimpleRGBImageDecoder as from_rgb_image
    from ffcv.loader.loader import ORDER_MAP, OrderOption
    from ffcv.traversal_order import Random
    from ffcv_ops import SimpleRGBImageDecoder as from_ops
    assert SimpleRGBImageDecoder is from_rgb_image is from_ops
    assert ORDER_MAP[OrderOption.RANDOM] is Random


@pytest.mark.parametrize('dtype', [np.uint8, np.int32, np.int64, np.float32, np.float64])
def test_libffcv_memcpy(dtype):
    from ffcv.libffcv import memcpy
    source = np.random.default_rng(0).uniform(0, 255, (100, 99)).astype(dtype)
    destination = np.zeros_like(source)
    memcpy(source, destination)
    np.testing.assert_array_equal(destination, source)
    with pytest.raises(ValueError, match='differ in size'):
        memcpy(source, np.zeros(5, dtype))


def test_libffcv_read(tmp_path):
    from ffcv.libffcv import read
    path = tmp_path / 'f.bin'
    path.write_bytes(bytes(range(256)) * 4)
    destination = np.zeros(10, np.uint8)
    with open(path, 'rb') as f:
        assert read(f.fileno(), destination, 300) == 10
        assert destination.tolist() == list(range(44, 54))
        assert read(f.fileno(), destination, 1020) == 4
    assert destination[:4].tolist() == [252, 253, 254, 255]


def test_types_and_utils(tmp_path):
    from ffcv.fields import FloatField, IntField
    from ffcv.types import TYPE_ID_HANDLER, get_handlers, get_metadata_type
    from ffcv.utils import align_to_page, chunks, decode_null_terminated_string, is_power_of_2
    from ffcv.writer import DatasetWriter
    from ffcv.reader import Reader
    path = tmp_path / 'x.beton'
    DatasetWriter(path, {'index': IntField(), 'value': FloatField()}, progress=False).from_indexed_dataset(
        [(i, i * 1.5) for i in range(4)])
    reader = Reader(path)
    handlers = get_handlers(reader.field_descriptors)
    assert [type(h) for h in handlers] == [IntField, FloatField]
    assert get_metadata_type(handlers).names == ('f0', 'f1')
    assert TYPE_ID_HANDLER[255] is None and TYPE_ID_HANDLER[1] is IntField
    assert decode_null_terminated_string(reader.field_descriptors[1]['name']) == 'value'
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert is_power_of_2(8) and not is_power_of_2(12) and not is_power_of_2(0)
    assert align_to_page(5000, 4096) == 8192 and align_to_page(8192, 4096) == 8192


def test_get_crop_functions_follow_ffcv1s_rules():
    from ffcv.fields.rgb_image import get_center_crop, get_random_crop
    assert get_center_crop(100, 200, None, 0.875) == (6, 56, 87, 87)
    np.random.seed(0)
    for _ in range(50):
        top, left, h, w = get_random_crop(120, 90, np.array([0.08, 1.0]), np.array([3 / 4, 4 / 3]))
        assert 0 < h <= 120 and 0 < w <= 90 and top + h <= 120 and left + w <= 90


def test_no_module_of_the_tree_is_missing_from_this_list():
    import ffcv
    root = os.path.dirname(ffcv.__file__)
    found = set()
    for folder, _, files in os.walk(root):
        if os.path.relpath(folder, root).split(os.sep)[0] == 'demo':
            continue  # `ffcv demo`, this project's command: not a module of FFCV 1.0's tree
        for name in files:
            if name.endswith('.py') and name not in ('__main__.py', '__about__.py', 'cli.py'):
                relative = os.path.relpath(os.path.join(folder, name), root)[:-3].replace(os.sep, '.')
                found.add('ffcv' if relative == '__init__' else 'ffcv.' + relative.removesuffix('.__init__'))
    assert found - set(MODULES) == set()
