"""Reader threads, bounded queues, overflow accounting, the multi source, transport, discovery."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from detect.drivers.emulate import Emulator, HeadEncoder, NmeaEncoder, TcpLink
from detect.drivers.feed import make_feed

from detect.app.devices import devices_task
from detect.blocks import GprBlock, GprHeader, SensorState
from detect.config import compose
from detect.sources.base import Item, Source, SourceError, SourceExhausted
from detect.sources.discovery import describe, format_table, match_driver
from detect.sources.multi import MultiSource
from detect.sources.threaded import ThreadedSource
from detect.sources.transport import Transport
from driver_contract import read_until


class _Counting(Source):
    """Finite fake: ``n`` one-trace blocks as fast as asked, optional failures."""

    sensors = ("gpr",)

    def __init__(self, n: int = 50, fail_every: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        self.n, self.fail_every, self.i = n, fail_every, 0

    def _open(self) -> None:
        pass

    def _read(self, timeout_s: float) -> list[Item]:
        if self.i >= self.n:
            raise SourceExhausted(self.name)
        self.i += 1
        if self.fail_every and self.i % self.fail_every == 0:
            raise RuntimeError("decoder bug")
        self.health["gpr"].frames_received(1)
        return [GprBlock.build(np.full((1, 4), self.i), GprHeader(dt_ns=0.1), seq=[self.i])]


def _drain(src: Source) -> list[Any]:
    out: list[Any] = []
    while True:
        try:
            out += src.read(0.5)
        except SourceExhausted:
            return out


def test_threaded_delivers_everything_in_order_then_exhausts() -> None:
    src = ThreadedSource(_Counting(200), queue_size=1000)
    with src:
        items = _drain(src)
    assert [int(b.seq[0]) for b in items] == list(range(1, 201))
    assert src.health["gpr"].counters.overflows == 0


def test_overflow_drops_oldest_and_is_counted_never_silent() -> None:
    src = ThreadedSource(_Counting(100), queue_size=10)
    with src:
        assert src.done.wait(5.0)
        items = _drain(src)
    c = src.health["gpr"].counters
    got = [int(b.seq[0]) for b in items]
    assert len(got) == 10 and got == list(range(91, 101))
    assert c.overflows == 90 and c.dropped_frames == 90
    src.health["gpr"].mark_connected(True)
    src.health["gpr"].frames_received(1)
    src.health["gpr"].update()
    assert src.health["gpr"].state == SensorState.DEGRADED


def test_exception_in_read_never_kills_the_thread() -> None:
    src = ThreadedSource(_Counting(30, fail_every=3), queue_size=100)
    with src:
        items = _drain(src)
    assert len(items) == 20 and src.thread_errors == 10
    assert src.health["gpr"].counters.corrupt_frames == 10


def test_close_stops_the_reader_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    src = ThreadedSource(_Counting(10**9), queue_size=4)
    src.open()
    time.sleep(0.05)
    src.close()
    assert {t.ident for t in threading.enumerate()} - before == set()


def test_multi_source_combines_head_and_gps_end_to_end() -> None:
    head = Emulator(HeadEncoder(), TcpLink(), make_feed("synthetic", 10.0)).start()
    gps = Emulator(NmeaEncoder(), TcpLink(), make_feed("synthetic", 10.0)).start()
    try:
        src = MultiSource(
            {
                "head": {"kind": "sensor_head", "url": head.address},
                "gps": {"kind": "gps_nmea", "url": gps.address, "stall_timeout_s": 1.0},
            }
        )
        assert src.sensors == ("gpr", "emi", "gps")
        with src:
            items = read_until(src, lambda it: len({type(i).__name__ for i in it}) == 3, 4.0)
            assert all(src.health[s].state == SensorState.OK for s in src.sensors)
        assert {type(i).__name__ for i in items} == {"GprBlock", "MdBlock", "GpsFix"}
    finally:
        head.stop()
        gps.stop()


def test_multi_source_rejects_duplicate_sensors() -> None:
    with pytest.raises(ValueError, match="not unique"):
        MultiSource(
            {
                "a": {"kind": "gps_nmea", "url": "loop://"},
                "b": {"kind": "gps_ubx", "url": "loop://"},
            }
        )


def test_head_gps_config_composes_into_a_multi_source() -> None:
    from omegaconf import OmegaConf

    from detect.sources.registry import create_source

    cfg = compose(
        ["source=head_gps", "source.parts.head.url=loop://", "source.parts.gps.url=loop://"]
    )
    src = create_source(OmegaConf.to_container(cfg.source))
    assert isinstance(src, MultiSource) and src.sensors == ("gpr", "emi", "gps")


def test_transport_names_the_port_in_one_line() -> None:
    t = Transport("/dev/does-not-exist-detect")
    with pytest.raises(SourceError, match="cannot open /dev/does-not-exist-detect") as e:
        t.open()
    assert "\n" not in str(e.value)


def test_discovery_matches_known_ids_and_handles_zero_ports(capsys: Any) -> None:
    ports = [
        SimpleNamespace(
            device="/dev/ttyACM0",
            vid=0x1546,
            pid=0x01A9,
            description="u-blox GNSS",
            serial_number=None,
        ),
        SimpleNamespace(
            device="/dev/ttyUSB0", vid=0x0403, pid=0x6015, description="FT230X", serial_number="A1"
        ),
        SimpleNamespace(
            device="/dev/ttyS0", vid=None, pid=None, description="n/a", serial_number=None
        ),
    ]
    infos = describe(ports)
    by_dev = {i.device: i for i in infos}
    assert by_dev["/dev/ttyACM0"].driver == "gps_ubx"
    assert by_dev["/dev/ttyUSB0"].driver == "sensor_head"
    assert by_dev["/dev/ttyS0"].driver is None
    assert by_dev["/dev/ttyACM0"].usb_id == "1546:01a9"
    assert match_driver(0x2341, 0x0043)[0] == "ascii_emi"
    assert "no serial ports" in format_table([])
    assert devices_task(compose([])) == 0
    out = capsys.readouterr().out
    assert "PORT" in out or "no serial ports" in out
