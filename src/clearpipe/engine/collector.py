"""Python's cyclic garbage collector, paused while clearpipe builds long-lived objects.

Importing torch and transformers and loading a model build hundreds of thousands of objects that
live as long as the process and almost no cyclic garbage, while the collector walks the growing
heap again and again. `paused` turns it off for such a block and then puts it back as it was:
`import clearpipe; clearpipe.load()` took 2.82-2.96 s with the collector on and 2.16-2.23 s with
it paused. Part of that is deferred, not saved: the objects built while paused are walked by the
first collections after it, which added about 0.25 s to the first batches classified after
`load` (2.6 s to load, then 0.49 s instead of 0.24 s for one pass of 256 SST-2 sentences).
Freezing them instead (`gc.freeze`) would save it, but would also freeze the caller's own
objects for the life of the process, which a library should not decide. The CLI does, as it owns
its process (`clearpipe.cli.startup`).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Disable automatic garbage collection inside the block; restore the previous state after.

    >>> with paused():
    ...     gc.isenabled()
    False
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
