"""ml.evaluation, ml.calibration, ml.drift: the protocol every model is judged by."""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml.calibration import (brier_score, calibration_rows, expected_calibration_error,
                            fit_calibrator, reliability_table)
from ml.drift import PSI_WARN, feature_drift, population_stability_index
from ml.evaluation import (InsufficientHistory, Origin, Resampler, compare, defined,
                           evaluation_origins, production_origin, rolling_cutoffs, verdict)
from ml.registry import (SKIPPED_INSUFFICIENT_HISTORY, Metric, TrainingRun, Window,
                         is_trained, skipped_run)


def test_rolling_cutoffs_end_with_the_last_complete_label_window() -> None:
    cutoffs = rolling_cutoffs(date(2020, 1, 1), horizon_days=14, step_days=7, n_cutoffs=3)
    assert cutoffs == [date(2019, 12, 4), date(2019, 12, 11), date(2019, 12, 18)]


def test_evaluation_origins_keep_train_validation_and_test_labels_apart() -> None:
    origins = evaluation_origins(date(2019, 10, 1), date(2020, 1, 1), horizon_days=14,
                                 step_days=7, n_cutoffs=3, min_history_days=14)
    for origin in origins:
        assert origin.train + timedelta(days=14) <= origin.validation
        assert origin.validation + timedelta(days=14) <= origin.test
    assert origins[-1].test == date(2019, 12, 18)


def test_too_short_a_history_names_the_exact_need() -> None:
    with pytest.raises(InsufficientHistory, match="needs 81 days of history, has 30"):
        evaluation_origins(date(2019, 11, 1), date(2019, 12, 1), horizon_days=14,
                           step_days=7, n_cutoffs=3, min_history_days=25)
    with pytest.raises(InsufficientHistory, match="needs 74 days of history, has 30"):
        production_origin(date(2019, 11, 1), date(2019, 12, 1), horizon_days=30,
                          min_history_days=14)


def test_an_origin_whose_windows_overlap_is_refused() -> None:
    with pytest.raises(ValueError, match="reach into validation"):
        Origin(date(2019, 11, 1), date(2019, 11, 10), date(2019, 12, 1), 14)


def test_verdict_has_three_states_in_the_metric_direction() -> None:
    assert verdict(0.01, 0.05) == "better"
    assert verdict(-0.05, -0.01) == "worse"
    assert verdict(-0.01, 0.05) == "inconclusive"
    assert verdict(-0.05, -0.01, higher_is_better=False) == "better"  # e.g. MASE
    assert verdict(None, 0.1) is None


def _auc(y, p):
    return lambda rows: roc_auc_score(y[rows], p[rows])


def test_a_real_margin_is_better_and_noise_is_inconclusive() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 2, n)
    strong = y + rng.normal(0, 0.7, n)
    weak = y + rng.normal(0, 3.0, n)
    noise_a, noise_b = rng.normal(size=n), rng.normal(size=n)
    resampler = Resampler(n, n_samples=200, seed=1)
    [win] = compare("roc_auc", _auc(y, strong), {"weak": _auc(y, weak)}, resampler,
                    is_primary=True)
    assert win.verdict() == "better" and win.diff_ci_low > 0
    assert win.ci_low < win.value < win.ci_high
    [loss] = compare("roc_auc", _auc(y, weak), {"strong": _auc(y, strong)}, resampler)
    assert loss.verdict() == "worse"
    [tie] = compare("roc_auc", _auc(y, noise_a), {"other": _auc(y, noise_b)}, resampler)
    assert tie.verdict() == "inconclusive"


def test_an_undefined_metric_is_null_with_a_reason_and_never_fails_a_run() -> None:
    y = np.zeros(50, dtype=int)  # no positives: ROC-AUC is undefined
    p = np.linspace(0, 1, 50)
    [row] = compare("roc_auc", _auc(y, p), {"rule": _auc(y, p[::-1])}, Resampler(50),
                    is_primary=True)
    assert row.value is None and row.ci_low is None and row.verdict() is None
    assert "one class" in row.undefined_reason
    run = TrainingRun("m", Window(None, None), Window(None, None), 1, 1, {}, [row])
    assert not run.is_below_baseline()
    record = json.loads(run.to_frame()["metrics_json"].iloc[0])[0]
    assert record["value"] is None and record["undefined_reason"]


def test_nan_handed_to_a_metric_becomes_null_with_a_reason() -> None:
    metric = Metric("lift", float("nan"), "rule", 1.2)
    assert metric.value is None and metric.undefined_reason
    assert metric.beats_baseline() is None


def test_defined_turns_errors_and_nan_into_reasons() -> None:
    assert defined(lambda: 0.5) == (0.5, None)
    assert defined(lambda: float("nan"))[0] is None
    value, reason = defined(lambda: 1 / 0)
    assert value is None and reason


def test_cluster_resampling_keeps_a_cluster_together() -> None:
    clusters = np.array([1, 1, 1, 2, 3, 3])
    resampler = Resampler(6, n_samples=50, seed=3, clusters=clusters)
    for rows in resampler.samples:
        drawn = clusters[rows]
        for cluster, size in ((1, 3), (2, 1), (3, 2)):
            assert (drawn == cluster).sum() % size == 0


def test_block_resampling_draws_runs_of_consecutive_rows() -> None:
    resampler = Resampler(28, n_samples=20, seed=0, block_length=7)
    for rows in resampler.samples:
        assert len(rows) == 28
        blocks = rows.reshape(4, 7)
        assert (np.diff(blocks, axis=1) == 1).all()


def test_calibration_map_fitted_on_validation_lowers_the_error_on_new_data() -> None:
    rng = np.random.default_rng(5)
    truth = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, truth.size) < truth).astype(int)
    raw = truth ** 3  # systematically too low
    validation, test = slice(0, 10000), slice(10000, None)
    before = expected_calibration_error(y[test], raw[test])
    calibrator = fit_calibrator(y[validation], raw[validation])
    after = expected_calibration_error(y[test], calibrator.predict(raw[test]))
    assert before > 0.1 and after < 0.02
    assert brier_score(y[test], calibrator.predict(raw[test])) < brier_score(y[test], raw[test])
    table = reliability_table(y[test], raw[test])
    assert sum(r["n"] for r in table) == 10000 and len(table) == 10
    platt = fit_calibrator(y[validation], raw[validation], method="platt")
    assert expected_calibration_error(y[test], platt.predict(raw[test])) < before
    rows = calibration_rows(y[test], raw[test], "uncalibrated", date(2019, 12, 1), "cart")
    assert rows[0]["stage"] == "uncalibrated" and rows[0]["cutoff"] == "2019-12-01"


def test_calibration_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        fit_calibrator(np.zeros(10), np.linspace(0, 1, 10))


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(0, 1, 20000)
    assert population_stability_index(reference, rng.normal(0, 1, 20000)) < 0.01
    assert population_stability_index(reference, rng.normal(1, 1, 20000)) > PSI_WARN
    counts = rng.integers(0, 3, 5000)
    assert population_stability_index(counts, counts + 3) > PSI_WARN  # unseen values count
    assert population_stability_index(np.array([]), counts) is None


def test_feature_drift_rows_go_into_the_run_record() -> None:
    reference = pd.DataFrame({"a": np.arange(1000.0), "b": np.ones(1000)})
    current = pd.DataFrame({"a": np.arange(1000.0) + 800, "b": np.ones(1000)})
    rows = feature_drift(reference, current, ["a", "b"])
    by_feature = {r["feature"]: r for r in rows}
    assert by_feature["a"]["is_drifted"] and not by_feature["b"]["is_drifted"]
    run = TrainingRun("m", Window(None, None), Window(None, None), 1, 1, {}, drift=rows)
    stored = json.loads(run.to_frame()["drift_json"].iloc[0])
    assert {r["feature"] for r in stored} == {"a", "b"}


def test_a_skipped_run_says_why_and_holds_no_model() -> None:
    run = skipped_run("churn", "needs 67 days of history, has 30")
    row = run.to_frame().iloc[0]
    assert row["status"] == SKIPPED_INSUFFICIENT_HISTORY
    assert row["status_reason"] == "needs 67 days of history, has 30"
    assert row["model_artifact"] is None and not row["is_below_baseline"]
    assert not is_trained(row) and is_trained({"status": None})


def test_train_or_skip_records_the_shortage_unless_strict() -> None:
    from ml.evaluation import as_flag, require_history, train_or_skip

    def too_short() -> TrainingRun:
        require_history(67, 30)
        raise AssertionError("unreachable")

    run = train_or_skip("churn", too_short)
    assert run.status == SKIPPED_INSUFFICIENT_HISTORY
    assert run.status_reason == "needs 67 days of history, has 30"
    with pytest.raises(RuntimeError, match="ml_strict"):
        train_or_skip("churn", too_short, strict=True)
    assert as_flag("True") and as_flag("true") and not as_flag("False") and not as_flag(0)


def test_keyed_resamples_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(4)
    ids = np.arange(500) * 7
    y = rng.integers(0, 2, 500)
    p = y + rng.normal(0, 1, 500)
    shuffled = rng.permutation(500)
    [first] = compare("roc_auc", _auc(y, p), {}, Resampler(500, seed=1, keys=ids))
    [second] = compare("roc_auc", _auc(y[shuffled], p[shuffled]), {},
                       Resampler(500, seed=1, keys=ids[shuffled]))
    assert (first.ci_low, first.ci_high) == pytest.approx((second.ci_low, second.ci_high))
    with pytest.raises(ValueError, match="unique"):
        Resampler(3, keys=[1, 1, 2])


def test_drift_skips_tiny_snapshots_and_expected_shifts() -> None:
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"tenure_days": rng.integers(0, 60, 2000).astype(float),
                              "views": rng.poisson(3, 2000).astype(float)})
    later = reference.assign(tenure_days=reference["tenure_days"] + 14)
    rows = {r["feature"]: r for r in feature_drift(reference, later, ["tenure_days", "views"],
                                                   moves_with_time=["tenure_days"])}
    assert rows["tenure_days"]["psi"] > PSI_WARN and rows["tenure_days"]["is_expected_shift"]
    assert not rows["tenure_days"]["is_drifted"]
    tiny = feature_drift(reference, later.head(10), ["views"])[0]
    assert tiny["psi"] is None and "fewer than 100" in tiny["psi_note"]
    assert not tiny["is_drifted"]
