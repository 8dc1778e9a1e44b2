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
    # A time per epoch for each kind, by slope and inside the run (1 and 2 epochs are too few to judge it),
    # and the extras' ratio.
    assert len(per_epoch) == 2
    for cells in per_epoch:
        assert all(re.fullmatch(r"-?\d+\.\d ms", cell) for cell in cells[:3]), cells
        assert re.fullmatch(r"ratio -?\d+\.\d\dx", cells[3]), cells
    hand, stock, default = table["final validation accuracy"][:3]
    assert stock == "n/a" and all(0.5 < float(accuracy) <= 1.0 for accuracy in (hand, default))


def test_readme_quotes_the_latest_results():
    results = (TEMPLATE / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").strip()
    assert all(column in results for column in COLUMNS)
    assert results in (TEMPLATE / "README.md").read_text(encoding="utf-8")
