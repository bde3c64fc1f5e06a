"""bench/bench_lineage.py runs end to end at a tiny scale and prints every figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_lineage_benchmark_runs_and_prints_its_figures():
    env = {**os.environ, "FLOWFORGE_BENCH_SCALE": "0.005"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "bench_lineage"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for figure in (
        "raw baseline: one edge row by its source",
        "depth 5 both, typical (a gold table)",
        "depth 5 both, widest (shared source)",
        "raw baseline: INSERT of one row per transaction",
        "record_event, one per transaction",
        "record_events, 500 per transaction",
    ):
        assert figure in out, out
    assert "-- SQLite" in out and "nodes" in out
