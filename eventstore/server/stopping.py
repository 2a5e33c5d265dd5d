"""Know that the server is stopping, so endless responses end instead of holding it up.

uvicorn's graceful shutdown waits for every open response; an event stream never ends by
itself, so one open browser tab would hold SIGTERM for the whole ``graceful_timeout`` and
then be cut mid-message. The app chains a handler in front of uvicorn's for SIGTERM and
SIGINT that sets a flag; streams and long-polls check it between polls and end cleanly
(EventSource reconnects with ``Last-Event-ID`` to the next replica, nothing missed).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signal(callback: Callable[[], object]) -> Callable[[], None]:
    """Run ``callback`` first on SIGTERM/SIGINT, then the handler installed before; an undo.

    Signals belong to the main thread: elsewhere (an app under a test client) nothing is
    installed and the undo does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        callback()
        prior = previous[signal.Signals(signum)]
        if callable(prior):
            prior(signum, frame)
        elif prior == signal.SIG_DFL:  # what would have happened without us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)

    def undo() -> None:
        for sig, prior in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, prior)

    return undo
