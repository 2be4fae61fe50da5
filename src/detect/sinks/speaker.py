"""The console's sounds on the laptop's own speaker, for an operator without a browser.

Same sounds as the browser console (``sinks/console/static/console.js``): a smooth tone whose
pitch follows the metal signal (300-1500 Hz) and a buzzing one for the radar (110-440 Hz),
silent while their sensor is in FAULT; an alarm is a fast high-low warble of five short beeps,
a suspect one soft blip, a CUE a rising two-note chirp, a sensor going to FAULT a slower low
two-tone of six longer beeps.

:class:`Synth` makes the samples with numpy (pure: no device, no clock but the samples it has
rendered). Oscillators keep their phase from one block to the next and pitch, gain and volume
glide towards their targets (the browser's ``setTargetAtTime`` time constants), so a level
that jumps never clicks; the beeps have 5 ms raised-cosine edges for the same reason. Other
threads only append commands to a deque that :meth:`Synth.render` drains: the pipeline never
waits for the audio thread, nor the audio thread for the pipeline.

:class:`SpeakerSink` feeds it from the pipeline and plays it through a ``sounddevice``
(PortAudio) output stream with a callback. It never blocks nor raises into the pipeline: a
missing library or device is one line at the start and the run goes on without sound; a
device that fails later is one log line, the sink switches itself off, detection goes on.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from detect.alarms import EarlyCue
from detect.blocks import GprBlock, MdBlock
from detect.sinks.base import Sink
from detect.sinks.console.sink import LevelScale, emi_tone_level, gpr_tone_level

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 48_000.0
#: glide time constants (s), as the browser's setTargetAtTime: pitch, tone gain, volume
FREQ_TAU_S = 0.03
GAIN_TAU_S = 0.05
VOLUME_TAU_S = 0.02
#: a tone whose level has not been updated for this long fades out (no data, no tone)
STALE_S = 1.0
#: raised-cosine edge of every beep
RAMP_S = 0.005
#: softness of the radar's square wave: tanh(K sin) has the buzz of a square without the
#: infinitely steep edges (clicks and aliasing) of a hard one
SQUARE_K = 3.0
#: tones (<= 0.33 each) plus a beep (0.6) stay under full scale
HEADROOM = 0.75
MAX_VOICES = 16


@dataclass(frozen=True)
class ToneSpec:
    lo_hz: float
    hi_hz: float
    wave: str


@dataclass(frozen=True)
class Pattern:
    freqs_hz: tuple[float, ...]
    beep_s: float
    wave: str
    gain: float = 0.6
    gap_s: float = 0.03


#: the continuous tones, by sensor (console.js ``toneFollow``)
TONES = {"emi": ToneSpec(300.0, 1500.0, "sine"), "gpr": ToneSpec(110.0, 440.0, "square")}
#: the event sounds (console.js ``alarmSound`` ... ``faultSound``)
PATTERNS = {
    "alarm": Pattern((1400.0, 1000.0, 1400.0, 1000.0, 1400.0), 0.12, "saw"),
    "suspect": Pattern((660.0,), 0.08, "sine"),
    "cue": Pattern((880.0, 1320.0), 0.05, "triangle"),
    "fault": Pattern((300.0, 200.0) * 3, 0.25, "square"),
}


def level_fraction(level: float) -> float:
    """A normalised signal level (1 = background) -> 0..1 along the tone's pitch range."""
    if not math.isfinite(level):
        return 0.0
    return min(1.0, max(0.0, math.log2(1.0 + max(0.0, level)) / 3.0))


def tone_target(sensor: str, level: float, on: bool = True) -> tuple[float, float]:
    """(pitch_hz, gain) a sensor's tone glides to for ``level``; gain 0 when not ``on``."""
    spec = TONES[sensor]
    x = level_fraction(level)
    return spec.lo_hz + (spec.hi_hz - spec.lo_hz) * x, (0.08 + 0.25 * x) if on else 0.0


def wave(kind: str, phase: np.ndarray, freq_hz: float = 0.0, fs_hz: float = 0.0) -> np.ndarray:
    """One of the waveforms (peak 1) at ``phase`` (rad). ``saw`` is band-limited: harmonics
    of ``freq_hz`` below 0.45 ``fs_hz``, at most 8."""
    if kind == "sine":
        return np.sin(phase)
    if kind == "square":
        return np.tanh(SQUARE_K * np.sin(phase)) / math.tanh(SQUARE_K)
    if kind == "triangle":
        return np.arcsin(np.sin(phase)) * (2.0 / math.pi)
    if kind == "saw":
        n_h = max(1, min(8, int(0.45 * fs_hz / freq_hz))) if freq_hz > 0 else 8
        out = np.zeros_like(phase)
        for k in range(1, n_h + 1):
            out += np.sin(k * phase) / k
        return out * (2.0 / math.pi)
    raise ValueError(f"unknown waveform {kind!r}")


@functools.lru_cache(maxsize=32)
def pattern_wave(name: str, fs_hz: float = SAMPLE_RATE_HZ) -> np.ndarray:
    """The whole sound of event ``name`` (a key of :data:`PATTERNS`), float64, read-only."""
    p = PATTERNS[name]
    n_beep = round(p.beep_s * fs_hz)
    n_step = n_beep + round(p.gap_s * fs_hz)
    out = np.zeros(n_step * (len(p.freqs_hz) - 1) + n_beep)
    n_ramp = max(1, min(round(RAMP_S * fs_hz), n_beep // 2))
    env = np.ones(n_beep)
    edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_ramp) + 0.5) / n_ramp)
    env[:n_ramp] = edge
    env[-n_ramp:] = edge[::-1]
    t_s = np.arange(n_beep) / fs_hz
    for i, f in enumerate(p.freqs_hz):
        beep = p.gain * env * wave(p.wave, 2 * np.pi * f * t_s, f, fs_hz)
        out[i * n_step : i * n_step + n_beep] = beep
    out.setflags(write=False)
    return out


def _glide(start: float, target: float, n: int, tau_samples: float) -> np.ndarray:
    """Samples 1..n of an exponential approach from ``start`` to ``target``."""
    a = np.exp(-np.arange(1, n + 1) / tau_samples)
    return target + (start - target) * a


class _Tone:
    def __init__(self, spec: ToneSpec) -> None:
        self.spec = spec
        self.freq_hz = spec.lo_hz
        self.gain = 0.0
        self.target_hz = spec.lo_hz
        self.target_gain = 0.0
        self.phase = 0.0
        self.updated_n = -math.inf


class Synth:
    """The speaker's samples: two gliding tones plus the event sounds, mono float32.

    Control (:meth:`set_level`, :meth:`play`, :meth:`set_volume`) from any thread, never
    blocking; :meth:`render` from the audio thread. A command takes effect at the start of the
    next rendered block. Rendering a stretch in any chunking gives the same samples when no
    command comes in between.
    """

    def __init__(self, fs_hz: float = SAMPLE_RATE_HZ, volume: float = 0.6,
                 stale_s: float = STALE_S) -> None:  # fmt: skip
        if not (math.isfinite(fs_hz) and fs_hz > 0):
            raise ValueError(f"sample rate must be > 0 Hz, got {fs_hz}")
        self.fs_hz = float(fs_hz)
        self.stale_s = stale_s
        self.tones = {name: _Tone(spec) for name, spec in TONES.items()}
        self.volume = self._volume_target = min(1.0, max(0.0, float(volume)))
        #: (start sample, samples) of the event sounds playing or due
        self._voices: list[tuple[int, np.ndarray]] = []
        self._commands: deque[tuple[Any, ...]] = deque()
        #: samples rendered so far (the synth's clock)
        self.n = 0

    # -- control (any thread) --------------------------------------------------------
    def set_level(self, sensor: str, level: float, on: bool = True) -> None:
        """The signal level of ``sensor`` (a key of :data:`TONES`); ``on`` False: silent."""
        self._commands.append(("level", sensor, *tone_target(sensor, level, on)))

    def play(self, name: str) -> None:
        """Start the event sound ``name`` (a key of :data:`PATTERNS`)."""
        self._commands.append(("play", pattern_wave(name, self.fs_hz)))

    def set_volume(self, volume: float) -> None:
        self._commands.append(("volume", min(1.0, max(0.0, float(volume)))))

    @property
    def busy(self) -> bool:
        """An event sound is still playing or waiting to."""
        return bool(self._commands) or any(s + len(w) > self.n for s, w in self._voices)

    # -- audio thread ----------------------------------------------------------------
    def _apply(self) -> None:
        while True:
            try:
                cmd = self._commands.popleft()
            except IndexError:
                return
            if cmd[0] == "level":
                tone = self.tones[cmd[1]]
                tone.target_hz, tone.target_gain, tone.updated_n = cmd[2], cmd[3], self.n
            elif cmd[0] == "play":
                self._voices.append((self.n, cmd[1]))
                del self._voices[:-MAX_VOICES]
            elif cmd[0] == "volume":
                self._volume_target = cmd[1]

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples (float32 in [-1, 1])."""
        self._apply()
        fs = self.fs_hz
        mix = np.zeros(n)
        if n <= 0:
            return mix.astype(np.float32)
        for tone in self.tones.values():
            if self.n - tone.updated_n > self.stale_s * fs:
                tone.target_gain = 0.0  # no fresh data: no tone (never a stale pitch)
            if tone.gain < 1e-6 and tone.target_gain == 0.0:
                tone.gain = 0.0
                tone.freq_hz = tone.target_hz  # silent: nothing to glide audibly
                continue
            f = _glide(tone.freq_hz, tone.target_hz, n, FREQ_TAU_S * fs)
            g = _glide(tone.gain, tone.target_gain, n, GAIN_TAU_S * fs)
            phase = tone.phase + np.cumsum(f) * (2 * np.pi / fs)
            mix += g * wave(tone.spec.wave, phase)
            tone.freq_hz, tone.gain = float(f[-1]), float(g[-1])
            tone.phase = float(phase[-1] % (2 * np.pi))
        keep = []
        for start, w in self._voices:
            a, b = max(self.n, start), min(self.n + n, start + len(w))
            if b > a:
                mix[a - self.n : b - self.n] += w[a - start : b - start]
            if start + len(w) > self.n + n:
                keep.append((start, w))
        self._voices = keep
        vol = _glide(self.volume, self._volume_target, n, VOLUME_TAU_S * fs)
        self.volume = float(vol[-1])
        self.n += n
        return np.clip(mix * vol * HEADROOM, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------- sink
OFF_SUFFIX = "(detection and recording go on)"
INSTALL_PACKAGE = 'the sounddevice package is missing: pip install -e ".[sound]"'
INSTALL_PORTAUDIO = (
    "the PortAudio library is missing (on Debian/Ubuntu: sudo apt install libportaudio2)"
)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def sounddevice_stream(**kwargs: Any) -> Any:
    """A ``sounddevice.OutputStream`` (not started). Raises ImportError / OSError for a missing
    package / PortAudio library (see :meth:`SpeakerSink.start`)."""
    import sounddevice

    return sounddevice.OutputStream(dtype="float32", **kwargs)


def _device(value: Any) -> Any:
    """``sound.device``: None (default output), an index ("3" or 3) or part of a name."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


class SpeakerSink(Sink):
    """The pipeline's levels, cues, alarms and sensor health -> :class:`Synth` -> speaker.

    ``stream_factory(samplerate=, device=, channels=, callback=, finished_callback=)`` makes
    the output stream (default :func:`sounddevice_stream`; tests pass a fake). Nothing sounds
    until :meth:`start` succeeds.
    """

    name = "speaker"

    def __init__(self, volume: float = 0.6, device: Any = None, cue: EarlyCue | None = None,
                 stream_factory: Callable[..., Any] | None = None,
                 drain_s: float = 2.0) -> None:  # fmt: skip
        self.volume = volume
        self.device = _device(device)
        self.cue = cue if cue is not None else EarlyCue()
        self.stream_factory = stream_factory or sounddevice_stream
        #: at the end of the run, let a last alarm finish sounding for at most this long
        self.drain_s = drain_s
        self.stream: Any = None
        self.synth: Synth | None = None
        #: the sink switched itself off (or never started): every call returns at once
        self.off = True
        #: why the audio thread gave up (read and acted on in the pipeline thread)
        self._fault: str | None = None
        self._closing = False
        self._scales = {"gpr": LevelScale(), "emi": LevelScale()}
        self._levels = {"gpr": 0.0, "emi": 0.0}
        #: sensor state names; and which tone each sensor's blocks drive
        self._states: dict[str, str] = {}
        self._tone_of: dict[str, str] = {}
        self.n_underflows = 0

    # -- start / stop ----------------------------------------------------------------
    def start(self) -> str | None:
        """Open and start the output stream. None when it plays, else the one line that
        says why not (what to install, or the device's error); the sink then stays off."""
        try:
            stream = self.stream_factory(samplerate=None, device=self.device, channels=1,
                                         callback=self._callback,
                                         finished_callback=self._finished)  # fmt: skip
        except ImportError:
            return f"SPEAKER OFF: {INSTALL_PACKAGE} {OFF_SUFFIX}"
        except Exception as exc:  # sounddevice raises OSError without libportaudio
            if isinstance(exc, OSError) and "portaudio" in str(exc).lower():
                return f"SPEAKER OFF: {INSTALL_PORTAUDIO} {OFF_SUFFIX}"
            return self._off_line("open", exc)
        try:
            self.synth = Synth(float(stream.samplerate or SAMPLE_RATE_HZ), self.volume)
            self.stream = stream
            self.off = False
            stream.start()
        except Exception as exc:
            self.off = True
            self._close_stream(abort=True)
            return self._off_line("start", exc)
        return None

    def _off_line(self, what: str, exc: BaseException) -> str:
        device = "default" if self.device is None else repr(self.device)
        return f"SPEAKER OFF: cannot {what} audio device {device}: {_first_line(exc)} {OFF_SUFFIX}"

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's audio thread: samples, or silence when anything goes wrong."""
        try:
            if status and getattr(status, "output_underflow", False):
                self.n_underflows += 1
            if self.off or self.synth is None:
                outdata.fill(0)
                return
            outdata[:] = self.synth.render(frames)[:, None]
        except Exception as exc:
            outdata.fill(0)
            if self._fault is None:
                self._fault = f"sound synthesis failed: {type(exc).__name__}: {exc}"

    def _finished(self) -> None:
        if not self._closing and self._fault is None:
            self._fault = "the audio stream stopped (device unplugged or failed)"

    def _alive(self) -> bool:
        """Whether to make sound; switches the sink off (one log line) after a failure."""
        if self.off:
            return False
        if self._fault is not None:
            self._switch_off(self._fault)
            return False
        return True

    def _switch_off(self, why: str) -> None:
        self.off = True
        log.error("%s", self.stopped(why))
        self._close_stream(abort=True)

    def _close_stream(self, abort: bool) -> None:
        stream, self.stream = self.stream, None
        if stream is None:
            return
        self._closing = True
        try:
            if abort:
                stream.abort()
            else:
                stream.stop()
            stream.close()
        except Exception:  # the device is gone anyway
            log.debug("closing the audio stream failed", exc_info=True)

    def stopped(self, error: str) -> str:
        return f"SPEAKER STOPPED: {error} {OFF_SUFFIX}"

    # -- pipeline side ---------------------------------------------------------------
    def on_processed(self, block: Any) -> None:
        if not self._alive():
            return
        try:
            self._level(block)
            for _ in self.cue.feed(block):
                self._play("cue")
        except Exception as exc:  # a block we cannot read: silence, never an exception
            log.debug("speaker: block not used: %s", exc)

    def _level(self, block: Any) -> None:
        """The same normalised levels as the browser's tones (:class:`ConsoleSink`)."""
        if isinstance(block, GprBlock):
            tone = "gpr"
            data = np.asarray(block.data, dtype=np.float32)
            if data.size == 0:
                return
            level, scale = gpr_tone_level(data, self._scales[tone])
        elif isinstance(block, MdBlock):
            tone = "emi"
            d = np.asarray(block.data, dtype=np.float64)
            if d.size == 0:
                return
            _, level, scale = emi_tone_level(d, self._scales[tone])
        else:
            return
        sensor = str(block.header.sensor)
        self._tone_of[sensor] = tone
        self._levels[tone] = level / scale if math.isfinite(level) else 0.0
        if self.synth is not None:
            on = self._states.get(sensor) != "FAULT"
            self.synth.set_level(tone, self._levels[tone], on)

    def _play(self, name: str) -> None:
        if self.synth is not None:
            self.synth.play(name)

    def on_alarm(self, alarm: Any) -> None:
        if self._alive():
            self._play("suspect" if getattr(alarm, "tier", "alarm") == "suspect" else "alarm")

    def on_health(self, event: Any) -> None:
        if self._alive():
            state = getattr(event.state, "name", str(event.state))
            self._state(str(event.sensor), state)

    def on_status(self, status: Any) -> None:
        if not self._alive():
            return
        try:
            if self.stream is not None and not self.stream.active and not self._closing:
                self._switch_off("the audio stream stopped (device unplugged or failed)")
                return
        except Exception as exc:
            self._switch_off(f"the audio device failed: {_first_line(exc)}")
            return
        for s in status.sensors:
            state = s.get("state")
            self._state(str(s.get("sensor")), str(getattr(state, "name", state)))

    def _state(self, sensor: str, state: str) -> None:
        was = self._states.get(sensor)
        self._states[sensor] = state
        if state == "FAULT" and was != "FAULT":
            self._play("fault")
        tone = self._tone_of.get(sensor, sensor if sensor in TONES else None)
        if tone is not None and self.synth is not None and (state == "FAULT") != (was == "FAULT"):
            self.synth.set_level(tone, self._levels[tone], on=state != "FAULT")

    def close(self) -> None:
        """End of the run: tones fade, a last event sound may finish (``drain_s`` at most)."""
        if not self._alive() or self.stream is None or self.synth is None:
            return
        for tone in TONES:
            self.synth.set_level(tone, 0.0, on=False)
        deadline = time.monotonic() + self.drain_s
        while self.synth.busy and self._fault is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(min(self.drain_s, 5 * GAIN_TAU_S))  # the fade itself
        self.off = True
        self._close_stream(abort=False)
