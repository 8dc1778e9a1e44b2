"""The data-loading benchmark runs end to end (quick mode), so that it cannot rot; the README quotes it."""

from __future__ import annotations

import re

import pytest
from conftest import TEMPLATE, python, run
from test_benchmark import tables

KINDS = ["hand-written", "cold", "first run", "cached"]  # quick mode leaves out the like-for-like row
RESULTS = [TEMPLATE / "benchmarks" / name for name in ("DATA_LOADING.md", "DATA_LOADING_SMALL.md")]


@pytest.mark.slow
def test_quick_mode_measures_every_loader_at_two_sizes(tmp_path):
    out = tmp_path / "DATA_LOADING.md"
    run(python(str(TEMPLATE / "benchmarks" / "data_loading.py"), "--quick", f"--out={out}"), cwd=tmp_path)
    (header, *rows), (_, *targets) = tables(out.read_text(encoding="utf-8"))
    memory = ["peak RSS, summed", "peak PSS, summed"]
    assert header == ["images", "loader", "images/s", "vs hand-written", *memory]
    assert [(row[0], row[1]) for row in rows] == [(count, kind) for count in ("200", "800") for kind in KINDS]
    for _, kind, rate, versus, *peaks in rows:
        assert float(rate.replace(",", "")) > 0 and re.fullmatch(r"\d+\.\d\dx", versus), kind
        # Every run holds torch in at least one process: hundreds of megabytes, read from /proc.
        assert all(re.fullmatch(r"\d+\.\d\d GB", peak) and float(peak[:-3]) > 0.1 for peak in peaks), kind
    assert [row[2] for row in targets] == ["not judged in quick mode"] * len(targets)
    assert [row[0] for row in targets][-3:] == [
        f"peak RSS, 800 vs 200 images, {kind}" for kind in ("cold", "first run", "cached")
    ]


@pytest.mark.parametrize("results", RESULTS, ids=lambda path: path.name)
def test_the_readme_quotes_the_latest_results(results):
    text = results.read_text(encoding="utf-8").strip()
    assert "| hand-written |" in text and "not judged" not in text
    assert text in (TEMPLATE / "README.md").read_text(encoding="utf-8")
