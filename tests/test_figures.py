"""Every figure the README, docs and model cards state is the one docs/figures.json holds,
and that file says which run produced it (scripts/figures.py writes both)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from detect.model.card import read_card, render_markdown

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("figures_script", REPO / "scripts" / "figures.py")
assert _spec is not None and _spec.loader is not None
figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figures)

DOC = figures.load()
FIGS = DOC["figures"]
#: runs whose figures were measured with the shipped models
MODEL_RUNS = ("benchmark", "quality", "pipeline")
CITE = re.compile(r'fig:([A-Za-z0-9_.\-]+) = "([^"]*)"')


def test_every_figure_in_the_docs_is_the_one_in_figures_json() -> None:
    assert figures.mismatches(FIGS) == []
    shown = {m.group(1) for p in figures.doc_files() for m in figures.MARK.finditer(p.read_text())}
    # the headline figures are all under markers
    for key in ("benchmark.table", "quality.table", "pipeline.scan_x_realtime",
                "pipeline.latency_p99_ms", "emi.first_gate_table"):  # fmt: skip
        assert key in shown


def test_a_stale_figure_is_caught(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("scan at <!-- fig:pipeline.scan_x_realtime -->999<!-- /fig -->x real time\n")
    bad = figures.mismatches(FIGS, [doc])
    assert len(bad) == 1 and "pipeline.scan_x_realtime" in bad[0] and "999" in bad[0]
    doc.write_text("<!-- fig:no.such.figure -->1<!-- /fig -->\n")
    assert "not in figures.json" in figures.mismatches(FIGS, [doc])[0]


def test_every_figure_names_the_run_that_produced_it() -> None:
    for key, fig in FIGS.items():
        run = DOC["runs"].get(fig["run"])
        assert run is not None, f"{key}: run {fig['run']!r} is not described"
        assert run["command"] and run["date"], f"{key}: run {fig['run']!r} lacks its command"


@pytest.mark.parametrize("run", MODEL_RUNS)
def test_model_figures_were_measured_with_the_shipped_weights(run: str) -> None:
    """Retraining a model without regenerating the figures fails here."""
    shipped = {n: read_card(REPO / "models" / n)["weights"]["sha256"] for n in figures.MODELS}
    assert DOC["runs"][run]["weights_sha256"] == shipped


@pytest.mark.parametrize("name", figures.MODELS)
def test_model_card_text_and_quality_figures_come_from_the_card_json(name: str) -> None:
    d = REPO / "models" / name
    card = read_card(d)
    assert (d / "card.md").read_text() == render_markdown(card)
    # every model card carries the same held-out metrics block (one model_quality.py run)
    derived = figures.quality_figures(card["metrics"])
    stored = {k: v["text"] for k, v in FIGS.items() if v["run"] == "quality"}
    assert {k: (f"\n{v}\n" if k.endswith("table") else v) for k, v in derived.items()} == stored


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "alarm").glob("*.yaml")), ids=str)
def test_alarm_thresholds_cite_their_benchmark_figures(path: Path) -> None:
    """Each alarm config says which benchmark run chose its threshold, quotes the figures it
    rests on exactly as docs/figures.json holds them, and where its threshold is not one
    of the quoted operating points it says why."""
    text = path.read_text()
    cites = CITE.findall(text)
    assert cites, f"{path.name}: no figure quoted"
    for key, value in cites:
        assert key in FIGS, f"{path.name}: {key} is not in figures.json"
        assert FIGS[key]["text"] == value, f"{path.name}: {key} is {FIGS[key]['text']!r}"
        assert f"run: {FIGS[key]['run']}" in text, f"{path.name}: does not name run {key}"
    threshold = float(yaml.safe_load(text)["threshold"])
    points = [float(v) for k, v in cites if k.endswith(".fused.threshold")]
    if not any(abs(threshold - p) < 5e-4 for p in points):
        assert "why not the operating point:" in text, f"{path.name}: {threshold} unexplained"
