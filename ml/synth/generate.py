"""Orchestration: catalog -> prices -> population and session skeleton -> day by day events
-> files, then truth and manifest.

Memory stays bounded: only the skeleton (a few dozen bytes per session) lives for the whole
run; events exist one day at a time per worker process (plus the rows of sessions running
past midnight). The workers are forked once the skeleton is built and share it.
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ml.synth.catalog import make_catalog
from ml.synth.config import GENERATOR_VERSION, SynthConfig
from ml.synth.days import DayMaker, Totals, default_workers, make_days
from ml.synth.events import EVENT_TYPES
from ml.synth.population import ACTOR_NAMES
from ml.synth.prices import make_prices
from ml.synth.skeleton import build_skeleton, conversion_by_l1, session_conversion
from ml.synth.timeline import make_timeline
from ml.synth.truth import (ordered, users_with_sessions, write_actors_and_preferences,
                            write_catalog_truth, write_manifest, write_users)

PILOT_MAX_USERS = 150_000


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = ("catalog", "prices", "pilot", "skeleton")
    return {n: np.random.default_rng(np.random.SeedSequence([seed, i]))
            for i, n in enumerate(names)}


def _day_rng(seed: int, day: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 1000, day]))


def uuid_key(seed: int) -> int:
    """Key of the session-id hash for `seed`."""
    return int(np.random.SeedSequence([seed, 99]).generate_state(1, np.uint64)[0])


def estimate_users(cfg: SynthConfig, tl, cat, prices, rng: np.random.Generator) -> int:
    """Humans to draw so that the run has about `cfg.n_events` rows: a pilot skeleton of
    up to 150k users measures rows per drawn user for this window."""
    guess = max(20_000, int(cfg.n_events / (0.42 * cfg.days)))
    n_pilot = min(PILOT_MAX_USERS, guess)
    _, sk = build_skeleton(cfg, tl, cat, prices, n_pilot, rng)
    per_user = sk.rows() / n_pilot
    return max(1000, int(round(cfg.n_events / per_user)))


def _prepare_out(out: Path) -> tuple[Path, Path, threading.Thread]:
    """Empty `<out>/events` and `<out>/truth` so a glob never mixes runs. Old folders are
    moved aside at once and deleted by the returned thread (join it)."""
    out.mkdir(parents=True, exist_ok=True)
    old = sorted(out.glob(".old-*"))  # left by an interrupted run
    for d in (out / "events", out / "truth"):
        if d.exists():
            aside = out / f".old-{d.name}-{os.getpid()}-{time.monotonic_ns()}"
            d.rename(aside)
            old.append(aside)
        d.mkdir()
    thread = threading.Thread(target=lambda: [shutil.rmtree(d, ignore_errors=True)
                                              for d in old])
    thread.start()
    return out / "events", out / "truth", thread


def run(cfg: SynthConfig, out: str | Path, quiet: bool = False,
        workers: int | None = None) -> dict:
    """Generate the data set described by `cfg` into `out`; return the manifest dict.

    Contract: deterministic for `cfg` (same files, byte for byte, whatever `workers`);
    `<out>/events` and `<out>/truth` are replaced. `workers`: processes making days in
    parallel (default: one per core; 1 makes everything in this process).
    """
    t_start = time.perf_counter()
    cpu_start, main_start = _cpu_seconds(), time.thread_time()
    workers = default_workers() if workers is None else max(1, int(workers))
    ev_dir, tr_dir, old_output = _prepare_out(Path(out))
    rng = _streams(cfg.seed)
    tl = make_timeline(cfg)
    cat = make_catalog(cfg, rng["catalog"])
    prices = make_prices(cfg, cat, tl, rng["prices"])
    # what does not depend on the users is made on the other core meanwhile
    with ThreadPoolExecutor(max_workers=1) as side:
        formatter = side.submit(DayMaker.formatter, cfg, tl, cat, prices)
        conversion = side.submit(conversion_by_l1, cfg, cat, prices)
        n_users = estimate_users(cfg, tl, cat, prices, rng["pilot"])
        pop, sk = build_skeleton(cfg, tl, cat, prices, n_users, rng["skeleton"],
                                 exact_rows=cfg.n_events)
        formatter, conversion = formatter.result(), conversion.result()
    totals = Totals(len(pop), cfg.days)
    maker = DayMaker(cfg, tl, cat, prices, pop, sk, uuid_key(cfg.seed), ev_dir, _day_rng,
                     formatter)
    seen_guess = users_with_sessions(sk, len(pop))
    truth_rows: dict[str, int] = {}

    def write_early_truth() -> None:
        """The truth tables that do not need the event counts, while the days are made."""
        truth_rows.update(write_catalog_truth(tr_dir, tl, cat, prices, conversion))
        truth_rows.update(write_actors_and_preferences(tr_dir, tl, cat, pop, sk, seen_guess))

    def progress_bar() -> tqdm:
        return tqdm(total=cfg.n_events, unit="ev", unit_scale=True, disable=quiet,
                    file=sys.stderr, desc="synth", smoothing=0.1)

    old_output.join()  # no thread may run when the workers are forked
    file_rows = make_days(maker, workers, totals, progress_bar, meanwhile=write_early_truth)
    files = [{"path": str(maker.paths[stem]), "rows": file_rows.get(stem, 0)}
             for stem in dict.fromkeys(maker.stems)]
    seen = np.nonzero(totals.user_rows > 0)[0]
    if not np.array_equal(seen, seen_guess):
        truth_rows.update(write_actors_and_preferences(tr_dir, tl, cat, pop, sk, seen))
    truth_rows.update(write_users(tr_dir, tl, cat, pop, sk, seen, totals.user_rows,
                                  totals.user_purchases, totals.user_first))
    truth_rows = ordered(truth_rows)
    manifest = _manifest(cfg, tl, cat, prices, pop, sk, totals, files, truth_rows, n_users,
                         conversion)
    write_manifest(tr_dir, manifest)
    elapsed = time.perf_counter() - t_start
    cpu = _cpu_seconds() - cpu_start
    main_cpu = time.thread_time() - main_start
    # Timing is returned, never written: the truth files must be identical across runs.
    # cpu_seconds counts every thread of this process and of the worker processes.
    return {**manifest, "run": {
        "elapsed_seconds": round(elapsed, 2),
        "events_per_second": round(totals.rows / elapsed),
        "cpu_seconds": round(cpu, 2), "main_thread_cpu_seconds": round(main_cpu, 2),
        "workers": workers, "events_dir": str(ev_dir), "truth_dir": str(tr_dir)}}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the day workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def summary_line(result: dict) -> str:
    """One-line summary of a `run` result for the terminal."""
    t, r = result["totals"], result["run"]
    return (f"synth: {t['rows']:,} events, {t['users']:,} users, {len(result['files'])} "
            f"file(s) in {r['events_dir']}, {r['elapsed_seconds']:.1f} s "
            f"({r['events_per_second']:,} events/s; {r['workers']} worker(s), "
            f"cpu {r['cpu_seconds']:.1f} s, main thread {r['main_thread_cpu_seconds']:.1f} s)")


def _manifest(cfg, tl, cat, prices, pop, sk, totals: Totals, files, truth_rows, n_users,
              conversion):
    seen = totals.user_rows > 0
    buyers = totals.user_purchases > 0
    actor_counts = np.bincount(pop.actor[seen], minlength=len(ACTOR_NAMES))
    params = asdict(cfg)
    params["start"] = cfg.start.isoformat()
    params["sale_days"] = [d.isoformat() for d in cfg.sale_days]
    params["sale_days_in_window"] = [tl.day_label(d) for d in tl.sale_days]
    return {
        "generator": "ml.synth",
        "generator_version": GENERATOR_VERSION,
        "created_with": {"events": cfg.n_events, "start": cfg.start.isoformat(),
                         "days": cfg.days, "seed": cfg.seed, "format": cfg.fmt,
                         "split": cfg.split},
        "parameters": params,
        "files": [{"path": str(Path(f["path"]).name), "rows": f["rows"]} for f in files],
        "truth_files": truth_rows,
        "totals": {
            "rows": totals.rows,
            "rows_by_event_type": dict(zip(EVENT_TYPES, map(int, totals.by_type))),
            "exact_duplicate_rows": totals.dup_rows,
            "exact_duplicate_rows_by_event_type": dict(zip(EVENT_TYPES,
                                                           map(int, totals.dup_by_type))),
            "users": int(seen.sum()),
            "users_by_actor_type": dict(zip(ACTOR_NAMES, map(int, actor_counts))),
            "accounts_taken_over": int(np.isin(sk.takeover_user, np.nonzero(seen)[0]).sum()),
            "buyers": int(buyers.sum()),
            "purchases_dedup": totals.purchases_dedup,
            "revenue_dedup": round(totals.revenue_cents / 100.0, 2),
            "true_sessions": totals.sessions,
            "shared_session_ids": int(sk.n_shared),
            "sessions_with_gap_over_30min": totals.gap_sessions,
            "sessions_spanning_over_24h": totals.long_sessions,
            "price_zero_rows": totals.price_zero_rows,
            "price_anomaly_rows": totals.custom_price_rows,
            "truncated_rows": totals.truncated_rows,
            "products_in_catalog": int(cat.n_products),
            "purchases_by_day": {tl.day_label(d): int(v)
                                 for d, v in enumerate(totals.day_purchases)},
        },
        "truth_model": {
            "bgnbd": {"r": cfg.bgnbd_r, "alpha": cfg.bgnbd_alpha, "a": cfg.bgnbd_a,
                      "b": cfg.bgnbd_b, "time_unit": "ordinary day",
                      "note": "lambda ~ Gamma(r, rate alpha) transactions per day at base "
                              "prices; p ~ Beta(a, b) dropout after each transaction"},
            "browse_rate": {"shape": cfg.browse_r, "rate": cfg.browse_alpha},
            "fraud_profile": asdict(sk.fraud),
            "intent_session_conversion": session_conversion(cfg),
            "target_conversion_c0": cfg.target_conversion,
            "target_conversion_at_base_price_by_category_l1": dict(
                zip(cat.l1_names, map(float, conversion))),
            "purchase_rule": "P(buy an intent target) = min(0.97, c_l1 * (price / "
                             "base_price) ** elasticity_l1), price of the session's start day",
            "elasticity_by_category_l1": dict(zip(cat.l1_names, map(float, cat.elasticity))),
            "traffic_rule": "a product's weight in every view and intent pick is its "
                            "popularity x (price / base_price) ** t_j, t_j = "
                            "traffic_elasticity_l1 + N(0, traffic_elasticity_product_sd), "
                            "normalised within the category (and brand group) per day",
            "traffic_elasticity_by_category_l1": dict(
                zip(cat.l1_names, map(float, prices.traffic_elasticity_l1))),
            "demand_elasticity_by_category_l1": dict(
                zip(cat.l1_names, (round(float(a + b), 2) for a, b in zip(
                    cat.elasticity, prices.traffic_elasticity_l1)))),
            "null_category_l1_key": "unknown",
            "users_drawn": int(n_users),
            "definitions": {
                "true_sessions": "distinct (user_id, user_session) pairs written; one per "
                                 "visit the process generated (pauses never split a visit)",
                "sessions_with_gap_over_30min": "true sessions whose consecutive distinct "
                                                "rows are more than 1800 s apart somewhere",
                "sessions_spanning_over_24h": "true sessions with last - first row > 86400 s",
                "purchases_dedup": "purchase rows after removing exact duplicate rows",
                "revenue_dedup": "sum of price over purchase rows after removing exact "
                                 "duplicates",
                "buyers": "users with at least one purchase row",
            },
        },
    }
