"""Cross-sell: evaluate pairwise association rules mined in SQL against popularity.

Plain functions on frames, usable outside dbt. No I/O, no global state.

The rules (antecedent item -> consequent item, with support, confidence and lift) are
mined in SQL over session baskets (models/intermediate/ml/cross_sell): a *basket* is the
set of distinct products, or category ids, a session carted or bought. This module only
evaluates them, out of time: rules mined before a window are tested on its sessions.

The evaluation mirrors how a shop uses a cross-sell rule. In a judged session whose basket
holds at least two items at the level, the *known* item is the one added first
(`item_order` 1); the rest of the basket is what a recommendation should find. A
recommender proposes k items for the known item:

* **rules**, under a `Policy` chosen on the validation window only (`choose_policy`):
  the consequents of the known item's best rules (`rule_rank`: highest confidence, then
  lift), at most `max_rules` of them, and with `top_up` the slot filled to k with the most
  popular items not already in it. The top-up was first written after rules alone failed
  on the 67.5M-event month's test windows; it is now one candidate of POLICIES;
* **popularity** (the baseline): the k items in the most baskets mined on, the known
  item excluded.

hit@k is the share of sessions where at least one proposed item is in the rest of the
basket. Rules are compared with popularity on the *covered* sessions (the known item is
an antecedent of some rule), the same sessions for both, with paired bootstrap intervals
over sessions (`window_metrics`); "fallback" (the same recommender, which is popularity
alone where the known item has no rule and the policy tops up) is measured on every
multi-item session. Production (`train_cross_sell`) chooses on the validation split;
the rolling-origin evaluation (`evaluate_cross_sell_rolling`) chooses on a validation
window, then judges several test windows, each with rules mined strictly before it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ml.evaluation import InsufficientHistory, Resampler, compare, require_history
from ml.registry import Metric, TrainingRun, Window

__all__ = ["LEVELS", "POLICIES", "PRIMARY_K", "Policy", "choose_policy",
           "cross_sell_recommendations", "evaluate_cross_sell", "evaluate_cross_sell_rolling",
           "hit_rates", "policy_recommendations", "popularity_recommendations",
           "rule_recommendations", "session_hits", "train_cross_sell", "window_metrics"]

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


@dataclass(frozen=True)
class Policy:
    """How a cross-sell slot of k items is filled: the known item's first `max_rules`
    rules (by rule_rank), then, with `top_up`, the most popular items of the level to
    fill the k slots."""
    top_up: bool
    max_rules: int


# The policies chosen from on the validation window, the a priori one first (it wins
# ties): rules alone. The top-up with popular items was first written after failing on
# the 67.5M warehouse's test windows; it is now one candidate among these, chosen on
# validation only. On covered sessions a top-up can only add hits to rules alone (it
# fills empty slots), so it wins unless it ties; fewer rules and more popular items
# (max_rules 1 or 2) is the real trade-off.
POLICIES: tuple[Policy, ...] = (Policy(False, 3), Policy(True, 3), Policy(True, 2),
                                Policy(True, 1))
# The slot size, fixed a priori (a cross-sell slot shows a few items), never tuned.
PRIMARY_K = 3
KS = (1, 3)
# Days of basket sessions needed before the first window whose rules are tested.
MIN_HISTORY_DAYS = 7


def policy_recommendations(rules: pd.DataFrame, items: pd.DataFrame,
                           antecedents: pd.DataFrame, k: int,
                           policy: Policy) -> pd.DataFrame:
    """`cross_sell_recommendations` under a policy: at most `policy.max_rules` rules,
    topped up with popular items only with `policy.top_up`."""
    capped = rules[rules["rule_rank"] <= policy.max_rules]
    if policy.top_up:
        return cross_sell_recommendations(capped, items, antecedents, k)
    keys = ["basket_level", "antecedent_id"]
    return rule_recommendations(capped, k).merge(antecedents[keys].drop_duplicates(),
                                                 on=keys)


def session_hits(rules: pd.DataFrame, items: pd.DataFrame, baskets: pd.DataFrame,
                 k: int, policy: Policy) -> pd.DataFrame:
    """Per multi-item session x level of `baskets`: is_covered (the known item has a
    rule), is_hit (the policy's k items) and is_hit_popularity (the k most popular
    items), sorted by level and session."""
    known = _known_items(baskets)
    covered = (rule_recommendations(rules, 1)[["basket_level", "antecedent_id"]]
               .drop_duplicates().assign(is_covered=True))
    model = hit_rates(baskets, policy_recommendations(rules, items, known, k, policy), k)
    popular = hit_rates(baskets, popularity_recommendations(items, known, k), k)
    keys = ["session_id", "basket_level", "antecedent_id"]
    both = (model[[*keys, "is_hit"]]
            .merge(popular[[*keys, "is_hit"]].rename(columns={"is_hit": "is_hit_popularity"}),
                   on=keys)
            .merge(covered, on=["basket_level", "antecedent_id"], how="left"))
    both["is_covered"] = both["is_covered"].notna()
    return both.sort_values(["basket_level", "session_id"]).reset_index(drop=True)


def choose_policy(rules: pd.DataFrame, items: pd.DataFrame, baskets: pd.DataFrame,
                  policies: tuple[Policy, ...] = POLICIES,
                  k: int = PRIMARY_K) -> tuple[Policy, list[float | None]]:
    """The policy with the best product-level hit@k on the covered sessions of the
    validation `baskets` (ties: the earlier one), and every policy's hit rate (None
    without covered sessions, when the first policy is kept)."""
    scores: list[float | None] = []
    for policy in policies:
        table = session_hits(rules, items, baskets, k, policy)
        covered = table[(table["basket_level"] == LEVELS[0]) & table["is_covered"]]
        scores.append(float(covered["is_hit"].mean()) if len(covered) else None)
    if all(score is None for score in scores):
        return policies[0], scores
    best = max(range(len(policies)), key=lambda i: (scores[i] is not None,
                                                    scores[i] or 0.0, -i))
    return policies[best], scores


def _rate_of(flags: np.ndarray):
    flags = np.asarray(flags, dtype=float)

    def statistic(rows: np.ndarray) -> float:
        if rows.size == 0:
            raise ValueError("no basket sessions")
        return float(flags[rows].mean())
    return statistic


def window_metrics(rules: pd.DataFrame, items: pd.DataFrame, baskets: pd.DataFrame,
                   policy: Policy, *, split: str, cutoff: date | None,
                   n_samples: int = 200, seed: int = 0,
                   ks: Iterable[int] = KS) -> tuple[list[Metric], dict[str, int]]:
    """Hit rates of `policy` beside popularity on one window's baskets, with paired
    bootstrap intervals over basket sessions (ml.evaluation.compare): per level and k,
    `<level>_hit_rate_at_k` on the covered sessions (primary: product, k=PRIMARY_K),
    `<level>_fallback_hit_rate_at_k` on every multi-item session, and
    `<level>_rule_coverage`."""
    metrics: list[Metric] = []
    counts: dict[str, int] = {}
    for k in ks:
        table = session_hits(rules, items, baskets, k, policy)
        for level in LEVELS:
            sessions = table[table["basket_level"] == level]
            covered = sessions[sessions["is_covered"]]
            for name, rows in ((f"{level}_hit_rate_at_{k}", covered),
                               (f"{level}_fallback_hit_rate_at_{k}", sessions)):
                metrics += compare(
                    name, _rate_of(rows["is_hit"].to_numpy()),
                    {"popularity": _rate_of(rows["is_hit_popularity"].to_numpy())},
                    Resampler(len(rows), n_samples=n_samples, seed=seed),
                    is_primary=(level == LEVELS[0] and k == PRIMARY_K
                                and name.startswith(f"{level}_hit_rate")),
                    split=split, cutoff=cutoff)
            if k == min(ks):
                metrics += compare(f"{level}_rule_coverage",
                                   _rate_of(sessions["is_covered"].to_numpy()), {},
                                   Resampler(len(sessions), n_samples=n_samples, seed=seed),
                                   split=split, cutoff=cutoff)
                counts[f"{level}_multi_item_sessions"] = int(len(sessions))
                counts[f"{level}_covered_sessions"] = int(len(covered))
    return metrics, counts


def _day(value: Any) -> date | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def _require_baskets(baskets: pd.DataFrame, what: str) -> None:
    product = baskets[baskets["basket_level"] == LEVELS[0]]
    if product.empty or (product.groupby("session_id").size() >= 2).sum() == 0:
        raise InsufficientHistory(1, 0, f"multi-product basket sessions in {what}")


def train_cross_sell(rules: pd.DataFrame, items: pd.DataFrame,
                     validation_baskets: pd.DataFrame, *, train_window: tuple[date, date],
                     validation_window: tuple[date, date], params: Mapping[str, Any],
                     policies: tuple[Policy, ...] = POLICIES, n_samples: int = 200,
                     seed: int = 0, min_history_days: int = MIN_HISTORY_DAYS,
                     ) -> TrainingRun:
    """The production run: the policy (top-up or not, how many rules) chosen on the
    validation split (the last var cross_sell_test_days days of basket sessions) with
    the rules mined before it (`rules`, `items`: mining window 'train'); the published
    rules are then mined on every session. Metrics (split ``validation``) are the
    chosen policy's on that split beside popularity, with intervals over sessions:
    optimistic by the choice; the unbiased ones are `evaluate_cross_sell_rolling`'s.

    Raises InsufficientHistory with fewer than `min_history_days` days of baskets
    before the validation split, or no multi-product validation basket.
    """
    _require(items, (*ITEM_COLUMNS, "n_sessions"), "items")
    start, end = (_day(d) for d in train_window)
    v_start, v_end = (_day(d) for d in validation_window)
    observed = (v_end - v_start).days if v_start and v_end else 0
    validation_days = int(params.get("test_days") or observed)
    have = ((end - start).days if start and end else 0) + observed
    require_history(min_history_days + validation_days, have,
                    unit="days of basket sessions",
                    detail=f"{min_history_days} days to mine rules on, then the validation "
                           f"split of {validation_days} days (var cross_sell_test_days)")
    _require_baskets(validation_baskets, "the validation split")
    policy, scores = choose_policy(rules, items, validation_baskets, policies)
    metrics, counts = window_metrics(rules, items, validation_baskets, policy,
                                     split="validation", cutoff=v_start,
                                     n_samples=n_samples, seed=seed)
    n_rules = rules.groupby("basket_level").size().to_dict() if len(rules) else {}
    return TrainingRun(
        model_name="cross_sell",
        train_window=Window(start, end), label_window=Window(v_start, v_end),
        n_train=int(items["n_sessions"].max()) if len(items) else 0,
        n_test=counts[f"{LEVELS[0]}_multi_item_sessions"],
        params={**dict(params), **asdict(policy), "ks": list(KS), "primary_k": PRIMARY_K,
                "chosen_on": "validation split",
                "policies": [{**asdict(p), f"validation_hit_rate_at_{PRIMARY_K}": s}
                             for p, s in zip(policies, scores)],
                **counts,
                "n_rules": {level: int(n_rules.get(level, 0)) for level in LEVELS}},
        metrics=metrics, run_kind="production",
    )


def evaluate_cross_sell_rolling(windows: pd.DataFrame, rules: pd.DataFrame,
                                items: pd.DataFrame, baskets: pd.DataFrame,
                                params: Mapping[str, Any],
                                policies: tuple[Policy, ...] = POLICIES,
                                n_samples: int = 200, seed: int = 0,
                                min_history_days: int = MIN_HISTORY_DAYS) -> TrainingRun:
    """The rolling-origin evaluation (int_cross_sell_evaluation_* frames): the policy
    chosen once on the `validation` window with the rules mined before it, as
    production does, then each test window `test_<i>` judged with the rules mined
    strictly before its start (mining windows of the same names), beside popularity,
    with intervals over basket sessions (split ``test``, cutoff = the window's start).
    `baskets`: the non-oversized basket rows with session_date."""
    if windows.empty:
        raise InsufficientHistory(min_history_days, 0, "days of basket sessions")
    windows = windows.assign(
        start_date=pd.to_datetime(windows["start_date"]).dt.date,
        end_date=pd.to_datetime(windows["end_date"]).dt.date,
        first_date=pd.to_datetime(windows["first_date"]).dt.date).set_index("mining_window")
    validation = windows.loc["validation"]
    last_end = windows["end_date"].max()
    require_history(min_history_days + (last_end - validation["start_date"]).days,
                    (last_end - validation["first_date"]).days,
                    unit="days of basket sessions",
                    detail=f"{min_history_days} days to mine rules on, then the validation "
                           f"window and {len(windows) - 1} test windows")
    day = pd.to_datetime(baskets["session_date"]).dt.date

    def in_window(name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        row = windows.loc[name]
        chosen = baskets[(day >= row["start_date"]) & (day < row["end_date"])]
        return (rules[rules["mining_window"] == name], items[items["mining_window"] == name],
                chosen)

    v_rules, v_items, v_baskets = in_window("validation")
    _require_baskets(v_baskets, "the validation window")
    policy, scores = choose_policy(v_rules, v_items, v_baskets, policies)
    metrics: list[Metric] = []
    per_window = []
    tests = sorted((name for name in windows.index if name.startswith("test_")),
                   key=lambda name: windows.loc[name, "start_date"])
    for i, name in enumerate(tests, start=1):
        t_rules, t_items, t_baskets = in_window(name)
        found, counts = window_metrics(t_rules, t_items, t_baskets, policy, split="test",
                                       cutoff=windows.loc[name, "start_date"],
                                       n_samples=n_samples, seed=seed + i)
        metrics += found
        per_window.append({"window": name,
                           "start": windows.loc[name, "start_date"].isoformat(),
                           "end": windows.loc[name, "end_date"].isoformat(), **counts})
    first_test = windows.loc[tests[0]]
    return TrainingRun(
        model_name="cross_sell",
        train_window=Window(validation["first_date"], first_test["start_date"]),
        label_window=Window(first_test["start_date"], windows.loc[tests[-1], "end_date"]),
        n_train=int(items.loc[items["mining_window"] == tests[0], "n_sessions"].max())
        if len(items) else 0,
        n_test=int(sum(w[f"{LEVELS[0]}_multi_item_sessions"] for w in per_window)),
        params={**dict(params), **asdict(policy), "ks": list(KS), "primary_k": PRIMARY_K,
                "validation_window": [validation["start_date"].isoformat(),
                                      validation["end_date"].isoformat()],
                "policies": [{**asdict(p), f"validation_hit_rate_at_{PRIMARY_K}": s}
                             for p, s in zip(policies, scores)],
                "windows": per_window},
        metrics=metrics, run_kind="evaluation",
    )
