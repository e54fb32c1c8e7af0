"""Map-style datasets and iterables, and the contact sheet / summary of the result."""
import numpy as np
import pytest
from ffcv_convert import ConversionError, IterableSource, convert
from ffcv_convert.inspection import contact_sheet, format_summary, summarize
from ffcv_convert.testing import count_tiles
from ffcv_format import FloatField, IntField, JSONField, Reader, RGBImageField
from ffcv_format.testing import photo_like_image


class Squares:
    """A map-style dataset of (image, label, score) items, like a torch Dataset."""

    def __init__(self, n, broken=()):
        self.n, self.broken = n, set(broken)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i in self.broken:
            raise OSError(f"image {i} could not be loaded")
        image = np.full((8 + i % 5, 10, 3), i * 9 % 256, np.uint8)
        return {'img': image, 'y': i % 4, 'score': i / 3}


FIELDS = {'image': RGBImageField(write_mode='raw'), 'label': IntField(), 'score': FloatField()}


def _to_fields(item):
    return item['img'], item['y'], item['score']


def test_map_style_dataset_with_item_to_fields_function(tmp_path):
    convert(Squares(37), tmp_path / 'd.beton', fields=FIELDS, to_fields=_to_fields, part_size=10,
            workers=2, progress=False)
    reader = Reader(tmp_path / 'd.beton')
    dataset = Squares(37)
    for i in range(37):
        image, label, score = reader[i]
        np.testing.assert_array_equal(image, dataset[i]['img'])
        assert (label, score) == (i % 4, i / 3)


def test_dataset_errors_stop_or_are_skipped(tmp_path):
    with pytest.raises(ConversionError, match=r"cannot read item 12: OSError: image 12 could not be loaded"):
        convert(Squares(20, broken=[12]), tmp_path / 'x.beton', fields=FIELDS, to_fields=_to_fields,
                progress=False)
    result = convert(Squares(20, broken=[12, 3]), tmp_path / 'y.beton', fields=FIELDS, to_fields=_to_fields,
                     on_error='skip', restart=True, progress=False)
    assert [w for w, _ in result.skipped] == ['item 3', 'item 12']
    labels = [Reader(tmp_path / 'y.beton')[i][1] for i in range(18)]
    assert labels == [i % 4 for i in range(20) if i not in (3, 12)]
    with pytest.raises(ValueError, match='needs fields='):
        convert(Squares(2), tmp_path / 'z.beton', progress=False)


def test_generator_with_unknown_length(tmp_path):
    def gen():
        for k in range(11):
            yield {'n': k, 'text': 'x' * k}, float(k)
    fields = {'doc': JSONField(), 'value': FloatField()}
    result = convert(IterableSource(gen), tmp_path / 'g.beton', fields=fields, part_size=4, progress=False)
    assert (result.num_samples, result.num_parts) == (11, 3)
    reader = Reader(tmp_path / 'g.beton')
    assert [reader[k] for k in range(11)] == [({'n': k, 'text': 'x' * k}, float(k)) for k in range(11)]


def test_wrong_number_of_values_names_the_item(tmp_path):
    with pytest.raises(ConversionError, match=r"item 0: gives 2 value\(s\) but there are 3 fields"):
        convert([(np.zeros((2, 2, 3), np.uint8), 1)], tmp_path / 'x.beton', fields=FIELDS, progress=False)


def test_summary_and_contact_sheet(tmp_path):
    rng = np.random.default_rng(0)
    samples = [(photo_like_image(rng, 30 + k, 40), k % 3) for k in range(23)]
    fields = {'image': RGBImageField(write_mode='jpg'), 'label': IntField()}
    convert(samples, tmp_path / 's.beton', fields=fields, progress=False)
    summary = summarize(tmp_path / 's.beton')
    assert summary['num_samples'] == 23 and summary['num_pages'] == 1
    image = summary['fields'][0]
    assert image['modes'] == {'jpeg': 23} and image['height']['min'] == 30 and image['height']['max'] == 52
    assert summary['fields'][1]['values'] == {'min': 0, 'max': 2, 'distinct': 3}
    assert 'jpeg 23' in format_summary(summary)
    for count in (1, 7, 9, 23):
        assert contact_sheet(tmp_path / 's.beton', tmp_path / f'{count}.png', count) == count
        assert count_tiles(tmp_path / f'{count}.png') == count
    assert contact_sheet(tmp_path / 's.beton', tmp_path / 'all.png', 100) == 23
    with pytest.raises(ValueError, match='is not an image field'):
        contact_sheet(tmp_path / 's.beton', tmp_path / 'x.png', 3, field='label')
