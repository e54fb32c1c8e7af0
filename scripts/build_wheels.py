"""Build the wheels of the five packages under packages/ into one folder.

    python scripts/build_wheels.py                  # into dist/
    python scripts/build_wheels.py --out /tmp/wheels ffcv-format ffcv-convert
    pip install --find-links dist ffcv-convert      # then: any package, with its siblings

Installing from that folder works as it will from the package index: a package's
siblings are found there by the version ranges in its pyproject.toml. The versions are
pre-releases (2.0.0.devN), which pip and uv take without ``--pre`` when nothing else
matches, except ``ffcv`` itself: the package index has FFCV 1.0, which a bare
``pip install ffcv`` prefers to a pre-release. Ask for this one by version:
``pip install --find-links dist 'ffcv>=2.0.0.dev0'``.

Needs nothing but Python and pip: each package is built in an isolated environment
holding its build backend (hatchling), which ``uv build`` (used when ``uv`` is on the
PATH) or ``pip wheel`` installs from the package index. Wheels of these packages already
in the folder are replaced, whatever their version, so that the folder holds exactly
this tree's packages.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

#: the distributions under packages/, each after the siblings it depends on
PACKAGES = ['ffcv-format', 'ffcv-ops', 'ffcv-loader', 'ffcv-convert', 'ffcv']


def wheel_distribution(wheel: Path) -> str:
    """The distribution a wheel file holds, normalized
    (``ffcv_convert-2.0-py3-none-any.whl``: ``ffcv-convert``)."""
    return wheel.name.split('-', 1)[0].replace('_', '-').lower()


def find_uv() -> str | None:
    """The path of the ``uv`` executable: the one installed with this Python, else the one on the PATH."""
    try:
        import uv  # the PyPI package `uv` ships the executable next to this module
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which('uv')


def build_command(builder: str, package_dir: Path, out_dir: Path) -> list[str]:
    """The command that builds the wheel of the package in ``package_dir`` into ``out_dir``."""
    if builder == 'pip':
        # --no-deps: the siblings are built from this tree, not fetched; build isolation
        # (pip's default) installs hatchling into a throwaway environment
        return [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--quiet', '--wheel-dir', str(out_dir),
                str(package_dir)]
    uv = find_uv()
    if uv is None:
        raise SystemExit("build_wheels.py: error: --builder uv, but no uv executable was found "
                         "(pip install uv, or use --builder pip)")
    return [uv, 'build', '--wheel', '--quiet', '--out-dir', str(out_dir), str(package_dir)]


def build_wheels(out_dir: Path, packages: list[str] = PACKAGES, builder: str = 'auto') -> list[Path]:
    """Build the wheels of ``packages`` (names of folders under packages/) into ``out_dir``.

    ``builder`` is ``'uv'`` (``uv build``), ``'pip'`` (``pip wheel``) or ``'auto'`` (uv when
    it is installed). Returns the paths of the wheels, in the order of ``packages``.

    >>> build_wheels(Path('dist'), ['ffcv-format'])          # doctest: +SKIP
    [PosixPath('dist/ffcv_format-2.0.0.dev0-py3-none-any.whl')]
    """
    unknown = [name for name in packages if name not in PACKAGES]
    if unknown:
        raise SystemExit(f"build_wheels.py: error: unknown package(s) {', '.join(unknown)} "
                         f"(choose from {', '.join(PACKAGES)})")
    if builder == 'auto':
        builder = 'uv' if find_uv() else 'pip'
    out_dir.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name in packages:
        package_dir = REPOSITORY / 'packages' / name
        # build into an empty folder first, so that the new wheel is told apart from old ones
        with tempfile.TemporaryDirectory(prefix=f'build-{name}-') as staging:
            staging = Path(staging)
            result = subprocess.run(build_command(builder, package_dir, staging), cwd=REPOSITORY, check=False)
            if result.returncode != 0:
                raise SystemExit(f"build_wheels.py: error: building the wheel of {package_dir} failed "
                                 f"(exit status {result.returncode}; see the output above)")
            built = [path for path in staging.glob('*.whl') if wheel_distribution(path) == name]
            if len(built) != 1:
                raise SystemExit(f"build_wheels.py: error: building {package_dir} gave "
                                 f"{sorted(p.name for p in staging.iterdir())}, not one wheel of {name}")
            for old in out_dir.glob('*.whl'):
                if wheel_distribution(old) == name:
                    old.unlink()
            wheel = out_dir / built[0].name
            shutil.move(str(built[0]), wheel)
        wheels.append(wheel)
    return wheels


def sibling_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of a wheel that name one of the five packages."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
        metadata = archive.read(metadata_name).decode('utf-8')
    requirements = [line.split(':', 1)[1].strip() for line in metadata.splitlines()
                    if line.startswith('Requires-Dist:')]
    return [r for r in requirements
            if re.match(r'[A-Za-z0-9._-]+', r).group(0).replace('_', '-').lower() in PACKAGES]


def main(argv: list[str] | None = None) -> int:
    """The command line: ``python scripts/build_wheels.py [--out DIR] [--builder B] [PACKAGE ...]``."""
    parser = argparse.ArgumentParser(prog='build_wheels.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('packages', nargs='*', metavar='PACKAGE', default=PACKAGES,
                        help=f"packages to build (default: all of {', '.join(PACKAGES)})")
    parser.add_argument('--out', type=Path, default=REPOSITORY / 'dist', metavar='DIR',
                        help='the folder for the wheels (default: dist/ in the repository)')
    parser.add_argument('--builder', choices=('auto', 'uv', 'pip'), default='auto',
                        help='uv build or pip wheel (default: uv when installed)')
    args = parser.parse_args(argv)
    wheels = build_wheels(args.out, args.packages, args.builder)
    for wheel in wheels:
        siblings = sibling_requirements(wheel)
        print(f"{wheel}" + (f"  (requires {', '.join(siblings)})" if siblings else ""))
    folder = os.path.relpath(args.out) if not os.path.relpath(args.out).startswith('..') else args.out
    print(f"install with: pip install --find-links {folder} PACKAGE   "
          f"(e.g. ffcv-convert; ffcv as 'ffcv>=2.0.0.dev0': the package index has FFCV 1.0)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
