"""The console's sounds on the laptop's speaker (detect.sinks.speaker), without any audio device.

The references are the browser console's mapping (console.js, README "Sounds"), written out
here on their own: metal 300-1500 Hz and radar 110-440 Hz along log2(1 + level) / 3, silent
in FAULT; alarm = five short beeps alternating 1400/1000 Hz, suspect = one 660 Hz blip, CUE =
880 then 1320 Hz, FAULT = six longer beeps alternating 300/200 Hz. Pitches are measured from
the samples (FFT peak), beeps counted from the envelope.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detect.blocks import Alarm, HealthEvent, MdBlock, MdHeader, SensorState
from detect.sinks.speaker import SpeakerSink, Synth

FS = 48_000.0


def metal_hz(level: float) -> float:
    return 300.0 + 1200.0 * min(1.0, math.log2(1.0 + level) / 3.0)


def radar_hz(level: float) -> float:
    return 110.0 + 330.0 * min(1.0, math.log2(1.0 + level) / 3.0)


def spectrum(x: np.ndarray, fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1.0 / fs), mag


def pitch_hz(x: np.ndarray, fs: float = FS, lo: float = 50.0, hi: float = 5000.0) -> float:
    """Strongest spectral peak in [lo, hi], refined by a parabola through the log magnitudes."""
    f, m = spectrum(x, fs)
    band = np.flatnonzero((f >= lo) & (f <= hi))
    k = int(band[np.argmax(m[band])])
    a, b, c = np.log(m[k - 1 : k + 2] + 1e-30)
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * fs / len(x))


def amp_at(x: np.ndarray, freq: float, fs: float = FS) -> float:
    f, m = spectrum(x, fs)
    near = np.abs(f - freq) <= 3 * fs / len(x)
    return float(m[near].max() / (len(x) / 4))  # Hann: a sine of amplitude A peaks at A N / 4


def beeps(x: np.ndarray, fs: float = FS) -> list[tuple[int, int]]:
    """(start, end) sample of each sound burst: 2 ms RMS frames above a quarter of the peak."""
    frame = int(0.002 * fs)
    n = len(x) // frame
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
    on = np.concatenate([[False], rms > 0.25 * rms.max(), [False]]).astype(np.int8)
    edges = np.diff(on)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(s * frame, e * frame) for s, e in zip(starts, ends, strict=True)]


def burst_pitches(x: np.ndarray) -> list[float]:
    return [pitch_hz(x[s + (e - s) // 8 : e - (e - s) // 8], lo=100) for s, e in beeps(x)]


def render_chunks(synth: Synth, seconds: float, rng: np.random.Generator | None = None) -> Any:
    n = int(seconds * FS)
    out = []
    while n > 0:
        k = min(n, int(rng.integers(1, 2048)) if rng is not None else 512)
        out.append(synth.render(k))
        n -= k
    return np.concatenate(out)


# --------------------------------------------------------------------------- synthesis
@pytest.mark.parametrize("level", [0.0, 1.0, 7.0])
def test_metal_tone_pitch_follows_the_level(level: float) -> None:
    s = Synth(FS, volume=1.0)
    s.set_level("emi", level)
    s.render(int(0.4 * FS))  # the glide settles (time constant 30 ms)
    x = s.render(int(0.25 * FS))
    assert pitch_hz(x) == pytest.approx(metal_hz(level), abs=1.0)
    # a sine: no harmonics
    assert amp_at(x, 2 * metal_hz(level)) < 0.01 * amp_at(x, metal_hz(level))


def test_metal_tone_louder_with_more_signal() -> None:
    rms = []
    for level in (0.0, 1.0, 7.0):
        s = Synth(FS, volume=1.0)
        s.set_level("emi", level)
        s.render(int(0.4 * FS))
        rms.append(float(np.sqrt(np.mean(s.render(int(0.2 * FS)) ** 2))))
    assert rms[0] > 0.01 and rms[0] < rms[1] < rms[2]


@pytest.mark.parametrize("level", [0.0, 1.0, 7.0])
def test_radar_tone_is_lower_and_buzzes(level: float) -> None:
    s = Synth(FS, volume=1.0)
    s.set_level("gpr", level)
    s.render(int(0.4 * FS))
    x = s.render(int(0.25 * FS))
    f0 = pitch_hz(x)
    assert f0 == pytest.approx(radar_hz(level), abs=1.0)
    assert 110.0 - 1 <= f0 <= 440.0 + 1
    assert amp_at(x, 3 * f0) > 0.2 * amp_at(x, f0)  # square-like: strong odd harmonics


def test_both_tones_heard_apart() -> None:
    s = Synth(FS, volume=1.0)
    s.set_level("emi", 7.0)
    s.set_level("gpr", 0.0)
    s.render(int(0.4 * FS))
    x = s.render(int(0.25 * FS))
    assert pitch_hz(x, lo=1000) == pytest.approx(1500.0, abs=1.0)
    assert pitch_hz(x, hi=150) == pytest.approx(110.0, abs=1.0)


def test_tone_of_a_sensor_in_fault_is_silent() -> None:
    s = Synth(FS, volume=1.0)
    s.set_level("emi", 7.0)
    s.set_level("gpr", 7.0)
    s.render(int(0.4 * FS))
    before = s.render(int(0.1 * FS))
    s.set_level("emi", 7.0, on=False)
    s.set_level("gpr", 7.0)
    s.render(int(0.4 * FS))
    x = s.render(int(0.25 * FS))
    assert amp_at(before, 1500.0) > 0.1
    assert amp_at(x, 1500.0) < 1e-3 * amp_at(x, 440.0)
    assert amp_at(x, 440.0) > 0.1  # the radar goes on


def test_tone_fades_without_fresh_levels() -> None:
    """No data (a stalled pipeline): silence, never a stale pitch that sounds like data."""
    s = Synth(FS, volume=1.0, stale_s=1.0)
    s.set_level("emi", 1.0)
    assert np.abs(render_chunks(s, 0.5)).max() > 0.05
    render_chunks(s, 1.0)  # the audio thread's blocks: ~10 ms each
    assert np.abs(s.render(int(0.2 * FS))).max() < 1e-4


@pytest.mark.parametrize(
    ("name", "pitches", "min_s", "max_s"),
    [
        ("alarm", [1400.0, 1000.0, 1400.0, 1000.0, 1400.0], 0.10, 0.14),
        ("suspect", [660.0], 0.06, 0.10),
        ("cue", [880.0, 1320.0], 0.03, 0.07),
        ("fault", [300.0, 200.0] * 3, 0.22, 0.27),
    ],
)
def test_event_sound_patterns(name: str, pitches: list[float], min_s: float, max_s: float) -> None:
    s = Synth(FS, volume=1.0)
    s.play(name)
    x = render_chunks(s, 2.0)
    bursts = beeps(x)
    assert len(bursts) == len(pitches)
    assert burst_pitches(x) == pytest.approx(pitches, abs=6.0)
    assert all(min_s <= (e - st) / FS <= max_s for st, e in bursts)
    assert np.abs(x[-int(0.2 * FS) :]).max() == 0.0  # then silence


def test_beep_edges_do_not_click() -> None:
    s = Synth(FS, volume=1.0)
    s.play("alarm")
    x = render_chunks(s, 1.0)
    ms = int(0.001 * FS)
    for st, e in beeps(x):
        # the bursts as the 2 ms frames see them; the beep itself starts and ends nearby
        nz = np.flatnonzero(np.abs(x[max(0, st - 4 * ms) : e + 4 * ms]) > 0) + max(0, st - 4 * ms)
        a, b = int(nz[0]), int(nz[-1]) + 1
        peak = np.abs(x[a:b]).max()
        assert np.abs(x[a : a + ms]).mean() < 0.1 * peak
        assert np.abs(x[b - ms : b]).mean() < 0.1 * peak


def test_any_chunking_gives_the_same_samples() -> None:
    """Phase-continuous oscillators: block boundaries leave no trace."""
    a, b = Synth(FS, volume=0.8), Synth(FS, volume=0.8)
    for s in (a, b):
        s.set_level("emi", 3.0)
        s.set_level("gpr", 20.0)
        s.play("alarm")
    one = a.render(int(0.9 * FS))
    many = render_chunks(b, 0.9, np.random.default_rng(1))
    assert np.allclose(one, many, atol=1e-6)


def _max_step(level: dict[str, float], seconds: float = 0.5) -> float:
    s = Synth(FS, volume=1.0)
    for k, v in level.items():
        s.set_level(k, v)
    s.render(int(0.4 * FS))
    return float(np.abs(np.diff(s.render(int(seconds * FS)))).max())


def test_level_jumps_do_not_click() -> None:
    """Levels, FAULT and volume jumping at random block boundaries never make a sample step
    larger than the steady tones at their highest pitch and gain make anyway."""
    steady = _max_step({"emi": 1e6}) + _max_step({"gpr": 1e6})
    # and those steps are small: a 1500 Hz sine at the top gain 0.33 steps 0.065; a hard
    # square edge would step 2 x 0.33 (a click on every half period)
    assert steady < 0.2
    rng = np.random.default_rng(7)
    s = Synth(FS, volume=1.0)
    out = []
    for _ in range(300):
        s.set_level("emi", float(rng.choice([0.0, 0.3, 7.0, 1e6])), on=bool(rng.random() > 0.3))
        s.set_level("gpr", float(rng.choice([0.0, 1.0, 1e6])), on=bool(rng.random() > 0.3))
        if rng.random() < 0.1:
            s.set_volume(float(rng.choice([0.0, 1.0])))
        out.append(s.render(int(rng.integers(32, 1024))))
    x = np.concatenate(out)
    assert np.abs(x).max() > 0.2  # it did sound
    assert np.abs(np.diff(x)).max() <= 1.02 * steady


# --------------------------------------------------------------------------- the sink
class FakeStream:
    """Stands in for sounddevice.OutputStream: the test pulls blocks through the callback."""

    def __init__(self, fail_start: bool = False, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.samplerate = FS
        self.callback = kwargs["callback"]
        self.finished_callback = kwargs["finished_callback"]
        self.fail_start = fail_start
        self.active = False
        self.closed = False
        self.blocks: list[np.ndarray] = []

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("Error starting stream: Unanticipated host error [-9999]")
        self.active = True

    def stop(self) -> None:
        self.active = False

    def abort(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True

    def pull(self, seconds: float, block: int = 480) -> np.ndarray:
        out = []
        for _ in range(int(seconds * FS) // block):
            buf = np.full((block, 1), np.nan, dtype=np.float32)
            self.callback(buf, block, None, None)
            self.blocks.append(buf[:, 0].copy())
            out.append(buf[:, 0].copy())
        return np.concatenate(out)


def _sink(**kw: Any) -> tuple[SpeakerSink, list[FakeStream]]:
    made: list[FakeStream] = []

    def factory(**kwargs: Any) -> FakeStream:
        made.append(FakeStream(**kw, **kwargs))
        return made[-1]

    sink = SpeakerSink(volume=1.0, stream_factory=factory, drain_s=0.0)
    return sink, made


def _emi_block(level: float, t_s: float = 0.0) -> MdBlock:
    hdr = MdHeader(sample_rate_hz=100.0, channel_names=tuple(f"g{i}" for i in range(4)))
    data = np.full((10, 4), level, dtype=np.float32)
    return MdBlock.build(data, hdr, host_time_s=t_s + np.arange(10) * 0.01,
                         position_m=np.linspace(0, 0.05, 10))  # fmt: skip


def _alarm(tier: str = "alarm") -> Alarm:
    return Alarm(alarm_id="A-1", position_m=1.0, confidence=0.9, class_name="ap_mine",
                 sensor_scores={}, depth_m=None, host_time_s=0.0, tier=tier)  # fmt: skip


def test_sink_tone_follows_the_same_level_as_the_browser() -> None:
    from detect.sinks.console import ConsoleSink, Hub

    sink, made = _sink()
    assert sink.start() is None
    stream = made[0]
    assert stream.active and stream.kwargs["channels"] == 1
    hub = Hub()
    console = ConsoleSink(hub)
    blocks = [_emi_block(2.0, 0.1 * i) for i in range(10)] + [_emi_block(9.0, 1.0)]
    for b in blocks:
        sink.on_processed(b)
        console.on_processed(b)
        stream.pull(0.1)
    browser_level = [m for m in map(__import__("json").loads, (t for _, t in hub._ring))
                     if m["type"] == "emi"][-1]["level"]  # fmt: skip
    assert browser_level > 3.0
    stream.pull(0.2)  # settle
    assert pitch_hz(stream.pull(0.2)) == pytest.approx(metal_hz(browser_level), abs=1.0)


def test_sink_sounds_alarm_suspect_and_fault() -> None:
    sink, made = _sink()
    assert sink.start() is None
    stream = made[0]
    sink.on_alarm(_alarm("alarm"))
    assert len(beeps(stream.pull(1.0))) == 5
    sink.on_alarm(_alarm("suspect"))
    assert burst_pitches(stream.pull(0.5)) == pytest.approx([660.0], abs=6.0)
    # metal tone, then its sensor goes to FAULT: six low beeps, then no metal tone
    for i in range(5):
        sink.on_processed(_emi_block(1.0, 0.1 * i))
        stream.pull(0.1)
    assert pitch_hz(stream.pull(0.2)) == pytest.approx(metal_hz(1.0), abs=1.0)
    sink.on_health(HealthEvent(host_time_s=1.0, sensor="emi", state=SensorState.FAULT))
    x = stream.pull(2.0)
    assert burst_pitches(x) == pytest.approx([300.0, 200.0] * 3, abs=6.0)
    assert np.abs(x[-int(0.2 * FS) :]).max() < 1e-4  # the metal tone is silent
    # a FAULT seen again in the status is not a new fault sound
    sink.on_status(type("St", (), {"sensors": [{"sensor": "emi", "state": "FAULT"}]})())
    assert np.abs(stream.pull(0.5)).max() < 1e-4
    sink.close()
    assert stream.closed and not stream.active


def test_device_that_fails_switches_the_sink_off_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, made = _sink()
    assert sink.start() is None
    stream = made[0]
    stream.pull(0.1)
    stream.active = False  # unplugged: PortAudio stops the stream and says so
    stream.finished_callback()
    with caplog.at_level(logging.DEBUG, logger="detect.sinks.speaker"):
        assert sink.on_alarm(_alarm()) is None
        assert sink.off  # at the first call after the failure, not at the next status
        for _ in range(3):
            assert sink.on_alarm(_alarm()) is None
            assert sink.on_processed(_emi_block(1.0)) is None
            assert sink.on_health(HealthEvent(1.0, "gpr", SensorState.FAULT)) is None
            assert sink.on_status(type("St", (), {"sensors": []})()) is None
        sink.close()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "SPEAKER STOPPED" in lines[0].getMessage()
    assert "\n" not in lines[0].getMessage()
    assert sink.off and stream.closed


def test_stream_that_raises_switches_the_sink_off(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeStream):
        @property  # type: ignore[override]
        def active(self) -> bool:
            raise RuntimeError("Error querying stream [PaErrorCode -9999]")

        @active.setter
        def active(self, value: bool) -> None:
            pass

    made: list[FakeStream] = []
    sink = SpeakerSink(stream_factory=lambda **kw: made.append(Broken(**kw)) or made[-1],
                       drain_s=0.0)  # fmt: skip
    assert sink.start() is None
    with caplog.at_level(logging.WARNING, logger="detect.sinks.speaker"):
        sink.on_status(type("St", (), {"sensors": []})())
        sink.on_alarm(_alarm())
        sink.on_status(type("St", (), {"sensors": []})())
    assert [r.getMessage() for r in caplog.records] == [
        "SPEAKER STOPPED: the audio device failed: Error querying stream [PaErrorCode -9999] "
        "(detection and recording go on)"
    ]
    assert sink.off


def test_synthesis_failure_plays_silence_then_switches_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, made = _sink()
    assert sink.start() is None
    stream = made[0]
    sink.on_alarm(_alarm())
    assert np.abs(stream.pull(0.2)).max() > 0.1

    def boom(n: int) -> np.ndarray:
        raise MemoryError("no memory")

    assert sink.synth is not None
    sink.synth.render = boom  # type: ignore[method-assign]
    x = stream.pull(0.1)  # the audio thread: silence, no exception
    assert np.all(x == 0.0)
    with caplog.at_level(logging.WARNING, logger="detect.sinks.speaker"):
        sink.on_alarm(_alarm())
        sink.on_alarm(_alarm())
    assert len(caplog.records) == 1 and "MemoryError" in caplog.records[0].getMessage()


def test_device_that_cannot_start_is_one_line() -> None:
    sink, made = _sink(fail_start=True)
    why = sink.start()
    assert why is not None and why.startswith("SPEAKER OFF: cannot start audio device default")
    assert "host error [-9999]" in why and "\n" not in why
    assert made[0].closed and sink.off
    assert sink.on_alarm(_alarm()) is None


def test_missing_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import sounddevice -> ImportError
    sink = SpeakerSink()
    why = sink.start()
    assert why == (
        'SPEAKER OFF: the sounddevice package is missing: pip install -e ".[sound]" '
        "(detection and recording go on)"
    )
    assert sink.on_alarm(_alarm()) is None and sink.off


def test_missing_portaudio_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # what sounddevice itself does at import when libportaudio is not installed
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    why = SpeakerSink().start()
    assert why is not None and "sudo apt install libportaudio2" in why and "\n" not in why


def test_run_goes_on_without_sound(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """``sound.speaker=true`` without the library: one loud line, the sink is not added."""
    from detect.app.live import _start_speaker
    from detect.config import compose

    monkeypatch.setitem(sys.modules, "sounddevice", None)
    cfg = compose(["sound.speaker=true", "sound.volume=0.3"])
    said: list[tuple[str, bool]] = []

    class Display:
        def message(self, text: str, loud: bool = False) -> None:
            said.append((text, loud))

    class Pipe:
        alarm_logic = type("L", (), {"config": type("C", (), {"cue": None})()})()

        def __init__(self) -> None:
            self.added: list[Any] = []

        def add_sink(self, s: Any) -> None:
            self.added.append(s)

    pipe = Pipe()
    assert _start_speaker(cfg, pipe, Display()) is None  # type: ignore[arg-type]
    assert len(said) == 1 and said[0][1] and "pip install" in said[0][0]
    assert pipe.added == []
    assert _start_speaker(compose([]), pipe, Display()) is None and len(said) == 1  # type: ignore[arg-type]
