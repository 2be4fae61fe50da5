"""The operator's console: a live view with sound in the laptop's own browser.

:class:`ConsoleSink` (the pipeline side, :mod:`.sink`) publishes into a :class:`Hub`
(:mod:`.hub`); :class:`ConsoleServer` (:mod:`.server`, Starlette + uvicorn, imported only
when started) serves the page in ``static/`` and a WebSocket feed from its own thread.
"""

from detect.sinks.console.hub import OUTCOMES, Hub
from detect.sinks.console.sink import ConsoleSink

__all__ = ["OUTCOMES", "ConsoleSink", "Hub"]
