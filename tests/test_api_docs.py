"""docs/api.md cannot rot: every ```python block runs, in order, in one namespace, in an
empty folder; a block whose first line is ``# needs: MODULE`` is skipped (with the reason)
when that optional module is not installed. The DSP steps the page lists for the ONNX
input are checked against the shipped card."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "api.md"

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_page_has_examples_of_every_api_function() -> None:
    code = "\n".join(c for _, c in python_blocks(DOC.read_text()))
    for name in ("read_gpr", "scan", "open_session", "load_model", "Detector", "export_onnx"):
        assert f"detect.{name}(" in code, f"docs/api.md has no example of detect.{name}"


def test_every_python_block_of_docs_api_md_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_api"}
    skipped: list[str] = []
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 8
    for line, code in blocks:
        first = code.splitlines()[0].strip()
        if first.startswith("# needs:"):
            missing = [
                m for m in first.split(":", 1)[1].split() if importlib.util.find_spec(m) is None
            ]
            if missing:
                skipped.append(f"line {line}: {', '.join(missing)} not installed")
                continue
        try:
            exec(compile(code, f"docs/api.md:{line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/api.md block at line {line} failed: {exc!r}") from exc
    out = capsys.readouterr().out
    assert "alarm at" in out and "refused:" in out
    if skipped:
        pytest.skip("; ".join(skipped))


def test_the_dsp_steps_the_page_lists_are_the_shipped_card_s() -> None:
    text = DOC.read_text()
    card = json.loads((REPO / "models" / "fused" / "card.json").read_text())
    for sensor, label in (("gpr", "GPR:"), ("emi", "EMI:")):
        steps = [s["step"] for s in card["preprocessing"]["dsp"][sensor]]
        start = text.index(label, text.index("**DSP per sensor**"))
        listed = re.findall(r"`([a-z_]+)`\s+\(", text[start : start + 600])
        assert listed[: len(steps)] == steps, f"{sensor}: docs list {listed}, card has {steps}"
    window = card["preprocessing"]["window"]
    n_pos = round(window["length_m"] / window["grid_m"])
    assert f"`(B, {n_pos}, {window['gpr_samples']})`" in text
    assert f"`(B, {n_pos}, {window['emi_channels']})`" in text
