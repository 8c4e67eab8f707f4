"""Shared fixtures: one generated dataset and one full warehouse build per test run.

The models that need a realistic history (ML, truth checks) all read the same build, so
the suite pays for generating and building it once, even on several pytest-xdist
workers: the first worker to need it builds it under a file lock in the run's shared
temporary folder, and every worker then works on its own copy of the warehouse file.
"""
from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

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
def shared_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every xdist worker of this run sees (the per-run temporary root)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@contextmanager
def built_once(folder: Path) -> Iterator[bool]:
    """Lock `folder` across workers; yields True when the caller must build it (it is
    then marked complete on a clean exit), False when another worker already has."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / ".complete"
        if done.exists():
            yield False
            return
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        yield True
        done.touch()


@pytest.fixture(scope="session")
def synth_dataset(shared_dir: Path) -> SynthDataset:
    out = shared_dir / "synth"
    with built_once(out) as build:
        if build:
            subprocess.run([sys.executable, "-m", "ml.synth", *SYNTH_ARGS, "--out", str(out)],
                           cwd=REPO, check=True)
    return SynthDataset(
        events_glob=out / "events" / "*.csv.gz",
        truth_dir=out / "truth",
        manifest=json.loads((out / "truth" / "manifest.json").read_text()),
    )


@pytest.fixture(scope="session")
def big_input(shared_dir: Path) -> Path:
    """Three daily csv files of 100,000 events in all, so staging takes a moment (the
    crash-recovery tests kill builds of them)."""
    out = shared_dir / "crash_input"
    with built_once(out) as build:
        if build:
            subprocess.run([sys.executable, "-m", "ml.synth", "--events", "100000",
                            "--days", "3", "--start", "2019-11-01", "--seed", "3",
                            "--format", "csv", "--split", "day", "--out", str(out),
                            "--quiet"], cwd=REPO, check=True)
    return out / "events"


# What a worker that did not run the build needs of its target folder: the manifests
# (exposures, semantic layer) and dbt's partial-parse state.
TARGET_ARTEFACTS = ("manifest.json", "run_results.json", "semantic_manifest.json",
                    "partial_parse.msgpack")


@pytest.fixture(scope="session")
def synth_warehouse(synth_dataset: SynthDataset, shared_dir: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """The whole project (`dbt build`, every model and test) on the generated dataset:
    built once per run, copied to a file of this worker's own."""
    built = shared_dir / "synth_warehouse"
    with built_once(built) as build:
        if build:
            result = run_dbt(["build"], built / "wh.duckdb", synth_dataset.events_glob)
            assert result.returncode == 0, result.stdout[-8000:]
            (built / "build.log").write_text(result.stdout)
            (built / "target").mkdir()
            for artefact in TARGET_ARTEFACTS:
                shutil.copy2(_TARGET / artefact, built / "target" / artefact)
    # The same file name as the build's: dbt names the database after it.
    database = tmp_path_factory.mktemp("synth_warehouse") / "wh.duckdb"
    shutil.copy2(built / "wh.duckdb", database)
    target_dir = database.parent / "target"
    shutil.copytree(built / "target", target_dir)
    if not build:  # as if this worker had run the build itself
        for artefact in TARGET_ARTEFACTS:
            shutil.copy2(target_dir / artefact, _TARGET / artefact)
    return Warehouse(database=database, dataset=synth_dataset,
                     build_log=(built / "build.log").read_text(), target_dir=target_dir)
