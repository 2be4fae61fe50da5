"""Config composition of every group, and the one-line errors for bad keys and values."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig

from detect.config import ConfigError, compose, group_options, validate


def test_default_config_composes() -> None:
    cfg = compose([])
    assert cfg.source.kind == "sim"
    assert 0.0 <= cfg.alarm.threshold <= 1.0
    assert cfg.run.duration_s is None and cfg.run.demo_duration_s > 0


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g, opts in group_options().items() for o in opts],
)
def test_every_group_option_composes(group: str, option: str) -> None:
    cfg = compose([f"{group}={option}"])
    if group != "experiment":
        assert group in cfg


def test_every_group_has_options() -> None:
    opts = group_options()
    for g in ("source", "dsp", "model", "alarm", "sim", "train", "experiment"):
        assert opts[g], f"config group {g} has no options"


def test_unknown_key_is_one_line() -> None:
    with pytest.raises(ConfigError) as e:
        compose(["alarm.no_such_key=1"])
    assert "alarm.no_such_key" in str(e.value) and "\n" not in str(e.value)


def test_unknown_group_option_lists_choices() -> None:
    with pytest.raises(ConfigError, match=r"source/teapot.*available: .*sim"):
        compose(["source=teapot"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("alarm.threshold=1.5", "alarm.threshold"),
        ("alarm.threshold=abc", "alarm.threshold"),
        ("run.duration_s=-3", "run.duration_s"),
        ("train.epochs=0", "train.epochs"),
        ("run.display=maybe", "run.display"),
        ("seed=-1", "seed"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        compose([override])
    msg = str(e.value)
    assert key in msg and "expected" in msg and "\n" not in msg


def test_override_without_equals() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        compose(["alarm.threshold"])


def test_validate_accepts_ints_for_floats_and_nulls_where_allowed() -> None:
    cfg = compose(["alarm.threshold=1", "run.duration_s=null"])
    validate(cfg)
    assert cfg.run.duration_s is None


def _instantiate(cfg: DictConfig) -> None:
    """Build what each config section configures, the way the tasks do."""
    from omegaconf import OmegaConf

    from detect.alarms import AlarmConfig, AlarmLogic
    from detect.dsp.chain import build_chain
    from detect.model.classifier import Classifier
    from detect.model.train import TrainSettings
    from detect.sim.scene import make_scene
    from detect.sim.settings import settings_from
    from detect.sources.base import Source
    from detect.sources.registry import create_source, source_class

    spec = OmegaConf.to_container(cfg.source, resolve=True)
    assert isinstance(spec, dict)
    cls = source_class(str(spec["kind"]))
    assert issubclass(cls, Source)
    if spec["kind"] in ("sim", "sensor_head", "ascii_emi", "gps_nmea", "gps_ubx", "multi"):
        src = create_source({str(k): v for k, v in spec.items()})
        assert not src.is_open and src.sensors
    for sensor in ("gpr", "emi"):
        build_chain(OmegaConf.to_container(cfg.dsp[sensor]), sensor)  # type: ignore[arg-type]
    clf = Classifier.load(str(cfg.model.name), cfg)
    assert clf is not None
    AlarmLogic(AlarmConfig.from_cfg(cfg.alarm))
    scene = make_scene(int(cfg.seed), settings_from(OmegaConf.to_container(cfg.sim)))  # type: ignore[arg-type]
    assert scene is not None
    TrainSettings.from_mapping(cfg.train)


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g, opts in group_options().items() for o in opts],
)
def test_every_group_option_instantiates(group: str, option: str) -> None:
    _instantiate(compose([f"{group}={option}"]))
