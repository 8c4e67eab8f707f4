"""Synthetic REES46-like click-stream with planted ground truth.

Public API::

    from ml.synth import generate_dataset, SynthConfig, run

    manifest = generate_dataset("data/synth", n_events=2_000_000, start="2019-10-01",
                                days=61, seed=42, fmt="csv.gz", split="month")

`generate_dataset` writes `<out>/events/` (files named like the real ones: `2019-Oct.csv.gz`
for split="month", `2019-10-01.csv.gz` for split="day") and `<out>/truth/` (parquet tables
and manifest.json), and returns the manifest dict plus a "run" entry with timing. The same
arguments give byte-identical files. CLI: `python -m ml.synth --help`. The process and the
truth files are described in docs/generator.md.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from ml.synth.config import FORMATS, GENERATOR_VERSION, SPLITS, SynthConfig
from ml.synth.generate import run, summary_line

__all__ = ["generate_dataset", "run", "summary_line", "SynthConfig", "FORMATS", "SPLITS",
           "GENERATOR_VERSION"]


def _date(value: str | dt.date) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def generate_dataset(out: str | Path, n_events: int = 2_000_000,
                     start: str | dt.date = "2019-10-01", days: int = 61, seed: int = 42,
                     fmt: str = "csv.gz", split: str = "month",
                     sale_days: tuple[str | dt.date, ...] | None = None,
                     quiet: bool = True, workers: int | None = None, **overrides) -> dict:
    """Generate a synthetic REES46 data set into `out` and return its manifest.

    n_events: rows to write (exact); start/days: the window (UTC days); fmt: "csv",
    "csv.gz" or "parquet"; split: "month" or "day" files; sale_days: days with a sale spike
    (default 2019-11-17, ignored outside the window); workers: processes making days in
    parallel (default one per core; the output does not depend on it); overrides: any other
    `SynthConfig` field (calibration constants). Deterministic for equal arguments.
    """
    kwargs = dict(n_events=int(n_events), start=_date(start), days=int(days), seed=int(seed),
                  fmt=fmt, split=split, **overrides)
    if sale_days is not None:
        kwargs["sale_days"] = tuple(_date(d) for d in sale_days)
    return run(SynthConfig(**kwargs), out, quiet=quiet, workers=workers)
