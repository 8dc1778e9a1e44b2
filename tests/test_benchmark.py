"""The benchmark runs end to end (quick mode) so that it cannot rot; its numbers are judged by people."""

from __future__ import annotations

import re

import pytest
from conftest import TEMPLATE, python, run

COLUMNS = ["hand-written loop", "stock Lightning", "default config"]


@pytest.mark.slow
def test_benchmark_quick_mode_decomposes_the_time(tmp_path):
    out = tmp_path / "RESULTS.md"
    run(python(str(TEMPLATE / "benchmarks" / "run.py"), "--quick", f"--out={out}"), cwd=tmp_path)
    lines = [line for line in out.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    header, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    assert header[1:4] == COLUMNS
    table = {row[0]: row[1:] for row in rows}
    per_epoch = [cells for measure, cells in table.items() if measure.startswith("time per epoch")]
    # A time per epoch by slope and inside the run for each kind, and for stock and default taking turns
    # epoch by epoch; the extras' ratio of each (1 and 2 epochs are too few to judge it).
    assert len(per_epoch) == 3
    slope, inside, turns = per_epoch
    assert turns[0] == "n/a"
    for times, ratio in ((slope[:3], slope[3]), (inside[:3], inside[3]), (turns[1:3], turns[3])):
        assert all(re.fullmatch(r"-?\d+\.\d ms", cell) for cell in times), times
        assert re.fullmatch(r"ratio -?\d+\.\d\dx", ratio), ratio
    hand, stock, default = table["final validation accuracy"][:3]
    assert stock == "n/a" and all(0.5 < float(accuracy) <= 1.0 for accuracy in (hand, default))


def test_readme_quotes_the_latest_results():
    results = (TEMPLATE / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").strip()
    assert all(column in results for column in COLUMNS)
    assert results in (TEMPLATE / "README.md").read_text(encoding="utf-8")
