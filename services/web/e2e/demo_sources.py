"""The BFSI demo's sources in a fresh data dir, as `flowforge demo` sets them up: the
core-banking SQLite database in <data dir>/sources/ (where a sqlite connection's `database`
is looked up) and the CRM export, which the test uploads through the wizard. Prints their
paths as JSON."""

import json
import shutil
import sys
from pathlib import Path

from flowforge.demo_data import generate

data_dir = Path(sys.argv[1])
generated = generate(data_dir / "demo-data")
sources = data_dir / "sources"
sources.mkdir(parents=True, exist_ok=True)
shutil.copyfile(generated.sqlite, sources / "bfsi_core_banking.db")
print(json.dumps({"crmCsv": str(generated.crm_csv), "sqlite": "bfsi_core_banking.db"}))
