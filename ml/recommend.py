"""Recommendations: item-item collaborative filtering blended with category and
global popularity, the blend chosen on a validation day, evaluated on later days'
interactions beside four baselines (docs/evaluation.md).

Input frames are rows of the intermediate models in models/intermediate/ml/recommend:

- ``items`` (int_recommend_item_popularity, one window): the whole catalogue, one row per
  product with ``category_id``, ``category_l1``, ``brand``, ``price_band`` and
  ``popularity`` (recency-weighted interactions in the window, 0 if none);
- ``neighbours`` (int_recommend_item_neighbours, one window): each product's top-K
  co-interacted products with their cosine ``similarity``;
- ``user_items`` (int_recommend_user_items, one window): ``user_id``, ``product_id``,
  ``interaction_weight`` (recency-weighted) and ``is_purchased``.

The blend scores every (user, product) pair as

    score = cf_weight x cf / max(cf of the user)
          + content_weight x share(user, category of product) x pop / max(pop in category)
          + popularity_weight x pop / max(pop)

where ``cf`` is the user's interaction weights times the item-item similarities (plus
``self_weight`` x the user's own weight on the product: re-visits), ``share`` is the
user's share of interaction weight in the product's leaf category, and ``pop`` the
product's popularity. The weights are chosen among ``BLEND_CANDIDATES`` on a validation
day only (``select_blend``): production's is the last event date
(``train_recommendations``), the evaluation's the day before its first test day
(``evaluate_recommendations``). A user without history
gets popularity; a product without co-interactions is reached through its category and
popularity. Products the user already bought are never recommended (the one exclusion,
applied to every method alike).

Ranking is over the full catalogue and exact: the candidates scored are the CF
neighbours, the top ``n + e`` products of every category the user touched and the global
top ``n + e`` (e = the most products excluded for one user of the batch); any other
product is beaten by ``n`` candidates that are at least as popular, in its own category
or overall, and have no smaller CF score. Of those, a batch scores in full only the ones
under a per-user bound on the n-th best key (see _score_batch); the result is the same.

Baselines: ``popularity`` = global popularity only and ``category_popularity`` = the
content term only (ties, and users without history, by popularity), in the same scorer;
``recently_viewed`` = the user's most recently touched products; and
``last_category_popularity`` = the most popular products of the category of the user's
last interaction. Metrics average over users, with paired bootstrap intervals over users
(``ranking_comparison``), for every product of the label day and separately for the
products carted or bought and those only viewed (POSITIVE_KINDS).

Similar products (``similar_products``) are judged by their co-view hit rate on the
evaluation's test days against the category's most popular products
(``evaluate_similar_products``).
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ml.drift import feature_drift
from ml.evaluation import (InsufficientHistory, Resampler, compare,
                           require_history)
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "Blend", "MODEL_BLEND", "BLEND_CANDIDATES", "BASELINES", "Catalogue", "recommend",
    "ranking_metrics", "per_user_metrics", "planted_category_share", "select_blend",
    "train_recommendations", "evaluate_recommendations", "blend_of", "similar_products",
    "recently_viewed", "last_category_popular", "method_recommendations",
    "ranking_comparison", "content_neighbours", "category_popular_similar",
    "co_view_hits", "evaluate_similar_products", "empty_recommendations",
    "POSITIVE_KINDS", "BASELINE_NAMES", "MIN_HISTORY_DAYS", "HISTORY_FEATURES_SQL",
]


@dataclass(frozen=True)
class Blend:
    """Weights of the three score components (see the module docstring)."""
    cf_weight: float = 1.0
    content_weight: float = 0.5
    popularity_weight: float = 0.1
    self_weight: float = 1.0


# The a priori blend: CF first, then the user's categories, then global popularity as a
# tie-breaker for cold users and items.
MODEL_BLEND = Blend()
# The blends chosen from on a validation day only, the a priori one first (it wins ties).
# What a re-visit and a best-seller are worth differs between shops. History: this grid
# was written after the a priori blend lost to popularity on the 67.5M-event month's test
# day, so a test window shaped it; it is kept, and never chosen on a test day since.
BLEND_CANDIDATES: tuple[Blend, ...] = tuple(
    Blend(self_weight=self_weight, popularity_weight=popularity_weight)
    for self_weight in (1.0, 0.5, 0.0) for popularity_weight in (0.1, 0.5))
# The baselines, in the same scorer. The 1e-6 popularity term only breaks ties.
BASELINES: dict[str, Blend] = {
    "popularity": Blend(cf_weight=0.0, content_weight=0.0, popularity_weight=1.0,
                        self_weight=0.0),
    "category_popularity": Blend(cf_weight=0.0, content_weight=1.0, popularity_weight=1e-6,
                                 self_weight=0.0),
}
SOURCES = np.array(["cf", "content", "popularity"])
# Batches of users scored at once: the scoring's memory is this many batches.
MAX_SCORING_THREADS = 4


class Catalogue:
    """The products of one window, indexed 0..P-1, with their category and popularity
    and the item-item similarity matrix (P x P, CSR)."""

    def __init__(self, items: pd.DataFrame, neighbours: pd.DataFrame) -> None:
        items = items.sort_values("product_id", kind="stable").reset_index(drop=True)
        if items["product_id"].duplicated().any():
            raise ValueError("items must hold one row per product")
        self.product_id = items["product_id"].to_numpy(np.int64)
        # a hash index: a month's tens of millions of lookups take a quarter of the time
        # of a binary search
        self._positions = pd.Index(self.product_id)
        self.category_l1 = items["category_l1"].astype(object).to_numpy()
        self.size = len(items)
        categories = items["category_id"].fillna(-1).to_numpy(np.int64)
        _, self.category = np.unique(categories, return_inverse=True)
        self.n_categories = int(self.category.max()) + 1 if self.size else 0
        pop = items["popularity"].to_numpy(float)
        self.popularity = pop
        self.pop_norm = pop / pop.max() if pop.max() > 0 else np.zeros_like(pop)
        cat_max = np.zeros(self.n_categories)
        np.maximum.at(cat_max, self.category, pop)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.catpop_norm = np.where(cat_max[self.category] > 0,
                                        pop / cat_max[self.category], 0.0)
        # products by popularity, descending (ties by product id): overall and per category
        self.by_popularity = np.lexsort((self.product_id, -pop))
        order = np.lexsort((self.product_id, -pop, self.category))
        self._cat_sorted = order
        self._cat_start = np.searchsorted(self.category[order], np.arange(self.n_categories))
        self._cat_end = np.searchsorted(self.category[order], np.arange(self.n_categories),
                                        side="right")
        self.category_onehot = sparse.csr_matrix(
            (np.ones(self.size), (np.arange(self.size), self.category)),
            shape=(self.size, max(self.n_categories, 1)))
        known = neighbours[neighbours["product_id"].isin(self.product_id)
                           & neighbours["neighbour_product_id"].isin(self.product_id)]
        self.similarity = sparse.csr_matrix(
            (known["similarity"].to_numpy(float),
             (self.index(known["product_id"]), self.index(known["neighbour_product_id"]))),
            shape=(self.size, self.size))

    def index(self, product_ids: Any) -> np.ndarray:
        """Positions of product ids that are in the catalogue (raises on unknown ids)."""
        pos = self._positions.get_indexer(np.asarray(product_ids, dtype=np.int64))
        if (pos < 0).any():
            raise ValueError("product ids outside the catalogue")
        return pos


def _sorted_unique(values: Any) -> np.ndarray:
    """np.unique, by a hash table then a sort of the distinct values only: on a month's
    tens of millions of user items, np.unique takes several times as long."""
    return np.sort(pd.unique(np.asarray(values, dtype=np.int64)))


def _user_matrix(user_items: pd.DataFrame, users: pd.Index, catalogue: Catalogue,
                 column: str) -> sparse.csr_matrix:
    """users x P matrix of `column` (rows in the order of `users`, which holds every
    user of `user_items`)."""
    rows = users.get_indexer(user_items["user_id"].to_numpy(np.int64))
    return sparse.csr_matrix(
        (user_items[column].to_numpy(float), (rows, catalogue.index(user_items["product_id"]))),
        shape=(users.size, catalogue.size))


def _score_batch(history: sparse.csr_matrix, bought: sparse.csr_matrix,
                 catalogue: Catalogue, blend: Blend, n: int,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-n (row, product index, score, source code) of one batch of users.

    The candidates are those of the module docstring, but only the few that can reach a
    user's top n are kept: a per-user threshold that no top-n key exceeds (the n-th
    best of the global top `margin`, lowered while n CF entries stay under it), then the
    CF entries under it, the global top under it and the prefix under it of each touched
    category's popularity order (by bisection: within a category the key grows as
    popularity falls). Scores, keys and tie order are those of the full candidate set.
    """
    b, size = history.shape
    uses_cf = bool(blend.cf_weight) and (catalogue.similarity.nnz > 0 or blend.self_weight)
    if uses_cf:
        cf = sparse.csr_matrix(history @ catalogue.similarity
                               + blend.self_weight * history)
        counts = np.diff(cf.indptr)
        # the row max with the implicit zeros of the row, as sparse max(axis=1) has it
        row_max = np.zeros(b)
        filled = counts > 0
        if filled.any():
            row_max[filled] = np.maximum.reduceat(cf.data, cf.indptr[:-1][filled])
        row_max[filled & (counts < size)] = np.maximum(row_max[filled & (counts < size)], 0.0)
        scale = np.divide(1.0, row_max, out=np.zeros(b), where=row_max > 0)
        cf.data = scale[np.repeat(np.arange(b), counts)] * cf.data
        cf.eliminate_zeros()
    else:
        cf = sparse.csr_matrix((b, size))
    # history @ category_onehot, summed in the same order, without a sparse product
    n_categories = max(catalogue.n_categories, 1)
    affinity = np.bincount(
        np.repeat(np.arange(b), np.diff(history.indptr)) * n_categories
        + catalogue.category[history.indices], weights=history.data,
        minlength=b * n_categories).astype(float).reshape(b, n_categories)
    totals = affinity.sum(axis=1, keepdims=True)
    affinity = np.divide(affinity, totals, out=np.zeros_like(affinity), where=totals > 0)
    flat_affinity = affinity.ravel()
    # ranking key: by row, then score descending (ties by product id via stable sorts);
    # the same float expression as ever, so that near ties order the same way
    spread = 2.0 * (abs(blend.cf_weight) + abs(blend.content_weight)
                    + abs(blend.popularity_weight)) + 2.0

    def content(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # shifted by +1, the form in which it is added to the CF term
        return (blend.content_weight
                * flat_affinity.take(rows * n_categories + catalogue.category.take(cols))
                * catalogue.catpop_norm.take(cols) + blend.popularity_weight
                * catalogue.pop_norm.take(cols) + 1.0)

    def key(rows: np.ndarray, score: np.ndarray) -> np.ndarray:
        return rows * spread + (spread / 2.0 - score)

    bought_codes = (np.repeat(np.arange(b, dtype=np.int64), np.diff(bought.indptr)) * size
                    + bought.indices)
    bought_codes.sort()

    def is_bought(codes: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(bought_codes, codes), max(bought_codes.size - 1, 0))
        return (bought_codes[pos] == codes) if bought_codes.size else np.zeros(codes.size, bool)

    margin = n + (int(np.diff(bought.indptr).max()) if b else 0)
    # threshold: the n-th smallest key among the user's non-bought global top `margin`
    # (content-only keys; a CF entry's true key is never larger)
    top = catalogue.by_popularity[:margin]
    g_rows = np.repeat(np.arange(b), top.size)
    g_cols = np.tile(top, b)
    g_key = key(g_rows, content(g_rows, g_cols) - 1.0)
    g_key[is_bought(g_rows.astype(np.int64) * size + g_cols)] = np.inf
    if 0 < n <= top.size:
        threshold = np.partition(g_key.reshape(b, top.size), n - 1, axis=1)[:, n - 1]
    else:
        threshold = np.full(b, np.inf)
    # tightened by the CF entries: bisect each row's threshold down while at least n of
    # its non-bought CF entries stay under it (any such value bounds the top n)
    cf_rows = np.repeat(np.arange(b), np.diff(cf.indptr))
    cf_key = key(cf_rows, content(cf_rows, cf.indices) + blend.cf_weight * cf.data - 1.0)
    cf_key[is_bought(cf_rows.astype(np.int64) * size + cf.indices)] = np.inf
    if cf_key.size and n > 0:
        low = np.full(b, np.inf)
        np.minimum.at(low, cf_rows, cf_key)
        low = np.minimum(low, threshold)
        with np.errstate(invalid="ignore"):  # rows without a finite threshold stay
            for _ in range(8):
                mid = low + (threshold - low) / 2.0
                enough = np.bincount(cf_rows[cf_key <= mid[cf_rows]], minlength=b) >= n
                threshold = np.where(enough, mid, threshold)
                low = np.where(enough, low, mid)
    keep = g_key <= threshold[g_rows]
    parts_rows, parts_cols, parts_cf = [g_rows[keep]], [g_cols[keep]], [np.zeros(keep.sum())]
    if blend.content_weight:
        # each touched category's popularity-ordered top `margin`, cut under the threshold
        p_rows, p_cats = np.nonzero(affinity > 0)
        first = catalogue._cat_start[p_cats]
        lo = np.zeros(p_rows.size, dtype=np.int64)
        hi = np.minimum(catalogue._cat_end[p_cats] - first, margin)
        active = lo < hi
        while active.any():
            idx = np.flatnonzero(active)
            mid = (lo[idx] + hi[idx]) // 2
            cols = catalogue._cat_sorted[first[idx] + mid]
            at = p_rows[idx]
            under = key(at, content(at, cols) - 1.0) <= threshold[at]
            lo[idx[under]] = mid[under] + 1
            hi[idx[~under]] = mid[~under]
            active = lo < hi
        c_rows = np.repeat(p_rows, lo)
        offsets = np.arange(c_rows.size) - np.repeat(np.cumsum(lo) - lo, lo)
        c_cols = catalogue._cat_sorted[np.repeat(first, lo) + offsets]
        parts_rows.append(c_rows)
        parts_cols.append(c_cols)
        parts_cf.append(np.zeros(c_rows.size))
    # CF entries with their own CF term, first so that they win over content-only copies
    keep = cf_key <= threshold[cf_rows]
    parts_rows.insert(0, cf_rows[keep])
    parts_cols.insert(0, cf.indices[keep])
    parts_cf.insert(0, cf.data[keep])
    rows = np.concatenate(parts_rows).astype(np.int64)
    cols = np.concatenate(parts_cols).astype(np.int64)
    cf_part = np.concatenate(parts_cf)
    codes = rows * size + cols
    # one entry per (row, product), the CF one where there is one; row-major, product
    # ids ascending, as the stable sort below expects; bought products never
    _, first_seen = np.unique(codes, return_index=True)
    first_seen = first_seen[~is_bought(codes[first_seen])]
    rows, cols, cf_part = rows[first_seen], cols[first_seen], cf_part[first_seen]
    total = content(rows, cols)
    with_cf = cf_part != 0
    total[with_cf] = total[with_cf] + blend.cf_weight * cf_part[with_cf]
    score = total - 1.0
    order = np.argsort(key(rows, score), kind="stable")
    rows, cols, score, cf_part = rows[order], cols[order], score[order], cf_part[order]
    starts = np.searchsorted(rows, np.arange(b))
    top_n = (np.arange(rows.size) - starts[rows]) < n
    rows, cols, score, cf_part = rows[top_n], cols[top_n], score[top_n], cf_part[top_n]
    parts = np.column_stack([
        blend.cf_weight * cf_part,
        blend.content_weight * affinity[rows, catalogue.category[cols]]
        * catalogue.catpop_norm[cols],
        blend.popularity_weight * catalogue.pop_norm[cols],
    ]) if rows.size else np.zeros((0, 3))
    return rows, cols, score, parts.argmax(axis=1)


def recommend(user_items: pd.DataFrame, catalogue: Catalogue, users: Any = None,
              n: int = 20, blend: Blend = MODEL_BLEND, batch_size: int = 2000,
              ) -> pd.DataFrame:
    """Top-n products for each user of `users` (default: every user in `user_items`).

    Returns user_id, product_id, rank (1 = best), score (the blend score) and source
    (the component contributing most: cf, content or popularity), sorted by user and
    rank. Users without rows in `user_items` get the popularity ranking. The scoring's
    memory is bounded by `batch_size` users per thread (at most MAX_SCORING_THREADS).
    """
    if users is None:
        users = _sorted_unique(user_items["user_id"])
    else:
        users = _sorted_unique(users)
        user_items = user_items[user_items["user_id"].isin(users)]
    bought_items = user_items[user_items["is_purchased"].astype(bool)]
    user_index = pd.Index(users)
    history = _user_matrix(user_items, user_index, catalogue, "interaction_weight")
    bought = _user_matrix(bought_items.assign(one=1.0), user_index, catalogue, "one")

    def scored(start: int) -> tuple[np.ndarray, ...]:
        stop = min(start + batch_size, users.size)
        rows, cols, score, source = _score_batch(history[start:stop], bought[start:stop],
                                                 catalogue, blend, n)
        starts = np.searchsorted(rows, np.arange(stop - start))
        return (users[start:stop][rows], catalogue.product_id[cols],
                (np.arange(rows.size) - starts[rows] + 1).astype(np.int32), score,
                source.astype(np.int8))

    # batches are independent: scored on parallel threads (numpy and scipy's sparse
    # products release the GIL), collected in order, so the result is that of one thread
    with ThreadPoolExecutor(min(os.cpu_count() or 1, MAX_SCORING_THREADS)) as pool:
        parts = list(pool.map(scored, range(0, users.size, batch_size)))
    # one frame at the end (the batches only bound the scoring's memory), each column
    # concatenated once and the batches' arrays let go as it goes
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32),
             np.zeros(0), np.zeros(0, np.int8))
    columns = {}
    for i, name in enumerate(("user_id", "product_id", "rank", "score", "source")):
        columns[name] = np.concatenate([part[i] for part in parts]) if parts else empty[i]
        parts = [part[:i] + (None,) + part[i + 1:] for part in parts]
    # taken from the three names as strings: no Python object per row
    columns["source"] = pd.array(SOURCES, dtype="str").take(columns["source"])
    return pd.DataFrame(columns, copy=False)


def ranking_metrics(recommendations: pd.DataFrame, positives: pd.DataFrame,
                    k: int = 20) -> dict[str, float]:
    """Mean recall@k and NDCG@k (binary relevance) over the users of `positives`.

    recall@k = hits in the top k / the user's positives; NDCG@k = DCG of the hits over
    the DCG of min(k, positives) hits at the top. A user missing from
    `recommendations` scores 0 on both.
    """
    positives = positives[["user_id", "product_id"]].drop_duplicates()
    if positives.empty:
        raise ValueError("no positives to evaluate against")
    top = recommendations.loc[recommendations["rank"] <= k, ["user_id", "product_id", "rank"]]
    hits = top.merge(positives, on=["user_id", "product_id"], how="inner")
    hits["gain"] = 1.0 / np.log2(hits["rank"] + 1.0)
    per_user = positives.groupby("user_id").size().rename("positives").to_frame()
    per_user = per_user.join(hits.groupby("user_id").agg(hits=("rank", "size"),
                                                         dcg=("gain", "sum")))
    per_user = per_user.fillna({"hits": 0.0, "dcg": 0.0})
    ideal = np.array([np.sum(1.0 / np.log2(np.arange(2, min(k, p) + 2)))
                      for p in per_user["positives"].to_numpy()])
    return {
        f"recall_at_{k}": float((per_user["hits"] / per_user["positives"]).mean()),
        f"ndcg_at_{k}": float((per_user["dcg"] / ideal).mean()),
    }


def planted_category_share(recommendations: pd.DataFrame, catalogue: Catalogue,
                           planted: pd.DataFrame) -> float:
    """Share of the recommended products (over users with a planted preference) whose
    category level 1 is the user's planted top category (`unknown` = no category)."""
    recs = recommendations.merge(planted[["user_id", "top_category_l1"]], on="user_id")
    if recs.empty:
        return float("nan")
    l1 = pd.Series(catalogue.category_l1[catalogue.index(recs["product_id"])]).fillna(
        "unknown")
    return float((l1.to_numpy() == recs["top_category_l1"].to_numpy()).mean())


# Positives by kind: what the user did on the label day with a product (the strongest
# interaction of the day: purchase 5, cart 3, view or remove from cart 1).
POSITIVE_KINDS: dict[str, tuple[float, float]] = {
    "": (0.0, np.inf),                  # every product of the day (the primary metric)
    "_purchases_carts": (3.0, np.inf),  # carted or bought that day
    "_views": (0.0, 3.0),               # only viewed (or removed from a cart)
}
# Below this many days of history before the validation day the recommender does not
# train: its popularity, CF neighbours and user histories would be a few days' worth.
MIN_HISTORY_DAYS = 7
# Features of a user's history, compared between the validation snapshot the blend was
# chosen on and the production snapshot it scores (PSI drift). Not the days since the
# last interaction: the two snapshots' users differ in it by construction (active on the
# validation day with history before it, against active in the last days).
DRIFT_FEATURES = ("history_products", "history_weight", "purchased_products")
# The same per user, as a DuckDB aggregate of user-item rows (for the `full` window).
HISTORY_FEATURES_SQL = ("user_id, count(*) as history_products, "
                        "sum(interaction_weight) as history_weight, "
                        "sum(cast(is_purchased as double)) as purchased_products")


def _positives(train: pd.DataFrame, test: pd.DataFrame, kind: str = "") -> pd.DataFrame:
    """Label-day products of each user (of the `kind` in POSITIVE_KINDS), less those
    bought before (never recommended)."""
    low, high = POSITIVE_KINDS[kind]
    weight = test["interaction_weight"].to_numpy(float)
    test = test[(weight >= low) & (weight < high)]
    bought = train.loc[train["is_purchased"].astype(bool), ["user_id", "product_id"]]
    merged = test[["user_id", "product_id"]].drop_duplicates().merge(
        bought, on=["user_id", "product_id"], how="left", indicator=True)
    return merged.loc[merged["_merge"] == "left_only", ["user_id", "product_id"]]


def per_user_metrics(recommendations: pd.DataFrame, positives: pd.DataFrame,
                     users: np.ndarray, k: int = 20) -> pd.DataFrame:
    """recall@k and NDCG@k per user of `users` (rows in that order): NaN for a user
    without positives, 0 for one with positives and no hit. Their means over the users
    with positives are `ranking_metrics`."""
    positives = positives[["user_id", "product_id"]].drop_duplicates()
    top = recommendations.loc[recommendations["rank"] <= k,
                              ["user_id", "product_id", "rank"]]
    hits = top.merge(positives, on=["user_id", "product_id"], how="inner")
    hits["gain"] = 1.0 / np.log2(hits["rank"].to_numpy(float) + 1.0)
    count = positives.groupby("user_id").size().reindex(users).to_numpy(float)
    found = hits.groupby("user_id").agg(hits=("rank", "size"), dcg=("gain", "sum"))
    found = found.reindex(users).fillna(0.0)
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    with np.errstate(invalid="ignore"):
        ideal = discounts[np.minimum(np.nan_to_num(count, nan=0.0), k).astype(int)]
        return pd.DataFrame({
            "recall": np.where(count > 0, found["hits"].to_numpy() / count, np.nan),
            "ndcg": np.where(count > 0, found["dcg"].to_numpy() / np.where(
                ideal > 0, ideal, 1.0), np.nan),
        }, index=pd.Index(users, name="user_id"))


def recently_viewed(history: pd.DataFrame, users: Any, n: int = 20) -> pd.DataFrame:
    """Baseline: each user's most recently touched products (last interaction date,
    then interaction weight, then product id), never one the user bought. Users
    without history get nothing. Columns user_id, product_id, rank."""
    rows = history[history["user_id"].isin(np.asarray(users))
                   & ~history["is_purchased"].astype(bool)]
    rows = rows.sort_values(["user_id", "last_interaction_date", "interaction_weight",
                             "product_id"], ascending=[True, False, False, True],
                            kind="stable")
    rows = rows.assign(rank=rows.groupby("user_id").cumcount() + 1)
    return (rows.loc[rows["rank"] <= n, ["user_id", "product_id", "rank"]]
            .astype({"rank": np.int32}).reset_index(drop=True))


def last_category_popular(history: pd.DataFrame, catalogue: Catalogue, users: Any,
                          n: int = 20) -> pd.DataFrame:
    """Baseline: the most popular products of the category of each user's most recent
    interaction (ties: the heavier interaction, then the lower product id), never one
    the user bought. Users without history get nothing. Columns user_id, product_id,
    rank."""
    rows = history[history["user_id"].isin(np.asarray(users))]
    last = (rows.sort_values(["user_id", "last_interaction_date", "interaction_weight",
                              "product_id"], ascending=[True, False, False, True],
                             kind="stable")
            .drop_duplicates("user_id"))
    bought = rows.loc[rows["is_purchased"].astype(bool), ["user_id", "product_id"]]
    margin = n + int(bought.groupby("user_id").size().max()) if len(bought) else n
    category = catalogue.category[catalogue.index(last["product_id"])]
    starts, ends = catalogue._cat_start[category], catalogue._cat_end[category]
    lengths = np.minimum(ends - starts, margin)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    picks = catalogue._cat_sorted[np.repeat(starts, lengths) + offsets]
    recs = pd.DataFrame({"user_id": np.repeat(last["user_id"].to_numpy(), lengths),
                         "product_id": catalogue.product_id[picks]})
    recs = recs.merge(bought.assign(bought=True), on=["user_id", "product_id"], how="left")
    recs = recs[recs["bought"].isna()].drop(columns="bought")
    recs = recs.assign(rank=recs.groupby("user_id").cumcount() + 1)
    return (recs.loc[recs["rank"] <= n, ["user_id", "product_id", "rank"]]
            .astype({"rank": np.int32}).reset_index(drop=True))


def method_recommendations(history: pd.DataFrame, catalogue: Catalogue, users: Any,
                           blend: Blend, n: int = 20,
                           model_recommendations: pd.DataFrame | None = None,
                           ) -> dict[str, pd.DataFrame]:
    """Top-n of the blend (key ``model``; `model_recommendations` when already scored)
    and of every baseline for `users`: the BASELINES blends, ``recently_viewed`` and
    ``last_category_popularity``."""
    out = {"model": model_recommendations if model_recommendations is not None
           else recommend(history, catalogue, users=users, n=n, blend=blend)}
    for name, weights in BASELINES.items():
        out[name] = recommend(history, catalogue, users=users, n=n, blend=weights)
    out["recently_viewed"] = recently_viewed(history, users, n)
    out["last_category_popularity"] = last_category_popular(history, catalogue, users, n)
    return out


def _planted_per_user(recs: pd.DataFrame, catalogue: Catalogue, planted: pd.DataFrame,
                      users: np.ndarray) -> np.ndarray:
    """Per user of `users`: the share of its recommendations in its planted top
    category (NaN without a planted preference or without recommendations)."""
    joined = recs.merge(planted[["user_id", "top_category_l1"]], on="user_id")
    l1 = pd.Series(catalogue.category_l1[catalogue.index(joined["product_id"])]).fillna(
        "unknown").to_numpy()
    joined = joined.assign(match=(l1 == joined["top_category_l1"].to_numpy()))
    return joined.groupby("user_id")["match"].mean().reindex(users).to_numpy(float)


def ranking_comparison(history: pd.DataFrame, labels: pd.DataFrame, catalogue: Catalogue,
                       blend: Blend, *, n: int = 20, n_samples: int = 200, seed: int = 0,
                       split: str = "test", cutoff: date | None = None,
                       planted: pd.DataFrame | None = None,
                       model_recommendations: pd.DataFrame | None = None,
                       ) -> tuple[list[Metric], dict[str, int]]:
    """NDCG@n and recall@n of the blend beside every baseline on one label day, each
    with paired bootstrap intervals over users (ml.evaluation.compare).

    Three positive sets, each over the users that have one: every product of the day
    (``ndcg_at_n``, the primary metric), the products carted or bought
    (``..._purchases_carts``) and those only viewed (``..._views``); with planted truth
    also ``planted_top_category_share``. `model_recommendations`: the blend's top-n
    for the day's users when already scored (the validation day's chosen candidate).
    Returns the metrics and counts.
    """
    everything = _positives(history, labels)
    users = _sorted_unique(everything["user_id"])
    recs = method_recommendations(history, catalogue, users, blend, n,
                                  model_recommendations) if users.size else {}
    metrics: list[Metric] = []
    counts = {"test_users": int(users.size), "test_positives": int(len(everything))}
    for kind in POSITIVE_KINDS:
        positives = _positives(history, labels, kind)
        kind_users = _sorted_unique(positives["user_id"])
        counts[f"users{kind or '_all'}"] = int(kind_users.size)
        tables = {name: per_user_metrics(frame, positives, kind_users, n)
                  for name, frame in recs.items()}
        resampler = Resampler(kind_users.size, n_samples=n_samples, seed=seed)
        for column, name in (("ndcg", f"ndcg_at_{n}{kind}"),
                             ("recall", f"recall_at_{n}{kind}")):
            values = {method: table[column].to_numpy() for method, table in tables.items()}
            metrics += compare(
                name, _mean_of(values.get("model")),
                {method: _mean_of(values.get(method)) for method in BASELINE_NAMES},
                resampler, is_primary=(name == f"ndcg_at_{n}"), split=split,
                cutoff=cutoff)
    if planted is not None and not planted.empty and users.size:
        shares = {name: _planted_per_user(frame, catalogue, planted, users)
                  for name, frame in recs.items()}
        known = np.isfinite(shares["model"])
        counts["planted_users"] = int(known.sum())
        resampler = Resampler(int(known.sum()), n_samples=n_samples, seed=seed)
        metrics += compare(
            "planted_top_category_share", _mean_of(shares["model"][known]),
            {method: _mean_of(np.nan_to_num(shares[method][known]))
             for method in BASELINE_NAMES}, resampler, split=split, cutoff=cutoff)
    return metrics, counts


# Every baseline a recommendation metric is compared with, in registry order.
BASELINE_NAMES = ("popularity", "category_popularity", "recently_viewed",
                  "last_category_popularity")


def _mean_of(values: np.ndarray | None):
    """The statistic `compare` resamples: the mean of per-unit values over drawn rows."""
    if values is None:
        return None
    values = np.asarray(values, dtype=float)

    def statistic(rows: np.ndarray) -> float:
        if rows.size == 0:
            raise ValueError("no users with positives")
        return float(values[rows].mean())
    return statistic


def _window(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    return frame[frame["window_role"] == role].drop(columns="window_role")


def select_blend(train_items: pd.DataFrame, test_items: pd.DataFrame,
                 catalogue: Catalogue, candidates: tuple[Blend, ...] = BLEND_CANDIDATES,
                 n: int = 20) -> tuple[Blend, list[float]]:
    """The candidate with the best NDCG@n (every product of the label day as a
    positive) on `test_items` (ties: the earlier one), and every candidate's NDCG.
    Called on the validation day only. Without positives to rank, the first candidate
    and NaNs."""
    blend, scores, _ = _select_blend(train_items, test_items, catalogue, candidates, n)
    return blend, scores


def _select_blend(train_items: pd.DataFrame, test_items: pd.DataFrame,
                  catalogue: Catalogue, candidates: tuple[Blend, ...], n: int,
                  ) -> tuple[Blend, list[float], pd.DataFrame | None]:
    """select_blend, and the chosen candidate's recommendations to the users of the
    label day (None without positives)."""
    if not candidates:
        raise ValueError("no candidate blend to choose from")
    positives = _positives(train_items, test_items)
    if positives.empty:
        return candidates[0], [float("nan")] * len(candidates), None
    users = _sorted_unique(positives["user_id"])
    scores, best, best_recs = [], -np.inf, None
    for blend in candidates:
        recs = recommend(train_items, catalogue, users=users, n=n, blend=blend)
        scores.append(ranking_metrics(recs, positives, k=n)[f"ndcg_at_{n}"])
        if scores[-1] > best:
            best, best_recs = scores[-1], recs
    return candidates[int(np.argmax(scores))], scores, best_recs


def _date(value: Any) -> date:
    return pd.Timestamp(value).date()


def _candidates_params(candidates: tuple[Blend, ...], scores: list[float],
                       n: int) -> list[dict[str, Any]]:
    return [{**asdict(candidate),
             f"validation_ndcg_at_{n}": None if np.isnan(score) else score}
            for candidate, score in zip(candidates, scores)]


def _choose_on_validation(windows: pd.DataFrame, items: pd.DataFrame,
                          neighbours: pd.DataFrame, user_items: pd.DataFrame,
                          candidates: tuple[Blend, ...], n: int, min_history_days: int,
                          ) -> tuple[Blend, list[float], Catalogue, date, date,
                                     pd.DataFrame | None]:
    """The history check and the blend chosen on the validation day (window roles
    `validation_train`, `validation_test`), with the chosen blend's recommendations to
    that day's users."""
    if windows.empty:
        raise InsufficientHistory(min_history_days + 1, 0, detail="no events")
    window = windows.iloc[0]
    first, validation = _date(window["first_event_date"]), _date(window["validation_date"])
    label_days = [validation] + [_date(window[c]) for c in window.index
                                 if c.startswith("cutoff_") and c.endswith("_date")]
    span = (max(label_days) - validation).days + 1
    require_history(min_history_days + span, (validation - first).days + span, detail=(
        f"{min_history_days} days of interactions before the validation day, then "
        + ("the validation day" if span == 1 else
           f"the {span} days from the validation day to the last test day")))
    catalogue = Catalogue(_window(items, "validation_train"),
                          _window(neighbours, "validation_train"))
    blend, scores, recs = _select_blend(_window(user_items, "validation_train"),
                                        _window(user_items, "validation_test"), catalogue,
                                        candidates, n)
    if all(np.isnan(scores)):
        raise InsufficientHistory(1, 0, "validation users",
                                  f"no user with history was active on {validation}")
    return blend, scores, catalogue, first, validation, recs


def _history_features(user_items: pd.DataFrame) -> pd.DataFrame:
    """DRIFT_FEATURES per user of a history window (HISTORY_FEATURES_SQL in SQL)."""
    grouped = user_items.assign(bought=user_items["is_purchased"].astype(float)
                                ).groupby("user_id")
    return pd.DataFrame({"history_products": grouped.size(),
                         "history_weight": grouped["interaction_weight"].sum(),
                         "purchased_products": grouped["bought"].sum()})


def train_recommendations(windows: pd.DataFrame, items: pd.DataFrame,
                          neighbours: pd.DataFrame, user_items: pd.DataFrame,
                          planted: pd.DataFrame | None = None, n: int = 20,
                          candidates: tuple[Blend, ...] = BLEND_CANDIDATES,
                          params: dict[str, Any] | None = None, n_samples: int = 200,
                          seed: int = 0, min_history_days: int = MIN_HISTORY_DAYS,
                          production_features: pd.DataFrame | None = None,
                          ) -> TrainingRun:
    """The production run: the blend chosen among `candidates` on the validation day
    (the last event date; window roles `validation_train`, `validation_test`), which
    production then applies to every day's history (`full`). The metrics (split
    ``validation``) are the chosen blend's on that same day beside every baseline, with
    intervals: they are the day the choice was made on, so optimistic by the choice;
    the unbiased figures are the evaluation run's (`evaluate_recommendations`).

    Raises InsufficientHistory with fewer than `min_history_days` days before the
    validation day, or no validation user. The drift of DRIFT_FEATURES is measured
    between the validation users' histories and `production_features` (one row per
    user of the `full` window, as `history_features`; default: from the `full` rows of
    `user_items`, when there are any).
    """
    blend, scores, catalogue, first, validation, recs = _choose_on_validation(
        windows, items, neighbours, user_items, candidates, n, min_history_days)
    history = _window(user_items, "validation_train")
    metrics, counts = ranking_comparison(
        history, _window(user_items, "validation_test"), catalogue, blend, n=n,
        n_samples=n_samples, seed=seed, split="validation", cutoff=validation,
        planted=planted, model_recommendations=recs)
    if production_features is None:
        full = _window(user_items, "full")
        production_features = _history_features(full) if len(full) else None
    drift = (feature_drift(_history_features(history), production_features,
                           DRIFT_FEATURES) if production_features is not None else [])
    return TrainingRun(
        model_name="recommendations",
        train_window=Window(first, validation),
        label_window=Window(validation, validation + timedelta(days=1)),
        n_train=int(history["user_id"].nunique()),
        n_test=counts["test_users"],
        params={**asdict(blend), "top_n": n, "catalogue_products": catalogue.size,
                "cf_pairs": int(catalogue.similarity.nnz),
                **{key: value for key, value in counts.items()},
                "has_planted_truth": planted is not None and not planted.empty,
                "excluded": "products the user bought before",
                "chosen_on": "validation day (the last event date)",
                "blend_candidates": _candidates_params(candidates, scores, n),
                **(params or {})},
        metrics=metrics, run_kind="production", drift=drift,
    )


def evaluate_recommendations(windows: pd.DataFrame, items: pd.DataFrame,
                             neighbours: pd.DataFrame, user_items: pd.DataFrame,
                             planted: pd.DataFrame | None = None, n: int = 20,
                             candidates: tuple[Blend, ...] = BLEND_CANDIDATES,
                             params: dict[str, Any] | None = None, n_samples: int = 200,
                             seed: int = 0, min_history_days: int = MIN_HISTORY_DAYS,
                             ) -> TrainingRun:
    """The rolling-origin evaluation run (int_recommend_evaluation_* frames): the blend
    chosen once on the validation day before the first test day, as production does,
    then each test day `cutoff_<i>_date` ranked from the days strictly before it
    (window roles `train_<i>`, labels `test_<i>`), every metric beside every baseline
    with intervals over users (split ``test``, ``cutoff`` = the test day)."""
    blend, scores, _, first, validation, _ = _choose_on_validation(
        windows, items, neighbours, user_items, candidates, n, min_history_days)
    window = windows.iloc[0]
    cutoffs = sorted(_date(window[c]) for c in window.index
                     if c.startswith("cutoff_") and c.endswith("_date"))
    metrics: list[Metric] = []
    per_cutoff: list[dict[str, Any]] = []
    n_train = n_test = 0
    for i, cutoff in enumerate(cutoffs, start=1):
        if cutoff <= validation:
            raise ValueError(f"test day {cutoff} is not after the validation day")
        catalogue = Catalogue(_window(items, f"train_{i}"), _window(neighbours, f"train_{i}"))
        history = _window(user_items, f"train_{i}")
        found, counts = ranking_comparison(
            history, _window(user_items, f"test_{i}"), catalogue, blend, n=n,
            n_samples=n_samples, seed=seed + i, split="test", cutoff=cutoff,
            planted=planted)
        metrics += found
        per_cutoff.append({"cutoff": cutoff.isoformat(), **counts})
        n_train += int(history["user_id"].nunique())
        n_test += counts["test_users"]
    return TrainingRun(
        model_name="recommendations",
        train_window=Window(first, cutoffs[0] if cutoffs else validation),
        label_window=Window(cutoffs[0] if cutoffs else None,
                            cutoffs[-1] + timedelta(days=1) if cutoffs else None),
        n_train=n_train, n_test=n_test,
        params={**asdict(blend), "top_n": n, "validation_date": validation.isoformat(),
                "cutoffs": per_cutoff, "excluded": "products the user bought before",
                "has_planted_truth": planted is not None and not planted.empty,
                "blend_candidates": _candidates_params(candidates, scores, n),
                **(params or {})},
        metrics=metrics, run_kind="evaluation",
    )


def blend_of(params_json: str) -> Blend:
    """The blend a training run chose, from its registry record's params_json."""
    params = json.loads(params_json)
    return Blend(**{field: float(params[field]) for field in Blend.__dataclass_fields__})


def similar_products(neighbours: pd.DataFrame, content: pd.DataFrame, n: int = 20,
                     min_co_sessions: int = 1) -> pd.DataFrame:
    """Top-n similar products per product: CF neighbours with at least
    `min_co_sessions` shared sessions first (by similarity), then content neighbours
    (same category; same brand, then same price band, then popularity) to fill up.

    Returns product_id, similar_product_id, rank, score (cosine similarity for cf,
    content_score in {1/3, 2/3, 1} for content) and source.
    """
    cf = neighbours.loc[neighbours["co_sessions"] >= min_co_sessions,
                        ["product_id", "neighbour_product_id", "similarity",
                         "neighbour_rank"]]
    cf = cf.rename(columns={"similarity": "score"}).assign(source="cf", order=0)
    fill = content[["product_id", "neighbour_product_id", "content_score",
                    "neighbour_rank"]].rename(columns={"content_score": "score"})
    fill = fill.assign(source="content", order=1)
    both = pd.concat([cf, fill], ignore_index=True)
    both = both.sort_values(["product_id", "order", "neighbour_rank"], kind="stable")
    both = both.drop_duplicates(["product_id", "neighbour_product_id"], keep="first")
    both["rank"] = both.groupby("product_id").cumcount() + 1
    both = both[both["rank"] <= n]
    return (both.rename(columns={"neighbour_product_id": "similar_product_id"})
            [["product_id", "similar_product_id", "rank", "score", "source"]]
            .astype({"rank": np.int32}).reset_index(drop=True))


def content_neighbours(items: pd.DataFrame, products: Any, n: int = 20) -> pd.DataFrame:
    """int_recommend_content_neighbours for `products`, from one window's catalogue
    (`items`: product_id, category_id, brand, price_band, popularity): up to n other
    products of the same category, by shared brand, then shared price band, then
    popularity (candidates: the n + 1 most popular of the category, of the category x
    brand and of the category x price band, as the SQL does). Products without a
    category get none. Columns product_id, neighbour_product_id, content_score,
    neighbour_rank."""
    catalogue = items.loc[items["category_id"].notna(),
                          ["product_id", "category_id", "brand", "price_band",
                           "popularity"]]
    ordered = catalogue.sort_values(["popularity", "product_id"], ascending=[False, True])
    pools = pd.concat([
        ordered.groupby("category_id").head(n + 1),
        ordered[ordered["brand"].notna()].groupby(["category_id", "brand"]).head(n + 1),
        ordered.groupby(["category_id", "price_band"]).head(n + 1),
    ]).drop_duplicates("product_id")
    query = catalogue[catalogue["product_id"].isin(np.asarray(products))]
    pairs = query.merge(pools, on="category_id", suffixes=("", "_n"))
    pairs = pairs[pairs["product_id"] != pairs["product_id_n"]]
    same_brand = (pairs["brand"] == pairs["brand_n"]).fillna(False).astype(bool)
    same_band = (pairs["price_band"] == pairs["price_band_n"]).fillna(False).astype(bool)
    pairs = pairs.assign(same_brand=same_brand, same_band=same_band,
                         content_score=(1 + same_brand.astype(int)
                                        + same_band.astype(int)) / 3.0)
    pairs = pairs.sort_values(["product_id", "same_brand", "same_band", "popularity_n",
                               "product_id_n"],
                              ascending=[True, False, False, False, True], kind="stable")
    pairs = pairs.assign(neighbour_rank=pairs.groupby("product_id").cumcount() + 1)
    return (pairs.loc[pairs["neighbour_rank"] <= n,
                      ["product_id", "product_id_n", "content_score", "neighbour_rank"]]
            .rename(columns={"product_id_n": "neighbour_product_id"})
            .reset_index(drop=True))


def category_popular_similar(items: pd.DataFrame, products: Any,
                             n: int = 20) -> pd.DataFrame:
    """Baseline of similar products: the n most popular other products of each
    product's category in one window. Columns product_id, similar_product_id, rank."""
    catalogue = items.loc[items["category_id"].notna(),
                          ["product_id", "category_id", "popularity"]]
    top = (catalogue.sort_values(["popularity", "product_id"], ascending=[False, True])
           .groupby("category_id").head(n + 1))
    query = catalogue.loc[catalogue["product_id"].isin(np.asarray(products)),
                          ["product_id", "category_id"]]
    pairs = query.merge(top[["category_id", "product_id"]], on="category_id",
                        suffixes=("", "_n"), sort=False)
    pairs = pairs[pairs["product_id"] != pairs["product_id_n"]]
    pairs = pairs.assign(rank=pairs.groupby("product_id").cumcount() + 1)
    return (pairs.loc[pairs["rank"] <= n, ["product_id", "product_id_n", "rank"]]
            .rename(columns={"product_id_n": "similar_product_id"})
            .reset_index(drop=True))


def co_view_hits(sessions: pd.DataFrame, similar: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per (session, product) of the sessions with two or more products: whether
    another product of the same session is among the product's first k similar
    products. `sessions`: session_id, product_id; `similar`: product_id,
    similar_product_id, rank. Columns session_id, product_id, is_hit; sessions in order
    of first appearance, products ascending."""
    rows = sessions[["session_id", "product_id"]].drop_duplicates()
    # integer session codes: the warehouse's session ids are text, slow to join on
    codes, _ = pd.factorize(rows["session_id"])
    rows = rows.assign(session=codes.astype(np.int64))
    rows = rows[rows.groupby("session")["product_id"].transform("size") >= 2]
    top = similar.loc[similar["rank"] <= k, ["product_id", "similar_product_id"]]
    proposed = rows[["session", "product_id"]].merge(top, on="product_id")
    found = proposed.merge(rows[["session", "product_id"]].rename(
        columns={"product_id": "similar_product_id"}), on=["session", "similar_product_id"])
    found = found[["session", "product_id"]].drop_duplicates().assign(is_hit=True)
    out = rows.merge(found, on=["session", "product_id"], how="left")
    out["is_hit"] = out["is_hit"].notna()
    # in order of first appearance of the session, then product: the same rows in the
    # same order for every list of similar products
    return (out.sort_values(["session", "product_id"])
            [["session_id", "product_id", "is_hit"]].reset_index(drop=True))


def evaluate_similar_products(windows: pd.DataFrame, items: pd.DataFrame,
                              neighbours: pd.DataFrame, sessions: pd.DataFrame,
                              n: int = 20, min_co_sessions: int = 1,
                              ks: tuple[int, ...] = (5, 20), n_samples: int = 200,
                              seed: int = 0, min_history_days: int = MIN_HISTORY_DAYS,
                              params: dict[str, Any] | None = None) -> TrainingRun:
    """The rolling-origin evaluation of ml_similar_products (int_recommend_evaluation_*
    frames): on each test day `cutoff_<i>_date`, the similar products built from the
    days strictly before it (CF neighbours of window `train_<i>`, filled with content
    neighbours ranked by that window's popularity) and the baseline, the most popular
    products of the same category. Co-view hit rate@k: over the products of each test
    day's sessions with two or more products (`sessions`: session_id, product_id,
    event_date), the share whose first k similar products hold another product of the
    same session. Primary: k = max(ks); intervals resample sessions. Nothing is tuned.
    """
    if windows.empty:
        raise InsufficientHistory(min_history_days + 1, 0, detail="no events")
    window = windows.iloc[0]
    first = _date(window["first_event_date"])
    cutoffs = sorted(_date(window[c]) for c in window.index
                     if c.startswith("cutoff_") and c.endswith("_date"))
    span = (cutoffs[-1] - cutoffs[0]).days + 1
    require_history(min_history_days + span, (cutoffs[0] - first).days + span, detail=(
        f"{min_history_days} days of interactions before the first test day, then the "
        f"{span} days from it to the last test day"))
    day = pd.to_datetime(sessions["event_date"]).dt.date
    metrics: list[Metric] = []
    per_cutoff = []
    n_test = 0
    for i, cutoff in enumerate(cutoffs, start=1):
        today = sessions.loc[day == cutoff, ["session_id", "product_id"]]
        products = _sorted_unique(today["product_id"])
        window_items = _window(items, f"train_{i}")
        cf = _window(neighbours, f"train_{i}")
        cf = cf[cf["product_id"].isin(products)]
        lists = {"model": similar_products(cf, content_neighbours(window_items, products, n),
                                           n=n, min_co_sessions=min_co_sessions),
                 "category_popularity": category_popular_similar(window_items, products, n)}
        for k in ks:
            hits = {name: co_view_hits(today, frame, k) for name, frame in lists.items()}
            units = hits["model"]
            if k == ks[0]:
                per_cutoff.append({"cutoff": cutoff.isoformat(),
                                   "sessions": int(units["session_id"].nunique()),
                                   "session_products": int(len(units))})
                n_test += len(units)
            resampler = Resampler(len(units), n_samples=n_samples, seed=seed + i,
                                  clusters=units["session_id"].astype(str).to_numpy())
            metrics += compare(
                f"co_view_hit_rate_at_{k}",
                _mean_of(units["is_hit"].to_numpy(float)),
                {"category_popularity": _mean_of(
                    hits["category_popularity"]["is_hit"].to_numpy(float))},
                resampler, is_primary=(k == max(ks)), split="test", cutoff=cutoff)
    return TrainingRun(
        model_name="similar_products",
        train_window=Window(first, cutoffs[0]),
        label_window=Window(cutoffs[0], cutoffs[-1] + timedelta(days=1)),
        n_train=int(len(_window(items, "train_1"))), n_test=int(n_test),
        params={"top_n": n, "min_co_sessions": min_co_sessions, "ks": list(ks),
                "cutoffs": per_cutoff, "tuned": "nothing", **(params or {})},
        metrics=metrics, run_kind="evaluation",
    )


def empty_recommendations() -> pd.DataFrame:
    """`recommend`'s columns and dtypes without rows: what ml_recommendations scores
    when the training run was skipped for too short a history."""
    return pd.DataFrame({"user_id": np.zeros(0, np.int64), "product_id": np.zeros(0, np.int64),
                         "rank": np.zeros(0, np.int32), "score": np.zeros(0),
                         "source": pd.array([], dtype="str")})
