"""DZT header facts: time zero from ``rhf_position`` against the data, antenna models,
and the channels of a multi-channel file (written here byte by byte)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import real_file
from detect.blocks import GprBlock
from detect.cli import main
from detect.io.dzt import ANTENNA_MODELS_MHZ, antenna_mhz, header_time_zero_ns, write_dzt
from detect.io.formats import GprFile, ReaderError, read_gpr
from detect.sources.base import SourceError
from detect.sources.file import GprFileSource

# ------------------------------------------------------------------ time zero vs the data

#: Files whose header position is minus the direct wave's time in the window (SIR-4000,
#: StructureScan Mini): file -> (rhf_position ns, system code).
HEADER_T0 = {
    "dzt/impdar/test_gssi.DZT": (-230.0, 8),
    "dzt/iet-gpr/File____001.DZT": (-0.5, 7),
}
#: Files whose header gives no time zero, with the direct wave's first break (10 % pick,
#: ns) seen in their data: SIR-3000 files store position 0 whatever the direct wave's
#: time; the TU1208 file (system code 2) stores 98.85 ns, beyond its 85 ns window.
NO_HEADER_T0 = {
    "dzt/charisma/Lab_specimen_data.DZT": (0.0, 3, 1.734),
    "dzt/gprpy/FILE____032.DZT": (0.0, 3, 4.875),
    "dzt/tu1208/400MHz-Limestone_2_rev.dzt": (98.8539, 2, 3.652),
}


def _direct_wave_ns(g: GprFile) -> tuple[float, float]:
    """(first break, peak) of the direct wave on the mean trace, by our own simple pick.

    The first break is the first sample whose distance from the trace's median reaches
    10 % of the largest; the peak is that largest sample.
    """
    mean = g.block.data.astype(np.float64).mean(axis=0)
    amp = np.abs(mean - np.median(mean))
    first = int(np.argmax(amp >= 0.1 * amp.max()))
    return first * g.dt_ns, int(np.argmax(amp)) * g.dt_ns


def _position_ns(path: Path) -> float:
    return float(struct.unpack_from("<f", path.read_bytes()[:32], 22)[0])


@pytest.mark.parametrize("rel", sorted(HEADER_T0))
def test_header_time_zero_lies_on_the_direct_wave_onset(rel: str) -> None:
    """Tolerance: the header time zero is no earlier than one sample before the 10 %
    first break of the mean trace and no later than the direct wave's largest peak."""
    path = real_file(rel)
    position_ns, system = HEADER_T0[rel]
    assert _position_ns(path) == pytest.approx(position_ns)
    g = read_gpr(path)
    assert g.meta["system_code"] == system
    t0_ns = g.block.header.time_zero_ns
    assert t0_ns == pytest.approx(-position_ns)
    first_ns, peak_ns = _direct_wave_ns(g)
    assert first_ns - g.dt_ns <= t0_ns <= peak_ns
    assert g.info()["time_zero_ns"] == pytest.approx(t0_ns)
    assert not any("time zero" in w for w in g.warnings)


@pytest.mark.parametrize("rel", sorted(NO_HEADER_T0))
def test_files_without_header_time_zero_are_left_unknown(rel: str) -> None:
    path = real_file(rel)
    position_ns, system, first_break_ns = NO_HEADER_T0[rel]
    assert _position_ns(path) == pytest.approx(position_ns, abs=1e-3)
    g = read_gpr(path)
    assert g.meta["system_code"] == system
    assert g.block.header.time_zero_ns == 0.0
    first_ns, _ = _direct_wave_ns(g)
    assert first_ns == pytest.approx(first_break_ns, abs=g.dt_ns)
    assert first_ns > 10 * g.dt_ns  # the direct wave is well inside the trace, not at 0
    outside = [w for w in g.warnings if "outside" in w and "time zero" in w]
    assert len(outside) == (1 if position_ns else 0)


@pytest.mark.parametrize(
    ("position_ns", "range_ns", "expected"),
    [
        (-230.0, 2300.0, 230.0),
        (-0.5, 10.0, 0.5),
        (0.0, 48.0, None),
        (98.85, 85.0, None),
        (-85.0, 85.0, None),
        (float("nan"), 85.0, None),
    ],
)
def test_header_time_zero_rule(position_ns: float, range_ns: float, expected: float | None) -> None:
    assert header_time_zero_ns(position_ns, range_ns) == expected


# ------------------------------------------------------------------ antenna models


@pytest.mark.parametrize(
    ("name", "mhz"),
    [("4105NR", 2000.0), ("42000S", 2000.0), ("350HS", 350.0), ("5103A", 400.0)],
)
def test_added_antenna_models(name: str, mhz: float) -> None:
    assert antenna_mhz(name) == mhz


def test_5013_stays_unknown_and_the_warning_says_why() -> None:
    assert "5013" not in ANTENNA_MODELS_MHZ and antenna_mhz("5013") is None
    g = read_gpr(real_file("dzt/tu1208/400MHz-Limestone_2_rev.dzt"))
    (warning,) = [w for w in g.warnings if "unknown antenna '5013'" in w]
    assert "no frequency field" in warning and g.block.header.antenna_hz is None


# ------------------------------------------------------------------ multi-channel files

N_SCANS, N_CHAN, N_SAMP, RANGE_NS = 12, 3, 64, 16.0
CHANNEL_T0_NS = (2.0, 3.0, 0.0)
CHANNEL_ANTENNA = ("5103", "3101", "62000-003")
CHANNEL_MHZ = (400.0, 900.0, 2000.0)


def _channel_header(ch: int) -> bytes:
    """One channel's 1024-byte header, laid out as GSSI's header description gives it."""
    head = bytearray(1024)
    struct.pack_into("<HHHHh", head, 0, 0x00FF, 1024 * N_CHAN, N_SAMP, 16, -32768)
    struct.pack_into("<5fH", head, 10, 50.0, 50.0, 0.0, -CHANNEL_T0_NS[ch], RANGE_NS, 0)
    struct.pack_into("<H3f", head, 52, N_CHAN, 6.0, 0.0, 0.0)
    name = CHANNEL_ANTENNA[ch].encode("latin-1")
    head[98 : 98 + len(name)] = name
    return bytes(head)


def _words(seed: int = 3) -> np.ndarray:
    """(scan, channel, sample) uint16 words; each channel on its own level."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-2000, 2000, size=(N_SCANS, N_CHAN, N_SAMP))
    level = 32768 + 10000 * (np.arange(N_CHAN) - 1)
    return (noise + level[None, :, None]).astype(np.int64)


@pytest.fixture()
def multichannel(tmp_path: Path) -> tuple[Path, np.ndarray]:
    words = _words()
    body = b"".join(
        struct.pack(f"<{N_SAMP}H", *words[scan, ch])
        for scan in range(N_SCANS)
        for ch in range(N_CHAN)
    )
    path = tmp_path / "three.DZT"
    path.write_bytes(b"".join(_channel_header(ch) for ch in range(N_CHAN)) + body)
    return path, words


def test_channels_split_as_interleaved_with_own_headers(multichannel) -> None:
    path, words = multichannel
    g = read_gpr(path)
    assert (g.n_channels, g.n_traces, g.channel) == (N_CHAN, N_SCANS, 0)
    for ch, block in enumerate(g.blocks):
        np.testing.assert_array_equal(block.data, words[:, ch, :] - 32768)
        assert block.header.channel == ch
        assert block.header.time_zero_ns == CHANNEL_T0_NS[ch]
        assert block.header.antenna_hz == CHANNEL_MHZ[ch] * 1e6
    assert [c["time_zero_ns"] for c in g.channels()] == list(CHANNEL_T0_NS)


def test_channel_selection_and_out_of_range(multichannel) -> None:
    path, words = multichannel
    g = read_gpr(path, channel=1)
    assert g.channel == 1 and g.antenna_mhz == 900.0 and g.info()["time_zero_ns"] == 3.0
    np.testing.assert_array_equal(g.block.data, words[:, 1, :] - 32768)
    with pytest.raises(ReaderError) as e:
        read_gpr(path, channel=3)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "3 channel(s)" in msg


def test_file_source_delivers_the_chosen_channel(multichannel) -> None:
    path, words = multichannel
    with GprFileSource(path, channel=2, block_traces=5) as src:
        blocks = [b for b in src.iter_items() if isinstance(b, GprBlock)]
    assert [b.n for b in blocks] == [5, 5, 2]
    np.testing.assert_array_equal(np.concatenate([b.data for b in blocks]), words[:, 2, :] - 32768)
    assert {b.header.channel for b in blocks} == {2}
    with pytest.raises(SourceError, match="3 channel"):
        GprFileSource(path, channel=4).open()


def test_cli_info_lists_channels_and_refuses_a_missing_one(multichannel, capsys) -> None:
    path, _ = multichannel
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    for ch in range(N_CHAN):
        assert f"channel {ch} " in text
    assert "<- input.channel" in text and "(showing channel 0)" in text
    assert main(["info", str(path), "--json", "input.channel=2"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["channel"] == 2 and info["antenna_mhz"] == 2000.0
    assert [c["antenna_mhz"] for c in info["channels"]] == list(CHANNEL_MHZ)
    assert main(["info", str(path), "input.channel=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "3 channel(s)" in err


def test_write_dzt_per_channel_headers_round_trip(tmp_path: Path) -> None:
    words = _words(seed=5)
    path = tmp_path / "w.DZT"
    write_dzt(path, words, RANGE_NS, antenna=CHANNEL_ANTENNA, position_ns=(-1.5, -2.5, 0.0))
    g = read_gpr(path)
    assert [b.header.time_zero_ns for b in g.blocks] == [1.5, 2.5, 0.0]
    assert [b.header.antenna_hz for b in g.blocks] == [m * 1e6 for m in CHANNEL_MHZ]


def test_cli_scan_and_replay_take_the_chosen_channel(multichannel, tmp_path: Path, capsys) -> None:
    path, _ = multichannel
    for cmd in (["scan", str(path)], ["replay", str(path), "--fast"]):
        rc = main([*cmd, "input.channel=5", f"output.dir={tmp_path / 'x'}",
                   f"run.out_dir={tmp_path / 'y'}", "run.display=false"])  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err and "3 channel(s)" in err[-1], (cmd, err)


def test_convert_writes_each_channel_with_its_own_antenna(multichannel, tmp_path: Path) -> None:
    from detect.io.convert import to_segy
    from detect.io.segy import read_segy

    path, words = multichannel
    paths = to_segy(read_gpr(path, channel=1), tmp_path / "out.sgy")
    assert len(paths) == N_CHAN
    for ch, p in enumerate(paths):
        back = read_segy(p)
        assert back.antenna_mhz == CHANNEL_MHZ[ch], p
        np.testing.assert_array_equal(back.block.data, words[:, ch, :] - 32768)
