"""Less of what profiling costs on each of Lightning's hook calls, when nothing is profiled.

A profiler that records nothing cheaply, and callback state keys (part of each call's profiler label)
computed once.
"""

from __future__ import annotations

import contextlib
import functools

from pytorch_lightning.profilers import PassThroughProfiler

# One empty context serves every call: it holds no state.
NOTHING = contextlib.nullcontext()


class NullProfiler(PassThroughProfiler):
    """Profiles nothing, as Lightning's default profiler does, for a fifth of its cost per hook call.

    Lightning wraps each call of a hook, of every callback and of the module, in ``profiler.profile(name)``.
    Its default builds a generator-based context manager each time (about 1 us), and with ten callbacks an
    epoch makes over a thousand such calls: about 2 ms of a 64 ms epoch on the digits example, on 2 CPU
    cores. This one returns the same empty context every time.
    """

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:
        return NOTHING


class FixedStateKey:
    """Mixin for a callback whose ``state_key`` depends only on its constructor's arguments: computed once.

    Lightning names the callback by its state key in the profiler label of every hook call, about 140 an
    epoch whether or not the callback uses the hook. ModelCheckpoint and EarlyStopping build theirs anew
    each time, from a dictionary of their settings and its ``repr``: 1-2 ms an epoch for the three of them.
    The key is the one Lightning computes, so checkpoints load alike with or without this mixin.
    """

    @functools.cached_property
    def state_key(self) -> str:
        return super().state_key
