"""Set up a virtual environment with ffcv and run the demo (the README's first command).

    python3 scripts/setup.py                    # .venv with torch and the five packages, then `ffcv demo`
    python3 scripts/setup.py --venv ~/ffcv-env --no-demo
    python3 scripts/setup.py -- --epochs 3      # arguments after `--` go to `ffcv demo`

Makes the virtual environment (``.venv`` at the repository's root by default; an existing
one is reused), installs torch as ``scripts/local_torch.py`` chooses it (a CPU wheel in a
folder named by ``PIP_FIND_LINKS``/``UV_FIND_LINKS``, pinned to its exact version, else the
package index's torch: for a GPU build on Linux that is the usual CUDA one), then the five
packages of this tree, editable, with the demo's extra (scikit-learn), holding torch to the
version just installed. Then runs ``ffcv demo``: digits converted to a ``.beton`` file, a
small CNN trained on the CPU with the loader, its accuracy and the loader's throughput next to
a PyTorch DataLoader's (about a minute on 2 cores).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_torch import choose_torch  # noqa: E402  (a sibling script, not a package)

REPOSITORY = Path(__file__).resolve().parent.parent

#: the packages of this tree, each after the siblings it depends on; the last with the demo's extra
PACKAGES = ['ffcv-format', 'ffcv-ops', 'ffcv-loader', 'ffcv-convert', 'ffcv[demo]']


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ('Scripts/python.exe' if os.name == 'nt' else 'bin/python')


def step(text: str) -> float:
    print(f"setup: {text}", flush=True)
    return time.perf_counter()


def pip_install(python: Path, arguments: list[str], find_links: str | None) -> None:
    command = [str(python), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check']
    if find_links:
        command += ['--find-links', find_links]
    subprocess.run(command + arguments, check=True)


def package_arguments() -> list[str]:
    arguments = []
    for name in PACKAGES:
        folder, _, extra = name.partition('[')
        arguments += ['-e', f"{REPOSITORY / 'packages' / folder}{'[' + extra if extra else ''}"]
    return arguments


def installed_torch_version(python: Path) -> str:
    return subprocess.run([str(python), '-c', 'import torch; print(torch.__version__)'], check=True,
                          capture_output=True, text=True).stdout.strip()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog='scripts/setup.py', description=__doc__.split('\n\n')[0],
        epilog="Arguments after `--` are passed to `ffcv demo` (see `ffcv demo --help`).")
    parser.add_argument('--venv', type=Path, default=REPOSITORY / '.venv',
                        help="where to make the virtual environment (default: .venv in the repository)")
    parser.add_argument('--no-demo', action='store_true', help="set up only; do not run `ffcv demo`")
    split = argv.index('--') if '--' in argv else len(argv)
    own, demo_arguments = argv[:split], argv[split + 1:]
    args = parser.parse_args(own)

    python = venv_python(args.venv)
    started = time.perf_counter()
    if not python.exists():
        step(f"making the virtual environment {args.venv}")
        venv.EnvBuilder(with_pip=True).create(args.venv)
    torch = choose_torch()
    step(f"installing {torch.describe()}")
    pip_install(python, [torch.requirement], torch.find_links)
    # hold torch where it is while the packages are installed: their `torch` requirement must
    # not let the resolver swap in another build
    with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as constraints:
        constraints.write(f"torch=={installed_torch_version(python)}\n")
    try:
        step("installing ffcv-format, ffcv-ops, ffcv-loader, ffcv-convert and ffcv[demo] from this tree")
        pip_install(python, ['-c', constraints.name, *package_arguments()], torch.find_links)
    finally:
        os.unlink(constraints.name)
    bin_dir = python.parent
    print(f"setup: done in {time.perf_counter() - started:.0f} s; use it with: source {bin_dir / 'activate'}",
          flush=True)
    if args.no_demo:
        return 0
    step("running ffcv demo")
    return subprocess.run([str(bin_dir / 'ffcv'), 'demo', *demo_arguments]).returncode


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
