"""ml.cross_sell: hit rates of rules vs popularity on small frames; the SQL-mined rules and
the registry record on the shared generated warehouse."""
from __future__ import annotations

import json
import math
from datetime import date

import pandas as pd
import pytest

from dbt_project import query
from ml.cross_sell import (Policy, cross_sell_recommendations, evaluate_cross_sell,
                           evaluate_cross_sell_rolling, hit_rates, policy_recommendations,
                           popularity_recommendations, rule_recommendations, train_cross_sell)
from ml.evaluation import InsufficientHistory, train_or_skip

# --- small frames -----------------------------------------------------------------------


def baskets(*sessions: list[int], level: str = "product") -> pd.DataFrame:
    """Basket rows from lists of item ids, in the order they were added."""
    rows = [{"session_id": f"s{n}", "basket_level": level, "item_id": item,
             "item_order": order}
            for n, items in enumerate(sessions) for order, item in enumerate(items, start=1)]
    return pd.DataFrame(rows)


def items(popularity: list[int], level: str = "product") -> pd.DataFrame:
    """Item counts with `popularity` listed from the most popular down."""
    return pd.DataFrame({
        "basket_level": level, "item_id": popularity,
        "item_sessions": list(range(100, 100 - len(popularity), -1)),
        "popularity_rank": list(range(1, len(popularity) + 1)), "n_sessions": 1000})


def rules(*triples: tuple[int, int, int], level: str = "product") -> pd.DataFrame:
    """Rules (antecedent, consequent, rule_rank)."""
    return pd.DataFrame([{"basket_level": level, "antecedent_id": a, "consequent_id": c,
                          "rule_rank": r} for a, c, r in triples])


def test_rule_recommendations_keep_the_k_best_in_rank_order() -> None:
    recs = rule_recommendations(rules((1, 5, 2), (1, 4, 1), (1, 6, 3), (2, 7, 1)), k=2)
    assert recs.to_dict("records") == [
        {"basket_level": "product", "antecedent_id": 1, "item_id": 4, "rank": 1},
        {"basket_level": "product", "antecedent_id": 1, "item_id": 5, "rank": 2},
        {"basket_level": "product", "antecedent_id": 2, "item_id": 7, "rank": 1},
    ]


def test_popularity_never_recommends_the_known_item() -> None:
    known = pd.DataFrame({"basket_level": ["product", "product"], "antecedent_id": [9, 3]})
    recs = popularity_recommendations(items([9, 8, 7, 3]), known, k=2)
    by_antecedent = recs.groupby("antecedent_id")["item_id"].apply(list).to_dict()
    assert by_antecedent == {9: [8, 7], 3: [9, 8]}


def test_rules_are_topped_up_with_popular_items_to_fill_the_slot() -> None:
    # 1 has one rule (-> 8); 8 is also popular, so it is not proposed twice, and 1 itself
    # is popular but never proposed next to itself. 4 has no rule: popularity alone.
    known = pd.DataFrame({"basket_level": "product", "antecedent_id": [1, 4]})
    recs = cross_sell_recommendations(rules((1, 8, 1), (2, 3, 1)), items([8, 1, 9, 7, 6]),
                                      known, k=3)
    by_antecedent = recs.groupby("antecedent_id")["item_id"].apply(list).to_dict()
    assert by_antecedent == {1: [8, 9, 7], 4: [8, 1, 9]}
    assert recs.groupby("antecedent_id")["rank"].apply(list).to_dict() == {
        1: [1, 2, 3], 4: [1, 2, 3]}


def test_a_hit_needs_the_recommendation_among_the_other_items() -> None:
    # s0: 1 then 2 -> rule 1->2 hits; s1: 1 then 3 -> misses; s2: 2 then 1 -> no rule for 2;
    # s3: a single item -> not evaluated.
    frame = baskets([1, 2], [1, 3], [2, 1], [1])
    out = hit_rates(frame, rule_recommendations(rules((1, 2, 1)), 1), k=1)
    out = out.set_index("session_id")
    assert list(out.index) == ["s0", "s1", "s2"]
    assert out["is_recommended"].tolist() == [True, True, False]
    assert out["is_hit"].tolist() == [True, False, False]


def test_an_item_added_first_is_not_a_hit_for_itself() -> None:
    # A rule recommending the antecedent itself can never hit (it is the known item).
    frame = baskets([1, 2])
    out = hit_rates(frame, rule_recommendations(rules((1, 1, 1)), 1), k=1)
    assert not out["is_hit"].any()


def test_evaluation_compares_rules_and_popularity_on_the_same_sessions() -> None:
    # Popularity says 9 then 8. Rules: 1 -> 2 (rank 1), 1 -> 8 (rank 2).
    test = baskets([1, 2], [1, 2, 5], [1, 8], [1, 9], [4, 9], [4, 5])
    table = evaluate_cross_sell(rules((1, 2, 1), (1, 8, 2)), items([9, 8, 7]), test,
                                ks=(1, 2)).set_index(["basket_level", "k"])
    at1, at2 = table.loc[("product", 1)], table.loc[("product", 2)]
    assert at1["multi_item_sessions"] == 6 and at1["covered_sessions"] == 4
    assert at1["coverage"] == pytest.approx(4 / 6)
    assert at1["rules_hit_rate"] == pytest.approx(2 / 4)          # s0, s1
    assert at1["popularity_hit_rate"] == pytest.approx(1 / 4)     # s3 (9)
    # fallback: s0, s1 by rules; s4 by popularity (9); s5 misses.
    assert at1["fallback_hit_rate"] == pytest.approx(3 / 6)
    assert at1["popularity_all_hit_rate"] == pytest.approx(2 / 6)  # s3, s4
    assert at2["rules_hit_rate"] == pytest.approx(3 / 4)          # s0, s1, s2 (8)
    assert at2["popularity_hit_rate"] == pytest.approx(2 / 4)     # s2 (8), s3 (9)
    # At k=3 rule 1 -> 2, 1 -> 8 leave one slot, filled with 9: s3 is now a hit too.
    at3 = evaluate_cross_sell(rules((1, 2, 1), (1, 8, 2)), items([9, 8, 7]), test,
                              ks=(3,)).set_index(["basket_level", "k"]).loc[("product", 3)]
    assert at3["covered_sessions"] == 4
    assert at3["rules_hit_rate"] == pytest.approx(4 / 4)
    assert at3["fallback_hit_rate"] == pytest.approx(5 / 6)       # s5 (5) misses
    # No category rows at all: the rates are NaN, not 0.
    assert table.loc[("category", 1), "multi_item_sessions"] == 0
    assert math.isnan(table.loc[("category", 1), "rules_hit_rate"])


def dated(frame: pd.DataFrame, day: date) -> pd.DataFrame:
    """Basket rows dated `day`, with their basket sizes (as int_cross_sell_baskets)."""
    sizes = frame.groupby(["session_id", "basket_level"])["item_id"].transform("size")
    return frame.assign(session_id=frame["session_id"] + f"-{day}", session_date=day,
                        basket_items=sizes)


def test_the_policy_is_chosen_on_validation_and_recorded() -> None:
    # 1 -> 2 is the rule; 9 is popular and also found next to 1: topping up with it adds
    # a hit on s2, so the topped-up policy wins on these validation baskets.
    validation = baskets([1, 2], [1, 2], [1, 9], [3, 2])
    run = train_cross_sell(rules((1, 2, 1)), items([9, 2, 1]), validation,
                           train_window=(date(2019, 10, 1), date(2019, 12, 18)),
                           validation_window=(date(2019, 12, 18), date(2020, 1, 1)),
                           params={"min_support": 0.001}, n_samples=50)
    params = json.loads(run.to_frame().loc[0, "params_json"])
    assert (params["top_up"], params["max_rules"]) == (True, 3)
    assert [p["validation_hit_rate_at_3"] for p in params["policies"]] == \
        pytest.approx([2 / 3, 1.0, 1.0, 1.0])  # ties keep the earlier policy
    assert run.run_kind == "production"
    [primary] = [m for m in run.primary_metrics()]
    assert (primary.metric, primary.baseline, primary.split) == \
        ("product_hit_rate_at_3", "popularity", "validation")
    assert primary.value == pytest.approx(1.0) and primary.ci_low is not None
    assert primary.n_units == 3  # the covered sessions, resampled
    # Without popular items to find, rules alone tie and the a priori policy stays.
    alone = train_cross_sell(rules((1, 2, 1)), items([7, 6, 5]), baskets([1, 2], [1, 2]),
                             train_window=(date(2019, 10, 1), date(2019, 12, 18)),
                             validation_window=(date(2019, 12, 18), date(2020, 1, 1)),
                             params={}, n_samples=20)
    assert json.loads(alone.to_frame().loc[0, "params_json"])["top_up"] is False


def test_policies_fill_the_slot_as_they_say() -> None:
    known = pd.DataFrame({"basket_level": "product", "antecedent_id": [1, 4]})
    three = rules((1, 8, 1), (1, 6, 2), (1, 5, 3))
    alone = policy_recommendations(three, items([1, 9, 8, 7]), known, 3, Policy(False, 3))
    assert alone["item_id"].tolist() == [8, 6, 5]  # 4 has no rule: nothing
    one = policy_recommendations(three, items([1, 9, 8, 7]), known, 3, Policy(True, 1))
    assert one.groupby("antecedent_id")["item_id"].apply(list).to_dict() == {
        1: [8, 9, 7], 4: [1, 9, 8]}


def rolling_world(signal: bool) -> tuple[pd.DataFrame, ...]:
    """Windows, rules, items and dated baskets for a rolling evaluation: validation
    baskets in December's first week, three weekly test windows after it."""
    windows = pd.DataFrame({
        "mining_window": ["validation", "test_1", "test_2", "test_3"],
        "first_date": [date(2019, 10, 1)] * 4,
        "start_date": [date(2019, 12, 4), date(2019, 12, 11), date(2019, 12, 18),
                       date(2019, 12, 25)],
        "end_date": [date(2019, 12, 11), date(2019, 12, 18), date(2019, 12, 25),
                     date(2020, 1, 1)]})
    found = [[1, 2]] * 6 + [[1, 9]] * 2 + [[3, 9]] * 2
    frames, rule_frames, item_frames = [], [], []
    for name, start in zip(windows["mining_window"], windows["start_date"]):
        sessions = found if (signal or name == "validation") else [[1, 7]] * 10
        frames.append(dated(baskets(*sessions), start))
        rule_frames.append(rules((1, 2, 1)).assign(mining_window=name))
        item_frames.append(items([9, 8, 7, 6]).assign(mining_window=name))
    return (windows, pd.concat(rule_frames), pd.concat(item_frames),
            pd.concat(frames, ignore_index=True))


def test_rolling_evaluation_reports_every_test_window_with_intervals() -> None:
    windows, all_rules, all_items, all_baskets = rolling_world(signal=True)
    run = evaluate_cross_sell_rolling(windows, all_rules, all_items, all_baskets, {},
                                      n_samples=50)
    assert run.run_kind == "evaluation" and run.model_name == "cross_sell"
    primary = run.primary_metrics()
    assert sorted({m.cutoff for m in primary}) == [date(2019, 12, 11), date(2019, 12, 18),
                                                   date(2019, 12, 25)]
    assert all(m.split == "test" and m.verdict() == "better" for m in primary), primary
    keys = [(m.metric, m.baseline, m.split, m.cutoff) for m in run.metrics]
    assert len(keys) == len(set(keys))  # the registry key is unique
    # undefined: no category baskets -> None with a reason, never NaN or a failure
    category = [m for m in run.metrics if m.metric == "category_hit_rate_at_3"]
    assert category and all(m.value is None and m.undefined_reason for m in category)
    assert not run.is_below_baseline()


def test_rolling_evaluation_never_looks_at_test_windows_to_choose() -> None:
    windows, all_rules, all_items, all_baskets = rolling_world(signal=True)
    _, _, _, scrambled = rolling_world(signal=False)
    first = evaluate_cross_sell_rolling(windows, all_rules, all_items, all_baskets, {},
                                        n_samples=20)
    second = evaluate_cross_sell_rolling(windows, all_rules, all_items, scrambled, {},
                                         n_samples=20)
    chosen = [{k: json.loads(run.to_frame().loc[0, "params_json"])[k]
               for k in ("top_up", "max_rules", "policies")} for run in (first, second)]
    assert chosen[0] == chosen[1]
    # ...while the test windows' figures do change
    assert second.primary_metrics()[0].value != first.primary_metrics()[0].value


def test_short_history_skips_the_run() -> None:
    # 7 days to mine on, then the 14 of the validation split; 3 days before it
    with pytest.raises(InsufficientHistory, match="needs 21 days of basket sessions, has 17"):
        train_cross_sell(rules((1, 2, 1)), items([9]), baskets([1, 2]),
                         train_window=(date(2019, 12, 1), date(2019, 12, 4)),
                         validation_window=(date(2019, 12, 4), date(2019, 12, 18)),
                         params={})
    skipped = train_or_skip("cross_sell", lambda: train_cross_sell(
        rules((1, 2, 1)), items([9]), baskets([1], [2]),
        train_window=(date(2019, 10, 1), date(2019, 12, 4)),
        validation_window=(date(2019, 12, 4), date(2019, 12, 18)), params={}))
    assert skipped.status == "skipped_insufficient_history"
    assert "multi-product basket sessions" in skipped.status_reason
    windows, all_rules, all_items, all_baskets = rolling_world(signal=True)
    late = windows.assign(first_date=date(2019, 12, 1))
    # 7 days to mine, 7 of validation and 3 weeks of tests: 35 days, from Dec 1 to Dec 31
    with pytest.raises(InsufficientHistory, match="needs 35 days of basket sessions, has 31"):
        evaluate_cross_sell_rolling(late, all_rules, all_items, all_baskets, {})


# --- the shared generated warehouse (600k events, 92 days, seed 7) ----------------------


def registry_metrics(database, run_kind: str) -> pd.DataFrame:
    """The metrics of the latest cross_sell run of `run_kind`."""
    rows = query(database, f"""
        select metrics.metric, metrics.split, metrics.cutoff, metrics.baseline,
            metrics.value, metrics.baseline_value, metrics.is_primary, metrics.verdict,
            metrics.diff_ci_low, metrics.n_units
        from ml_model_metrics as metrics
        inner join ml_model_runs as runs using (run_id)
        where runs.model_name = 'cross_sell' and runs.run_kind = '{run_kind}'
        qualify max(runs.trained_at) over () = runs.trained_at""")
    return pd.DataFrame(rows, columns=["metric", "split", "cutoff", "baseline", "value",
                                       "baseline_value", "is_primary", "verdict",
                                       "diff_ci_low", "n_units"])


def test_rules_beat_popularity_out_of_time_on_generated_data(synth_warehouse) -> None:
    evaluation = registry_metrics(synth_warehouse.database, "evaluation")
    primary = evaluation[evaluation["is_primary"]]
    assert set(primary["metric"]) == {"product_hit_rate_at_3"}
    assert primary["cutoff"].nunique() == 3 and (primary["split"] == "test").all()
    # measured on this fixture: 0.21-0.26 vs popularity 0.12-0.16 per window (134-154
    # covered sessions each), every difference above 0
    assert (primary["value"] > primary["baseline_value"]).all(), primary
    assert (primary["verdict"] != "worse").all()
    assert (primary["n_units"] >= 100).all()
    production = registry_metrics(synth_warehouse.database, "production")
    assert set(production["split"]) == {"validation"}
    [(flagged, train_end, label_start, params)] = query(synth_warehouse.database, """
        select is_below_baseline, train_end, label_start, params_json from ml_model_runs
        where model_name = 'cross_sell' and run_kind = 'production'""")
    assert not flagged and train_end == label_start
    assert len(json.loads(params)["policies"]) == 4


def test_evaluation_rules_are_mined_before_their_windows(synth_warehouse) -> None:
    [(late,)] = query(synth_warehouse.database, """
        select count(*)
        from int_cross_sell_evaluation_items_counted as items
        inner join int_cross_sell_evaluation_windows as windows using (mining_window)
        where items.window_end_date > windows.start_date""")
    assert late == 0


def test_published_rules_reconcile_with_the_baskets(synth_warehouse) -> None:
    """Support, confidence and lift of the published rules, recounted from the baskets
    for every rule, equal the mined figures."""
    [(rules, wrong)] = query(synth_warehouse.database, """
        with baskets as (
            select session_id, basket_level, item_id from int_cross_sell_baskets
            where not is_oversized
        ),
        n as (select count(distinct session_id) as n_sessions from baskets),
        counted as (
            select rules.basket_level, rules.antecedent_id, rules.consequent_id,
                rules.support, rules.confidence, rules.lift,
                count(distinct a.session_id) as with_antecedent,
                count(distinct a.session_id) filter (where c.session_id is not null)
                    as with_both
            from rpt_cross_sell_rules as rules
            inner join baskets as a
                on a.basket_level = rules.basket_level and a.item_id = rules.antecedent_id
            left join baskets as c
                on c.session_id = a.session_id and c.basket_level = rules.basket_level
                and c.item_id = rules.consequent_id
            group by all
        ),
        consequents as (
            select basket_level, item_id, count(*) as with_consequent
            from baskets group by all
        )
        select count(*),
            count(*) filter (where abs(support - with_both / n_sessions) > 1e-12
                or abs(confidence - with_both / with_antecedent) > 1e-12
                or abs(lift - (with_both / with_antecedent)
                              / (with_consequent / n_sessions)) > 1e-9)
        from counted
        cross join n
        inner join consequents
            on consequents.basket_level = counted.basket_level
            and consequents.item_id = counted.consequent_id""")
    assert rules > 0 and wrong == 0


def test_planted_category_preferences_show_in_baskets_and_rules(synth_warehouse) -> None:
    """docs/generator.md plants co-purchase structure only through categories: a user's
    intent products are drawn from Dirichlet(2 x view share) category preferences, and
    browse visits cart products they viewed, which stay in the visit's category_l1 (jump
    probability 0.08). So products in one basket share their planted category_l1 far more
    often than independent draws would (the sum of squared category shares), and rules
    with lift above 1 link products of the same category_l1."""
    products = synth_warehouse.dataset.truth_dir / "products.parquet"
    [(pair_share, independent_share, pairs)] = query(synth_warehouse.database, f"""
        with planted as (
            select product_id, category_l1 from read_parquet('{products}')
        ),
        items as (
            select baskets.session_id, baskets.item_id, planted.category_l1
            from int_cross_sell_baskets as baskets
            inner join planted on baskets.item_id = planted.product_id
            where baskets.basket_level = 'product' and not baskets.is_oversized
        ),
        shares as (
            select count(*) / sum(count(*)) over () as share
            from items group by category_l1
        )
        select avg((a.category_l1 = b.category_l1)::int),
            (select sum(share * share) from shares), count(*)
        from items as a
        inner join items as b
            on a.session_id = b.session_id and a.item_id < b.item_id""")
    assert pairs >= 1000
    assert pair_share > 2 * independent_share, (pair_share, independent_share)
    [(rules, same_l1)] = query(synth_warehouse.database, f"""
        with planted as (
            select product_id, category_l1 from read_parquet('{products}')
        )
        select count(*), avg((a.category_l1 = c.category_l1)::int)
        from rpt_cross_sell_rules as rules
        inner join planted as a on rules.antecedent_id = a.product_id
        inner join planted as c on rules.consequent_id = c.product_id
        where rules.basket_level = 'product' and rules.lift > 1""")
    assert rules >= 20 and same_l1 >= 0.9, (rules, same_l1)
