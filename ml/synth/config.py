"""Parameters of the synthetic REES46 generator.

`SynthConfig` holds the user-facing run parameters (size, window, seed, output format) and
the calibrated constants of the process. The calibrated defaults reproduce the published
November 2019 ratios (`ml.published.NOV_2019`); docs/generator.md explains each of them.

Units: rates are per *ordinary* day (a day without a sale, whose hourly intensity averages
one); the sale-day multipliers stretch that clock (see `timeline.py`). Probabilities are
fractions.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from ml.published import NOV_2019

GENERATOR_VERSION = "1.1.0"

FORMATS = ("csv", "csv.gz", "parquet")
SPLITS = ("month", "day")

# Full-size reference: events per day of the real November file.
NOV_EVENTS_PER_DAY = NOV_2019["rows"] / 30.0


@dataclass(frozen=True)
class SynthConfig:
    """One generator run. Frozen: derive variants with `dataclasses.replace`.

    Contract: `n_events` rows are written exactly (unless sessions at the very end of the
    window had to be truncated, which the manifest reports); the same config gives
    byte-identical files.
    """

    # --- run parameters -------------------------------------------------------------
    n_events: int = 2_000_000
    start: dt.date = dt.date(2019, 10, 1)
    days: int = 61
    seed: int = 42
    fmt: str = "csv.gz"
    split: str = "month"
    sale_days: tuple[dt.date, ...] = (dt.date(2019, 11, 17),)
    gzip_level: int = 1

    # --- population: BG/NBD purchase process (per ordinary day) ---------------------
    bgnbd_r: float = 0.09  # lambda ~ Gamma(shape r, rate alpha): transactions per day
    bgnbd_alpha: float = 11.0
    bgnbd_a: float = 1.0  # p ~ Beta(a, b): dropout probability after each transaction
    bgnbd_b: float = 6.0
    browse_r: float = 0.51  # browse-visit rate ~ Gamma(shape, rate), independent of lambda
    browse_alpha: float = 7.95
    burn_in_days: float = 365.0  # users are acquired uniformly over [start - burn_in, end)
    l1_concentration: float = 2.0  # Dirichlet concentration of category preferences
    brand_concentration: float = 3.0  # Dirichlet concentration of major-brand preferences
    brand_loyalty: float = 0.25  # share of product picks restricted to a preferred brand

    # --- purchase intents and price response ----------------------------------------
    target_conversion: float = 0.17  # c0: mean P(buy an intent target), see skeleton.py
    extra_targets: float = 0.95  # targets per intent session = 1 + Poisson(extra_targets)
    elasticity_range: tuple[float, float] = (-2.8, -0.6)
    intent_price_tilt: float = -1.1  # intent picks weight base_price ** tilt within a category
    smartphone_intent_boost: float = 12.0  # smartphones' intent weight within electronics
    smartphone_price_tilt: float = 0.8
    # traffic response: views of a product scale with (price / base_price) ** t_j, t_j =
    # the category's traffic elasticity (stratified over this range per seed) + N(0, sd)
    traffic_elasticity_range: tuple[float, float] = (-1.5, 0.0)
    traffic_elasticity_product_sd: float = 0.10

    # --- prices --------------------------------------------------------------------
    dynamic_share_min: float = 0.04  # P(product reprices) for the least popular product
    dynamic_share_max: float = 0.98  # ... for the most popular one
    price_changes_per_30d: float = 8.0
    price_step: tuple[float, float] = (0.08, 0.40)  # |log step| of a price change
    price_band: tuple[float, float] = (0.55, 1.8)  # price / base_price always within
    price_walk_bound: float = 0.6  # |log(price / base)| of the repricing walk (reflected)
    sale_product_share: float = 0.6
    sale_discount: tuple[float, float] = (0.70, 0.92)
    max_price: float = 2574.07
    min_price: float = 0.88
    price_zero_row_share: float = 0.0016  # zero-price display glitches, share of rows

    # --- catalog size at full November scale -----------------------------------------
    products_full: int = 191_000
    products_exponent: float = 0.72  # catalog size scales as (events/day)^exponent
    popularity_sigma: float = 2.6  # lognormal product popularity within a category
    brands_full: int = 4_300
    brand_zipf: float = 0.6  # brand popularity ~ 1 / (rank + 8) ** brand_zipf
    products_per_brand_pool: float = 3.0  # a category draws its brands from k / this names
    null_brand_share: float = 0.137  # of expected rows (products without brand)

    # --- sessions -------------------------------------------------------------------
    browse_views_mean: float = 3.85  # views of a browse session (1 + NegBin)
    intent_views_mean: float = 3.9  # extra views of an intent session (NegBin)
    views_dispersion: float = 0.9  # NegBin shape of views per session
    revisit_prob: float = 0.3  # a view repeats the previous product
    l1_switch_prob: float = 0.08  # a view jumps to another top-level category
    cart_if_bought: float = 0.30  # P(cart before purchase) for a bought target
    cart_if_not_bought: float = 0.18  # P(abandoned cart) for an intent target not bought
    browse_cart_session: float = 0.08  # P(browse session carts something)
    browse_cart_extra: float = 0.35  # carted products in such a session = 1 + Poisson
    cart_repeat_mean: float = 0.35  # extra cart rows for the same product (not duplicates)

    # --- quirks ---------------------------------------------------------------------
    cart_dup_prob: float = 0.011  # cart row repeated in the same second
    cart_dup_extra: float = 1.6  # extra copies = 1 + Poisson(...)
    view_dup_prob: float = 0.0005
    purchase_dup_prob: float = 0.006
    gap_session_share: float = 0.02  # sessions with a 31 min .. 10 h pause inside
    long_session_share: float = 0.0018  # sessions spanning more than 24 h
    shared_ids_per_event: float = 300 / NOV_2019["rows"]

    # --- bots and fraud ---------------------------------------------------------------
    bot_user_share: float = 0.005  # of active users
    # shares of the bot actors by type, in the order of population.BOT_TYPES: scraper,
    # card_testing, price_anomaly, jittered_bot, slow_card_testing, reseller, price_glitch
    bot_mix: tuple[float, ...] = (0.30, 0.11, 0.13, 0.14, 0.10, 0.10, 0.12)
    takeover_user_share: float = 0.0008  # of active users: accounts taken over mid-window

    # --- sale days --------------------------------------------------------------------
    sale_browse_factor: float = 2.5
    sale_intent_factor: float = 7.0

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"fmt must be one of {FORMATS}, got {self.fmt!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.n_events < 1000:
            raise ValueError("n_events must be at least 1000")
        if self.days < 1:
            raise ValueError("days must be at least 1")

    @property
    def end(self) -> dt.date:
        """First day after the window."""
        return self.start + dt.timedelta(days=self.days)

    @property
    def events_per_day(self) -> float:
        return self.n_events / self.days

    @property
    def scale(self) -> float:
        """Size relative to the real November file, per day."""
        return self.events_per_day / NOV_EVENTS_PER_DAY

    @property
    def n_products(self) -> int:
        """Catalog size: sub-linear in the data size so small sets still repeat products."""
        return max(1500, int(round(self.products_full * self.scale ** self.products_exponent)))

    @property
    def n_shared_ids(self) -> int:
        """Session ids planted as shared by two users (a few hundred per 67.5M rows)."""
        return max(2, int(round(self.shared_ids_per_event * self.n_events)))

    def sale_day_indices(self) -> list[int]:
        """Indices (0-based day of the window) of the sale days inside the window."""
        return sorted({(d - self.start).days for d in self.sale_days
                       if self.start <= d < self.end})

    def with_(self, **changes) -> "SynthConfig":
        return replace(self, **changes)
