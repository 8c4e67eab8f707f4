"""Published figures of the real REES46 October and November 2019 files.

This module is the single home of these numbers: the synthetic generator (`ml.synth`)
calibrates against them and the profiler (`ml.profile`) compares a data set with them.

Source: the statistics published with the Kaggle data set "eCommerce behavior data from
multi category store" (mkechinov, REES46 Marketing Platform) as collected in
`/work/shared/data/README.md`. Figures marked "approx" are rounded in the source; a figure
known only for one month is stored only in that month's dict.

Keys are shared by `ml.profile` (its output uses the same names), so a comparison is a
plain dict lookup. Shares are fractions (0.324, not 32.4).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

OCT_2019: Mapping[str, float | int | str] = MappingProxyType({
    "rows": 42_448_764,
    "views": 40_779_399,
    "carts": 926_516,
    "purchases": 742_849,
    "remove_from_cart": 0,
    "users": 3_022_290,
    "sessions": 9_244_422,
    "products": 166_794,
    "category_ids": 624,
    "brands": 3_446,  # approx
    "null_category_code_share": 0.318,
    "null_brand_share": 0.144,
    "buyers": 347_118,
    "buyer_share": 0.115,
    "purchasing_sessions_without_cart_share": 0.536,
    "price_zero_rows": 69_000,  # approx
    "negative_price_rows": 0,
    "max_price": 2574.07,  # approx ("about 2574")
    "top10pct_products_view_share": 0.83,  # approx
    "top_category_code_by_revenue": "electronics.smartphone",
    "top_category_revenue_share": 0.68,  # approx, smartphones
    "session_view_to_cart_rate": 0.099,  # approx, share of viewing sessions with a cart
    "session_cart_to_purchase_rate": 0.69,  # approx
    "long_session_share": 0.0018,  # approx, sessions spanning more than 24 h
    "peak_purchase_hour_utc": 9,
})

NOV_2019: Mapping[str, float | int | str] = MappingProxyType({
    "rows": 67_501_979,
    "views": 63_556_110,
    "carts": 3_028_930,
    "purchases": 916_939,
    "remove_from_cart": 0,
    "users": 3_696_117,
    "sessions": 13_776_050,
    "products": 190_662,
    "category_ids": 684,
    "brands": 4_200,
    "null_category_code_share": 0.324,
    "null_brand_share": 0.137,
    "buyers": 441_638,
    "buyer_share": 0.1195,
    "purchasing_sessions_without_cart_share": 0.536,
    "duplicate_rows": 100_000,  # approx
    "negative_price_rows": 0,
    "max_price": 2574.07,  # approx
    "products_with_multiple_prices": 70_000,  # approx
    "top10pct_products_view_share": 0.83,  # approx
    "top_category_code_by_revenue": "electronics.smartphone",
    "long_session_share": 0.0018,  # approx
    "shared_session_ids": 300,  # "a few hundred"
    "peak_purchase_hour_utc": 9,
    "sale_day": "2019-11-17",
    "sale_day_purchases": 185_000,  # approx
    "ordinary_day_purchases": 24_000,  # approx
})

PUBLISHED: Mapping[str, Mapping[str, float | int | str]] = MappingProxyType({
    "oct": OCT_2019,
    "nov": NOV_2019,
})


def derived(month: Mapping[str, float | int | str]) -> dict[str, float]:
    """Ratios implied by a month's published counts.

    Returns event-type shares, events/sessions/purchases per user, duplicate share and,
    when the month has them, the sale-day ratio. These ratios do not depend on the size of
    a data set, so they are what a scaled-down synthetic set is calibrated against.
    """
    rows, users = float(month["rows"]), float(month["users"])
    out = {
        "view_share": month["views"] / rows,
        "cart_share": month["carts"] / rows,
        "purchase_share": month["purchases"] / rows,
        "events_per_user": rows / users,
        "sessions_per_user": month["sessions"] / users,
        "purchases_per_user": month["purchases"] / users,
        "events_per_session": rows / month["sessions"],
        "purchases_per_buyer": month["purchases"] / month["buyers"],
    }
    if "duplicate_rows" in month:
        out["duplicate_share"] = month["duplicate_rows"] / rows
    if "price_zero_rows" in month:
        out["price_zero_share"] = month["price_zero_rows"] / rows
    if "sale_day_purchases" in month:
        out["sale_day_ratio"] = month["sale_day_purchases"] / month["ordinary_day_purchases"]
    if "products_with_multiple_prices" in month:
        out["multi_price_product_share"] = (
            month["products_with_multiple_prices"] / month["products"])
    if "shared_session_ids" in month:
        out["shared_session_ids_per_row"] = month["shared_session_ids"] / rows
    return out


def figures(month: str) -> dict[str, float | int | str]:
    """All published and derived figures of `month` ("oct" or "nov") in one flat dict."""
    base = PUBLISHED[month.lower()[:3]]
    return {**base, **derived(base)}


NOV_DERIVED: Mapping[str, float] = MappingProxyType(derived(NOV_2019))
OCT_DERIVED: Mapping[str, float] = MappingProxyType(derived(OCT_2019))

# The figures the generator must reproduce within 10% on a full-size November month
# (the acceptance list); the profiler marks them in `--compare` output.
ACCEPTANCE_KEYS: tuple[str, ...] = (
    "view_share", "cart_share", "purchase_share",
    "events_per_user", "sessions_per_user", "purchases_per_user",
    "buyer_share", "null_category_code_share", "null_brand_share",
    "purchasing_sessions_without_cart_share",
)
