"""CLI: python -m ml.synth --events 2000000 --start 2019-10-01 --days 61 --seed 42
--format csv.gz --split month --out data/synth"""
from __future__ import annotations

import argparse
import sys

from ml.synth import FORMATS, SPLITS, generate_dataset, summary_line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ml.synth",
        description="Generate REES46-like click-stream files with planted ground truth "
                    "(events in OUT/events, truth in OUT/truth; see docs/generator.md).")
    p.add_argument("--events", type=int, default=2_000_000, help="rows to write (exact)")
    p.add_argument("--start", default="2019-10-01", help="first day (UTC), YYYY-MM-DD")
    p.add_argument("--days", type=int, default=61, help="length of the window in days")
    p.add_argument("--seed", type=int, default=42, help="same seed, same bytes")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="csv.gz")
    p.add_argument("--split", choices=SPLITS, default="month",
                   help="one file per calendar month (2019-Oct.csv) or per day")
    p.add_argument("--sale-days", default="2019-11-17",
                   help="comma-separated sale days (empty for none)")
    p.add_argument("--out", default="data/synth", help="output directory (events/, truth/)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes making days in parallel (default: one per core; the "
                        "files do not depend on it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    sale = tuple(d for d in a.sale_days.split(",") if d.strip())
    result = generate_dataset(a.out, n_events=a.events, start=a.start, days=a.days,
                              seed=a.seed, fmt=a.fmt, split=a.split, sale_days=sale,
                              quiet=a.quiet, workers=a.workers)
    print(summary_line(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
