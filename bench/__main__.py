"""`make bench`: run every bench/bench_*.py module's main(), each printing ratios against a
raw baseline measured in the same run (these machines are noisy; absolute times are not
comparable across runs), then the SUMMARY: each module's headline figures (bench._common.
report), its target, met or TARGET MISSED, and the load average at the start and the end."""

from __future__ import annotations

import importlib
import sys
import traceback
from pathlib import Path

from bench import _common


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(path.stem for path in here.glob("bench_*.py"))
    wanted = [name for name in names if not argv or any(arg in name for arg in argv)]
    if not wanted:
        print("no benchmark matches" if argv else "no benchmarks yet")
        return 0
    load_at_start = _common.load_average()
    print(f"load average (1, 5, 15 min) at start: {_common.loads(load_at_start)}")
    failed = 0
    for name in wanted:
        print(f"== {name}", flush=True)
        reports = len(_common.REPORTS)
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as error:  # noqa: BLE001 - the other modules and the SUMMARY go on
            traceback.print_exc()
            _common.report_error(name, error)
            failed += 1
            continue
        if len(_common.REPORTS) == reports:  # a module that does not report (yet)
            _common.report(name)
    _common.print_summary(load_at_start)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
