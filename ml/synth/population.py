"""Users: acquisition, the latent BG/NBD purchase process, browse rates and preferences.

Every human user u has
  * an acquisition time a_u (uniform in browse-operational time over
    [start - burn_in, end)): the first visit; user ids increase with it;
  * lambda_u ~ Gamma(r, alpha): purchase transactions per ordinary day while alive;
  * p_u ~ Beta(a, b): probability of dropping out right after each transaction;
  * a browse-visit rate ~ Gamma(browse_r, browse_alpha) per ordinary day;
  * category preferences w_u ~ Dirichlet(c * view share of each category_l1);
  * major-brand preferences ~ Dirichlet(c * market share of each major brand).

Users acquired before the window are alive at its start iff their K-th transaction, with
K ~ Geometric(p_u) the transaction after which they drop out, falls after the start:
T_K - a_u ~ Gamma(K, 1/lambda_u). Dropping out is memoryless otherwise, so a survivor's
in-window process is a fresh copy of the same process.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ml.synth.config import SynthConfig
from ml.synth.timeline import DAY, Timeline

HUMAN, SCRAPER, CARD_TESTING, PRICE_ANOMALY = 0, 1, 2, 3
JITTERED_BOT, SLOW_CARD_TESTING, RESELLER, PRICE_GLITCH = 4, 5, 6, 7
ACTOR_NAMES = ("human", "scraper", "card_testing", "price_anomaly", "jittered_bot",
               "slow_card_testing", "reseller", "price_glitch")
# Bot actors, in the order of SynthConfig.bot_mix.
BOT_TYPES = ACTOR_NAMES[1:]
# Not a bot: an existing human's account, used by someone else from a date on. Listed in
# actors.parquet with that date; users.parquet keeps the owner's actor_type, human.
ACCOUNT_TAKEOVER = "account_takeover"


@dataclass(frozen=True)
class FraudProfile:
    """How the abuse of one seed looks: drawn per seed (its own random stream), so a
    detector cannot be fitted to one fixed shape. Written to the manifest."""

    jitter_gap_median: float  # seconds between a jittered bot's views (lognormal median)
    jitter_gap_sigma: float  # ... and log-sd
    jitter_max_views: int  # views of a jittered bot's visit: 30 .. this
    slow_ct_max_attempts: int  # purchases of a slow card tester: 4 .. this, one a visit
    slow_ct_spacing_minutes: float  # mean minutes between its visits (exponential)
    slow_ct_viewed_share: float  # share of its purchases made after viewing the product
    reseller_max_units: int  # units (purchase rows) of one product per order: 2 .. this
    glitches: int  # mispriced product-hours the glitch exploiters buy at
    glitch_price_share: tuple[float, float]  # glitch price / nominal price, range
    glitch_hours: float  # how long a glitch lasts
    glitch_max_units: int  # units an exploiter buys: 1 .. this
    takeover_max_sessions: int  # visits of the account's new user: 2 .. this
    takeover_span_hours: float  # ... within this many hours of the takeover
    takeover_hour_utc: int  # the new user's usual hour of day (UTC)


def draw_fraud_profile(seed: int) -> FraudProfile:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2000]))
    low = float(rng.uniform(0.04, 0.15))
    return FraudProfile(
        jitter_gap_median=float(rng.uniform(5.0, 12.0)),
        jitter_gap_sigma=float(rng.uniform(0.5, 0.9)),
        jitter_max_views=int(rng.integers(100, 301)),
        slow_ct_max_attempts=int(rng.integers(6, 13)),
        slow_ct_spacing_minutes=float(rng.uniform(20.0, 90.0)),
        slow_ct_viewed_share=float(rng.uniform(0.6, 1.0)),
        reseller_max_units=int(rng.integers(3, 9)),
        glitches=int(rng.integers(2, 6)),
        glitch_price_share=(low, low + float(rng.uniform(0.05, 0.2))),
        glitch_hours=float(rng.uniform(2.0, 8.0)),
        glitch_max_units=int(rng.integers(2, 6)),
        takeover_max_sessions=int(rng.integers(3, 7)),
        takeover_span_hours=float(rng.uniform(12.0, 72.0)),
        takeover_hour_utc=int(rng.integers(0, 24)),
    )


@dataclass
class Population:
    """Candidate users (alive at the window start or acquired during it). Mutable only
    while the skeleton is built (`keep` compacts it)."""

    user_id: np.ndarray  # int64
    acq_sec: np.ndarray  # float64, window-relative seconds (negative: before the window)
    lam: np.ndarray  # float64, transactions per ordinary day (NaN for bots)
    p_drop: np.ndarray  # float64 (NaN for bots)
    browse_rate: np.ndarray  # float64 visits per ordinary day (NaN for bots)
    actor: np.ndarray  # int8
    # Preferences are stored column-major, (categories, users): per-category 1-D gathers
    # are much cheaper than gathering short rows of a (users, categories) array.
    l1_pref_t: np.ndarray | None = None  # float32 (L, n)
    brand_pref_t: np.ndarray | None = None  # float32 (K, n)
    l1_cdf: np.ndarray | None = None  # packed cumulative l1 preference, see pack_cdf
    brand_cdf: np.ndarray | None = None

    def build_cdfs(self) -> None:
        """Cumulative preferences for per-session draws (see `categorical_packed`)."""
        self.l1_cdf = pack_cdf(self.l1_pref_t)
        self.brand_cdf = pack_cdf(self.brand_pref_t)

    def __len__(self) -> int:
        return len(self.user_id)

    def keep(self, idx: np.ndarray) -> "Population":
        """The sub-population at positions `idx` (a new object)."""
        return Population(
            user_id=self.user_id[idx], acq_sec=self.acq_sec[idx], lam=self.lam[idx],
            p_drop=self.p_drop[idx], browse_rate=self.browse_rate[idx], actor=self.actor[idx],
            l1_pref_t=None if self.l1_pref_t is None else self.l1_pref_t[:, idx],
            brand_pref_t=None if self.brand_pref_t is None else self.brand_pref_t[:, idx])

    @staticmethod
    def concat(a: "Population", b: "Population") -> "Population":
        def cat(x, y):
            return None if x is None or y is None else np.concatenate([x, y], axis=1)
        return Population(
            user_id=np.concatenate([a.user_id, b.user_id]),
            acq_sec=np.concatenate([a.acq_sec, b.acq_sec]),
            lam=np.concatenate([a.lam, b.lam]), p_drop=np.concatenate([a.p_drop, b.p_drop]),
            browse_rate=np.concatenate([a.browse_rate, b.browse_rate]),
            actor=np.concatenate([a.actor, b.actor]),
            l1_pref_t=cat(a.l1_pref_t, b.l1_pref_t),
            brand_pref_t=cat(a.brand_pref_t, b.brand_pref_t))


def make_users(cfg: SynthConfig, tl: Timeline, n: int,
               rng: np.random.Generator) -> tuple[Population, np.ndarray, np.ndarray]:
    """Draw `n` human users acquired over [start - burn_in, end) and keep those alive at
    the start of the window or acquired during it.

    Returns (population, ids of all n drawn users, their acquisition seconds): the full
    id list lets bots take free ids inside the humans' range (ids step by at least 2)."""
    b_total = tl.browse.total
    op = rng.uniform(-cfg.burn_in_days, b_total, n)
    op.sort()  # user ids increase with acquisition time
    acq_sec = tl.browse.to_sec(op)
    lam = rng.gamma(cfg.bgnbd_r, 1.0 / cfg.bgnbd_alpha, n)
    p = rng.beta(cfg.bgnbd_a, cfg.bgnbd_b, n)
    browse = rng.gamma(cfg.browse_r, 1.0 / cfg.browse_alpha, n)
    gap = max(3, min(9, int(480_000_000 // max(n, 1))))
    user_id = 510_000_000 + np.cumsum(rng.integers(2, gap + 1, n))
    pre = op < 0
    k = rng.geometric(p)
    t_k = rng.standard_gamma(k.astype(np.float64)) / np.maximum(lam, 1e-300)
    alive = ~pre | (op + t_k > 0)
    idx = np.nonzero(alive)[0]
    pop = Population(user_id=user_id[idx], acq_sec=acq_sec[idx], lam=lam[idx],
                     p_drop=p[idx], browse_rate=browse[idx],
                     actor=np.zeros(len(idx), dtype=np.int8))
    return pop, user_id, acq_sec


def _gamma_log_quantiles(a: float, q: np.ndarray) -> np.ndarray:
    """log of the Gamma(a, 1) quantiles at probabilities `q`, by numerical integration of
    the density of log X on a grid (numpy only; accurate to ~1e-4 in log x). Below the grid
    the exact asymptote F(x) ~ x^a / Gamma(a + 1) is used."""
    z = np.linspace(-69.0, np.log(80.0 + 20 * a), 40_000)
    g = np.exp(a * z - np.exp(z) - math.lgamma(a))  # density of log X
    head = np.exp(a * z[0] - math.lgamma(a + 1.0))  # F at the first grid point
    cdf = head + np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) * 0.5 * np.diff(z))])
    cdf /= cdf[-1]
    out = np.interp(q, cdf, z)
    low = q < cdf[0]
    out[low] = (np.log(q[low]) + math.lgamma(a + 1.0)) / a
    return out


class DirichletSampler:
    """Fast Dirichlet(alpha) draws by inverse-CDF tables of each Gamma(alpha_k).

    numpy's gamma sampler is slow for shapes < 1 (tens of ns a draw). Here each Gamma(a_k)
    is drawn from a table of 8,192 log-quantiles (float32, cache-resident) by a random index, then
    the vector is normalised: accurate to well under a percent of each weight and an order of
    magnitude faster.
    """

    GRID = 1 << 13

    def __init__(self, alpha: np.ndarray) -> None:
        self.alpha = np.asarray(alpha, dtype=np.float64)
        q = (np.arange(self.GRID) + 0.5) / self.GRID
        self.table = np.stack([_gamma_log_quantiles(a, q) for a in self.alpha]).astype(
            np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(K, n) float32: column i is one Dirichlet vector (sums to 1)."""
        K = len(self.alpha)
        idx = rng.integers(0, self.GRID, (K, n), dtype=np.int32)
        x = np.empty((K, n), dtype=np.float32)
        for k in range(K):
            x[k] = self.table[k][idx[k]]
        x -= x.max(axis=0)
        np.exp(x, out=x)
        x /= x.sum(axis=0)
        return x


def add_preferences(pop: Population, l1_alpha: np.ndarray, brand_alpha: np.ndarray,
                    rng: np.random.Generator) -> None:
    """Draw category and major-brand preference vectors for every user of `pop`."""
    pop.l1_pref_t = DirichletSampler(l1_alpha).sample(len(pop), rng)
    pop.brand_pref_t = DirichletSampler(brand_alpha).sample(len(pop), rng)


def pack_cdf(weights_t: np.ndarray) -> np.ndarray:
    """Per user the cumulative weights of (K, n) `weights_t` (K <= 16) quantised to uint16
    (k / 65536 resolution), padded with 65535 to 16 slots: 32 bytes per user, stored as an
    (n, 2) complex128 array so that one user's table is fetched by two 16-byte gathers from
    a single cache line (gathering many short rows of a 2-D array is slow in numpy)."""
    K, n = weights_t.shape
    if K > 16:
        raise ValueError("at most 16 categories")
    cdf = np.cumsum(weights_t[:-1], axis=0, dtype=np.float32)
    cdf /= weights_t.sum(axis=0, dtype=np.float32)
    packed = np.full((n, 16), 65535, dtype=np.uint16)
    packed[:, :K - 1] = np.minimum(np.rint(cdf * 65536.0), 65535).astype(np.uint16).T
    return packed.view(np.complex128).reshape(n, 2)


def categorical_packed(packed: np.ndarray, n_categories: int, rows: np.ndarray,
                       u: np.ndarray) -> np.ndarray:
    """Draw a category for each i from the packed cumulative table of user rows[i] (see
    `pack_cdf`); `u` are uniform uint16. k = number of cumulative bounds <= u, counted with
    a popcount over the comparison bytes."""
    n = len(rows)
    g = np.empty((n, 2), dtype=np.complex128)
    g[:, 0] = packed[rows, 0]
    g[:, 1] = packed[rows, 1]
    below = g.view(np.uint16).reshape(n, 16) <= u[:, None]
    counts = np.bitwise_count(below.view(np.uint64).reshape(n, 2))
    return np.minimum(counts[:, 0] + counts[:, 1], n_categories - 1).astype(np.int8)


def categorical_weighted(weights_t: np.ndarray, rows: np.ndarray, scale: np.ndarray,
                         u: np.ndarray) -> np.ndarray:
    """Draw k for each i with probability ∝ weights_t[k, rows[i]] * scale[k] (pure)."""
    cum = np.zeros((len(weights_t), len(rows)), dtype=np.float64)
    acc = np.zeros(len(rows), dtype=np.float64)
    for k, col in enumerate(weights_t):
        acc = acc + col[rows] * scale[k]
        cum[k] = acc
    target = u * acc
    k = np.zeros(len(rows), dtype=np.int64)
    for row in cum[:-1]:
        k += row < target
    return k


def make_bots(cfg: SynthConfig, tl: Timeline, n: int, human_ids: np.ndarray,
              human_acq: np.ndarray, rng: np.random.Generator) -> Population:
    """`n` bot and fraud actors with types in the configured mix. Each takes the free id
    right after a random human acquired between 60 days before the window and its end, and
    that human's acquisition time, so ids do not give bots away."""
    mix = np.asarray(cfg.bot_mix, dtype=np.float64)
    if len(mix) != len(BOT_TYPES):
        raise ValueError(f"bot_mix needs one share per bot type {BOT_TYPES}")
    actor = (1 + rng.choice(len(mix), size=n, p=mix / mix.sum())).astype(np.int8)
    cand = np.nonzero((human_acq >= -60 * DAY) & (human_acq < tl.end_sec * 0.97))[0]
    pos = np.sort(rng.choice(cand, size=min(n, len(cand)), replace=False))
    nan = np.full(len(pos), np.nan)
    return Population(user_id=human_ids[pos] + 1, acq_sec=human_acq[pos] + 1.0, lam=nan,
                      p_drop=nan.copy(), browse_rate=nan.copy(), actor=actor[:len(pos)])
