"""The hostile-input corpus (tests/data/hostile_inputs.json): every input that once gave a traceback, a
silent accept or a wrong result, with the outcome it must give now. One test runs them all; add a case
for every defect found."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.fuzzing import run_cli

REPO = Path(__file__).resolve().parent.parent
CORPUS = json.loads((REPO / "tests" / "data" / "hostile_inputs.json").read_text())


def fill(text: str, tmp: Path) -> str:
    return text.replace("{tmp}", str(tmp)).replace("{repo}", str(REPO))


@pytest.mark.parametrize("case", CORPUS["cases"], ids=[c["id"] for c in CORPUS["cases"]])
def test_hostile_input(tmp_path, case):
    for name, text in CORPUS["files"].items():
        (tmp_path / name).write_text(fill(text, tmp_path), encoding="latin-1" if name.startswith("latin1") else "utf-8")
    for name, data in CORPUS["binary_files_base64"].items():
        (tmp_path / name).write_bytes(base64.b64decode(data))
    outcome = run_cli([fill(a, tmp_path) for a in case["argv"]])
    assert outcome.code == case["exit"], (outcome.code, outcome.err, outcome.error)
    lines = outcome.err.strip().splitlines()
    assert "Traceback" not in outcome.err
    if case["exit"] == 2:
        assert len(lines) == 1 and lines[0].startswith("infersim: "), outcome.err
        assert case["stderr"] in lines[0], lines[0]
    elif "stderr" in case:
        assert any(case["stderr"] in line for line in lines), outcome.err
    assert all(line.startswith("infersim: ") for line in lines), outcome.err
    for text in case.get("stderr_excludes", []):
        assert text not in outcome.err
    if "stdout" in case:
        assert case["stdout"] in outcome.out, outcome.out[-2000:]
    if "creates" in case:
        assert (tmp_path / case["creates"]).stat().st_size > 0
    for name, texts in case.get("file_excludes", {}).items():
        content = (tmp_path / name).read_text()
        assert all(text not in content for text in texts), content
