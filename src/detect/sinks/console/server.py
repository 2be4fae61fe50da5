"""The console's web server: Starlette + uvicorn (WebSockets) in its own thread.

Loopback only unless a host is set on purpose, and then only with a token (a console
anyone on the network can open could acknowledge alarms). Everything is served from the
package: no CDN, fonts or map tiles. A client that is slow, disconnects or sends garbage
is dropped with one log line; the pipeline never waits for the server (:class:`Hub`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hmac
import ipaddress
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from detect.sinks.console.hub import Hub

log = logging.getLogger("detect.console")

STATIC = Path(__file__).parent / "static"
#: seconds a send may take before the client counts as gone
SEND_TIMEOUT_S = 2.0
#: how often a connection looks for new messages
POLL_S = 0.04


class ConsoleError(RuntimeError):
    """The console cannot start (missing package, bad setting, port in use)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ConsoleError(
            f"console.host={host} serves the console beyond this laptop: set console.token too"
        )


def make_app(hub: Hub, token: str | None = None) -> Any:
    """The ASGI app: ``/`` (the page), ``/static/*``, ``/ws`` (the live feed)."""
    try:
        from starlette.applications import Starlette
        from starlette.responses import FileResponse, PlainTextResponse, Response
        from starlette.routing import Mount, Route, WebSocketRoute
        from starlette.staticfiles import StaticFiles
        from starlette.websockets import WebSocket, WebSocketDisconnect
    except ImportError as exc:
        raise ConsoleError(
            "the console needs starlette and uvicorn: pip install 'detect[console]'"
        ) from exc

    def allowed(params: Any) -> bool:
        return token is None or hmac.compare_digest(str(params.get("token", "")), token)

    async def index(request: Any) -> Response:
        if not allowed(request.query_params):
            return PlainTextResponse("console token missing or wrong", status_code=403)
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def feed(ws: WebSocket) -> None:
        if not allowed(ws.query_params):
            await ws.close(code=1008)
            return
        await ws.accept()
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        hub.n_clients += 1
        sender = asyncio.create_task(_send_loop(ws, hub))
        try:
            while True:
                text = await ws.receive_text()
                reply = _handle(hub, text)
                await asyncio.wait_for(ws.send_text(json.dumps(reply)), SEND_TIMEOUT_S)
        except WebSocketDisconnect:
            log.info("console client %s disconnected", peer)
        except _Garbage as exc:
            log.warning("console client %s dropped: %s", peer, exc)
            await _close(ws, 1003)
        except Exception as exc:  # slow, broken or gone: drop it, one line
            log.warning("console client %s dropped: %s", peer, type(exc).__name__)
            await _close(ws, 1011)
        finally:
            hub.n_clients -= 1
            sender.cancel()

    routes = [
        Route("/", index),
        WebSocketRoute("/ws", feed),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes)


class _Garbage(ValueError):
    pass


async def _close(ws: Any, code: int) -> None:
    with contextlib.suppress(Exception):  # already gone
        await ws.close(code=code)


async def _send_loop(ws: Any, hub: Hub) -> None:
    """Send the snapshot, then every new message; a lagging client skips to a snapshot.
    A send that does not finish in SEND_TIMEOUT_S closes the connection."""
    try:
        seq, msgs = hub.snapshot()
        while True:
            if msgs:
                text = "[" + ",".join(msgs) + "]"
                await asyncio.wait_for(ws.send_text(text), SEND_TIMEOUT_S)
            await asyncio.sleep(POLL_S)
            got = hub.since(seq)
            seq, msgs = hub.snapshot() if got is None else got
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("console client dropped (send): %s", type(exc).__name__)
        await _close(ws, 1011)


def _handle(hub: Hub, text: str) -> dict[str, Any]:
    """One message from the browser: ``{"type": "ack", "id": ..., "outcome": ...}`` or
    ``{"type": "ping"}``. Anything else is garbage (the client is dropped)."""
    try:
        msg = json.loads(text)
    except ValueError:
        raise _Garbage("not JSON") from None
    if not isinstance(msg, dict) or msg.get("type") not in ("ack", "ping"):
        raise _Garbage("unknown message")
    if msg["type"] == "ping":
        return {"type": "pong"}
    utc = _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    try:
        rec = hub.acknowledge(str(msg.get("id")), str(msg.get("outcome")), utc)
    except ValueError as exc:
        return {"type": "ack_error", "id": msg.get("id"), "error": str(exc)}
    except OSError as exc:  # the outcome could not be written: say so on the console
        log.error("console: cannot write the outcome of %s: %s", msg.get("id"), exc)
        return {"type": "ack_error", "id": msg.get("id"), "error": f"NOT SAVED: {exc}"}
    return {"type": "ack_ok", **rec}


class ConsoleServer:
    """uvicorn in a daemon thread; :meth:`start` returns once it listens (or raises)."""

    def __init__(self, hub: Hub, host: str = "127.0.0.1", port: int = 8765,
                 token: str | None = None) -> None:  # fmt: skip
        check_binding(host, token)
        self.hub = hub
        self.host = host
        self.port = port
        self.token = token
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        tok = f"?token={self.token}" if self.token else ""
        return f"http://{host}:{self.port}/{tok}"

    def start(self, timeout_s: float = 10.0) -> str:
        try:
            import uvicorn
        except ImportError as exc:
            raise ConsoleError(
                "the console needs starlette and uvicorn: pip install 'detect[console]'"
            ) from exc
        app = make_app(self.hub, self.token)
        from uvicorn.config import WS_PROTOCOLS

        ws = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "websockets"
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning",
                                ws=ws, lifespan="off", access_log=False)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)
        self._thread.start()
        t0 = time.monotonic()
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConsoleError(f"console cannot listen on {self.host}:{self.port}")
            if time.monotonic() - t0 > timeout_s:
                raise ConsoleError(f"console did not start within {timeout_s:g} s")
            time.sleep(0.02)
        if self.port == 0:  # the port the OS chose
            socks = [s for srv in self._server.servers for s in srv.sockets]
            self.port = int(socks[0].getsockname()[1])
        return self.url

    def _run(self) -> None:
        try:
            self._server.run()
        except SystemExit:  # uvicorn exits when it cannot bind: the thread just ends
            log.debug("console server exited", exc_info=True)
        except Exception:
            log.exception("console server failed (detection goes on)")

    def stop(self, timeout_s: float = 3.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
