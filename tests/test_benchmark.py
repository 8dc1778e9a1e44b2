"""The benchmark runs end to end (quick mode) so that it cannot rot; its numbers are judged by people."""

from __future__ import annotations

import re

from conftest import TEMPLATE, python, run


def test_benchmark_quick_mode_writes_a_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    run(python(str(TEMPLATE / "benchmarks" / "run.py"), "--quick", f"--out={out}"), cwd=tmp_path)
    table = out.read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert {"end-to-end wall time", "final validation accuracy"} <= set(rows)
    accuracies = [float(x) for x in re.findall(r"\| (0\.\d{4}) ", rows["final validation accuracy"])]
    assert len(accuracies) == 2
    assert all(0.5 < accuracy <= 1.0 for accuracy in accuracies)
    assert re.search(r"ratio \d+\.\d\dx", rows["end-to-end wall time"])


def test_readme_quotes_the_latest_results():
    results = (TEMPLATE / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").strip()
    assert "| end-to-end wall time |" in results
    assert results in (TEMPLATE / "README.md").read_text(encoding="utf-8")
