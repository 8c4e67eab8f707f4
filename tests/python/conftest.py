"""Shared fixtures: one generated dataset and one full warehouse build per test session.

The models that need a realistic history (ML, truth checks) all read the same build, so
the suite pays for generating and building it once.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbt_project import _TARGET, REPO, run_dbt

# Three months like the demo (so churn has a training and a test window), small enough
# for CI. Models whose planted-truth checks need it assert at this size.
SYNTH_EVENTS = 600_000
SYNTH_ARGS = ["--events", str(SYNTH_EVENTS), "--start", "2019-10-01", "--days", "92",
              "--seed", "7", "--format", "csv.gz", "--split", "month", "--quiet"]


@dataclass(frozen=True)
class SynthDataset:
    """A generated dataset: event files, truth sidecar and its manifest."""
    events_glob: Path
    truth_dir: Path
    manifest: dict


@dataclass(frozen=True)
class Warehouse:
    """A DuckDB file built by `dbt build` from `dataset`, and the build's output.

    `target_dir` keeps that build's manifest.json and run_results.json (the shared dbt
    target folder is overwritten by later runs).
    """
    database: Path
    dataset: SynthDataset
    build_log: str
    target_dir: Path | None = None


@pytest.fixture(scope="session")
def real_slice() -> Path:
    """The first 17,434 rows of the real REES46 2019-Oct.csv (see README, Credits)."""
    return REPO / "tests/fixtures/rees46/rees46_2019-Oct_first17434.csv"


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> SynthDataset:
    out = tmp_path_factory.mktemp("synth")
    subprocess.run([sys.executable, "-m", "ml.synth", *SYNTH_ARGS, "--out", str(out)],
                   cwd=REPO, check=True)
    return SynthDataset(
        events_glob=out / "events" / "*.csv.gz",
        truth_dir=out / "truth",
        manifest=json.loads((out / "truth" / "manifest.json").read_text()),
    )


@pytest.fixture(scope="session")
def synth_warehouse(synth_dataset: SynthDataset,
                    tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The whole project (`dbt build`, every model and test) on the generated dataset."""
    database = tmp_path_factory.mktemp("synth_warehouse") / "wh.duckdb"
    result = run_dbt(["build"], database, synth_dataset.events_glob)
    assert result.returncode == 0, result.stdout[-8000:]
    target_dir = database.parent / "target"
    target_dir.mkdir()
    for artefact in ("manifest.json", "run_results.json"):
        shutil.copy2(_TARGET / artefact, target_dir / artefact)
    return Warehouse(database=database, dataset=synth_dataset, build_log=result.stdout,
                     target_dir=target_dir)
