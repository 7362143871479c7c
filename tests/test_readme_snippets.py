"""The README's Python snippets run as written (each ```python block of the sections named
here, executed in a fresh namespace in a temporary working directory)."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"
SECTIONS = ["## From Python: `twinjax.Twins`", "## Saved twins"]


def _blocks(heading: str) -> list[str]:
    text = README.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], re.S)


@pytest.mark.parametrize("heading", SECTIONS)
def test_readme_snippet_runs(heading, tmp_path, monkeypatch):
    blocks = _blocks(heading)
    assert blocks, f"no python block under {heading!r}"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, f"README.md ({heading})", "exec"), {"__name__": "readme"})
