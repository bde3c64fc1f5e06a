"""The built wheel carries every file FlowForge reads at run time (issue 12: the BFSI
template was missing from an image built with ``pip install .``).

Builds the wheel from this checkout (``pip wheel . --no-deps``, which fetches the build
backend like any build), installs it with ``--no-deps`` into a fresh venv whose only other
packages are this environment's dependencies (a ``.pth`` line, not the editable install),
and from there migrates a new catalog and reads the templates. About 30 s."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=240,
    )
    [built] = out.glob("flowforge-*.whl")
    return built


def test_the_wheel_lists_the_templates_and_the_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "flowforge_catalog/templates/builtin/bfsi_customer_360.json" in names
    # Each service's own migration chain, and the one chain of before (for old databases).
    for chain in ("flowforge_catalog", "flowforge_orchestrator", "flowforge_lineage"):
        assert f"{chain}/migrations/env.py" in names
    assert "flowforge_lineage/migrations/versions/lineage_0001_baseline.py" in names
    assert "flowforge_shared/db/legacy_migrations/versions/0005_templates.py" in names
    # The rules library is a top-level package of its own (shared/flowforge_rules).
    assert "flowforge_rules/expressions/checker.py" in names
    assert "flowforge_rules/network.py" in names
    # So is the job runtime the workers and the embedded orchestrator share.
    assert "flowforge_runtime/job.py" in names
    assert "flowforge_runtime/worker.py" in names
    # Every non-Python file of the packages is in the wheel.
    for folder in ("flowforge", "shared", "services"):
        for path in (ROOT / folder).rglob("*"):
            parts = path.relative_to(ROOT).parts
            if (
                path.is_dir()
                or path.suffix in {".py", ".pyc", ".md"}
                or "__pycache__" in parts
                or not any(part.startswith("flowforge") for part in parts[:-1])
            ):
                continue
            inside = next(i for i, part in enumerate(parts) if part.startswith("flowforge"))
            assert "/".join(parts[inside:]) in names, f"{path} is not in the wheel"


def test_an_install_from_the_wheel_has_the_bfsi_template(wheel, tmp_path):
    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(fresh)
    python = fresh / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
        + ["--target", str(site), str(wheel)],
        check=True,
        timeout=120,
    )
    # The dependencies come from this environment's site-packages, added as a plain path: its
    # .pth files (the editable install of this checkout among them) are not run.
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import flowforge_catalog
        from flowforge_catalog.templates.builtin import builtin_templates

        assert Path(flowforge_catalog.__file__).is_relative_to(sys.argv[1]), flowforge_catalog
        assert "bfsi-customer-360" in [t["id"] for t in builtin_templates()]

        from fastapi.testclient import TestClient

        from flowforge.app import create_app
        from flowforge_shared.settings import Settings

        data = Path(sys.argv[2])
        settings = Settings(data_dir=data, admin_token="ff_wheel_check", auto_migrate=True)
        with TestClient(create_app(settings)) as client:
            answer = client.get(
                "/api/templates/bfsi-customer-360",
                headers={"Authorization": "Bearer ff_wheel_check"},
            )
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["jobs"]) == 10, answer.json()
        print("ok")
        """
    )
    # Nothing of this checkout on the path but what the wheel installed.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    result = subprocess.run(
        [str(python), "-c", check, str(site), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("ok")
