"""Profiler (ml.profile) on the real REES46 slice and on generated data.

Expected values come from an independent pass over the file with the csv module, never
from constants.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ml.profile import compare, format_report, profile, profile_by_month
from ml.published import ACCEPTANCE_KEYS, NOV_2019
from ml.synth import generate_dataset

REPO = Path(__file__).resolve().parents[2]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def real_rows(real_slice) -> list[dict[str, str]]:
    return _read(real_slice)


@pytest.fixture(scope="module")
def real_profile(real_slice) -> dict:
    return profile([real_slice])


def test_real_slice_counts_match_an_independent_pass(real_slice, real_rows,
                                                     real_profile) -> None:
    p = real_profile
    assert p["rows"] == len(real_rows) == 17_434  # the slice's documented size
    types = Counter(r["event_type"] for r in real_rows)
    assert (p["views"], p["carts"], p["purchases"]) == (types["view"], types["cart"],
                                                        types["purchase"])
    assert p["users"] == len({r["user_id"] for r in real_rows})
    assert p["sessions"] == len({r["user_session"] for r in real_rows})
    assert p["products"] == len({r["product_id"] for r in real_rows})
    assert p["brands"] == len({r["brand"] for r in real_rows if r["brand"]})
    assert p["null_category_code_share"] == pytest.approx(
        sum(not r["category_code"] for r in real_rows) / len(real_rows))
    assert p["price_zero_rows"] == sum(float(r["price"]) == 0 for r in real_rows)
    assert p["max_price"] == max(float(r["price"]) for r in real_rows)
    dup = len(real_rows) - len({tuple(r.values()) for r in real_rows})
    assert p["duplicate_rows"] == dup
    buyers = {r["user_id"] for r in real_rows if r["event_type"] == "purchase"}
    assert p["buyer_share"] == pytest.approx(len(buyers) / p["users"])


def test_real_slice_shares_are_sane(real_profile) -> None:
    p = real_profile
    shares = p["view_share"] + p["cart_share"] + p["purchase_share"]
    assert shares == pytest.approx(1.0)
    assert p["view_share"] > 0.9
    assert 0.2 < p["null_category_code_share"] < 0.45
    assert 0.05 < p["null_brand_share"] < 0.25
    assert 0 < p["purchasing_sessions_without_cart_share"] <= 1
    assert p["top_category_code_by_revenue"] == "electronics.smartphone"
    assert p["first_event"].startswith("2019-10-01") and p["days"] == 1


def test_by_month_splits_the_two_real_slices(real_slice) -> None:
    nov = real_slice.parent / "rees46_2019-Nov_first683.csv"
    months = profile_by_month([real_slice, nov])
    assert list(months) == ["2019-10", "2019-11"]
    assert months["2019-11"]["rows"] == len(_read(nov))
    assert months["2019-10"]["rows"] + months["2019-11"]["rows"] == profile(
        [real_slice, nov])["rows"]


def test_compare_reports_published_figures_and_relative_difference() -> None:
    stats = {"rows": 2 * NOV_2019["rows"], "view_share": 0.5, "users": 10}
    c = compare(stats, "nov")
    assert c["rows"]["published"] == NOV_2019["rows"]
    assert c["rows"]["rel_diff"] == pytest.approx(1.0)
    assert c["view_share"]["rel_diff"] == pytest.approx(
        0.5 / (NOV_2019["views"] / NOV_2019["rows"]) - 1)
    assert c["view_share"]["acceptance"] and not c["users"]["acceptance"]
    text = format_report({"all": stats}, "nov")
    assert "published nov" in text and "+100.0%" in text and "view_share *" in text
    assert set(ACCEPTANCE_KEYS) <= set(c) | set(ACCEPTANCE_KEYS)


def test_cli_json_and_table(real_slice) -> None:
    out = subprocess.run([sys.executable, "-m", "ml.profile", str(real_slice), "--json",
                          "--compare", "oct"], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout
    payload = json.loads(out)
    assert payload["columns"]["all"]["rows"] == 17_434
    assert payload["compare"]["all"]["users"]["published"] > 0
    table = subprocess.run([sys.executable, "-m", "ml.profile",
                            str(real_slice.parent / "*.csv"), "--by-month"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout
    header = table.splitlines()[0].split()
    assert header == ["statistic", "2019-10", "2019-11"]


def test_profile_is_format_independent(tmp_path) -> None:
    """The same seed written as CSV, gzip CSV and parquet profiles identically."""
    kw = dict(n_events=40_000, start="2019-11-14", days=5, seed=8)
    stats = []
    for fmt in ("csv", "csv.gz", "parquet"):
        out = tmp_path / fmt.replace(".", "_")
        generate_dataset(out, fmt=fmt, **kw)
        stats.append(profile([out / "events" / f"*.{fmt}"]))
    assert stats[0]["rows"] == 40_000
    for other in stats[1:]:
        assert other.keys() == stats[0].keys()
        for k, v in stats[0].items():
            # floating sums may differ in the last bit (parallel aggregation order)
            assert other[k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), k
