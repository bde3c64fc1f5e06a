"""`make bench`: run every bench/bench_*.py module's main(), each printing ratios against a
raw baseline measured in the same run (these machines are noisy; absolute times are not
comparable across runs)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(path.stem for path in here.glob("bench_*.py"))
    wanted = [name for name in names if not argv or any(arg in name for arg in argv)]
    if not wanted:
        print("no benchmark matches" if argv else "no benchmarks yet")
        return 0
    for name in wanted:
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
