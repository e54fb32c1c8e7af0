"""Image folders on local disk: end to end, JPEG kept as is, bad files in both modes."""
import argparse
import os
import shutil

import cv2
import numpy as np
import pytest
from ffcv_convert import ConversionError, ImageFolder, convert, decode_image, work_dir_for
from ffcv_convert.cli import add_commands
from ffcv_convert.testing import encode_jpeg_file, stored_bytes, truncate_file, write_image_folder
from ffcv_format import Reader, verify
from ffcv_format.testing import mean_abs_diff


def _decode(path):
    with open(path, 'rb') as f:
        return decode_image(f.read())


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('folder')
    entries = write_image_folder(root, 30, classes=3)
    return root, entries


def test_listing_follows_imagefolder_rules(folder, tmp_path):
    root, entries = folder
    source = ImageFolder(root)
    assert source.classes == ['class_a', 'class_b', 'class_c']
    assert len(source) == len(entries)
    assert [source.where(i) for i in range(len(source))] == [p for p, _ in entries]
    (tmp_path / 'x' / 'cls').mkdir(parents=True)
    (tmp_path / 'x' / 'top.jpg').write_bytes(b'ignored: not in a class folder')
    (tmp_path / 'x' / 'cls' / 'notes.txt').write_text('ignored: not an image')
    (tmp_path / 'x' / 'cls' / '.hidden.jpg').write_bytes(b'ignored: hidden')
    with pytest.raises(FileNotFoundError, match='has no images in class folders'):
        len(ImageFolder(tmp_path / 'x'))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        len(ImageFolder(tmp_path / 'missing'))


def test_raw_pixels_and_labels_match_the_files(folder, tmp_path):
    root, entries = folder
    result = convert(root, tmp_path / 'raw.beton', image_options={'write_mode': 'raw'},
                     part_size=7, progress=False, workers=2)
    assert result.num_samples == len(entries) and result.num_parts == 5 and result.skipped == []
    reader = Reader(tmp_path / 'raw.beton')
    assert reader.field_names == ['image', 'label']
    for i, (path, label) in enumerate(entries):
        image, stored_label = reader[i]
        assert stored_label == label
        np.testing.assert_array_equal(image, _decode(path))
    verify(tmp_path / 'raw.beton')
    assert not os.path.exists(work_dir_for(tmp_path / 'raw.beton'))


def test_keep_jpeg_stores_the_file_bytes_unchanged(folder, tmp_path):
    root, entries = folder
    convert(root, tmp_path / 'kept.beton', image_options={'write_mode': 'jpg', 'keep_jpeg': True},
            progress=False)
    reader = Reader(tmp_path / 'kept.beton')
    for i, (path, label) in enumerate(entries):
        row = reader.metadata[i]['image']
        with open(path, 'rb') as f:
            data = f.read()
        assert reader.allocation_size(int(row['data_ptr'])) == len(data)
        assert bytes(reader.read(int(row['data_ptr']), len(data))) == data
        image, stored_label = reader[i]
        assert image.shape == _decode(path).shape and stored_label == label


def test_max_resolution_reencodes(folder, tmp_path):
    root, entries = folder
    convert(root, tmp_path / 'small.beton', image_options={'max_resolution': 32, 'keep_jpeg': True},
            progress=False)
    reader = Reader(tmp_path / 'small.beton')
    for i, (path, _) in enumerate(entries):
        original = _decode(path)
        image, _ = reader[i]
        assert max(image.shape[:2]) == 32
        reference = cv2.resize(original, image.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert mean_abs_diff(image, reference) < 6
        assert reader.metadata[i]['image']['mode'] == 0  # JPEG


def test_grayscale_png_and_rotated_jpeg(tmp_path):
    from PIL import Image
    root = tmp_path / 'mixed'
    (root / 'a').mkdir(parents=True)
    gray = (np.arange(40 * 30, dtype=np.uint32).reshape(30, 40) % 251).astype(np.uint8)
    cv2.imwrite(str(root / 'a' / '1_gray.png'), gray)
    color = np.zeros((20, 50, 3), np.uint8)
    color[:, :25] = (250, 10, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers turn it 90 degrees clockwise
    Image.fromarray(color).save(root / 'a' / '2_rotated.jpg', quality=95, exif=exif)
    convert(root, tmp_path / 'mixed.beton', image_options={'write_mode': 'png', 'keep_jpeg': True},
            progress=False)
    reader = Reader(tmp_path / 'mixed.beton')
    image, _ = reader[0]
    np.testing.assert_array_equal(image, np.repeat(gray[:, :, None], 3, axis=2))
    rotated, _ = reader[1]
    assert rotated.shape == (50, 20, 3)  # turned as EXIF says, not stored sideways
    assert rotated[:5, :, 0].mean() > 200 and rotated[-5:, :, 0].mean() < 50


@pytest.fixture()
def broken_folder(tmp_path):
    root = tmp_path / 'broken'
    entries = write_image_folder(root, 12, classes=2, seed=3)
    corrupt = entries[3][0]
    truncate_file(corrupt, 0.5)
    garbage = os.path.join(os.path.dirname(entries[5][0]), 'img_00005b.jpg')
    with open(garbage, 'wb') as f:
        f.write(b'this is not a JPEG at all' * 10)
    missing = os.path.join(os.path.dirname(entries[0][0]), 'img_00008b.jpg')
    os.symlink(os.path.join(root, 'nowhere.jpg'), missing)  # listed, but the file is gone
    source = ImageFolder(root)
    names = [source.where(i) for i in range(len(source))]
    return root, names, {corrupt, garbage, missing}


def test_bad_files_stop_the_conversion_by_default(broken_folder, tmp_path):
    root, names, bad = broken_folder
    dst = tmp_path / 'out.beton'
    with pytest.raises(ConversionError) as error:
        convert(root, dst, part_size=4, progress=False)
    message = str(error.value)
    first_bad = next(n for n in names if n in bad)
    assert first_bad in message and '--skip-bad' in message
    assert ('file not found' in message) or ('truncated' in message) or ('not a decodable' in message)
    assert not dst.exists()
    # the parts before the bad file are kept for a resume (none here: the work folder is gone)
    assert names.index(first_bad) < 4 and not os.path.exists(work_dir_for(dst))
    with pytest.raises(ConversionError):
        convert(root, dst, part_size=1, progress=False)
    kept = [n for n in os.listdir(work_dir_for(dst)) if n.endswith('.beton')]
    assert len(kept) == names.index(first_bad)


def test_bad_files_are_skipped_and_reported_with_the_flag(broken_folder, tmp_path):
    root, names, bad = broken_folder
    dst = tmp_path / 'out.beton'
    report = tmp_path / 'bad.txt'
    result = convert(root, dst, part_size=4, on_error='skip', skipped_report=report,
                     image_options={'write_mode': 'raw'}, progress=False)
    assert {where for where, _ in result.skipped} == bad
    reasons = dict(result.skipped)
    assert any('file not found' in r for r in reasons.values())
    assert any('truncated JPEG' in r for r in reasons.values())
    assert any('not a decodable image' in r for r in reasons.values())
    lines = [line.split('\t') for line in report.read_text().splitlines() if not line.startswith('#')]
    assert {line[0] for line in lines} == bad
    good = [n for n in names if n not in bad]
    reader = Reader(dst)
    assert reader.num_samples == len(good) == result.num_samples
    for i, path in enumerate(good):
        np.testing.assert_array_equal(reader[i][0], _decode(path))
    verify(dst)


def test_resume_after_a_stop_on_a_bad_file(broken_folder, tmp_path):
    root, names, bad = broken_folder
    dst = tmp_path / 'out.beton'
    with pytest.raises(ConversionError):
        convert(root, dst, part_size=2, progress=False)
    done_before = len([n for n in os.listdir(work_dir_for(dst)) if n.endswith('.beton')])
    assert done_before >= 1
    result = convert(root, dst, part_size=2, on_error='skip', progress=False)
    assert result.parts_reused == done_before
    assert result.num_samples == len(names) - len(bad)


def test_changed_settings_are_refused_on_resume(broken_folder, tmp_path):
    root, _, _ = broken_folder
    dst = tmp_path / 'out.beton'
    with pytest.raises(ConversionError):
        convert(root, dst, part_size=2, progress=False)
    with pytest.raises(ConversionError, match='other settings.*max_resolution'):
        convert(root, dst, part_size=2, image_options={'max_resolution': 16}, progress=False)
    result = convert(root, dst, part_size=2, image_options={'max_resolution': 16}, restart=True,
                     on_error='skip', progress=False)
    assert result.parts_reused == 0


def test_unknown_record_keys_are_refused_before_starting(folder, tmp_path):
    root, _ = folder
    with pytest.raises(ValueError, match=r"field 'extra' takes 'nothere', which ImageFolder.* does not have; "
                                         r"its records have 'image', 'label', 'class', 'path'"):
        convert(root, tmp_path / 'x.beton', fields='image,label,extra=nothere', progress=False)
    assert not os.path.exists(work_dir_for(tmp_path / 'x.beton'))


def test_destination_is_never_replaced_without_overwrite(folder, tmp_path):
    root, entries = folder
    dst = tmp_path / 'out.beton'
    dst.write_bytes(b'precious')
    with pytest.raises(FileExistsError, match='overwrite'):
        convert(root, dst, progress=False)
    assert dst.read_bytes() == b'precious'
    convert(root, dst, overwrite=True, progress=False)
    assert Reader(dst).num_samples == len(entries)


def test_writes_are_deterministic_whatever_the_worker_count(folder, tmp_path):
    root, _ = folder
    options = {'write_mode': 'proportion', 'max_resolution': 48}
    convert(root, tmp_path / 'a.beton', image_options=options, workers=1, io_workers=1, progress=False)
    convert(root, tmp_path / 'b.beton', image_options=options, workers=2, part_size=3, progress=False)
    assert (tmp_path / 'a.beton').read_bytes() == (tmp_path / 'b.beton').read_bytes()
    modes = Reader(tmp_path / 'a.beton').metadata['image']['mode']
    assert 0 < (modes == 0).sum() < modes.size  # some JPEG, some raw


def test_single_image_field_jpeg_from_array_dataset_matches_plain_writer(tmp_path):
    from ffcv_format import DatasetWriter, IntField, RGBImageField
    rng = np.random.default_rng(1)
    from ffcv_format.testing import photo_like_image
    samples = [(photo_like_image(rng, 30 + k, 50), k) for k in range(10)]
    fields = {'image': RGBImageField(write_mode='jpg', max_resolution=40), 'label': IntField()}
    convert(samples, tmp_path / 'c.beton', fields=fields, progress=False)
    DatasetWriter(tmp_path / 'w.beton', fields, num_workers=1, progress=False).from_indexed_dataset(samples)
    a, b = Reader(tmp_path / 'c.beton'), Reader(tmp_path / 'w.beton')
    for i in range(10):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        assert a[i][1] == b[i][1] == i


def test_jpeg_bytes_are_accepted_as_values(tmp_path):
    rng = np.random.default_rng(2)
    from ffcv_format import IntField, RGBImageField
    from ffcv_format.testing import photo_like_image
    files = [encode_jpeg_file(photo_like_image(rng, 24, 36)) for _ in range(4)]
    convert([(data, k) for k, data in enumerate(files)], tmp_path / 'b.beton',
            fields={'image': RGBImageField(write_mode='raw'), 'label': IntField()}, progress=False)
    reader = Reader(tmp_path / 'b.beton')
    for k, data in enumerate(files):
        np.testing.assert_array_equal(reader[k][0], decode_image(data))


# ------------------------------------------------------------ a class folder that cannot be read
# The tests run as root, for whom `chmod 000` changes nothing; these make `class_b` a class
# entry that no one can list: a symbolic link to a missing target, a FIFO, a symbolic link
# that points to itself (ELOOP). (tests/test_remote.py has listings that fail over S3/HTTP.)

BAD_CLASS_KINDS = {
    'broken-link': ("is a broken symbolic link (to {target!r}), not a folder", lambda path, target:
                    os.symlink(target, path)),
    'fifo': ("is a FIFO, not a folder", lambda path, target: os.mkfifo(path)),
    'link-loop': ("folder cannot be listed (OSError: Too many levels of symbolic links)",
                  lambda path, target: os.symlink(path, path)),
}


@pytest.fixture(params=sorted(BAD_CLASS_KINDS))
def bad_class_folder(tmp_path, request):
    """``root`` with classes a, b, c, d, where ``class_b`` cannot be read; returns (root, the
    entries of the readable classes with their labels, the folder, the expected reason)."""
    root = tmp_path / 'bad-class'
    entries = write_image_folder(root, 16, classes=4, seed=5)
    assert {label for _, label in entries} == {0, 1, 2, 3}
    bad = root / 'class_b'
    shutil.rmtree(bad)
    reason, make = BAD_CLASS_KINDS[request.param]
    target = str(tmp_path / 'was-class-b')
    make(str(bad), target)
    (root / 'README.txt').write_text('a file directly under root: not a class, ignored')
    good = [(path, label) for path, label in entries if label != 1]
    return root, good, str(bad), reason.format(target=target) + " (class 'class_b', label 1)"


def test_an_unreadable_class_folder_stops_before_anything_is_written(bad_class_folder, tmp_path):
    root, _, bad, reason = bad_class_folder
    dst = tmp_path / 'out.beton'
    with pytest.raises(ConversionError) as error:
        convert(root, dst, part_size=3, progress=False)
    message = str(error.value)
    assert message.startswith(f"cannot read the folder {bad}: {reason}. ")
    assert "on_error='skip' (--skip-bad)" in message and 'keeps its label' in message
    assert not dst.exists() and not os.path.exists(work_dir_for(dst))
    assert not os.path.exists(str(dst) + '.skipped.txt')


def test_a_skipped_class_folder_keeps_its_label_and_is_reported(bad_class_folder, tmp_path):
    root, good, bad, reason = bad_class_folder
    source = ImageFolder(root)
    assert source.classes == ['class_a', 'class_b', 'class_c', 'class_d']
    assert source.unreadable_folders() == [(bad, reason)]
    assert source.describe()['unreadable_folders'] == [bad] and source.describe()['classes'] == 4
    dst = tmp_path / 'out.beton'
    result = convert(root, dst, on_error='skip', part_size=5, image_options={'keep_jpeg': True},
                     progress=False)
    assert result.skipped == [] and result.skipped_folders == [(bad, reason)]
    assert result.num_samples == len(good) == 12
    reader = Reader(dst)
    # class_c and class_d keep labels 2 and 3: nothing is renumbered
    assert [int(x) for x in reader.metadata['label']] == [0] * 4 + [2] * 4 + [3] * 4
    for k, (path, label) in enumerate(good):
        with open(path, 'rb') as f:
            assert stored_bytes(reader, k) == f.read()
        assert reader[k][1] == label
    assert result.skipped_report == str(dst) + '.skipped.txt'
    assert open(result.skipped_report).read().splitlines() == [
        f"# samples skipped while converting into {dst}: 0",
        "# folders skipped (they could not be listed; their classes keep their labels): 1",
        "# where\treason",
        f"{bad}\t{reason}"]
    verify(dst)


def test_skipped_folders_and_files_share_the_report(tmp_path):
    root = tmp_path / 'both'
    entries = write_image_folder(root, 9, classes=3, seed=6)
    os.symlink(root / 'gone', root / 'class_0_first')  # sorts before class_a: label 0
    truncate_file(entries[4][0], 0.5)  # a class_b file
    result = convert(root, tmp_path / 'out.beton', on_error='skip', image_options={'write_mode': 'raw'},
                     progress=False)
    folder_reason = f"is a broken symbolic link (to {str(root / 'gone')!r}), not a folder " \
                    "(class 'class_0_first', label 0)"
    assert result.skipped_folders == [(str(root / 'class_0_first'), folder_reason)]
    assert [w for w, _ in result.skipped] == [entries[4][0]] and 'truncated JPEG' in result.skipped[0][1]
    kept = [(path, label) for k, (path, label) in enumerate(entries) if k != 4]
    reader = Reader(tmp_path / 'out.beton')
    assert [int(x) for x in reader.metadata['label']] == [label + 1 for _, label in kept] == \
        [1, 1, 1, 2, 2, 3, 3, 3]
    lines = open(result.skipped_report).read().splitlines()
    assert lines[:2] == [f"# samples skipped while converting into {tmp_path / 'out.beton'}: 1",
                         "# folders skipped (they could not be listed; their classes keep their labels): 1"]
    assert lines[3] == f"{root / 'class_0_first'}\t{folder_reason}"
    assert lines[4].startswith(f"{entries[4][0]}\ttruncated JPEG") and len(lines) == 5


def test_the_command_line_names_an_unreadable_folder(tmp_path, capsys):
    root = tmp_path / 'cli'
    write_image_folder(root, 6, classes=3, seed=8)
    shutil.rmtree(root / 'class_c')
    os.mkfifo(root / 'class_c')
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    dst = tmp_path / 'out.beton'
    args = parser.parse_args(['convert', str(root), str(dst), '-q'])
    with pytest.raises(ConversionError, match=rf"cannot read the folder {root / 'class_c'}: is a FIFO"):
        args.run(args)
    assert not dst.exists()
    args = parser.parse_args(['convert', str(root), str(dst), '-q', '--skip-bad'])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert '4 samples' in out and f'0 skipped, 1 unreadable folder(s) (see {dst}.skipped.txt)' in out
    assert [int(x) for x in Reader(dst).metadata['label']] == [0, 0, 1, 1]
    assert f"{root / 'class_c'}\tis a FIFO, not a folder (class 'class_c', label 2)" in \
        (tmp_path / 'out.beton.skipped.txt').read_text()


def test_no_readable_class_folder_at_all_names_the_unreadable_ones(tmp_path):
    root = tmp_path / 'none'
    root.mkdir()
    os.symlink(root / 'gone', root / 'only_class')
    with pytest.raises(FileNotFoundError, match=r"has no images in class folders .*; 1 folder\(s\) could not "
                                                r"be read: .*only_class: is a broken symbolic link"):
        convert(root, tmp_path / 'x.beton', on_error='skip', progress=False)


def test_a_readable_folder_is_described_as_before(folder):
    # no 'unreadable_folders' key: conversions started before this change still resume
    root, _ = folder
    assert sorted(ImageFolder(root).describe()) == ['classes', 'items', 'kind', 'listing_sha256', 'url']
    assert ImageFolder(root).unreadable_folders() == []


def test_an_empty_class_folder_keeps_its_label(folder, tmp_path):
    # every folder under the root is a class, as in torchvision's ImageFolder: emptying one
    # must not renumber the classes after it
    root, entries = folder
    copy = tmp_path / 'copy'
    shutil.copytree(root, copy)
    shutil.rmtree(copy / 'class_b')
    (copy / 'class_b').mkdir()
    (copy / 'class_b' / 'readme.txt').write_text('no images here')
    source = ImageFolder(copy)
    assert source.classes == ['class_a', 'class_b', 'class_c']
    result = convert(copy, tmp_path / 'out.beton', image_options={'write_mode': 'raw'}, progress=False, workers=1)
    labels = [label for _, label in Reader(tmp_path / 'out.beton')]
    expected = [label for path, label in entries if '/class_b/' not in path.replace(os.sep, '/')]
    assert labels == expected and 1 not in labels and 2 in labels
    assert result.num_samples == len(expected)
