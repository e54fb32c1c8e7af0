"""The code blocks of the README and the docs run as written.

Every Markdown document of the project (README.md, docs/, the packages' and the recipes'
READMEs) is read; each one's blocks run in order, in one empty folder: its ``python`` blocks
in one namespace (a block may use what an earlier one defined), its ``bash`` blocks in a
shell whose PATH starts with this interpreter's scripts (``ffcv``, ``ffcv-convert``). A block
preceded by a line ``<!-- not run by the tests: REASON -->`` is left out (the README's set-up
and test commands, recipes that train for hours on your data, fragments); blocks without a
language (file layouts, printed output, install lines) are text, not code to run.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent

#: every Markdown document of the project, relative to its root
ALL_DOCUMENTS = sorted(str(path.relative_to(REPOSITORY)) for pattern in
                       ('README.md', 'docs/*.md', 'packages/*/README.md', 'integrations/*/README.md')
                       for path in REPOSITORY.glob(pattern))
#: the documents whose runnable code is their point: each must keep some
MUST_RUN = ['README.md', 'docs/quickstart.md', 'docs/migrating-from-dataloader.md',
            'packages/ffcv/README.md', 'packages/ffcv-format/README.md', 'packages/ffcv-loader/README.md']

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


def test_the_documents_meant_to_run_have_code_blocks():
    for document in MUST_RUN:
        assert document in ALL_DOCUMENTS and code_blocks(document), f"{document} has no code block to run"


@pytest.mark.parametrize('document', [document for document in ALL_DOCUMENTS if code_blocks(document)])
def test_code_blocks_run_as_written(document, tmp_path, monkeypatch):
    blocks = code_blocks(document)
    monkeypatch.chdir(tmp_path)
    namespace = {'__name__': '__main__'}
    for language, code, line in blocks:
        label = f"{document}, the {language} block at line {line}"
        if language == 'bash':
            run_bash(code, tmp_path, label)
        else:
            exec(compile(code, f"{document}:{line}", 'exec'), namespace)


def test_blocks_left_out_say_why():
    for document in ALL_DOCUMENTS:
        text = (REPOSITORY / document).read_text()
        for reason in re.findall(r'<!-- not run by the tests:([^\n]*)-->', text):
            assert reason.strip(), f"{document}: a block is left out of the tests without a reason"
