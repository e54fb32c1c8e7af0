"""Which torch to install: a CPU build of torch in a local folder of wheels, else the package index's.

Machines without a GPU often hold a CPU-only torch wheel in a local folder named by
``PIP_FIND_LINKS`` (pip) or ``UV_FIND_LINKS`` (uv). There the project's scripts pin torch to
that wheel's exact version, local label included (``torch==2.13.0+cpu``), so that no resolver
ever replaces it by the package index's newest torch, which on Linux brings several GB of CUDA
libraries. Elsewhere they ask for plain ``torch``: the build the package index gives the
machine.

    python scripts/local_torch.py          # prints the requirement and where it was found
"""
import os
import re
import sys
import sysconfig
from dataclasses import dataclass

#: the environment variables that name folders of wheels (space-separated, pip's syntax)
FIND_LINKS_VARIABLES = ('UV_FIND_LINKS', 'PIP_FIND_LINKS')

_WHEEL = re.compile(r'^torch-(?P<version>[^-]+)-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>.+)\.whl$')


@dataclass(frozen=True)
class TorchChoice:
    """What to ask the installer for: ``requirement`` (``torch==2.13.0+cpu`` or ``torch``) and
    ``find_links``, the folder holding that wheel (``None`` for the package index)."""

    requirement: str
    find_links: str | None

    def describe(self) -> str:
        where = f"the local wheel in {self.find_links}" if self.find_links else "the package index"
        return f"{self.requirement} (from {where})"


def find_links_folders(environ=os.environ) -> list[str]:
    """The local folders named by ``UV_FIND_LINKS`` and ``PIP_FIND_LINKS``, in that order (URLs skipped)."""
    folders = []
    for variable in FIND_LINKS_VARIABLES:
        for entry in environ.get(variable, '').split():
            path = entry[len('file://'):] if entry.startswith('file://') else entry
            if '://' not in path and os.path.isdir(path) and path not in folders:
                folders.append(path)
    return folders


def _python_tag() -> str:
    return f"cp{sys.version_info.major}{sys.version_info.minor}"


def _platform_matches(platform_tag: str) -> bool:
    machine = sysconfig.get_platform().split('-')[-1].replace('.', '_')  # e.g. linux-x86_64 -> x86_64
    return platform_tag.endswith(machine) or platform_tag == 'any'


def cpu_wheel_versions(folder: str) -> list[str]:
    """Versions of CPU-only torch wheels (``+cpu``) in ``folder`` that install on this Python and machine."""
    versions = []
    for name in os.listdir(folder):
        match = _WHEEL.match(name)
        if not match or not match['version'].endswith('+cpu'):
            continue
        if _python_tag() in match['python'].split('.') and _platform_matches(match['platform']):
            versions.append(match['version'])
    return versions


def _version_key(version: str):
    public = version.split('+', 1)[0]
    return tuple(int(part) if part.isdigit() else 0 for part in public.split('.'))


def choose_torch(environ=os.environ) -> TorchChoice:
    """The torch to install here (see the module's docstring)."""
    for folder in find_links_folders(environ):
        versions = cpu_wheel_versions(folder)
        if versions:
            return TorchChoice(f"torch=={max(versions, key=_version_key)}", folder)
    return TorchChoice('torch', None)


if __name__ == '__main__':
    print(choose_torch().describe())
