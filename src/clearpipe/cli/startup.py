"""Start-up of a CLI process without the cyclic garbage collector.

Importing torch and transformers and loading a model create about 625,000 objects that live as
long as the process, and little cyclic garbage (a full collection right after loading the
embedded model found 12,000 objects to free). With the collector on, it walked the growing heap
again and again while it was built: `clearpipe classify "x"` took 3.62-3.73 s from process start
to printed answer, and 2.83-3.15 s with the collector off until the model was loaded.

`main` pauses the collector; each command resumes it once its model is loaded (or at once, for
commands that run long anyway), after moving everything alive into the permanent generation
(`gc.freeze`), so that later collections, during `predict` over a large file or in the server,
do not walk it either. What little cyclic garbage start-up left stays for the process's life.
"""

from __future__ import annotations

import gc


def pause_collector() -> None:
    """Stop automatic garbage collection while the process imports and loads.

    >>> pause_collector(); resume_collector()
    """
    gc.disable()


def resume_collector() -> None:
    """Freeze what start-up allocated and collect garbage again from here on."""
    gc.freeze()
    gc.enable()
