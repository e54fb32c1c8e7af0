"""Convert an ImageNet-style image folder (``ROOT/<class>/<image>``) into a .beton file.

    python write_imagenet.py /data/imagenet/train train.beton [--max-resolution 256] [--write-mode jpg]
    python write_imagenet.py /data/imagenet/val   val.beton   [--max-resolution 256]

Classes are the sorted names of the folders under ROOT, labelled 0, 1, ... (the labels
torchvision's ImageFolder gives, so train and val agree when both have every class folder).
Images are stored as JPEGs of at most ``--max-resolution`` px on their longer side, labels
as an IntField. The default, 256, gives small files that decode fast; a larger value (384 to
512) keeps more detail for the 224 px validation crops, at the cost of disk space and
decoding time.

This is ``ffcv convert ROOT DST`` with the recipe's settings (ffcv_convert.convert): the
conversion uses every core, and an interrupted conversion resumes where it stopped when run
again with the same arguments. Other sources (WebDataset shards, a CSV/Parquet manifest,
s3://...) are converted by ``ffcv convert`` itself the same way.
"""
import argparse
import os

from ffcv_convert import convert


def write_imagenet(root: str | os.PathLike, dst: str | os.PathLike, max_resolution: int = 256,
                   write_mode: str = 'jpg', jpeg_quality: int = 90, workers: int = -1,
                   overwrite: bool = False, progress: bool = True):
    """Convert the image folder ``root`` into ``dst`` (fields ``image`` and ``label``);
    return ffcv_convert's ``ConversionResult``."""
    return convert(os.fspath(root), os.fspath(dst), kind='folder',
                   image_options={'write_mode': write_mode, 'max_resolution': max_resolution,
                                  'jpeg_quality': jpeg_quality},
                   workers=workers, overwrite=overwrite, progress=progress)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='the image folder: ROOT/<class>/<image>')
    parser.add_argument('dst', help='the .beton file to write')
    parser.add_argument('--max-resolution', type=int, default=256, help='longer side at most (px)')
    parser.add_argument('--write-mode', default='jpg', choices=['jpg', 'raw', 'smart', 'proportion'])
    parser.add_argument('--jpeg-quality', type=int, default=90)
    parser.add_argument('--workers', type=int, default=-1, help='encoding threads (-1: all cores)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing DST')
    args = parser.parse_args(argv)
    result = write_imagenet(args.root, args.dst, args.max_resolution, args.write_mode, args.jpeg_quality,
                            args.workers, args.overwrite)
    print(result)


if __name__ == '__main__':
    main()
