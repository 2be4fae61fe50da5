"""The pipeline with the real Classifier (an untrained network of the shipped architecture).

Checks the wiring, not detection skill: the card is loaded and checked, windows reach the
network in its shapes, and a sensor in FAULT is passed as absent (its branch score missing).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from detect.config import compose
from detect.engine.build import build_pipeline
from detect.engine.drive import close_out, drive
from detect.model.scorers import ClassifierScorer
from detect.sinks.display import PlainDisplay
from pipeline_fakes import FakeClock, FakeHead


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from detect.model.card import preprocessing_from_cfg
    from detect.model.classifier import save_model
    from detect.model.nets import CalibratedNet, FusionNet, NetConfig

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models") / "tiny"
    cfg = compose([])
    save_model(
        d,
        CalibratedNet(FusionNet(NetConfig(width=4))),
        {"name": "tiny", "preprocessing": preprocessing_from_cfg(cfg)},
    )
    return d


def test_classifier_is_used_and_a_faulted_sensor_is_absent(tiny_model: Path) -> None:
    cfg = compose(["run.display=false", f"model.name={tiny_model}"])
    clock = FakeClock()
    src = FakeHead(clock, duration_s=8.0, gpr_off_s=(3.0, 5.0))
    pipe = build_pipeline(
        cfg,
        ("gpr", "emi"),
        PlainDisplay(stream=io.StringIO()),
        None,
        source_info={"paced": False},
        clock=clock,
    )
    assert isinstance(pipe.scorer, ClassifierScorer)
    assert pipe.scorer.info()["name"] == "tiny"
    seen: list[tuple[float, set[str]]] = []
    feed = pipe.alarm_logic.feed

    def spy(point):  # type: ignore[no-untyped-def]
        seen.append((point.position_m, set(point.sensor_scores)))
        return feed(point)

    pipe.alarm_logic.feed = spy  # type: ignore[method-assign]
    src.open()
    drive(pipe, src, None)
    close_out(pipe, None)
    p = np.frombuffer(pipe.track_p, dtype=np.float64)
    assert p.size > 100 and np.isfinite(p).mean() > 0.95
    assert ((p >= 0) & (p <= 1))[np.isfinite(p)].all()
    track = np.frombuffer(pipe.track_pos, dtype=np.float64)
    # inside the scored stretch, only the GPR outage (the lane ends are never window centres)
    (nc,) = [iv for iv in pipe.coverage.not_covered() if track.min() < iv[0] < track.max()]
    inside = [s for x, s in seen if nc[0] + 0.35 < x < nc[1] - 0.35]
    # away from the lane ends too: there the EMI (no validity mask) is absent until its whole
    # window is in, and the GPR's masked windows score alone
    ends = (track.min() + 0.35, track.max() - 0.35)
    outside = [
        s for x, s in seen if (x < nc[0] - 0.35 or x > nc[1] + 0.35) and ends[0] < x < ends[1]
    ]
    assert inside and all(s == {"emi"} for s in inside)
    assert outside and all(s == {"gpr", "emi"} for s in outside)
