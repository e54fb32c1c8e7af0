"""Run every package's tests, each in its own environment (the README's test command).

    python3 scripts/test.py                     # all packages (hatch test --all)
    python3 scripts/test.py -i package=loader   # one package; other arguments go to `hatch test`

Installs hatch and uv into this Python when they are missing, then runs ``hatch test --all``.
Each environment holds one package, the siblings it declares (editable, from this tree) and
its other declared dependencies, with torch as ``scripts/local_torch.py`` chooses it: a CPU
wheel in a folder named by ``UV_FIND_LINKS``/``PIP_FIND_LINKS``, pinned to its exact version,
else the package index's torch. Tests that need a CUDA device are skipped without one.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_torch import choose_torch  # noqa: E402  (a sibling script, not a package)

REPOSITORY = Path(__file__).resolve().parent.parent


def ensure_tools() -> None:
    """Install hatch (which runs the environments) and uv (which fills them) when missing."""
    missing = [name for name in ('hatch', 'uv') if importlib.util.find_spec(name) is None]
    if missing:
        print(f"test.py: installing {' and '.join(missing)} into {sys.executable}", flush=True)
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
                        'hatch>=1.16', 'uv>=0.5'], check=True)


def main(argv: list[str]) -> int:
    ensure_tools()
    torch = choose_torch()
    environ = dict(os.environ, FFCV_TORCH=torch.requirement)
    if torch.find_links and not environ.get('UV_FIND_LINKS'):
        environ['UV_FIND_LINKS'] = torch.find_links  # uv does not read pip's settings
    print(f"test.py: torch for the test environments: {torch.describe()}", flush=True)
    command = [sys.executable, '-m', 'hatch', 'test', *(argv or ['--all'])]
    return subprocess.run(command, cwd=REPOSITORY, env=environ).returncode


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
