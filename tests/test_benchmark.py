"""The benchmark runs end to end (quick mode) so that it cannot rot; its numbers are judged by people."""

from __future__ import annotations

import re
import sys

import pytest
from conftest import TEMPLATE, python, run

sys.path.append(str(TEMPLATE / "benchmarks"))
from turns import EXTRAS  # noqa: E402

COLUMNS = ["hand-written loop", "stock Lightning", "default config"]
MILLISECONDS = r"-?\d+\.\d ms"
RATIO = r"ratio -?\d+\.\d\dx"


def tables(markdown: str) -> list[list[list[str]]]:
    """Each Markdown table in ``markdown``: its rows (the header first), each a list of its cells."""
    found, rows = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("| "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            found.append([row for row in rows if set(row[0]) != {"-"}])  # the separator row left out
            rows = []
    return found


@pytest.mark.slow
def test_benchmark_quick_mode_decomposes_the_time(tmp_path):
    out = tmp_path / "RESULTS.md"
    run(python(str(TEMPLATE / "benchmarks" / "run.py"), "--quick", f"--out={out}"), cwd=tmp_path)
    (header, *rows), (slope_header, *slope_costs), (costs_header, *costs) = tables(
        out.read_text(encoding="utf-8")
    )
    assert header[1:4] == COLUMNS
    table = {row[0]: row[1:] for row in rows}
    per_epoch = [cells for measure, cells in table.items() if measure.startswith("time per epoch")]
    # A time per epoch by slope and inside the run for each kind, and for stock and default taking turns
    # epoch by epoch; the extras' ratio of each (3 epochs are too few to judge it).
    assert len(per_epoch) == 3
    slope, inside, turns = per_epoch
    assert turns[0] == "n/a"
    for times, ratio in ((slope[:3], slope[3]), (inside[:3], inside[3]), (turns[1:3], turns[3])):
        assert all(re.fullmatch(MILLISECONDS, cell) for cell in times), times
        assert re.fullmatch(RATIO, ratio), ratio
    # Stock and default with one intra-op thread each, taking turns with the others.
    (one_thread,) = [cells for measure, cells in table.items() if "OMP_NUM_THREADS=1" in measure]
    assert one_thread[0] == "n/a" and all(re.fullmatch(MILLISECONDS, cell) for cell in one_thread[1:3])
    assert re.fullmatch(RATIO, one_thread[3]), one_thread
    hand, stock, default = table["final validation accuracy"][:3]
    assert stock == "n/a" and all(0.5 < float(accuracy) <= 1.0 for accuracy in (hand, default))

    # Where the extras go end to end: each group's slope, as the main table's slopes for default and stock.
    assert slope_header[1:3] == ["time per epoch (slope)", "what they cost an epoch"]
    (first, *groups, added, last) = slope_costs
    assert first[:2] == ["none: the default config", slope[2]]
    assert last[:2] == ["all: stock Lightning", slope[1]]
    assert [name.split(" (")[0] for name, *_ in groups] == list(EXTRAS)
    assert all(re.fullmatch(MILLISECONDS, cells[i]) for _, *cells in groups for i in (0, 1)), groups
    assert re.fullmatch(MILLISECONDS, added[2]), added

    # Where the extras go inside the runs: the default, the default less each group of extras, then stock;
    # each with torch's threads, then with one intra-op thread.
    assert costs_header[2] == "what they cost an epoch" and costs_header[5].endswith(", one intra-op thread")
    (first, *groups, added, last) = costs
    assert first[:2] == ["none: the default config", turns[2]] and first[4] == one_thread[2]
    assert last[:2] == ["all: stock Lightning", turns[1]] and last[4] == one_thread[1]
    for cost, share in ((last[2], last[3]), (last[5], last[6])):
        # All the extras are 100% of themselves, unless the default was not slower (quick mode is noise).
        assert share == ("100%" if float(cost.split()[0]) > 0 else "n/a") or cost == "0.0 ms", (cost, share)
    named = {}
    for (name, *cells), group in zip(groups, EXTRAS, strict=True):
        # Each group names what it turns off, as the rendered config lists it: at least one class.
        assert (match := re.fullmatch(rf"{group} \((\w+(?: x\d+)?(?:, \w+(?: x\d+)?)*)\)", name)), name
        named[group] = {listed.split(" x")[0] for listed in match[1].split(", ")}
        assert all(re.fullmatch(MILLISECONDS, cells[i]) for i in (0, 1, 3, 4)), cells
    assert sum(len(names) for names in named.values()) == len(set().union(*named.values()))  # disjoint
    assert {"ModelCheckpoint", "LastCheckpoint", "ProgressBar", "StopOnNonFiniteLoss"} <= set().union(
        *named.values()
    )
    assert re.fullmatch(MILLISECONDS, added[2]) and re.fullmatch(MILLISECONDS, added[5])


def test_readme_quotes_the_latest_results():
    results = (TEMPLATE / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").strip()
    assert all(column in results for column in COLUMNS)
    assert results in (TEMPLATE / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_provenance_benchmark_quick_mode_times_each_part_and_whole_runs(tmp_path):
    out = tmp_path / "PROVENANCE.md"
    run(python(str(TEMPLATE / "benchmarks" / "provenance.py"), "--quick", f"--out={out}"), cwd=tmp_path)
    (header, *parts), (runs_header, *runs) = tables(out.read_text(encoding="utf-8"))
    assert header[1:] == ["committed code", "with uncommitted changes"]
    assert [row[0] for row in parts][-1] == "a whole attempt, written" and len(parts) == 4
    assert all(re.fullmatch(MILLISECONDS, cell) for row in parts for cell in row[1:]), parts
    assert [row[0] for row in runs[:2]] == ["as generated", "recording nothing"]
    assert all(re.fullmatch(r"\d+\.\d\d s", row[1]) for row in runs[:2]), runs
    assert re.fullmatch(r"-?\d+ ms \(-?\d+ to -?\d+ ms\)", runs[2][1]), runs


def test_readme_quotes_the_latest_provenance_results():
    results = (TEMPLATE / "benchmarks" / "PROVENANCE.md").read_text(encoding="utf-8").strip()
    assert results in (TEMPLATE / "README.md").read_text(encoding="utf-8")
