"""Run every package's tests, each in its own environment (the README's test command).

    python3 scripts/test.py                     # all packages (hatch test --all)
    python3 scripts/test.py -i package=loader   # one package; other arguments go to `hatch test`

Installs hatch and uv into this Python when they are missing, then runs ``hatch test --all``.
Each environment holds one package, the siblings it declares (editable, from this tree) and
its other declared dependencies, with torch as ``scripts/local_torch.py`` chooses it: a CPU
wheel in a folder named by ``UV_FIND_LINKS``/``PIP_FIND_LINKS``, pinned to its exact version,
else the package index's torch. Tests that need a CUDA device are skipped without one.
"""
import hashlib
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


# Hatch re-syncs an environment when a declared dependency changes, but not when a package's
# own metadata does (entry points, scripts): an editable install keeps the metadata of when it
# was made. The environments are dropped when any project file that declares them changes.
PROJECT_FILES = ('pyproject.toml', 'hatch.toml', 'packages/*/pyproject.toml', 'integrations/*/pyproject.toml')
FINGERPRINT = REPOSITORY / '.hatch-project-fingerprint'


def project_fingerprint() -> str:
    digest = hashlib.sha256()
    for pattern in PROJECT_FILES:
        for path in sorted(REPOSITORY.glob(pattern)):
            digest.update(str(path.relative_to(REPOSITORY)).encode() + b'\0' + path.read_bytes() + b'\0')
    return digest.hexdigest()


def drop_stale_environments(environ: dict[str, str]) -> None:
    """``hatch env prune`` unless the environments were made from the current project files."""
    fingerprint = project_fingerprint()
    if FINGERPRINT.exists() and FINGERPRINT.read_text().strip() == fingerprint:
        return
    print("test.py: project files changed since the test environments were made (or this is a new "
          "checkout): removing them so they are made again", flush=True)
    subprocess.run([sys.executable, '-m', 'hatch', 'env', 'prune'], cwd=REPOSITORY, env=environ, check=True)
    FINGERPRINT.write_text(fingerprint + '\n')


def main(argv: list[str]) -> int:
    ensure_tools()
    torch = choose_torch()
    environ = dict(os.environ, FFCV_TORCH=torch.requirement)
    if torch.find_links and not environ.get('UV_FIND_LINKS'):
        environ['UV_FIND_LINKS'] = torch.find_links  # uv does not read pip's settings
    print(f"test.py: torch for the test environments: {torch.describe()}", flush=True)
    drop_stale_environments(environ)
    command = [sys.executable, '-m', 'hatch', 'test', *(argv or ['--all'])]
    return subprocess.run(command, cwd=REPOSITORY, env=environ).returncode


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
