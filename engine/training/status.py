"""A run's status, defined once: what a training run or background job is doing, or how it ended.

A `StrEnum`: each member is its own lower-case name as a string, so saved runs and events keep
the plain words they always stored ("finished", ...), and read back as members.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is: waiting, working, or how it ended."""

    QUEUED = "queued"  # waiting for a free training slot
    RUNNING = "running"
    FINISHED = "finished"  # every step done
    STOPPED = "stopped"  # its visitor pressed Stop: a usable model of the steps so far
    DIVERGED = "diverged"  # the loss left every sensible range: no usable model
    ABANDONED = "abandoned"  # its visitor left; stopped by the service, the model kept
    FAILED = "failed"  # the training thread raised


ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
# A run that ended so has a trained model (predict, download, the Sketch lab).
USABLE = frozenset({RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.ABANDONED})
# The statuses a saved run can have.
ENDED = frozenset({RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED,
                   RunStatus.ABANDONED})
