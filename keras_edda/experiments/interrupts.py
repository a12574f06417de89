"""Stopping a long comparison cleanly on Ctrl-C or `kill -INT`, also when it runs in the background.

A process started in the background by a non-interactive shell inherits
SIGINT as ignored; `installed()` restores a handler. The KeyboardInterrupt
the handler raises can be swallowed when it lands in a finaliser (`__del__`
of a TensorFlow object prints "Exception ignored" and goes on), so the flag
is checked again after every training batch and every run (`check`).
"""

import contextlib
import signal
import sys
import threading

INTERRUPTED = threading.Event()


def _on_sigint(signum, frame):
    INTERRUPTED.set()
    raise KeyboardInterrupt


def check(*args, **kwargs):
    """Raises `KeyboardInterrupt` when an interrupt arrived (also one a finaliser swallowed)."""
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


def on_unraisable(unraisable):
    """`sys.unraisablehook`: a KeyboardInterrupt swallowed in a finaliser is acted on at the next `check`."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        INTERRUPTED.set()
        return
    sys.__unraisablehook__(unraisable)


@contextlib.contextmanager
def installed():
    """Installs the SIGINT handler (main thread only) and the unraisable hook; restores both after."""
    INTERRUPTED.clear()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT), sys.unraisablehook
    if in_main_thread:
        signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = on_unraisable
    try:
        yield
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous[0])
        sys.unraisablehook = previous[1]
