"""Planted ground truth: parquet tables and manifest.json in `<out>/truth/`.

Files (all timestamps TIMESTAMP WITH TIME ZONE, UTC):
  users.parquet               one row per user with at least one event: actor_type, BG/NBD
                              lambda and p, browse rate, acquisition, dropout, is_alive_end,
                              in-window transactions, events, purchases, top category/brand
  actors.parquet              user_id, actor_type of the bot and fraud actors and of the
                              accounts taken over (takeover_started_at: from when,
                              takeover_last_visit_at: the new user's last visit; NULL
                              for the others)
  user_category_pref.parquet  user_id, category_l1, weight (Dirichlet weights >= 0.01)
  user_brand_pref.parquet     user_id, brand, weight (major brands, weights >= 0.01)
  products.parquet            product attributes, base_price, repricing and sale flags,
                              traffic_elasticity
  price_path.parquet          product_id, valid_from, valid_to (exclusive), price shown,
                              nominal price, is_glitch, is_sale
  categories.parquet          category_l1, elasticity (of conversion), traffic_elasticity,
                              demand_elasticity (their sum), conversion at base price,
                              view share, intent tilt
  manifest.json               parameters, hyper-parameters and exact totals of the files
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ml.synth.catalog import Catalog
from ml.synth.population import ACCOUNT_TAKEOVER, ACTOR_NAMES, HUMAN, Population
from ml.synth.prices import Prices
from ml.synth.skeleton import Skeleton
from ml.synth.timeline import DAY, Timeline

PREF_MIN_WEIGHT = 0.01


def _ts(sec: np.ndarray, tl: Timeline, valid: np.ndarray | None = None) -> pa.Array:
    us = np.round((np.nan_to_num(sec, nan=0.0, posinf=0.0) + tl.start_epoch) * 1e6)
    mask = None if valid is None else ~valid
    return pa.array(us.astype(np.int64), pa.timestamp("us", tz="UTC"), mask=mask)


def _labels(codes: np.ndarray, names) -> pa.Array:
    """Strings by code, built as a dictionary array and decoded (fast for many rows)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)),
                                          pa.array(list(names), pa.string())).cast(pa.string())


def _write(table: pa.Table, path: Path) -> None:
    # dictionary-encode only the string columns: trying it on unique floats is slow
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    pq.write_table(table, path, compression="zstd", compression_level=1,
                   use_dictionary=strings or False, store_schema=False)


TRUTH_FILES = ("users.parquet", "actors.parquet", "user_category_pref.parquet",
               "user_brand_pref.parquet", "products.parquet", "price_path.parquet",
               "categories.parquet")


def ordered(rows: dict[str, int]) -> dict[str, int]:
    """{file name: rows} in the manifest's order."""
    return {name: rows[name] for name in TRUTH_FILES}


def users_with_sessions(sk: Skeleton, n_users: int) -> np.ndarray:
    """Users with at least one session: those that have events, as every session writes
    its first row (the caller checks this against the written rows)."""
    return np.nonzero(np.bincount(sk.user, minlength=n_users) > 0)[0]


def write_users(truth_dir: Path, tl: Timeline, cat: Catalog, pop: Population, sk: Skeleton,
                seen: np.ndarray, user_rows: np.ndarray, user_purchases: np.ndarray,
                user_first: np.ndarray) -> dict[str, int]:
    """users.parquet for the users `seen` in the events."""
    actor = pop.actor[seen]
    human = actor == HUMAN
    death = sk.death_sec[seen]
    died = np.isfinite(death)
    l1_w = pop.l1_pref_t[:, seen]
    brand_w = pop.brand_pref_t[:, seen]
    top_l1 = l1_w.argmax(axis=0)
    top_b = brand_w.argmax(axis=0)
    users = pa.table({
        "user_id": pa.array(pop.user_id[seen], pa.int64()),
        "actor_type": _labels(actor, ACTOR_NAMES),
        # whole seconds like the events; never after the first event (a visit at the very
        # end of the window may have been shifted back to fit)
        "acquired_at": _ts(np.minimum(np.floor(pop.acq_sec[seen]), user_first[seen]), tl),
        "acquired_in_window": pa.array(pop.acq_sec[seen] >= 0),
        "lambda_per_day": pa.array(pop.lam[seen], pa.float64(), mask=~human),
        "p_dropout": pa.array(pop.p_drop[seen], pa.float64(), mask=~human),
        "browse_rate_per_day": pa.array(pop.browse_rate[seen], pa.float64(), mask=~human),
        "dropout_at": _ts(death, tl, valid=died & human),
        "is_alive_end": pa.array(~died, pa.bool_(), mask=~human),
        "transactions_in_window": pa.array(sk.n_tx[seen], pa.int32()),
        "events": pa.array(user_rows[seen], pa.int64()),
        "purchases": pa.array(user_purchases[seen], pa.int64()),
        "top_category_l1": _labels(top_l1, cat.l1_names),
        "top_category_weight": pa.array(l1_w[top_l1, np.arange(len(seen))]),
        "top_brand": _labels(top_b, cat.major_names),
        "top_brand_weight": pa.array(brand_w[top_b, np.arange(len(seen))]),
    })
    _write(users, truth_dir / "users.parquet")
    return {"users.parquet": users.num_rows}


def write_actors_and_preferences(truth_dir: Path, tl: Timeline, cat: Catalog,
                                 pop: Population, sk: Skeleton,
                                 seen: np.ndarray) -> dict[str, int]:
    """actors.parquet and the users' category and brand preferences, for the users `seen`."""
    out: dict[str, int] = {}
    actor = pop.actor[seen]
    bots = actor != HUMAN
    l1_w = pop.l1_pref_t[:, seen]
    brand_w = pop.brand_pref_t[:, seen]
    taken = np.isin(sk.takeover_user, seen)
    owner, since = sk.takeover_user[taken], sk.takeover_sec[taken]
    last_visit = sk.takeover_end_sec[taken]
    n_bots = int(bots.sum())

    def takeover_ts(sec: np.ndarray) -> pa.Array:
        """NULL for the bots, then the takeovers' times."""
        return _ts(np.concatenate([np.zeros(n_bots), np.floor(sec)]), tl,
                   valid=np.arange(n_bots + len(owner)) >= n_bots)
    actors = pa.table({
        "user_id": pa.array(np.concatenate([pop.user_id[seen][bots], pop.user_id[owner]]),
                            pa.int64()),
        "actor_type": pa.concat_arrays([_labels(actor[bots], ACTOR_NAMES),
                                        pa.array([ACCOUNT_TAKEOVER] * len(owner),
                                                 pa.string())]),
        "takeover_started_at": takeover_ts(since),
        "takeover_last_visit_at": takeover_ts(last_visit),
    })
    _write(actors, truth_dir / "actors.parquet")
    out["actors.parquet"] = actors.num_rows

    for name, weights, labels, col in (
            ("user_category_pref.parquet", l1_w, cat.l1_names, "category_l1"),
            ("user_brand_pref.parquet", brand_w, cat.major_names, "brand")):
        c, r = np.nonzero(weights >= PREF_MIN_WEIGHT)
        order = np.argsort(r, kind="stable")  # one user's rows together
        r, c = r[order], c[order]
        t = pa.table({"user_id": pa.array(pop.user_id[seen][r], pa.int64()),
                      col: _labels(c, labels),
                      "weight": pa.array(weights[c, r], pa.float32())})
        _write(t, truth_dir / name)
        out[name] = t.num_rows
    return out


def write_catalog_truth(truth_dir: Path, tl: Timeline, cat: Catalog, prices: Prices,
                        conversion: np.ndarray) -> dict[str, int]:
    """products, price_path and categories: they do not depend on the events."""
    out: dict[str, int] = {}
    code_of_cat = np.array([-1 if c is None else i for i, c in enumerate(cat.cat_code)])
    pcode = code_of_cat[cat.product_cat]
    codes = pa.array([c or "" for c in cat.cat_code], pa.string())
    pb = cat.product_brand
    products = pa.table({
        "product_id": pa.array(cat.product_id, pa.int64()),
        "category_id": pa.array(cat.cat_id[cat.product_cat], pa.int64()),
        "category_code": pa.DictionaryArray.from_arrays(
            pa.array(pcode.astype(np.int32), mask=pcode < 0), codes).cast(pa.string()),
        "category_l1": _labels(cat.product_l1, cat.l1_names),
        "brand": pa.DictionaryArray.from_arrays(
            pa.array(pb.astype(np.int32), mask=pb < 0),
            pa.array(list(cat.brand_names), pa.string())).cast(pa.string()),
        "base_price": pa.array(cat.base_cents / 100.0),
        "is_dynamic": pa.array(prices.is_dynamic),
        "on_sale": pa.array(prices.on_sale),
        "view_share": pa.array(cat.view_marginal),
        "traffic_elasticity": pa.array(prices.traffic_elasticity),
    })
    _write(products, truth_dir / "products.parquet")
    out["products.parquet"] = products.num_rows

    rp = prices.run_product
    path = pa.table({
        "product_id": pa.array(cat.product_id[rp], pa.int64()),
        "valid_from": _ts(prices.run_first_day.astype(np.float64) * DAY, tl),
        "valid_to": _ts((prices.run_last_day.astype(np.float64) + 1) * DAY, tl),
        "price": pa.array(prices.run_shown / 100.0),
        "nominal_price": pa.array(prices.run_nominal / 100.0),
        "is_glitch": pa.array((prices.run_shown == 0) & (prices.run_nominal > 0)),
        "is_sale": pa.array(prices.run_sale),
    })
    _write(path, truth_dir / "price_path.parquet")
    out["price_path.parquet"] = path.num_rows

    cats = pa.table({
        "category_l1": pa.array(list(cat.l1_names), pa.string()),
        "elasticity": pa.array(cat.elasticity),
        "traffic_elasticity": pa.array(prices.traffic_elasticity_l1),
        "demand_elasticity": pa.array(np.round(cat.elasticity
                                               + prices.traffic_elasticity_l1, 2)),
        "conversion_at_base_price": pa.array(conversion),
        "view_share": pa.array(cat.l1_view_share),
        "intent_tilt": pa.array(cat.l1_intent_tilt),
    })
    _write(cats, truth_dir / "categories.parquet")
    out["categories.parquet"] = cats.num_rows
    return out


def write_manifest(truth_dir: Path, manifest: dict) -> None:
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False)
                                             + "\n")
