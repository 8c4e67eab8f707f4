"""Cross-sell: evaluate pairwise association rules mined in SQL against popularity.

Plain functions on frames, usable outside dbt. No I/O, no global state.

The rules (antecedent item -> consequent item, with support, confidence and lift) are
mined in SQL over session baskets (models/intermediate/ml/cross_sell): a *basket* is the
set of distinct products, or category ids, a session carted or bought. This module only
evaluates them, out of time: rules mined on the train split are tested on the sessions of
the later test split.

The evaluation mirrors how a shop uses a cross-sell rule. In a test session whose basket
holds at least two items at the level, the *known* item is the one added first
(`item_order` 1); the rest of the basket is what a recommendation should find. A
recommender proposes k items for the known item:

* **rules**: the consequents of the known item's best rules (`rule_rank`: highest
  confidence, then lift), the slot topped up to k with the most popular items not already
  in it. A cross-sell slot is never shown half empty, and the minimum support leaves
  most antecedents of a large month with one or two rules: rules alone would be a shorter
  list than the baseline's;
* **popularity** (the baseline): the k items in the most train-split baskets, the known
  item excluded.

hit@k is the share of sessions where at least one proposed item is in the rest of the
basket. Rules are compared with popularity on the *covered* sessions (the known item is
an antecedent of some rule), the same sessions for both; "fallback" (the same
recommender, which is popularity alone where the known item has no rule) is measured on
every multi-item test session.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterable, Mapping

import pandas as pd

from ml.registry import Metric, TrainingRun, Window

__all__ = ["LEVELS", "cross_sell_recommendations", "evaluate_cross_sell", "hit_rates",
           "popularity_recommendations", "rule_recommendations", "train_cross_sell"]

# Basket levels, in the order metrics are reported; the first one holds the primary metric.
LEVELS = ("product", "category")

BASKET_COLUMNS = ("session_id", "basket_level", "item_id", "item_order")
RULE_COLUMNS = ("basket_level", "antecedent_id", "consequent_id", "rule_rank")
ITEM_COLUMNS = ("basket_level", "item_id", "item_sessions", "popularity_rank")


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def rule_recommendations(rules: pd.DataFrame, k: int) -> pd.DataFrame:
    """The k best consequents of every antecedent: basket_level, antecedent_id,
    item_id (the consequent), rank 1..k (by the rules' `rule_rank`)."""
    _require(rules, RULE_COLUMNS, "rules")
    top = rules.loc[rules["rule_rank"] <= k, list(RULE_COLUMNS)]
    top = top.sort_values(["basket_level", "antecedent_id", "rule_rank"])
    top = top.assign(rank=top.groupby(["basket_level", "antecedent_id"]).cumcount() + 1)
    return (top.rename(columns={"consequent_id": "item_id"})
            [["basket_level", "antecedent_id", "item_id", "rank"]]
            .reset_index(drop=True))


def popularity_recommendations(items: pd.DataFrame, antecedents: pd.DataFrame,
                               k: int) -> pd.DataFrame:
    """For every (basket_level, antecedent_id) of `antecedents`, the k most popular items
    of its level other than the antecedent: basket_level, antecedent_id, item_id, rank."""
    _require(items, ITEM_COLUMNS, "items")
    top = (items.loc[items["popularity_rank"] <= k + 1,
                     ["basket_level", "item_id", "popularity_rank"]])
    keys = antecedents[["basket_level", "antecedent_id"]].drop_duplicates()
    pairs = keys.merge(top, on="basket_level")
    pairs = pairs[pairs["item_id"] != pairs["antecedent_id"]]
    pairs = pairs.sort_values(["basket_level", "antecedent_id", "popularity_rank"])
    pairs = pairs.assign(rank=pairs.groupby(["basket_level", "antecedent_id"]).cumcount() + 1)
    return (pairs.loc[pairs["rank"] <= k,
                      ["basket_level", "antecedent_id", "item_id", "rank"]]
            .reset_index(drop=True))


def cross_sell_recommendations(rules: pd.DataFrame, items: pd.DataFrame,
                               antecedents: pd.DataFrame, k: int) -> pd.DataFrame:
    """For every (basket_level, antecedent_id) of `antecedents`: its k best rules, then
    the most popular items of its level to fill k slots (never the antecedent, never an
    item twice). Popularity alone where the antecedent has no rule.

    Returns basket_level, antecedent_id, item_id, rank 1..k.
    """
    keys = ["basket_level", "antecedent_id"]
    by_rules = rule_recommendations(rules, k).merge(
        antecedents[keys].drop_duplicates(), on=keys)
    # 2k popular candidates: up to k of them may already be among the rules.
    by_popularity = popularity_recommendations(items, antecedents, 2 * k)
    both = pd.concat([by_rules.assign(source=0), by_popularity.assign(source=1)])
    both = (both.sort_values([*keys, "source", "rank"])
            .drop_duplicates([*keys, "item_id"]))
    both = both.assign(rank=both.groupby(keys).cumcount() + 1)
    return (both.loc[both["rank"] <= k, [*keys, "item_id", "rank"]]
            .reset_index(drop=True))


def _known_items(baskets: pd.DataFrame) -> pd.DataFrame:
    """One row per multi-item session x level: session_id, basket_level, antecedent_id."""
    sizes = baskets.groupby(["session_id", "basket_level"])["item_id"].transform("size")
    first = baskets[(baskets["item_order"] == 1) & (sizes >= 2)]
    return (first[["session_id", "basket_level", "item_id"]]
            .rename(columns={"item_id": "antecedent_id"}).reset_index(drop=True))


def hit_rates(baskets: pd.DataFrame, recommendations: pd.DataFrame,
              k: int) -> pd.DataFrame:
    """Per multi-item session x level of `baskets`: whether any of the first k
    recommendations for its first-added item is among its other items.

    Returns session_id, basket_level, antecedent_id, is_recommended (some recommendation
    exists) and is_hit (bool). Sessions whose basket holds one item are not returned.
    """
    _require(baskets, BASKET_COLUMNS, "baskets")
    known = _known_items(baskets)
    recs = recommendations[recommendations["rank"] <= k]
    proposed = known.merge(recs, on=["basket_level", "antecedent_id"], how="inner")
    rest = baskets.loc[baskets["item_order"] > 1, ["session_id", "basket_level", "item_id"]]
    found = proposed.merge(rest, on=["session_id", "basket_level", "item_id"], how="inner")
    hit_keys = found[["session_id", "basket_level"]].drop_duplicates().assign(is_hit=True)
    has_recs = (proposed[["session_id", "basket_level"]].drop_duplicates()
                .assign(is_recommended=True))
    out = (known.merge(has_recs, on=["session_id", "basket_level"], how="left")
           .merge(hit_keys, on=["session_id", "basket_level"], how="left"))
    out["is_recommended"] = out["is_recommended"].fillna(False).astype(bool)
    out["is_hit"] = out["is_hit"].fillna(False).astype(bool)
    return out


def evaluate_cross_sell(rules: pd.DataFrame, items: pd.DataFrame,
                        test_baskets: pd.DataFrame,
                        ks: Iterable[int] = (1, 3)) -> pd.DataFrame:
    """Hit rates of rules and of popularity on the test baskets, per level and k.

    `rules` and `items` come from the train split (int_cross_sell_rules_mined and
    int_cross_sell_items_counted, mining_window 'train'); `test_baskets` are the test
    split's basket rows (session_id, basket_level, item_id, item_order). Returns one row
    per basket_level x k: multi_item_sessions, covered_sessions (the first item has a
    rule), coverage, rules_hit_rate (cross_sell_recommendations) and popularity_hit_rate
    on the covered sessions, fallback_hit_rate (the same recommender, popularity alone
    where there is no rule) and popularity_all_hit_rate on every multi-item session.
    Rates are NaN where there are no sessions.
    """
    _require(test_baskets, BASKET_COLUMNS, "test_baskets")
    rows = []
    known = _known_items(test_baskets)
    for k in ks:
        # a session is covered when its known item has a rule of its own
        by_rules = rule_recommendations(rules, k)
        covered_items = (by_rules[["basket_level", "antecedent_id"]].drop_duplicates()
                         .assign(is_covered=True))
        rule_hits = hit_rates(test_baskets,
                              cross_sell_recommendations(rules, items, known, k), k)
        pop_hits = hit_rates(test_baskets, popularity_recommendations(items, known, k), k)
        both = (rule_hits.merge(pop_hits, on=["session_id", "basket_level", "antecedent_id"],
                                suffixes=("_rules", "_pop"))
                .merge(covered_items, on=["basket_level", "antecedent_id"], how="left"))
        both["is_covered"] = both["is_covered"].notna()
        for level in LEVELS:
            sessions = both[both["basket_level"] == level]
            covered = sessions[sessions["is_covered"]]
            rows.append({
                "basket_level": level,
                "k": int(k),
                "multi_item_sessions": len(sessions),
                "covered_sessions": len(covered),
                "coverage": _rate(sessions["is_covered"]),
                "rules_hit_rate": _rate(covered["is_hit_rules"]),
                "popularity_hit_rate": _rate(covered["is_hit_pop"]),
                "fallback_hit_rate": _rate(sessions["is_hit_rules"]),
                "popularity_all_hit_rate": _rate(sessions["is_hit_pop"]),
            })
    return pd.DataFrame(rows)


def _rate(flags: pd.Series) -> float:
    return float(flags.mean()) if len(flags) else float("nan")


def train_cross_sell(rules: pd.DataFrame, items: pd.DataFrame,
                     test_baskets: pd.DataFrame, *, train_window: tuple[date, date],
                     test_window: tuple[date, date], params: Mapping[str, Any],
                     ks: Iterable[int] = (1, 3), primary_k: int = 3) -> TrainingRun:
    """The cross-sell training run: rules mined on `train_window` in SQL, evaluated on
    the baskets of `test_window` (both half-open [start, end) dates).

    The primary metric is the product-level hit@`primary_k` (3: a cross-sell slot shows a
    few items) on the covered sessions beside popularity's on the same sessions; hit@1 and
    the category level are reported beside it. n_train is the train split's basket sessions (from
    `items`), n_test the multi-item test sessions at product level. Raises when the test
    split has no multi-item basket, since nothing could be evaluated.
    """
    _require(items, (*ITEM_COLUMNS, "n_sessions"), "items")
    ks = tuple(ks)
    if primary_k not in ks:
        raise ValueError(f"primary_k {primary_k} is not among ks {ks}")
    table = evaluate_cross_sell(rules, items, test_baskets, ks)
    product = table[table["basket_level"] == LEVELS[0]]
    if product.empty or int(product["multi_item_sessions"].iloc[0]) == 0:
        raise ValueError("no test session has two or more products in its basket: "
                         "nothing to evaluate (check var cross_sell_test_days)")
    metrics: list[Metric] = []
    for row in table.itertuples(index=False):
        level, k = row.basket_level, row.k
        primary = level == LEVELS[0] and k == primary_k
        metrics.append(Metric(f"{level}_hit_rate_at_{k}", row.rules_hit_rate,
                              baseline=f"most popular {level}s, covered sessions",
                              baseline_value=row.popularity_hit_rate,
                              is_primary=primary))
        metrics.append(Metric(f"{level}_fallback_hit_rate_at_{k}", row.fallback_hit_rate,
                              baseline=f"most popular {level}s, all multi-item sessions",
                              baseline_value=row.popularity_all_hit_rate))
        if k == min(ks):
            metrics.append(Metric(f"{level}_rule_coverage", row.coverage))
            metrics.append(Metric(f"{level}_covered_sessions", float(row.covered_sessions)))
            metrics.append(Metric(f"{level}_multi_item_sessions",
                                  float(row.multi_item_sessions)))
    n_rules = rules.groupby("basket_level").size().to_dict() if len(rules) else {}
    n_train = int(items["n_sessions"].max()) if len(items) else 0
    return TrainingRun(
        model_name="cross_sell",
        train_window=Window(*train_window),
        label_window=Window(*test_window),
        n_train=n_train,
        n_test=int(product["multi_item_sessions"].iloc[0]),
        params={**dict(params), "ks": list(ks), "primary_k": primary_k,
                "n_rules": {level: int(n_rules.get(level, 0)) for level in LEVELS}},
        metrics=metrics,
    )
