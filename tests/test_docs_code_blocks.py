"""The code blocks of the README and the docs run as written.

Each document's blocks run in order, in one empty folder: its ``python`` blocks in one
namespace (a block may use what an earlier one defined), its ``bash`` blocks in a shell
whose PATH starts with this interpreter's scripts (``ffcv``, ``ffcv-convert``). A block
preceded by a line ``<!-- not run by the tests: REASON -->`` is left out (the README's set-up
and test commands, which make a virtual environment and run the whole suite: they are run
on a fresh clone by hand and by CI).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent

#: the documents whose code blocks must run (a document with no block is an error: it was renamed)
DOCUMENTS = ['README.md', 'docs/quickstart.md', 'docs/migrating-from-dataloader.md']

_BLOCK = re.compile(r'(?P<skip><!-- not run by the tests:[^\n]*-->\n)?```(?P<language>\w+)\n(?P<code>.*?)```',
                    re.DOTALL)


def code_blocks(document: str) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of each block of ``document`` that the tests run."""
    text = (REPOSITORY / document).read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        if match['skip'] or match['language'] not in ('python', 'bash'):
            continue
        blocks.append((match['language'], match['code'], text.count('\n', 0, match.start('code')) + 1))
    return blocks


def run_bash(code: str, where: Path, label: str) -> None:
    environ = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(['bash', '-euo', 'pipefail', '-c', code], cwd=where, env=environ,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{label} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize('document', DOCUMENTS)
def test_code_blocks_run_as_written(document, tmp_path, monkeypatch):
    blocks = code_blocks(document)
    assert blocks, f"{document} has no code block to run"
    monkeypatch.chdir(tmp_path)
    namespace = {'__name__': '__main__'}
    for language, code, line in blocks:
        label = f"{document}, the {language} block at line {line}"
        if language == 'bash':
            run_bash(code, tmp_path, label)
        else:
            exec(compile(code, f"{document}:{line}", 'exec'), namespace)


def test_blocks_left_out_say_why():
    for document in DOCUMENTS:
        text = (REPOSITORY / document).read_text()
        for reason in re.findall(r'<!-- not run by the tests:([^\n]*)-->', text):
            assert reason.strip(), f"{document}: a block is left out of the tests without a reason"
