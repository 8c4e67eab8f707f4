"""ml.recommend: exact full-catalogue ranking, metrics, baselines and similar products on
small frames; the recommender on the shared generated warehouse against its baselines and
the generator's planted category preferences."""
from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from dbt_project import query
from ml.recommend import (BASELINES, BLEND_CANDIDATES, MODEL_BLEND, Blend, Catalogue,
                          blend_of, planted_category_share, select_blend,
                          ranking_metrics, recommend, similar_products,
                          train_recommendations)

# --------------------------------------------------------------------------- small frames


def make_world(n_users: int = 300, n_products: int = 120, n_categories: int = 6,
               seed: int = 0) -> dict[str, pd.DataFrame]:
    """A planted world: each user prefers one category and interacts mostly with its
    popular products; products of a category co-occur. Frames are shaped like the
    int_recommend_* models (window roles train/test)."""
    rng = np.random.default_rng(seed)
    products = np.arange(n_products) + 1000
    category = rng.integers(0, n_categories, n_products)
    appeal = rng.pareto(1.5, n_products) + 0.1
    preferred = rng.integers(0, n_categories, n_users)
    rows = []
    for user in range(n_users):
        in_cat = products[category == preferred[user]]
        p = appeal[category == preferred[user]] / appeal[category == preferred[user]].sum()
        for role, count in (("train", 8), ("test", 3)):
            chosen = np.where(rng.random(count) < 0.85,
                              rng.choice(in_cat, count, p=p), rng.choice(products, count))
            for product in chosen:
                rows.append((role, user + 1, int(product), float(rng.integers(1, 4)),
                             bool(rng.random() < 0.1)))
    # the validation day's windows: a second draw of the same world, one day earlier
    validation_rng = np.random.default_rng(seed + 1000)
    for user in range(n_users):
        in_cat = products[category == preferred[user]]
        p = appeal[category == preferred[user]] / appeal[category == preferred[user]].sum()
        for role, count in (("validation_train", 8), ("validation_test", 3)):
            for product in validation_rng.choice(in_cat, count, p=p):
                rows.append((role, user + 1, int(product), 1.0, False))
    user_items = (pd.DataFrame(rows, columns=["window_role", "user_id", "product_id",
                                              "interaction_weight", "is_purchased"])
                  .groupby(["window_role", "user_id", "product_id"], as_index=False)
                  .agg(interaction_weight=("interaction_weight", "sum"),
                       is_purchased=("is_purchased", "any")))
    train = user_items[user_items["window_role"] == "train"]
    pop = train.groupby("product_id")["interaction_weight"].sum()
    items = pd.DataFrame({"product_id": products, "category_id": category + 500,
                          "category_l1": [f"cat{c}" for c in category],
                          "brand": "b", "price_band": 1})
    items["popularity"] = items["product_id"].map(pop).fillna(0.0)
    # co-occurrence neighbours from the train rows: products sharing users
    pairs = train.merge(train, on="user_id")
    pairs = pairs[pairs["product_id_x"] != pairs["product_id_y"]]
    co = pairs.groupby(["product_id_x", "product_id_y"]).size().rename("co").reset_index()
    co["similarity"] = co["co"] / np.sqrt(co["product_id_x"].map(pop).to_numpy()
                                          * co["product_id_y"].map(pop).to_numpy())
    neighbours = co.rename(columns={"product_id_x": "product_id",
                                    "product_id_y": "neighbour_product_id"})
    neighbours["co_sessions"] = neighbours["co"]
    neighbours["neighbour_rank"] = neighbours.groupby("product_id")["similarity"].rank(
        ascending=False, method="first").astype(int)
    neighbours = neighbours[neighbours["neighbour_rank"] <= 15]
    planted = pd.DataFrame({"user_id": np.arange(n_users) + 1,
                            "top_category_l1": [f"cat{c}" for c in preferred]})
    windows = pd.DataFrame({"first_event_date": [pd.Timestamp("2019-10-01")],
                            "cutoff_date": [pd.Timestamp("2019-12-30")]})
    return {"items": items.assign(window_role="train"),
            "neighbours": neighbours.assign(window_role="train"),
            "user_items": user_items, "planted": planted, "windows": windows}


def both_windows(frame: pd.DataFrame) -> pd.DataFrame:
    """A `train` catalogue frame, also as the validation day's (a static world)."""
    return pd.concat([frame, frame.assign(window_role="validation_train")])


def brute_force(user_items: pd.DataFrame, catalogue: Catalogue, user: int, n: int,
                blend: Blend) -> list[int]:
    """The blend scored densely over every product for one user, as the docstring says."""
    rows = user_items[user_items["user_id"] == user]
    history = np.zeros(catalogue.size)
    history[catalogue.index(rows["product_id"])] = rows["interaction_weight"].to_numpy()
    cf = catalogue.similarity.T @ history + blend.self_weight * history
    cf = cf / cf.max() if cf.max() > 0 else cf
    share = np.bincount(catalogue.category, weights=history,
                        minlength=catalogue.n_categories)
    share = share / share.sum() if share.sum() > 0 else share
    score = (blend.cf_weight * cf
             + blend.content_weight * share[catalogue.category] * catalogue.catpop_norm
             + blend.popularity_weight * catalogue.pop_norm)
    bought = catalogue.index(rows.loc[rows["is_purchased"], "product_id"])
    score[bought] = -np.inf
    order = np.lexsort((catalogue.product_id, -score))
    return [int(catalogue.product_id[i]) for i in order[:n] if np.isfinite(score[i])]


@pytest.mark.parametrize("blend", [MODEL_BLEND, *BASELINES.values(),
                                   Blend(1.0, 2.0, 0.3, 0.0)])
def test_candidate_ranking_equals_dense_ranking_over_the_whole_catalogue(
        blend: Blend) -> None:
    world = make_world(n_users=60, seed=3)
    train = world["user_items"].query("window_role == 'train'")
    catalogue = Catalogue(world["items"], world["neighbours"])
    users = np.arange(1, 61)
    recs = recommend(train, catalogue, users=users, n=10, blend=blend, batch_size=7)
    for user in users:
        mine = recs[recs["user_id"] == user].sort_values("rank")
        assert mine["rank"].tolist() == list(range(1, 11))
        assert mine["product_id"].tolist() == brute_force(train, catalogue, user, 10, blend)


def test_bought_products_are_never_recommended_and_cold_users_get_popularity() -> None:
    world = make_world(seed=1)
    train = world["user_items"].query("window_role == 'train'")
    catalogue = Catalogue(world["items"], world["neighbours"])
    recs = recommend(train, catalogue, users=[1, 2, 3, 999_999], n=20)
    bought = train[train["is_purchased"]][["user_id", "product_id"]]
    assert recs.merge(bought, on=["user_id", "product_id"]).empty
    cold = recs[recs["user_id"] == 999_999].sort_values("rank")
    top = world["items"].sort_values(["popularity", "product_id"],
                                     ascending=[False, True])["product_id"].head(20)
    assert cold["product_id"].tolist() == top.tolist()
    assert set(cold["source"]) == {"popularity"}
    assert set(recs.loc[recs["user_id"] != 999_999, "source"]) <= {"cf", "content",
                                                                   "popularity"}


def test_catalogue_positions_follow_product_ids_and_unknown_ids_raise() -> None:
    world = make_world(seed=2)
    catalogue = Catalogue(world["items"], world["neighbours"])
    ids = world["items"]["product_id"].sample(frac=1.0, random_state=0).to_numpy()
    assert np.array_equal(catalogue.product_id[catalogue.index(ids)], ids)
    with pytest.raises(ValueError, match="outside the catalogue"):
        catalogue.index([int(ids.max()) + 1])


def test_ranking_metrics_by_hand() -> None:
    recs = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "product_id": [10, 11, 12, 20, 21, 22],
                         "rank": [1, 2, 3, 1, 2, 3]})
    positives = pd.DataFrame({"user_id": [1, 1, 2, 3], "product_id": [11, 99, 20, 30]})
    got = ranking_metrics(recs, positives, k=3)
    # user 1: 1 hit of 2 at rank 2; user 2: 1 of 1 at rank 1; user 3: nothing recommended
    assert got["recall_at_3"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    ndcg_1 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert got["ndcg_at_3"] == pytest.approx((ndcg_1 + 1.0 + 0.0) / 3)
    # k cuts the list: at k=1 user 1's hit at rank 2 no longer counts
    assert ranking_metrics(recs, positives, k=1)["recall_at_1"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        ranking_metrics(recs, positives.iloc[0:0], k=3)


def test_planted_category_share_counts_missing_categories_as_unknown() -> None:
    items = pd.DataFrame({"product_id": [1, 2, 3], "category_id": [7, 8, 9],
                          "category_l1": ["a", None, "b"], "popularity": [1.0, 1.0, 1.0]})
    catalogue = Catalogue(items, pd.DataFrame(columns=["product_id", "neighbour_product_id",
                                                       "similarity"]))
    recs = pd.DataFrame({"user_id": [1, 1, 1, 2], "product_id": [1, 2, 3, 2]})
    planted = pd.DataFrame({"user_id": [1, 2], "top_category_l1": ["a", "unknown"]})
    assert planted_category_share(recs, catalogue, planted) == pytest.approx(2 / 4)


def test_training_run_beats_popularity_and_finds_the_planted_categories() -> None:
    world = make_world(seed=2)
    run = train_recommendations(world["windows"], both_windows(world["items"]),
                                both_windows(world["neighbours"]),
                                world["user_items"], planted=world["planted"], n=20)
    assert run.model_name == "recommendations" and run.n_test > 250
    metrics = {(m.metric, m.split): m for m in run.metrics}
    assert len(metrics) == len(run.metrics) == 6  # the registry key is unique
    assert [(m.metric, m.baseline) for m in run.primary_metrics()] == [
        ("ndcg_at_20", "popularity")]
    for name in ("recall_at_20", "ndcg_at_20", "planted_top_category_share"):
        assert metrics[(name, "test")].beats_baseline(), name
    share = metrics[("planted_top_category_share", "test")]
    assert share.value > 0.6 and share.baseline_value < 0.4
    assert not run.is_below_baseline()
    frame = run.to_frame()
    assert json.loads(frame.loc[0, "params_json"])["has_planted_truth"] is True
    # without truth the planted metric is simply absent
    bare = train_recommendations(world["windows"], both_windows(world["items"]),
                                 both_windows(world["neighbours"]),
                                 world["user_items"], planted=None, n=20)
    assert {m.metric for m in bare.metrics} == {"recall_at_20", "ndcg_at_20"}


def revisiting_world(revisit: bool) -> dict[str, pd.DataFrame]:
    """make_world whose validation day holds, per user, either only products the user
    touched before (`revisit`) or only products the user never touched."""
    world = make_world(seed=5)
    items = world["user_items"]
    history = items[items["window_role"] == "validation_train"]
    keys = ["user_id", "product_id"]
    if revisit:
        day = history.groupby("user_id").head(2).assign(window_role="validation_test")
    else:
        day = items[items["window_role"] == "validation_test"].merge(
            history[keys], on=keys, how="left", indicator=True)
        day = day[day["_merge"] == "left_only"].drop(columns="_merge")
    world["user_items"] = pd.concat([items[items["window_role"] != "validation_test"], day])
    return world


@pytest.mark.parametrize("revisit, self_weight", [(True, 1.0), (False, 0.0)])
def test_the_blend_is_chosen_on_the_validation_day(revisit: bool,
                                                   self_weight: float) -> None:
    world = revisiting_world(revisit)
    items = world["user_items"]
    catalogue = Catalogue(world["items"], world["neighbours"])
    chosen, scores = select_blend(items[items["window_role"] == "validation_train"],
                                  items[items["window_role"] == "validation_test"],
                                  catalogue, n=20)
    assert len(scores) == len(BLEND_CANDIDATES)
    assert chosen == BLEND_CANDIDATES[int(np.argmax(scores))]
    # re-visits planted: the user's own products first; none: they only waste slots
    assert chosen.self_weight == self_weight, scores
    # the run records the choice, and production reads the same blend back
    run = train_recommendations(world["windows"], both_windows(world["items"]),
                                both_windows(world["neighbours"]), items, n=20)
    params = json.loads(run.to_frame().loc[0, "params_json"])
    assert blend_of(run.to_frame().loc[0, "params_json"]) == chosen
    assert [c["validation_ndcg_at_20"] for c in params["blend_candidates"]] == \
        pytest.approx(scores)
    # the test day is never looked at: scrambling it leaves the choice alone
    scrambled = items.copy()
    test = scrambled["window_role"] == "test"
    scrambled.loc[test, "product_id"] = scrambled.loc[test, "product_id"].to_numpy()[::-1]
    again = train_recommendations(world["windows"], both_windows(world["items"]),
                                  both_windows(world["neighbours"]), scrambled, n=20)
    assert blend_of(again.to_frame().loc[0, "params_json"]) == chosen


def test_without_a_validation_day_the_first_candidate_is_kept() -> None:
    world = make_world(n_users=40, seed=6)
    items = world["user_items"]
    catalogue = Catalogue(world["items"], world["neighbours"])
    chosen, scores = select_blend(items[items["window_role"] == "validation_train"],
                                  items.iloc[0:0], catalogue, n=20)
    assert chosen == BLEND_CANDIDATES[0] == MODEL_BLEND
    assert all(np.isnan(scores))


def test_training_is_blind_to_the_test_rows_of_other_users() -> None:
    world = make_world(seed=4)
    catalogue = Catalogue(world["items"], world["neighbours"])
    train = world["user_items"].query("window_role == 'train'")
    first = recommend(train, catalogue, users=[5, 6], n=20)
    scrambled = world["user_items"].copy()
    test = scrambled["window_role"] == "test"
    scrambled.loc[test, "product_id"] = scrambled.loc[test, "product_id"].to_numpy()[::-1]
    second = recommend(scrambled.query("window_role == 'train'"), catalogue, users=[5, 6],
                       n=20)
    pd.testing.assert_frame_equal(first, second)


def test_similar_products_put_cf_first_and_fill_with_content() -> None:
    neighbours = pd.DataFrame({
        "product_id": [1, 1, 1, 2], "neighbour_product_id": [2, 3, 4, 1],
        "similarity": [0.9, 0.5, 0.4, 0.9], "co_sessions": [5, 1, 3, 5],
        "neighbour_rank": [1, 2, 3, 1]})
    content = pd.DataFrame({
        "product_id": [1, 1, 1, 3, 3], "neighbour_product_id": [4, 5, 6, 1, 2],
        "content_score": [1.0, 2 / 3, 1 / 3, 1.0, 1.0], "neighbour_rank": [1, 2, 3, 1, 2]})
    got = similar_products(neighbours, content, n=3, min_co_sessions=2)
    one = got[got["product_id"] == 1]
    # 3 has too few shared sessions; 4 is a CF neighbour and not repeated as content
    assert one["similar_product_id"].tolist() == [2, 4, 5]
    assert one["source"].tolist() == ["cf", "cf", "content"]
    assert one["rank"].tolist() == [1, 2, 3]
    cold = got[got["product_id"] == 3]  # no CF neighbours: content only
    assert cold["source"].tolist() == ["content", "content"]
    assert not (got["product_id"] == got["similar_product_id"]).any()


# --------------------------------------------------------------------------- warehouse

def _frame(database, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.sql(sql).df()


@pytest.fixture(scope="module")
def evaluation(synth_warehouse) -> dict:
    """The registry's metrics, and the same evaluation re-run from the warehouse's
    inputs with the generator's planted preferences (the shared build has no
    synth_truth_dir, like the demo)."""
    db = synth_warehouse.database
    metrics = _frame(db, """
        select metric, split, value, baseline, baseline_value, is_primary, beats_baseline,
               runs.is_below_baseline, runs.n_test
        from ml_model_metrics as metrics
        inner join ml_model_runs as runs using (run_id)
        where metrics.model_name = 'recommendations'
    """)
    truth = pd.read_parquet(synth_warehouse.dataset.truth_dir / "users.parquet")
    planted = truth.loc[truth["actor_type"] == "human", ["user_id", "top_category_l1"]]
    run = train_recommendations(
        _frame(db, "select * from int_recommend_windows"),
        _frame(db, "select * from int_recommend_item_popularity where window_role != 'full'"),
        _frame(db, "select * from int_recommend_item_neighbours where window_role != 'full'"),
        _frame(db, "select * from int_recommend_user_items where window_role != 'full'"),
        planted=planted, n=20)
    replayed = {(m.metric, m.split): m for m in run.metrics}
    print("recommendations:", json.dumps({f"{k[0]}/{k[1]}": [m.value, m.baseline_value]
                                          for k, m in replayed.items()}, indent=1))
    return {"registry": metrics, "replayed": replayed, "planted": planted, "run": run}


def test_registry_holds_the_run_above_popularity_on_recall_and_ndcg(evaluation) -> None:
    metrics = evaluation["registry"].set_index(["metric", "split"])
    assert len(metrics) == 4  # no planted metric without synth_truth_dir
    primary = metrics[metrics["is_primary"]]
    assert primary.index.tolist() == [("ndcg_at_20", "test")]
    assert primary["baseline"].item() == "popularity"
    assert not metrics["is_below_baseline"].any()
    assert metrics["n_test"].iloc[0] >= 300
    for name in ("recall_at_20", "ndcg_at_20"):
        row = metrics.loc[(name, "test")]
        # measured on this fixture (seed 7): recall 0.333 vs 0.250, NDCG 0.216 vs 0.182
        assert row["value"] > 1.05 * row["baseline_value"], name
        vs_category = metrics.loc[(name, "test_vs_category_popularity")]
        assert vs_category["baseline"] == "category_popularity"
        assert 0 < vs_category["baseline_value"] < 1
    # the replay from the same inputs reproduces the registry
    for (name, split), row in metrics.iterrows():
        assert evaluation["replayed"][(name, split)].value == pytest.approx(row["value"])


def test_recommendations_follow_the_planted_category_preferences(evaluation) -> None:
    replayed = evaluation["replayed"]
    share = replayed[("planted_top_category_share", "test")]
    # the blend recommends the planted top category about twice as often as popularity
    # (measured on this fixture: 0.582 vs 0.291; category popularity 0.586)
    assert share.value > share.baseline_value + 0.15
    assert share.value > 0.4
    vs_category = replayed[("planted_top_category_share", "test_vs_category_popularity")]
    assert vs_category.baseline_value > share.baseline_value  # categories carry the signal
    assert json.loads(evaluation["run"].to_frame().loc[0, "params_json"])["planted_users"] \
        >= 300


def test_production_recommendations_cover_active_users_and_follow_the_planted_truth(
        synth_warehouse, evaluation) -> None:
    db = synth_warehouse.database
    recs = _frame(db, "select * from ml_recommendations")
    active = _frame(db, "select distinct user_id from int_recommend_user_items "
                        "where window_role = 'full'")
    assert set(recs["user_id"]) == set(active["user_id"])
    assert (recs.groupby("user_id").size() == 20).all()
    assert recs["run_id"].nunique() == 1 and not recs["is_model_below_baseline"].any()
    bought = _frame(db, "select user_id, product_id from int_recommend_user_items "
                        "where window_role = 'full' and is_purchased")
    assert recs.merge(bought, on=["user_id", "product_id"]).empty
    # the planted top category, for production recommendations vs the popular products
    items = _frame(db, "select * from int_recommend_item_popularity "
                       "where window_role = 'full'")
    catalogue = Catalogue(items, pd.DataFrame(columns=["product_id", "neighbour_product_id",
                                                       "similarity"]))
    planted = evaluation["planted"]
    model_share = planted_category_share(recs, catalogue, planted)
    no_history = bought.iloc[0:0].assign(interaction_weight=0.0, is_purchased=False)
    popular = recommend(no_history, catalogue, users=recs["user_id"].unique(), n=20,
                        blend=BASELINES["popularity"])
    popularity_share = planted_category_share(popular, catalogue, planted)
    assert model_share > popularity_share + 0.15, (model_share, popularity_share)


def test_similar_products_cover_the_catalogue(synth_warehouse) -> None:
    db = synth_warehouse.database
    (row,) = query(db, """
        with categories as (
            select category_id, count(*) as products
            from int_recommend_item_popularity
            where window_role = 'full'
            group by 1
        )
        select
            count(*) filter (
                where similar_products.product_id is null and categories.products > 1
            ),
            count(distinct similar_products.product_id),
            count(*) filter (where similar_products.source = 'cf'),
            max(similar_products.rank)
        from int_recommend_item_popularity as items
        inner join categories using (category_id)
        left join ml_similar_products as similar_products using (product_id)
        where items.window_role = 'full'
    """)
    without, covered, cf_rows, max_rank = row
    assert without == 0 and covered > 1000 and cf_rows > 0 and max_rank == 20


def test_training_inputs_stop_before_the_cutoff(synth_warehouse) -> None:
    db = synth_warehouse.database
    (row,) = query(db, """
        select
            max(items.last_interaction_date) filter (where items.window_role = 'train'),
            min(items.last_interaction_date) filter (where items.window_role = 'test'),
            max(items.last_interaction_date) filter (where items.window_role = 'test'),
            any_value(windows.cutoff_date)
        from int_recommend_user_items as items
        cross join int_recommend_windows as windows
    """)
    train_last, test_first, test_last, cutoff = row
    assert train_last < cutoff and test_first == test_last == cutoff


def test_validation_inputs_stop_before_the_validation_day(synth_warehouse) -> None:
    db = synth_warehouse.database
    (row,) = query(db, """
        select
            max(items.last_interaction_date)
                filter (where items.window_role = 'validation_train'),
            min(items.last_interaction_date)
                filter (where items.window_role = 'validation_test'),
            max(items.last_interaction_date)
                filter (where items.window_role = 'validation_test'),
            count(distinct items.user_id)
                filter (where items.window_role = 'validation_test'),
            any_value(windows.validation_date),
            any_value(windows.cutoff_date)
        from int_recommend_user_items as items
        cross join int_recommend_windows as windows
    """)
    history_last, day_first, day_last, users, validation_date, cutoff = row
    assert validation_date == cutoff - timedelta(days=1)
    assert history_last < validation_date and day_first == day_last == validation_date
    assert users >= 300
    # the validation catalogue counts no session that reaches the validation day:
    # a product seen only from that day on has no validation popularity
    (late,) = query(db, """
        with first_seen as (
            select product_id, min(event_date) as first_date
            from int_recommend_session_items
            group by 1
        )
        select count(*) filter (where popularity.popularity > 0)
        from int_recommend_item_popularity as popularity
        inner join first_seen using (product_id)
        cross join int_recommend_windows as windows
        where
            popularity.window_role = 'validation_train'
            and first_seen.first_date >= windows.validation_date
    """)
    assert late == (0,)
    # and the run recorded which blend the validation day chose
    (params,) = query(db, "select params_json from ml_recommendations__training")
    candidates = json.loads(params[0])["blend_candidates"]
    assert len(candidates) == 6
    assert all(c["validation_ndcg_at_20"] is not None for c in candidates)
