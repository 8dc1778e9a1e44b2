"""Read back what the TensorBoard logger wrote: the event files of one run folder."""

from __future__ import annotations

from pathlib import Path

# Resuming with --ckpt_path last keeps writing into the same version_N folder.
RESUME_CONTINUES_RUN = True
# Steps an interrupted run logged after its checkpoint are dropped on resume (purge_step), so each step
# appears once.
REPLAYED_STEPS_DISCARDED = True


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All TensorBoard scalars of one run directory, as ``{tag: [(step, value), ...]}`` ordered by step.

    The directory is read as TensorBoard reads it: a resumed run's restart marker discards what the
    interrupted run logged after its checkpoint, so each step appears once.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {
        tag: sorted((event.step, event.value) for event in accumulator.Scalars(tag))
        for tag in accumulator.Tags()["scalars"]
    }


def read_commit(run_dir: Path) -> str:
    """The git commit of the run's latest attempt, as TensorBoard's Text tab shows it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    latest = max(accumulator.Tensors("provenance/text_summary"), key=lambda event: event.step)
    rows = [row.strip("| ").split(" | ") for row in latest.tensor_proto.string_val[0].decode().splitlines()]
    return dict(row for row in rows if len(row) == 2)["git_commit"]
