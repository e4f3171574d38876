"""What every refusal of a hostile input must look like, and a time limit that turns a hang into a failure."""
from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import contextmanager

# A byte string planted in files (a secret beside the model, a tensor inside it) that no output may show, in
# any of the forms a message could print it.
CANARY = b"NCJAX-CANARY-7f3a"
TIME_LIMIT_S = 60  # generous: a refusal takes well under a second; a hang or a huge read would take longer


@contextmanager
def time_limit(seconds: int = TIME_LIMIT_S):
    """Raise TimeoutError in the main thread after `seconds`, even inside a blocking open() of a FIFO."""
    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(capsys, call: Callable[[], int], says: str) -> str:
    """Run a command's main: exit 2 with one line on stderr, `error: ...` holding `says`, no traceback, no
    character a terminal would obey. Returns the line."""
    with time_limit():
        code = call()
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    assert says in err[0], err[0]
    assert err[0].isprintable(), err[0]
    return err[0]


def canary_forms() -> list[str]:
    """How CANARY would look printed: as text, and its bytes as numbers the way Python and numpy list them."""
    numbers = [str(b) for b in CANARY[:6]]
    return [CANARY.decode(), CANARY[:8].decode(), ", ".join(numbers), " ".join(numbers), CANARY.hex()[:12]]
