"""Turn one day of skeleton sessions into event rows (vectorised over all its sessions).

A session is a sequence of *units*: a view of a product, optionally followed by cart rows
and a purchase row (units of targets), or a purchase without a view (card testing).
Plain views follow the session's top-level category (with occasional jumps), sometimes a
preferred brand, and repeat the previous product with `revisit_prob`. Within a session
non-duplicate rows are at least one second apart; planted duplicates share the second of
the row they copy, so exact duplicates are exactly the planted ones.

Events of sessions that run past midnight are returned with their true times; the caller
carries them into the next day's file.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from ml.synth.catalog import Catalog
from ml.synth.config import SynthConfig
from ml.synth.population import Population, categorical_packed
from ml.synth.prices import Prices, sample_at_price
from ml.synth.skeleton import (CARDTEST, GLITCH, INTENT, JITTER, QUIRK_LONG, SCRAPE, TAKEOVER,
                               Skeleton)
from ml.synth.timeline import DAY, Timeline

VIEW, CART, PURCHASE = 0, 1, 2
EVENT_TYPES = ("view", "cart", "purchase")
MAX_NATURAL_GAP = 1500  # seconds; only planted pauses exceed 30 minutes


@dataclass
class Events:
    """Event rows (any order). `run` indexes the price-run table (-1: custom price)."""

    t: np.ndarray  # int64 seconds since window start
    etype: np.ndarray  # int8
    prod: np.ndarray  # int32
    cents: np.ndarray  # int32 displayed price
    run: np.ndarray  # int32
    sess: np.ndarray  # int64 global session index
    dup: np.ndarray  # bool: planted duplicate of the previous row

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: np.ndarray) -> "Events":
        return Events(t=self.t[idx], etype=self.etype[idx], prod=self.prod[idx],
                      cents=self.cents[idx], run=self.run[idx], sess=self.sess[idx],
                      dup=self.dup[idx])

    @staticmethod
    def concat(parts: list["Events"]) -> "Events":
        return Events(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("t", "etype", "prod", "cents", "run", "sess", "dup")))

    @staticmethod
    def empty() -> "Events":
        return Events(t=np.empty(0, np.int64), etype=np.empty(0, np.int8),
                      prod=np.empty(0, np.int32), cents=np.empty(0, np.int32),
                      run=np.empty(0, np.int32), sess=np.empty(0, np.int64),
                      dup=np.empty(0, bool))


@dataclass
class SessionStats:
    """Per-session facts of the rows actually emitted (for the manifest)."""

    sess: np.ndarray  # global session index
    first: np.ndarray  # first event second
    last: np.ndarray
    max_gap: np.ndarray
    rows: np.ndarray
    truncated: np.ndarray  # rows dropped at the window end


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0-based position of each element among equal, contiguous `groups` values."""
    n = len(groups)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    start = np.concatenate([[True], groups[1:] != groups[:-1]])
    idx = np.arange(n)
    first = np.maximum.accumulate(np.where(start, idx, 0))
    return idx - first


def _spread(rank: np.ndarray, count: np.ndarray, slots: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """Distinct random slots: the k-th of `count` items (count <= slots) gets a slot in its
    own stratum [floor(k * slots / count), floor((k + 1) * slots / count))."""
    lo = rank * slots // count
    hi = (rank + 1) * slots // count
    return lo + (rng.random(len(rank)) * (hi - lo)).astype(np.int64)


def _gap_table(median: float, sigma: float, lo: int, hi: int, size: int = 4096) -> np.ndarray:
    """Quantiles of a discretised lognormal (seconds), for table-lookup sampling."""
    nd = NormalDist()
    z = np.array([nd.inv_cdf((i + 0.5) / size) for i in range(size)])
    return np.clip(np.rint(median * np.exp(sigma * z)), lo, hi).astype(np.int64)


VIEW_GAPS = _gap_table(25.0, 1.1, 1, MAX_NATURAL_GAP)
CART_GAPS = _gap_table(15.0, 0.8, 1, 600)
BUY_GAPS = _gap_table(60.0, 0.9, 2, MAX_NATURAL_GAP)


def _u16(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 1 << 16, n, dtype=np.uint16)


def _draw(table: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return table[rng.integers(0, len(table), n, dtype=np.int16)]


def materialize_day(day: int, cfg: SynthConfig, tl: Timeline, cat: Catalog, prices: Prices,
                    pop: Population, sk: Skeleton,
                    rng: np.random.Generator) -> tuple[Events, SessionStats]:
    """Events of all sessions starting on `day` (pure given `rng`)."""
    d0 = day * DAY
    s0, s1 = (int(x) for x in np.searchsorted(sk.start, [d0, d0 + DAY]))
    t0, t1 = (int(x) for x in np.searchsorted(sk.t_sess, [s0, s1]))
    S = s1 - s0
    if S == 0:
        e = np.empty(0, np.int64)
        return Events.empty(), SessionStats(e, e, e, e, e, e)
    views = sk.n_views[s0:s1].astype(np.int64)
    kind = sk.kind[s0:s1]
    user = sk.user[s0:s1]
    start = sk.start[s0:s1]
    tg_sess = sk.t_sess[t0:t1] - s0
    tg_blind = sk.t_blind[t0:t1]
    tg_prod = sk.t_prod[t0:t1]
    n_tg = len(tg_sess)

    # --- units: one per view, plus one per blind (view-less) purchase ---------------------
    nvt = np.bincount(tg_sess[~tg_blind], minlength=S)
    nbt = np.bincount(tg_sess[tg_blind], minlength=S)
    units = views + nbt
    U = int(units.sum())
    u_first = np.cumsum(units) - units
    u_sess = np.repeat(np.arange(S, dtype=np.int32), units)
    is_first = np.zeros(U, dtype=bool)
    is_first[u_first[units > 0]] = True

    # targets -> unit slots (viewed ones spread over the views, blind ones after them)
    pos = np.empty(n_tg, dtype=np.int64)
    rank = np.zeros(n_tg, dtype=np.int64)
    for mask in (~tg_blind, tg_blind):
        ii = np.nonzero(mask)[0]
        rank[ii] = _rank_within(tg_sess[ii])
    vi = np.nonzero(~tg_blind)[0]
    pos[vi] = _spread(rank[vi], nvt[tg_sess[vi]], views[tg_sess[vi]], rng)
    bi = np.nonzero(tg_blind)[0]
    pos[bi] = views[tg_sess[bi]] + rank[bi]
    tg_unit = u_first[tg_sess] + pos

    # --- products ---------------------------------------------------------------------
    # Each session browses a top-level category (intents: their first target's) and leans
    # to one preferred major brand; single views jump category or follow the brand.
    s_l1 = categorical_packed(pop.l1_cdf, cat.n_l1, user, _u16(rng, S))
    fx = np.nonzero(tg_prod >= 0)[0][::-1]
    first_tg = np.full(S, -1, dtype=np.int64)
    first_tg[tg_sess[fx]] = tg_prod[fx]
    use_tg = (first_tg >= 0) & (kind == INTENT)
    s_l1[use_tg] = cat.product_l1[first_tg[use_tg]]
    s_major = categorical_packed(pop.brand_cdf, cat.n_major, user, _u16(rng, S))
    r = rng.random((5, U), dtype=np.float32)
    l1 = s_l1[u_sess]
    jump = np.nonzero(r[0] < cfg.l1_switch_prob)[0]
    if len(jump):
        l1[jump] = categorical_packed(pop.l1_cdf, cat.n_l1, user[u_sess[jump]],
                                      _u16(rng, len(jump)))
    major = np.where(r[1] < cfg.brand_loyalty, s_major[u_sess], -1)
    # price moves traffic: a product's view weight scales with its price on this day
    prod = sample_at_price(cat, prices, l1, major, np.full(U, day), r[2], r[3], rng)
    # scrapers and jittered bots view the catalog uniformly
    sc_sess = (kind == SCRAPE) | (kind == JITTER)
    scrape_u = sc_sess[u_sess]
    n_sc = int(scrape_u.sum())
    if n_sc:
        prod[scrape_u] = rng.integers(0, cat.n_products, n_sc)
    fixed = np.zeros(U, dtype=bool)
    has = tg_prod >= 0
    fixed[tg_unit[has]] = True
    prod[tg_unit[has]] = tg_prod[has]
    # revisits: copy the previous unit's product (forward fill over units)
    # (a glitch exploiter's revisit would show the product at its normal price again)
    rev = (r[4] < cfg.revisit_prob) & ~is_first & ~fixed & ~scrape_u & (kind != GLITCH)[u_sess]
    src = np.arange(U, dtype=np.int64)
    src[rev] = 0
    prod = prod[np.maximum.accumulate(src)]

    # --- rows: a view per unit; target and duplicate units get more rows ------------------
    n_vdup = sk.n_vdup[s0:s1].astype(np.int64)
    vd_unit = np.empty(0, dtype=np.int64)
    vs = np.nonzero(n_vdup > 0)[0]
    if len(vs):
        ds = np.repeat(vs, n_vdup[vs])
        vd_unit = u_first[ds] + _spread(_rank_within(ds), n_vdup[ds], views[ds], rng)
    mark = np.zeros(U, dtype=bool)
    mark[tg_unit] = True
    mark[vd_unit] = True
    special = np.nonzero(mark)[0]
    C = np.zeros((len(special), 6), dtype=np.int64)
    C[:, 0] = 1
    ti = np.searchsorted(special, tg_unit)
    C[ti, 0] = ~tg_blind
    C[ti, 2] = sk.t_ncart[t0:t1]
    C[ti, 3] = sk.t_cdup[t0:t1]
    C[ti, 4] = sk.t_bought[t0:t1]
    C[ti, 5] = sk.t_pdup[t0:t1]
    C[np.searchsorted(special, vd_unit), 1] = 1
    e_u = np.ones(U, dtype=np.int64)
    e_u[special] = C.sum(axis=1)
    ev_unit = np.repeat(np.arange(U, dtype=np.int32), e_u)
    E = len(ev_unit)
    ev_first = np.cumsum(e_u) - e_u
    # segments of special units: 0 view, 1 view dup, 2 cart, 3 cart dup, 4 buy, 5 buy dup
    sp_counts = C.ravel()
    sp_seg = np.repeat(np.tile(np.arange(6, dtype=np.int8), len(special)), sp_counts)
    sp_unit = np.repeat(np.repeat(special, 6), sp_counts)
    sp_pos = ev_first[sp_unit] + _rank_within(sp_unit)
    etype = np.zeros(E, dtype=np.int8)
    etype[sp_pos] = sp_seg // 2
    dup = np.zeros(E, dtype=bool)
    dup[sp_pos] = (sp_seg % 2) == 1
    ev_sess = u_sess[ev_unit]

    # --- times: gaps of at least 1 s between distinct rows, 0 for duplicates --------------
    gap = _draw(VIEW_GAPS, E, rng)
    ev_kind = kind[ev_sess]
    sc_ev = np.nonzero(ev_kind == SCRAPE)[0]
    gap[sc_ev] = rng.integers(1, 5, len(sc_ev))
    # jittered bots: lognormal gaps like a person's, with this seed's median and spread
    jb_ev = np.nonzero(ev_kind == JITTER)[0]
    fraud = sk.fraud
    gap[jb_ev] = np.maximum(1, np.rint(fraud.jitter_gap_median * np.exp(
        fraud.jitter_gap_sigma * rng.standard_normal(len(jb_ev))))).astype(np.int64)
    # a taken-over account's new user knows what to buy: a glance at each product
    to_ev = np.nonzero(ev_kind == TAKEOVER)[0]
    gap[to_ev] = rng.integers(2, 9, len(to_ev))
    is_cart = sp_seg == 2
    first_cart = is_cart & np.concatenate([[True], sp_seg[:-1] != 2])
    gap[sp_pos[first_cart]] = _draw(CART_GAPS, int(first_cart.sum()), rng)
    more = np.nonzero(is_cart & ~first_cart)[0]
    gap[sp_pos[more]] = rng.integers(1, 31, len(more))
    buy = np.nonzero(sp_seg == 4)[0]
    b_pos = sp_pos[buy]
    ct = kind[ev_sess[b_pos]] == CARDTEST
    gap[b_pos] = np.where(ct, rng.integers(15, 61, len(buy)), _draw(BUY_GAPS, len(buy), rng))
    gap[sp_pos[(sp_seg % 2) == 1]] = 0
    present = units > 0
    e_first = ev_first[u_first[present]]
    gap[e_first] = 0
    quirk = sk.quirk[s0:s1]
    qs = np.nonzero(quirk > 0)[0]
    if len(qs):
        q_unit = u_first[qs] + 1 + (rng.random(len(qs)) * (units[qs] - 1)).astype(np.int64)
        extra = np.where(quirk[qs] == QUIRK_LONG,
                         rng.integers(DAY + 1800, int(1.6 * DAY), len(qs)),
                         rng.integers(1860, 36_000, len(qs)))
        gap[ev_first[q_unit]] += extra
    cs = np.cumsum(gap)
    base = np.zeros(S, dtype=np.int64)
    base[present] = cs[e_first] - start[present]
    t = cs - base[ev_sess]

    # --- window end: shift late sessions back, truncate what still does not fit ------
    rows = np.bincount(ev_sess, minlength=S)
    last_ev = np.cumsum(rows) - 1
    truncated = np.zeros(S, dtype=np.int64)
    over = np.where(present, t[np.maximum(last_ev, 0)] - (tl.end_sec - 1), 0)
    late = np.nonzero(over > 0)[0]
    if len(late):
        shift = np.zeros(S, dtype=np.int64)
        shift[late] = np.minimum(over[late], start[late] - d0)
        t -= shift[ev_sess]
        keep = t < tl.end_sec
        if not keep.all():
            truncated = np.bincount(ev_sess[~keep], minlength=S)
            sel = np.nonzero(keep)[0]
            t, ev_unit, ev_sess = t[sel], ev_unit[sel], ev_sess[sel]
            etype, dup = etype[sel], dup[sel]
            rows = np.bincount(ev_sess, minlength=S)

    # --- prices of the session's start day ---------------------------------------------
    ev_prod = prod[ev_unit]
    run = np.ascontiguousarray(prices.run[:, day])[ev_prod]
    cents = np.ascontiguousarray(prices.shown[:, day])[ev_prod]
    custom_t = np.nonzero(sk.t_cents[t0:t1] >= 0)[0]
    if len(custom_t):
        unit_tg = np.full(U, -1, dtype=np.int64)
        unit_tg[tg_unit[custom_t]] = custom_t
        ev_tg = unit_tg[ev_unit]
        # the purchase row; with t_shown (price glitches) every row of the target's unit
        shown = sk.t_shown[t0:t1][ev_tg]  # where ev_tg is -1: masked below
        c_idx = np.nonzero((ev_tg >= 0) & ((etype == PURCHASE) | shown))[0]
        cents[c_idx] = sk.t_cents[t0:t1][ev_tg[c_idx]]
        run[c_idx] = -1

    events = Events(t=t, etype=etype, prod=ev_prod, cents=cents, run=run,
                    sess=ev_sess.astype(np.int64) + s0, dup=dup)

    # --- per-session stats of what is emitted ------------------------------------------
    present = rows > 0
    f_idx = np.cumsum(rows) - rows
    nd = np.nonzero(~dup)[0]
    nd_t = t[nd]
    dt = np.diff(nd_t, prepend=nd_t[:1])
    nd_rows = np.bincount(ev_sess[nd], minlength=S)
    nd_first = np.cumsum(nd_rows) - nd_rows
    dt[nd_first[present]] = 0
    max_gap = np.zeros(S, dtype=np.int64)
    if len(nd):
        max_gap[present] = np.maximum.reduceat(dt, nd_first[present])
    first = np.zeros(S, dtype=np.int64)
    last = np.zeros(S, dtype=np.int64)
    first[present] = t[f_idx[present]]
    last[present] = t[(f_idx + rows - 1)[present]]
    stats = SessionStats(sess=np.arange(s0, s1), first=first, last=last, max_gap=max_gap,
                         rows=rows, truncated=truncated)
    return events, stats
