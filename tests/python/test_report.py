"""`python -m ml.report`: the headline figures printed at the end of `make demo`."""
from __future__ import annotations

from decimal import Decimal

from ml.report import format_headline, headline


def test_headline_matches_the_generators_truth(synth_warehouse) -> None:
    figures = headline(synth_warehouse.database)
    totals = synth_warehouse.dataset.manifest["totals"]
    assert figures["rows_read"] == totals["rows"]
    assert figures["rows_duplicate"] == totals["exact_duplicate_rows"]
    assert figures["rows_rejected"] == 0
    assert figures["buyers"] == totals["buyers"]
    assert figures["purchases"] == totals["purchases_dedup"]
    assert figures["revenue"] == Decimal(str(totals["revenue_dedup"]))
    # Sessions: the generator's visits, plus one per planted inactivity gap over 30 min.
    assert figures["sessions"] == (totals["true_sessions"]
                                   + totals["sessions_with_gap_over_30min"])
    text = format_headline(synth_warehouse.database, figures)
    assert str(synth_warehouse.database.name) in text and "revenue" in text


def test_models_lines_show_skips_intervals_and_verdicts() -> None:
    from datetime import date

    from ml.report import format_models

    lines = format_models([
        ("churn", "trained", None, "trained", "roc_auc", date(2019, 12, 18), 0.74,
         "recency_rule", 0.63, 0.08, 0.14, "better"),
        ("revenue_forecast", "skipped_insufficient_history",
         "needs 63 days of history, has 30", None, None, None, None, None, None, None,
         None, None),
        ("fraud", "trained", None, None, None, None, None, None, None, None, None, None),
        ("cross_sell", "trained", "needs 42 days of basket sessions, has 30",
         "skipped_insufficient_history", None, None, None, None, None, None, None, None),
    ])
    assert "0.740 vs recency_rule 0.630 [+0.080, +0.140] better" in lines[0]
    assert "SKIPPED" in lines[1] and "needs 63 days of history, has 30" in lines[1]
    assert "no evaluation yet" in lines[2]
    assert "evaluation skipped: needs 42 days" in lines[3]
