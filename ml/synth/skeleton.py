"""Session skeleton: every visit of the window with its counts, before any event exists.

A visit (session) is one of
  BROWSE  - a browse visit (rate `browse_rate`, plus the visit at acquisition);
  INTENT  - a purchase-intent visit, rate lambda / pi_s on the intent clock. It carries
            1 + Poisson(extra_targets) target products, each bought independently with
            probability  c_l1 * (price / base_price) ** elasticity[category_l1]  at the price
            of the day the visit starts, where c_l1 = c0 / mean((price / base_price) **
            elasticity) over the category's product-days (weighted by intent popularity), so
            that the average conversion is c0 whatever the elasticity. A visit with a purchase
            is a *transaction*; after each transaction the user drops out with probability p.
            pi_s is the chance that an intent visit becomes a transaction at average prices,
            so lambda is the user's transaction rate;
  SCRAPE / CARDTEST / ANOMALY / JITTER / SLOW_CARDTEST / RESELL / GLITCH - bot and fraud
            visits; TAKEOVER - visits of a human's account by someone else, from a date on.
Each visit gets its number of views, its carted and bought targets, the planted duplicate
rows and its quirk (a >30 min pause or a >24 h span). Views are then adjusted so that the
rows add up exactly to `n_events`. Products of plain views are drawn later, day by day
(`events.py`).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ml.synth.catalog import Catalog
from ml.synth.config import SynthConfig
from ml.synth.population import (CARD_TESTING, JITTERED_BOT, PRICE_ANOMALY, PRICE_GLITCH,
                                 RESELLER, SCRAPER, SLOW_CARD_TESTING, FraudProfile,
                                 Population, add_preferences, categorical_weighted,
                                 draw_fraud_profile, make_bots, make_users)
from ml.synth.prices import Prices, sample_at_price, traffic_weight
from ml.synth.timeline import DAY, Timeline

BROWSE, INTENT, SCRAPE, CARDTEST, ANOMALY = 0, 1, 2, 3, 4
JITTER, SLOW_CARDTEST, RESELL, GLITCH, TAKEOVER = 5, 6, 7, 8, 9
JITTER_MAX_VIEW_SHARE = 0.05  # of n_events, for the jittered bots' views
KIND_NAMES = ("browse", "intent", "scrape", "card_testing", "price_anomaly", "jittered_bot",
              "slow_card_testing", "reseller", "price_glitch", "account_takeover")
QUIRK_NONE, QUIRK_GAP, QUIRK_LONG = 0, 1, 2


@dataclass
class Skeleton:
    """Sessions sorted by start time, and their targets sorted by session.

    A *target* is a product the session carts and/or buys: intent targets and fraud
    purchases have a fixed product (`t_prod`); browse-cart targets have t_prod = -1 and cart
    whatever product the session views at that point. `t_blind` targets are bought without
    a view (card testing). `t_cents` >= 0 overrides the purchase price (price anomalies);
    with `t_shown` the view and cart rows of the target show it too (price glitches).
    """

    user: np.ndarray  # int32, index into the population
    start: np.ndarray  # int64 seconds since window start
    kind: np.ndarray  # int8
    n_views: np.ndarray  # int32
    n_vdup: np.ndarray  # int16 duplicated view rows
    quirk: np.ndarray  # int8
    uuid_src: np.ndarray  # int64: session whose id this session uses (shared ids)
    t_sess: np.ndarray  # int64
    t_prod: np.ndarray  # int32
    t_bought: np.ndarray  # bool
    t_ncart: np.ndarray  # int16
    t_cdup: np.ndarray  # int16
    t_pdup: np.ndarray  # int16
    t_blind: np.ndarray  # bool
    t_cents: np.ndarray  # int32
    t_shown: np.ndarray  # bool
    death_sec: np.ndarray  # float64 per user (inf: alive at the end)
    n_tx: np.ndarray  # int32 transactions in the window per user
    n_shared: int  # shared session ids planted
    drawn_users: int  # humans drawn (incl. never visible ones), for scaling
    fraud: FraudProfile  # this seed's shapes of abuse
    takeover_user: np.ndarray  # int64 population index of each taken-over account
    takeover_sec: np.ndarray  # float64 when its new user took over
    takeover_end_sec: np.ndarray  # float64 start of the new user's last visit

    @property
    def n_sessions(self) -> int:
        return len(self.start)

    def rows(self) -> int:
        """Rows the skeleton will write (views, carts, purchases and duplicates)."""
        return int(self.n_views.sum() + self.n_vdup.sum() + self.t_ncart.sum()
                   + self.t_cdup.sum() + self.t_bought.sum() + self.t_pdup.sum())


def session_conversion(cfg: SynthConfig) -> float:
    """pi_s: P(an intent visit buys at least one target) at average prices."""
    c0 = cfg.target_conversion
    return 1.0 - (1.0 - c0) * float(np.exp(-cfg.extra_targets * c0))


def negbin_table(mean: float, shape: float, size: int = 1 << 14) -> np.ndarray:
    """Inverse-CDF table of NegBin(mean, shape) at probabilities (i + 0.5) / size, for
    sampling by a random index (much faster than numpy's gamma-Poisson mixture)."""
    if mean <= 0:
        return np.zeros(size, dtype=np.int64)
    p = shape / (shape + mean)
    k = np.arange(0, int(mean * 60 + 200))
    logpmf = (np.array([math.lgamma(x + shape) for x in k]) - math.lgamma(shape)
              - np.array([math.lgamma(x + 1.0) for x in k])
              + shape * math.log(p) + k * math.log1p(-p))
    cdf = np.cumsum(np.exp(logpmf))
    q = (np.arange(size) + 0.5) / size
    return np.minimum(np.searchsorted(cdf, q), len(k) - 1).astype(np.int64)


def conversion_by_l1(cfg: SynthConfig, cat: Catalog, prices: Prices) -> np.ndarray:
    """c_l1 = c0 / E[(price / base_price) ** elasticity] per category_l1, the expectation over
    the category's intent targets: products weighted by intent popularity x traffic
    weight within each day, days equally."""
    ratio = prices.nominal / cat.base_cents[:, None].astype(np.float64)
    e = cat.elasticity[cat.product_l1][:, None]
    w = cat.p_intent[:, None] * traffic_weight(prices, cat)
    num = np.stack([np.bincount(cat.product_l1, weights=col, minlength=cat.n_l1)
                    for col in (w * ratio ** e).T], axis=1)
    den = np.stack([np.bincount(cat.product_l1, weights=col, minlength=cat.n_l1)
                    for col in w.T], axis=1)
    return cfg.target_conversion / (num / den).mean(axis=1)


def _negbin(rng: np.random.Generator, mean: float, shape: float, n: int) -> np.ndarray:
    table = negbin_table(mean, shape)
    return table[rng.integers(0, len(table), n)]


def stable_order(keys: np.ndarray) -> np.ndarray:
    """Indices that sort non-negative int64 `keys` stably (ties keep input order). Sorts
    key * 2^k + index with numpy's SIMD sort instead of a slower stable argsort."""
    n = len(keys)
    bits = max(1, int(n).bit_length())
    packed = (keys.astype(np.int64) << bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << bits) - 1)


def _draw_targets(cfg: SynthConfig, cat: Catalog, pop: Population, users: np.ndarray,
                  rng: np.random.Generator, prices: Prices | None = None,
                  day: np.ndarray | None = None) -> np.ndarray:
    """Intent products for `users` (one each): category ∝ preference * tilt, a preferred
    major brand with probability `brand_loyalty`, product ∝ intent weight (times the
    product's traffic weight on `day` when `prices` are given)."""
    n = len(users)
    l1 = categorical_weighted(pop.l1_pref_t, users, cat.l1_intent_tilt, rng.random(n))
    major = np.full(n, -1, dtype=np.int64)
    loyal = np.nonzero(rng.random(n) < cfg.brand_loyalty)[0]
    if len(loyal):
        major[loyal] = categorical_weighted(pop.brand_pref_t, users[loyal],
                                            np.ones(cat.n_major), rng.random(len(loyal)))
    if prices is None:
        return cat.sample(l1, major, rng.random(n), rng.random(n), intent=True)
    return sample_at_price(cat, prices, l1, major, day, rng.random(n), rng.random(n), rng,
                           intent=True)


def _intent_loop(cfg: SynthConfig, tl: Timeline, cat: Catalog, prices: Prices,
                 pop: Population, t_first: np.ndarray, rng: np.random.Generator):
    """Run every user's intent visits through the window, sequentially per user and
    vectorised across users. Returns session (user, sec) and target arrays, death times
    and transaction counts."""
    n = len(pop)
    pi_s = session_conversion(cfg)
    rate = pop.lam / pi_s
    end_op = tl.intent.total
    death = np.full(n, np.inf)
    n_tx = np.zeros(n, dtype=np.int32)
    t = t_first.copy()
    act = np.nonzero(t < end_op)[0]
    s_user, s_sec, tg_sess, tg_prod, tg_bought = [], [], [], [], []
    n_sess = 0
    c_l1 = conversion_by_l1(cfg, cat, prices)
    while len(act):
        m = len(act)
        sec = tl.intent.to_sec(t[act])
        k = 1 + rng.poisson(cfg.extra_targets, m)
        local = np.repeat(np.arange(m), k)
        tu = act[local]
        day = np.minimum((sec // DAY).astype(np.int64), tl.days - 1)[local]
        prod = _draw_targets(cfg, cat, pop, tu, rng, prices, day)
        ratio = prices.nominal[prod, day] / cat.base_cents[prod]
        l1 = cat.product_l1[prod]
        prob = np.minimum(c_l1[l1] * ratio ** cat.elasticity[l1], 0.97)
        bought = rng.random(len(prod)) < prob
        conv = np.bincount(local, weights=bought, minlength=m) > 0
        s_user.append(act)
        s_sec.append(sec)
        tg_sess.append(n_sess + local)
        tg_prod.append(prod)
        tg_bought.append(bought)
        n_sess += m
        n_tx[act[conv]] += 1
        die = conv & (rng.random(m) < pop.p_drop[act])
        death[act[die]] = sec[die]
        act = act[~die]
        t[act] += rng.exponential(1.0, len(act)) / rate[act]
        act = act[t[act] < end_op]
    cat_ = np.concatenate
    if not s_user:
        e = np.empty(0, dtype=np.int64)
        return e, e.astype(float), e, e.astype(np.int32), e.astype(bool), death, n_tx
    return (cat_(s_user), cat_(s_sec), cat_(tg_sess), cat_(tg_prod), cat_(tg_bought),
            death, n_tx)


def _monthly_active(users: np.ndarray, secs: np.ndarray, days: int) -> float:
    """Distinct users with a visit in a 30-day block, averaged over the window's full
    blocks (the whole window when it is shorter than 30 days)."""
    n = int(users.max()) + 1 if len(users) else 0
    if days < 30:
        return float(np.count_nonzero(np.bincount(users, minlength=n)))
    blocks = days // 30
    b = (secs // (30 * DAY)).astype(np.int64)
    total = 0
    for k in range(blocks):
        total += np.count_nonzero(np.bincount(users[b == k], minlength=n))
    return total / blocks


def _extreme_products(cat: Catalog, share: float, expensive: bool) -> np.ndarray:
    """Positions of the cheapest (or most expensive) `share` of products of every
    category_id."""
    price = -cat.base_cents if expensive else cat.base_cents
    order = np.lexsort((price, cat.product_cat))
    cats = cat.product_cat[order]
    first = np.searchsorted(cats, cats, side="left")
    last = np.searchsorted(cats, cats, side="right")
    rank = np.arange(len(order)) - first
    return np.sort(order[rank < np.maximum(1, np.floor(share * (last - first)))])


def _spells(rng: np.random.Generator, acq: np.ndarray, end: float, days: tuple[float, float],
            per_day: float) -> tuple[np.ndarray, np.ndarray]:
    """Visits of actors active over a spell of `days` days after acquisition that overlaps
    the window (no pile-up at the window start), about `per_day` a day: (actor, sec)."""
    span = rng.uniform(*days, len(acq)) * DAY
    begin = np.maximum(acq, -span)
    begin = begin + rng.random(len(acq)) * np.maximum(end - begin, 0.0)
    lo = np.maximum(begin, 0.0)
    length = (np.minimum(begin + span, end) - lo).clip(0)
    k = 1 + rng.poisson(per_day * length / DAY)
    secs = np.repeat(lo, k) + rng.random(int(k.sum())) * np.repeat(length, k)
    return np.repeat(np.arange(len(acq)), k), secs


def _bot_sessions(cfg: SynthConfig, tl: Timeline, cat: Catalog, prices: Prices,
                  bots: Population, offset: int, takeover: tuple[np.ndarray, np.ndarray],
                  fraud: FraudProfile, rng: np.random.Generator):
    """Visits of bot actors, none before the actor's acquisition (price-glitch exploiters
    come when their glitch is on), and of the accounts taken over (`takeover`: population
    indices of their owners and the takeover times). Returns session arrays (user, sec,
    kind, views) and targets (session, product, blind, cents, shown); every bot target
    is bought. Bots are population rows offset + their index in `bots`."""
    sessions: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []
    targets: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    end = tl.end_sec - 3600.0
    acq = np.minimum(np.maximum(bots.acq_sec, 0.0), end)
    n_sessions = 0

    def add_sessions(users: np.ndarray, secs: np.ndarray, kind: int,
                     views: np.ndarray) -> np.ndarray:
        nonlocal n_sessions
        sessions.append((users, secs, kind, views))
        first = n_sessions
        n_sessions += len(users)
        return np.arange(first, n_sessions)

    def add_targets(sess: np.ndarray, prod: np.ndarray, blind=False, cents=None,
                    shown=False) -> None:
        n = len(prod)
        cents = np.full(n, -1, np.int32) if cents is None else cents
        targets.append((sess, prod.astype(np.int32), np.broadcast_to(blind, n),
                        cents.astype(np.int32), np.broadcast_to(shown, n)))

    def nominal(prod: np.ndarray, secs: np.ndarray) -> np.ndarray:
        day = np.minimum((secs // DAY).astype(np.int64), tl.days - 1)
        return prices.nominal[prod, day]

    of_type = {t: np.nonzero(bots.actor == t)[0] for t in range(1, 8)}
    # scrapers: bursts of 20..150 views, 1-4 s apart (events.py), a visit or so a day
    # over a 2..15 day spell
    sc = of_type[SCRAPER]
    if len(sc):
        who, secs = _spells(rng, bots.acq_sec[sc], end, (2, 15), 0.8)
        add_sessions(sc[who] + offset, secs, SCRAPE, rng.integers(20, 151, len(who)))
    # jittered bots: scrapers whose views are lognormal-spaced like a person's (median
    # and spread per seed, events.py), longer visits over a longer spell
    jb = of_type[JITTERED_BOT]
    if len(jb):
        who, secs = _spells(rng, bots.acq_sec[jb], end, (3, 20), 1.0)
        views = rng.integers(30, fraud.jitter_max_views + 1, len(who))
        # their long visits do not shrink with the data: in a small extract a handful of
        # them would outweigh everyone else, so their views are held to a share of it
        # (2.2% on the 600k test data, below the cap)
        cap = JITTER_MAX_VIEW_SHARE * cfg.n_events
        if views.sum() > cap:
            order = rng.permutation(len(who))
            keep = np.sort(order[:np.searchsorted(np.cumsum(views[order]), cap, "right")])
            who, secs, views = who[keep], secs[keep], views[keep]
        add_sessions(jb[who] + offset, secs, JITTER, views)
    # card testers: 1-2 visits, each a burst of 3..6 blind purchases of cheap products
    # (the cheapest 15% of every category, so no single category is dominated by them)
    cheap = _extreme_products(cat, 0.15, expensive=False)
    ct = of_type[CARD_TESTING]
    if len(ct):
        k = 1 + (rng.random(len(ct)) < 0.3)
        s0 = np.repeat(acq[ct], k)
        secs = s0 + rng.random(len(s0)) * (end - s0)
        ids = add_sessions(np.repeat(ct, k) + offset, secs, CARDTEST,
                           rng.integers(0, 3, len(s0)))
        nb = rng.integers(3, 7, len(s0))
        add_targets(np.repeat(ids, nb), cheap[rng.integers(0, len(cheap), int(nb.sum()))],
                    blind=True)
    # slow card testers: one cheap purchase a visit, visits an exponential number of
    # minutes apart (mean per seed), mostly after viewing the product, so neither a burst
    # nor a run of blind purchases shows
    sct = of_type[SLOW_CARD_TESTING]
    if len(sct):
        k = rng.integers(4, fraud.slow_ct_max_attempts + 1, len(sct))
        who = np.repeat(np.arange(len(sct)), k)
        step = rng.exponential(fraud.slow_ct_spacing_minutes * 60.0, len(who))
        first = np.cumsum(k) - k
        elapsed = np.cumsum(step) - np.repeat(np.cumsum(step)[first] - step[first], k)
        latest = np.maximum(end - elapsed[np.cumsum(k) - 1], acq[sct])
        t0 = acq[sct] + rng.random(len(sct)) * np.maximum(latest - acq[sct], 0.0)
        secs = np.minimum(t0[who] + elapsed, end)
        viewed = rng.random(len(who)) < fraud.slow_ct_viewed_share
        ids = add_sessions(sct[who] + offset, secs, SLOW_CARDTEST,
                           viewed + rng.integers(0, 2, len(who)))
        add_targets(ids, cheap[rng.integers(0, len(cheap), len(who))], blind=~viewed)
    # price anomalies: ordinary-looking visits that buy at 3..25% of the normal price
    pa = of_type[PRICE_ANOMALY]
    if len(pa):
        k = 1 + rng.poisson(1.0, len(pa))
        users = np.repeat(pa, k)
        s0 = np.repeat(acq[pa], k)
        secs = s0 + rng.random(len(s0)) * (end - s0)
        nb = 1 + (rng.random(len(users)) < 0.3)
        ids = add_sessions(users + offset, secs, ANOMALY, nb + rng.poisson(2.5, len(users)))
        prod = _draw_targets(cfg, cat, bots, np.repeat(users, nb), rng)
        cents = np.maximum(1, np.round(nominal(prod, np.repeat(secs, nb))
                                       * rng.uniform(0.03, 0.25, len(prod))))
        add_targets(np.repeat(ids, nb), prod, cents=cents)
    # resellers: 1-3 orders over the window, each several units (purchase rows, each
    # after its own view) of one of the actor's one or two products, at the normal price
    rs = of_type[RESELLER]
    if len(rs):
        k = rng.integers(1, 4, len(rs))
        users = np.repeat(rs, k)
        s0 = np.repeat(acq[rs], k)
        secs = s0 + rng.random(len(s0)) * (end - s0)
        units = rng.integers(2, fraud.reseller_max_units + 1, len(users))
        ids = add_sessions(users + offset, secs, RESELL, units + rng.poisson(2.0, len(users)))
        own = _draw_targets(cfg, cat, bots, np.repeat(rs, 2), rng).reshape(-1, 2)
        pick = np.searchsorted(rs, users)
        prod = own[pick, (rng.random(len(users)) < 0.3).astype(np.int64)]
        add_targets(np.repeat(ids, units), np.repeat(prod, units))
    # price-glitch exploiters: a few popular products are mispriced for a few hours
    # (glitch price shown and paid, per seed); each exploiter buys units of one of them
    gl = of_type[PRICE_GLITCH]
    if len(gl):
        g = fraud.glitches
        g_prod = _draw_targets(cfg, cat, bots, gl[rng.integers(0, len(gl), g)], rng)
        g_start = rng.uniform(0.0, end - fraud.glitch_hours * 3600.0, g)
        g_share = rng.uniform(*fraud.glitch_price_share, g)
        which = rng.integers(0, g, len(gl))
        secs = g_start[which] + rng.random(len(gl)) * fraud.glitch_hours * 3600.0
        units = rng.integers(1, fraud.glitch_max_units + 1, len(gl))
        ids = add_sessions(gl + offset, secs, GLITCH, units + rng.poisson(1.5, len(gl)))
        prod = np.repeat(g_prod[which], units)
        cents = np.maximum(1, np.round(np.repeat(nominal(g_prod[which], secs)
                                                 * g_share[which], units)))
        add_targets(np.repeat(ids, units), prod, cents=cents, shown=True)
    # taken-over accounts: from the takeover on, a few short visits within hours, at the
    # new user's hour of day, each buying 1-3 of the most expensive products of random
    # categories after a glance (the owner's own visits go on)
    owner, since = takeover
    if len(owner):
        k = rng.integers(2, fraud.takeover_max_sessions + 1, len(owner))
        users = np.repeat(owner, k)
        t = np.repeat(since, k) + rng.random(len(users)) * fraud.takeover_span_hours * 3600
        hour = (fraud.takeover_hour_utc + rng.uniform(0.0, 3.0, len(users))) % 24
        secs = np.floor(t / DAY) * DAY + hour * 3600.0
        secs = np.where(secs < np.repeat(since, k), secs + DAY, secs)
        keep = secs < end
        users, secs = users[keep], secs[keep]
        nb = 1 + rng.binomial(2, 0.4, len(users))
        ids = add_sessions(users, secs, TAKEOVER, nb + rng.integers(0, 3, len(users)))
        dear = _extreme_products(cat, 0.1, expensive=True)
        add_targets(np.repeat(ids, nb), dear[rng.integers(0, len(dear), int(nb.sum()))])
    def cat_(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

    return (cat_([x[0] for x in sessions], np.int64),
            cat_([x[1] for x in sessions], np.float64),
            cat_([np.full(len(x[0]), x[2]) for x in sessions], np.int8),
            cat_([x[3] for x in sessions], np.int64),
            cat_([t[0] for t in targets], np.int64),
            cat_([t[1] for t in targets], np.int32),
            cat_([t[2] for t in targets], bool),
            cat_([t[3] for t in targets], np.int32),
            cat_([t[4] for t in targets], bool))


def _takeovers(tl: Timeline, n: int, users: np.ndarray, secs: np.ndarray,
               death: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` accounts taken over: humans with a visit before the takeover, which falls
    between 15% and 85% of the window, at least a day after their first visit and before
    they drop out. Returns (population indices, takeover seconds), by index."""
    first = np.full(len(death), np.inf)
    np.minimum.at(first, users, secs)
    begin = np.maximum(first + DAY, 0.15 * tl.end_sec)
    stop = np.minimum(death, 0.85 * tl.end_sec)
    cand = np.nonzero(begin < stop)[0]
    owner = np.sort(rng.choice(cand, size=min(n, len(cand)), replace=False))
    return owner, begin[owner] + rng.random(len(owner)) * (stop[owner] - begin[owner])


def build_skeleton(cfg: SynthConfig, tl: Timeline, cat: Catalog, prices: Prices,
                   n_users: int, rng: np.random.Generator,
                   exact_rows: int | None = None) -> tuple[Population, Skeleton]:
    """Draw `n_users` humans (plus bots) and all their visits in the window.

    With `exact_rows`, browse views are adjusted so that `Skeleton.rows() == exact_rows`.
    Returns the population of users that have at least one visit and the skeleton.
    """
    pop, all_ids, all_acq = make_users(cfg, tl, n_users, rng)
    start = np.maximum(pop.acq_sec, 0.0)

    # Browse visits over [start, end) (visits after a later dropout are removed below).
    b0 = tl.browse.to_op(start)
    b_len = np.maximum(tl.browse.total - b0, 0.0)
    nb = rng.poisson(pop.browse_rate * b_len)
    pi_s = session_conversion(cfg)
    t_first = tl.intent.to_op(start) + rng.exponential(1.0, len(pop)) * pi_s / pop.lam
    acquired = pop.acq_sec >= 0
    visible = (nb > 0) | acquired | (t_first < tl.intent.total)
    idx = np.nonzero(visible)[0]
    pop, nb, b0, b_len, t_first = pop.keep(idx), nb[idx], b0[idx], b_len[idx], t_first[idx]
    acquired = acquired[idx]
    n_h = len(pop)

    l1_alpha = cfg.l1_concentration * cat.l1_view_share
    brand_alpha = cfg.brand_concentration * cat.major_pref_base
    add_preferences(pop, l1_alpha, brand_alpha, rng)

    i_user, i_sec, it_sess, it_prod, it_bought, death, n_tx = _intent_loop(
        cfg, tl, cat, prices, pop, t_first, rng)

    b_user = np.repeat(np.arange(n_h), nb)
    b_sec = tl.browse.to_sec(np.repeat(b0, nb) + rng.random(len(b_user)) * np.repeat(b_len, nb))
    keep = b_sec < death[b_user]
    b_user, b_sec = b_user[keep], b_sec[keep]
    a_user = np.nonzero(acquired)[0]
    a_sec = pop.acq_sec[a_user]

    # Bots and fraud actors: a share of the humans active in a typical 30-day month, for
    # every 30 days of the window (their visits are spread over the window).
    share = cfg.bot_user_share
    month_users = _monthly_active(np.concatenate([b_user, a_user, i_user]),
                                  np.concatenate([b_sec, a_sec, i_sec]), tl.days)
    n_bots = int(round(share / (1 - share) * month_users * max(tl.days, 30) / 30))
    bots = make_bots(cfg, tl, n_bots, all_ids, all_acq, rng)
    add_preferences(bots, l1_alpha, brand_alpha, rng)
    share = cfg.takeover_user_share
    n_takeovers = int(round(share * month_users * max(tl.days, 30) / 30))
    takeover = _takeovers(tl, n_takeovers, np.concatenate([b_user, a_user, i_user]),
                          np.concatenate([b_sec, a_sec, i_sec]), death, rng)
    fraud = draw_fraud_profile(cfg.seed)
    (x_user, x_sec, x_kind, x_views, xt_sess, xt_prod, xt_blind, xt_cents,
     xt_shown) = _bot_sessions(cfg, tl, cat, prices, bots, n_h, takeover, fraud, rng)
    # a takeover whose visits all fell after the window end did not happen in it
    to = x_kind == TAKEOVER
    last = np.full(n_h, -np.inf)
    np.maximum.at(last, x_user[to], x_sec[to])
    happened = np.isfinite(last[takeover[0]])
    takeover = (takeover[0][happened], takeover[1][happened], last[takeover[0][happened]])
    pop = Population.concat(pop, bots)
    # the per-user preference tables of the day workers need no random draws: build them
    # on another core meanwhile (numpy releases the GIL)
    cdf_pool = ThreadPoolExecutor(max_workers=1)
    cdfs = cdf_pool.submit(pop.build_cdfs)
    death = np.concatenate([death, np.full(len(bots), np.inf)])
    n_tx = np.concatenate([n_tx, np.zeros(len(bots), dtype=np.int32)])

    # All sessions: browse (incl. acquisition visits), intent, bots.
    n_b = len(b_user) + len(a_user)
    n_i = len(i_user)
    user = np.concatenate([b_user, a_user, i_user, x_user]).astype(np.int32)
    sec = np.concatenate([b_sec, a_sec, i_sec, x_sec])
    kind = np.concatenate([np.full(n_b, BROWSE, np.int8), np.full(n_i, INTENT, np.int8),
                           x_kind])
    n_all = len(user)

    # Targets: intents, browse carts, bots.
    bc = rng.random(n_b) < cfg.browse_cart_session
    bc_idx = np.nonzero(bc)[0]
    bc_k = 1 + rng.poisson(cfg.browse_cart_extra, len(bc_idx))
    t_sess = np.concatenate([n_b + it_sess, np.repeat(bc_idx, bc_k), n_b + n_i + xt_sess])
    n_it, n_bc = len(it_sess), int(bc_k.sum())
    t_prod = np.concatenate([it_prod, np.full(n_bc, -1, np.int32), xt_prod]).astype(np.int32)
    t_bought = np.concatenate([it_bought, np.zeros(n_bc, bool), np.ones(len(xt_sess), bool)])
    t_blind = np.concatenate([np.zeros(n_it + n_bc, bool), xt_blind])
    t_cents = np.concatenate([np.full(n_it + n_bc, -1, np.int32), xt_cents])
    t_shown = np.concatenate([np.zeros(n_it + n_bc, bool), xt_shown])
    n_t = len(t_sess)
    human_t = np.arange(n_t) < n_it + n_bc
    p_cart = np.where(t_bought, cfg.cart_if_bought, cfg.cart_if_not_bought)
    p_cart[n_it:n_it + n_bc] = 1.0
    has_cart = human_t & (rng.random(n_t) < p_cart)
    t_ncart = np.where(has_cart, 1 + rng.poisson(cfg.cart_repeat_mean, n_t), 0)
    t_cdup = np.where((t_ncart > 0) & (rng.random(n_t) < cfg.cart_dup_prob),
                      1 + rng.poisson(cfg.cart_dup_extra, n_t), 0)
    t_pdup = (t_bought & (rng.random(n_t) < cfg.purchase_dup_prob)).astype(np.int64)

    # Views: enough units for the viewed targets.
    viewed_t = np.bincount(t_sess[~t_blind], minlength=n_all)
    views = np.empty(n_all, dtype=np.int64)
    views[:n_b] = 1 + _negbin(rng, cfg.browse_views_mean - 1, cfg.views_dispersion, n_b)
    views[n_b:n_b + n_i] = _negbin(rng, cfg.intent_views_mean, cfg.views_dispersion, n_i)
    views[n_b:n_b + n_i] += viewed_t[n_b:n_b + n_i]
    views[n_b + n_i:] = x_views
    views = np.maximum(views, viewed_t)  # browse carts never exceed the views

    # Sort sessions by start time; remap targets.
    sec_i = np.floor(sec).astype(np.int64)
    order = stable_order(sec_i)
    rank = np.empty(n_all, dtype=np.int64)
    rank[order] = np.arange(n_all)
    t_sess = rank[t_sess]
    t_order = np.argsort(t_sess, kind="stable")
    sk_user, sk_start, sk_kind, sk_views = user[order], sec_i[order], kind[order], views[order]

    n_vdup = rng.binomial(sk_views, cfg.view_dup_prob).astype(np.int16)

    # Quirks: a >30 min pause, or a pause making the visit span >24 h. Only for human
    # visits with at least two units that start early enough to finish in the window.
    units = sk_views + np.bincount(t_sess[t_blind], minlength=n_all)
    quirk = np.zeros(n_all, dtype=np.int8)
    ok_long = np.nonzero((units >= 2) & (sk_kind <= INTENT)
                         & (sk_start < tl.end_sec - 2.2 * DAY))[0]
    n_long = min(len(ok_long), int(round(cfg.long_session_share * n_all)))
    long_ = rng.choice(ok_long, n_long, replace=False) if n_long else np.empty(0, np.int64)
    quirk[long_] = QUIRK_LONG
    ok_gap = np.nonzero((units >= 2) & (sk_kind <= INTENT) & (quirk == QUIRK_NONE)
                        & (sk_start < tl.end_sec - 0.5 * DAY))[0]
    n_gap = min(len(ok_gap), int(round(cfg.gap_session_share * n_all)))
    gap = rng.choice(ok_gap, n_gap, replace=False) if n_gap else np.empty(0, np.int64)
    quirk[gap] = QUIRK_GAP

    # Shared ids: the second session of a pair (a different user, close in time) reuses
    # the first one's id.
    uuid_src = np.arange(n_all, dtype=np.int64)
    want = cfg.n_shared_ids
    pick = np.sort(rng.choice(n_all - 1, size=min(2 * want, n_all - 1), replace=False))
    pick = pick[np.concatenate([[True], np.diff(pick) > 1])]  # disjoint pairs (i, i+1)
    pick = pick[sk_user[pick] != sk_user[pick + 1]]
    pick = np.sort(rng.permutation(pick)[:want])  # a random subset, spread over the window
    uuid_src[pick + 1] = pick

    sk = Skeleton(
        user=sk_user, start=sk_start, kind=sk_kind, n_views=sk_views.astype(np.int32),
        n_vdup=n_vdup, quirk=quirk, uuid_src=uuid_src,
        t_sess=t_sess[t_order], t_prod=t_prod[t_order], t_bought=t_bought[t_order],
        t_ncart=t_ncart[t_order].astype(np.int16), t_cdup=t_cdup[t_order].astype(np.int16),
        t_pdup=t_pdup[t_order].astype(np.int16), t_blind=t_blind[t_order],
        t_cents=t_cents[t_order], t_shown=t_shown[t_order], death_sec=death, n_tx=n_tx,
        n_shared=len(pick), drawn_users=n_users, fraud=fraud, takeover_user=takeover[0],
        takeover_sec=takeover[1], takeover_end_sec=takeover[2])
    if exact_rows is not None:
        _adjust_views(sk, exact_rows, rng)
    cdfs.result()
    cdf_pool.shutdown()
    return pop, sk


def _adjust_views(sk: Skeleton, target: int, rng: np.random.Generator) -> None:
    """Add or remove single views of random browse visits until rows == target."""
    diff = target - sk.rows()
    browse = np.nonzero(sk.kind == BROWSE)[0]
    if diff > 0:
        add = rng.choice(browse, size=diff, replace=True)
        np.add.at(sk.n_views, add, 1)
        return
    viewed_t = np.bincount(sk.t_sess[~sk.t_blind], minlength=sk.n_sessions)
    while diff < 0:
        spare = sk.n_views[browse] - np.maximum(viewed_t[browse], 1) - sk.n_vdup[browse]
        cand = browse[(spare > 0) & (sk.quirk[browse] == QUIRK_NONE)]
        if len(cand) == 0:
            raise ValueError("cannot remove enough views to hit the exact row count")
        take = rng.choice(cand, size=min(-diff, len(cand)), replace=False)
        sk.n_views[take] -= 1
        diff += len(take)
