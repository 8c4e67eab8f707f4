"""ml.clv: BG/NBD and Gamma-Gamma against the published CDNOW results and simulation.

Benchmarks (tests/fixtures/cdnow, see its README):

- Fader, Hardie & Lee (2005), "'Counting your customers' the easy way", Marketing Science
  24(2): BG/NBD MLEs on the CDNOW sample, r = 0.243, alpha = 4.414, a = 0.793,
  b = 2.426, log-likelihood -9582.4. The worked example for a customer with x = 2,
  t_x = 30.43, T = 38.86 (the file's first customer) gives 1.226 expected transactions in
  the next 39 weeks; eq. (10) with the published parameters gives 1.22603.
- Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (and FHL 2005, "RFM and
  CLV"): p = 6.25, q = 3.74, gamma = 15.44 on the 946 repeat customers of the sample.

Parameter recovery runs on data simulated here from the models' own generative stories
(fixed seeds), and the predictions are checked against simulated hold-out behaviour.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.special import betaln, hyp2f1

from ml import clv

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow"
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CALIBRATION_END = pd.Timestamp("1997-09-30")


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW summary with monetary value (zbar rounded to cents), one row per customer."""
    summary = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    check = pd.read_csv(CDNOW / "cdnow_customers_summary.csv")
    assert len(summary) == 2357
    assert (summary[["x", "t_x", "T"]].to_numpy()
            == check[["frequency", "recency", "T"]].to_numpy()).all()
    return summary.rename(columns={"x": "frequency", "t_x": "recency",
                                   "zbar": "monetary_value"})


@pytest.fixture(scope="module")
def cdnow_fit(cdnow: pd.DataFrame) -> dict:
    """fit_bgnbd on the CDNOW calibration summary (weeks)."""
    return clv.fit_bgnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def unrounded_cdnow_spend() -> pd.DataFrame:
    """x and the unrounded mean repeat spend, recomputed from the raw CDNOW transactions.

    Calibration to 1997-09-30; purchases on the same day are one transaction (their values
    summed); the first day is not a repeat transaction.
    """
    raw = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer_id", "date", "cds", "value"])
    raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
    days = (raw[raw["date"] <= CALIBRATION_END]
            .groupby(["customer_id", "date"], as_index=False)["value"].sum()
            .sort_values(["customer_id", "date"]))
    repeat = days[days.groupby("customer_id").cumcount() > 0]
    return repeat.groupby("customer_id")["value"].agg(frequency="size", monetary_value="mean")


# --------------------------------------------------------------------------- simulation

def simulate_bgnbd(params: dict[str, float], n: int, rng: np.random.Generator,
                   age_range: tuple[float, float], horizon: float = 0.0
                   ) -> dict[str, np.ndarray]:
    """Customers drawn from the BG/NBD story, with hold-out behaviour over `horizon`.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); repeat purchases arrive as a Poisson
    process at rate lambda; the J-th repeat purchase, J ~ Geometric(p) on {1, 2, ...}, is
    the last. Over an age T: x = min(N(T), J) with N(T) ~ Poisson(lambda T), and t_x is the
    x-th of N(T) uniform arrival times, i.e. T * Beta(x, N(T) - x + 1). By memorylessness
    the hold-out count over (T, T + horizon] is min(Poisson(lambda horizon), J - x), and the
    customer is alive at T iff N(T) < J.
    """
    age = rng.uniform(*age_range, n)
    rate = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    dropout = rng.beta(params["a"], params["b"], n)
    arrivals = rng.poisson(rate * age)
    last = rng.geometric(dropout)
    x = np.minimum(arrivals, last)
    recency = np.zeros(n)
    repeat = x > 0
    recency[repeat] = age[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    holdout = np.minimum(rng.poisson(rate * horizon), last - x)
    return {"frequency": x.astype(float), "recency": recency, "T": age,
            "holdout": holdout.astype(float), "alive": arrivals < last}


def simulate_gamma_gamma(params: dict[str, float], n: int, rng: np.random.Generator
                         ) -> dict[str, np.ndarray]:
    """Repeat customers from the Gamma-Gamma story: nu ~ Gamma(q, rate gamma), each spend
    ~ Gamma(p, rate nu), so the mean of x spends is Gamma(p x, rate x nu); the customer's
    true mean spend is p / nu."""
    x = 1 + rng.poisson(2.0, n)
    nu = rng.gamma(params["q"], 1.0 / params["gamma"], n)
    zbar = rng.gamma(params["p"] * x, 1.0 / (x * nu))
    return {"frequency": x.astype(float), "monetary_value": zbar,
            "true_mean": params["p"] / nu}


# ------------------------------------------------------------------------ BG/NBD on CDNOW

def test_fit_bgnbd_matches_published_cdnow_estimates(cdnow_fit: dict) -> None:
    for key, published in PUBLISHED_BGNBD.items():
        assert round(cdnow_fit[key], 3) == published, (key, cdnow_fit[key])
        assert abs(cdnow_fit[key] - published) < 0.0015
    # The paper reports LL = -9582.4 at the optimum.
    assert round(cdnow_fit["log_likelihood"], 1) == -9582.4
    assert cdnow_fit["converged"]
    assert cdnow_fit["n_customers"] == 2357


def test_fit_bgnbd_is_a_true_optimum_of_the_public_likelihood(cdnow: pd.DataFrame,
                                                              cdnow_fit: dict) -> None:
    """The reported log-likelihood is the public per-customer one summed, and moving any
    parameter by a relative 1e-4 either way does not improve it (the analytic gradient
    used by the optimiser is right)."""
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"])
    total = clv.bgnbd_log_likelihood(cdnow_fit, *args).sum()
    assert total == pytest.approx(cdnow_fit["log_likelihood"], abs=1e-8)
    for key in clv.BGNBD_KEYS:
        for factor in (1 - 1e-4, 1 + 1e-4):
            moved = {**cdnow_fit, key: cdnow_fit[key] * factor}
            assert clv.bgnbd_log_likelihood(moved, *args).sum() < total


@pytest.mark.parametrize("penalizer", [0.0, 1e-3, 1e-2, 1e-1])
def test_fit_bgnbd_does_not_depend_on_the_time_unit(cdnow: pd.DataFrame,
                                                   penalizer: float) -> None:
    """CDNOW in weeks, days (x 7) and hours (x 168): the same r, a, b and alpha scaled by
    the unit, with and without the penalty. The likelihood of (r, c alpha, a, b) on data
    in a unit c times smaller is that of (r, alpha, a, b) times c^(-sum x), so the
    log-likelihoods differ by sum(x) ln c. The former L2 penalty on (r, alpha, a, b)
    failed this: at 0.001, days gave r = 0.127 and alpha = 5.54 days against 0.207 and
    3.08 weeks (21.6 days)."""
    x, t_x, age = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    weeks = clv.fit_bgnbd(x, t_x, age, penalizer=penalizer)
    assert weeks["converged"] and weeks["fit_status"] == "ok"
    for factor in (7.0, 168.0):
        other = clv.fit_bgnbd(x, t_x * factor, age * factor, penalizer=penalizer)
        assert other["converged"] and other["fit_status"] == "ok"
        for key in ("r", "a", "b"):
            assert other[key] == pytest.approx(weeks[key], rel=1e-5), (factor, key)
        assert other["alpha"] == pytest.approx(factor * weeks["alpha"], rel=1e-5), factor
        assert other["log_likelihood"] == pytest.approx(
            weeks["log_likelihood"] - x.sum() * np.log(factor), abs=1e-4)
        for key in ("r", "a", "b"):
            assert other["standard_errors"][key] == pytest.approx(
                weeks["standard_errors"][key], rel=1e-3)
        assert other["standard_errors"]["alpha"] == pytest.approx(
            factor * weeks["standard_errors"]["alpha"], rel=1e-3)
    if penalizer > 0:  # the penalty is felt, so the comparison above is not vacuous
        assert abs(weeks["b"] - PUBLISHED_BGNBD["b"]) > 0.1


def test_bgnbd_penalty_shrinks_the_shapes_towards_one_and_leaves_alpha_free(
        cdnow: pd.DataFrame) -> None:
    """The penalised objective is the mean negative log-likelihood plus
    penalizer * ((ln r)^2 + (ln a)^2 + (ln b)^2): a heavier weight gives a smaller
    penalty term and a lower likelihood (as for any penalised optimum), and a huge
    weight pins the shapes at 1 while alpha still fits the purchase rate."""
    x, t_x, age = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    fits = [clv.fit_bgnbd(x, t_x, age, penalizer=w) for w in (0.0, 1e-3, 1e-2, 1e-1)]
    penalty = [sum(np.log(fit[key]) ** 2 for key in ("r", "a", "b")) for fit in fits]
    assert np.all(np.diff(penalty) < 0), penalty
    assert np.all(np.diff([fit["log_likelihood"] for fit in fits]) < 0)
    pinned = clv.fit_bgnbd(x, t_x, age, penalizer=1e4)
    for key in ("r", "a", "b"):
        assert pinned[key] == pytest.approx(1.0, abs=1e-3)
    # With r = a = b = 1 pinned, alpha is the (free) maximum-likelihood scale: moving
    # it either way lowers the likelihood.
    args = (x, t_x, age)
    total = clv.bgnbd_log_likelihood(pinned, *args).sum()
    for factor in (0.99, 1.01):
        moved = {**pinned, "alpha": pinned["alpha"] * factor}
        assert clv.bgnbd_log_likelihood(moved, *args).sum() < total


def test_fit_bgnbd_aggregation_and_order_do_not_matter(cdnow: pd.DataFrame,
                                                       cdnow_fit: dict) -> None:
    doubled = pd.concat([cdnow, cdnow]).sample(frac=1.0, random_state=7)
    fit = clv.fit_bgnbd(doubled["frequency"], doubled["recency"], doubled["T"])
    for key in clv.BGNBD_KEYS:
        assert fit[key] == pytest.approx(cdnow_fit[key], rel=1e-5)
    assert fit["log_likelihood"] == pytest.approx(2 * cdnow_fit["log_likelihood"], rel=1e-9)
    assert fit["n_customers"] == 2 * 2357 and fit["n_distinct"] == cdnow_fit["n_distinct"]


def test_published_conditional_expectation_for_customer_1(cdnow_fit: dict) -> None:
    """x = 2, t_x = 30.43, T = 38.86: 1.226 expected transactions in the next 39 weeks."""
    assert round(float(clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, 2, 30.43, 38.86)),
                 3) == 1.226
    assert round(float(clv.bgnbd_expected_purchases(cdnow_fit, 39, 2, 30.43, 38.86)),
                 3) == 1.226


def direct_conditional_expectation(params: dict[str, float], t: float, x: float,
                                   t_x: float, age: float) -> float:
    """FHL (2005) eq. (10) exactly as printed (fine for small x, overflows for large x)."""
    r, alpha, a, b = (params[key] for key in clv.BGNBD_KEYS)
    numerator = (a + b + x - 1) / (a - 1) * (
        1 - ((alpha + age) / (alpha + age + t)) ** (r + x)
        * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t)))
    denominator = 1 + (x > 0) * a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x)
    return numerator / denominator


@pytest.mark.parametrize("params", [PUBLISHED_BGNBD,
                                    {"r": 0.8, "alpha": 10.0, "a": 1.7, "b": 3.0},
                                    {"r": 2.0, "alpha": 3.0, "a": 0.4, "b": 0.9}])
@pytest.mark.parametrize("t, x, t_x, age", [(39, 2, 30.43, 38.86), (39, 0, 0, 38.86),
                                            (52, 5, 10, 38), (10, 1, 1.71, 38.86),
                                            (100, 20, 35, 39), (1, 0, 0, 0.5),
                                            (300, 3, 2, 60)])
def test_expected_purchases_equals_the_printed_formula(params: dict[str, float], t: float,
                                                       x: float, t_x: float,
                                                       age: float) -> None:
    """The Euler-transformed evaluation equals eq. (10) where the latter is accurate."""
    expected = direct_conditional_expectation(params, t, x, t_x, age)
    got = clv.bgnbd_expected_purchases(params, t, x, t_x, age)
    assert got == pytest.approx(expected, rel=1e-9)


def expectation_by_quadrature(params: dict[str, float], t: float, x: float, t_x: float,
                              age: float) -> float:
    """E[Y(t) | x, t_x, T] from the model's story, by one-dimensional quadrature.

    Given alive at T, lambda ~ Gamma(r + x, rate alpha + T) and p ~ Beta(a, b + x),
    independently; an alive customer with (lambda, p) makes (1 - exp(-lambda p t)) / p
    purchases in t on average (dropout epochs are Poisson with rate lambda p). Averaging
    over lambda (the gamma MGF) leaves (1 - (1 + p t / (alpha + T))^-(r + x)) / p, which is
    integrated against the Beta(a, b + x) density in s = p (b + x) (the mass sits at
    s ~ a, whatever x), then multiplied by P(alive). Independent of eq. (10) and of 2F1.
    """
    r, alpha, a, b = (params[key] for key in clv.BGNBD_KEYS)
    n = b + x
    assert n >= 1, "the substitution below assumes no singularity of the density at p = 1"

    def integrand(s: float) -> float:  # the Beta kernel without its s^(a-1) factor
        p = s / n
        if p >= 1:
            return 0.0
        rate_part = ((r + x) * t / (alpha + age) if p == 0
                     else -np.expm1(-(r + x) * np.log1p(p * t / (alpha + age))) / p)
        return rate_part * np.exp((n - 1) * np.log1p(-p))

    upper = min(n, 100.0)  # beyond s = 100 the kernel is below exp(-100)
    head = quad(integrand, 0.0, min(1.0, upper), weight="alg", wvar=(a - 1, 0))[0]
    tail = quad(lambda s: integrand(s) * s ** (a - 1), 1.0, upper, limit=200)[0] \
        if upper > 1 else 0.0
    mean_if_alive = (head + tail) * np.exp(-a * np.log(n) - betaln(a, n))
    return mean_if_alive * float(clv.bgnbd_p_alive(params, x, t_x, age))


@pytest.mark.parametrize("params", [PUBLISHED_BGNBD,
                                    {"r": 0.8, "alpha": 10.0, "a": 1.7, "b": 3.0}])
@pytest.mark.parametrize("t, x, t_x, age", [(39, 2, 30.43, 38.86), (39, 0, 0, 38.86),
                                            (100, 20, 35, 39), (39, 1000, 38.86, 38.86),
                                            (39, 10_000, 38.85, 38.86),
                                            (1, 100_000, 38.86, 38.86),
                                            (39, 1_000_000, 38.86, 38.86)])
def test_expected_purchases_equals_an_independent_quadrature(params: dict[str, float],
                                                             t: float, x: float, t_x: float,
                                                             age: float) -> None:
    """Up to a million repeat purchases, where eq. (10) as printed overflows."""
    got = clv.bgnbd_expected_purchases(params, t, x, t_x, age)
    assert got == pytest.approx(expectation_by_quadrature(params, t, x, t_x, age), rel=1e-7)


def test_heavy_buyers_do_not_overflow() -> None:
    x = np.array([10, 100, 1000, 10_000, 100_000], dtype=float)
    with np.errstate(all="ignore"):
        printed = direct_conditional_expectation(PUBLISHED_BGNBD, 39, x, 38.86, 38.86)
    assert not np.all(np.isfinite(printed))  # the printed formula fails here
    got = clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, x, 38.86, 38.86)
    assert np.all(np.isfinite(got)) and np.all(np.diff(got) > 0)
    # Below the alive purchase rate (x + r) / (alpha + T) times t: dropout still bites.
    assert np.all(got < (x + 0.243) / (4.414 + 38.86) * 39)
    # A heavy buyer silent for a while is almost surely gone (about 83 purchases were
    # expected in the silence), with neither overflow nor NaN.
    p_alive = clv.bgnbd_p_alive(PUBLISHED_BGNBD, x, 38.5, 38.86)
    assert np.all((p_alive >= 0) & (p_alive <= 1)) and p_alive[-1] < 1e-300
    assert clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, 10_000, 38.5, 38.86) < 1e-20


def test_new_customer_expectation_is_the_conditional_one_at_zero() -> None:
    t = np.array([1.0, 39.0, 78.0])
    r, alpha, a, b = (PUBLISHED_BGNBD[key] for key in clv.BGNBD_KEYS)
    # FHL (2005) eq. (9), as printed.
    printed = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                       * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    got = clv.bgnbd_expected_purchases_new_customer(PUBLISHED_BGNBD, t)
    np.testing.assert_allclose(got, printed, rtol=1e-10)
    np.testing.assert_allclose(clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, t, 0, 0, 0),
                               got, rtol=1e-12)
    assert clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 0.0, 3, 20, 38) == 0


@pytest.mark.parametrize("key, singular, base", [
    ("a", 1.0, {"r": 0.243, "alpha": 4.414, "b": 2.426}),  # a = 1, every x
    ("b", 0.7, {"r": 0.5, "alpha": 3.0, "a": 0.3}),        # a + b = 1, x = 0
])
def test_expected_purchases_is_continuous_through_removable_singularities(
        key: str, singular: float, base: dict[str, float]) -> None:
    """Eq. (10) is 0/0 at a = 1, and at a + b = 1 for x = 0; the value is continuous."""
    def value(v: float) -> np.ndarray:
        return clv.bgnbd_expected_purchases({**base, key: v}, 39, [0, 2], [0, 30.43], 38.86)

    at, below, above = value(singular), value(singular - 1e-3), value(singular + 1e-3)
    assert np.all(np.isfinite(at))
    np.testing.assert_allclose(at, (below + above) / 2, rtol=1e-5)
    np.testing.assert_allclose(value(singular + 3e-7), at, rtol=1e-6)


def test_p_alive_properties() -> None:
    # No repeat purchase: alive with probability 1, whatever T.
    np.testing.assert_array_equal(
        clv.bgnbd_p_alive(PUBLISHED_BGNBD, [0, 0, 0], [0, 0, 0], [0.0, 10.0, 38.86]), 1.0)
    # Customer ID 1 of CDNOW.
    assert 0.5 < clv.bgnbd_p_alive(PUBLISHED_BGNBD, 2, 30.43, 38.86) < 1
    # More recent last purchase -> more likely alive; longer silence -> less.
    recency = np.linspace(0.5, 38.86, 40)
    assert np.all(np.diff(clv.bgnbd_p_alive(PUBLISHED_BGNBD, 3, recency, 38.86)) > 0)
    age = np.linspace(20.0, 80.0, 40)
    assert np.all(np.diff(clv.bgnbd_p_alive(PUBLISHED_BGNBD, 3, 20.0, age)) < 0)
    # Purchase at the very end of the period: P(alive) = 1 / (1 + a / (b + x - 1)).
    a, b = PUBLISHED_BGNBD["a"], PUBLISHED_BGNBD["b"]
    assert clv.bgnbd_p_alive(PUBLISHED_BGNBD, 4, 38.86, 38.86) == pytest.approx(
        1 / (1 + a / (b + 3)))
    # Expected purchases also rise with recency.
    assert np.all(np.diff(clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, 3, recency,
                                                       38.86)) > 0)


def test_scalar_and_array_outputs() -> None:
    scalar = clv.bgnbd_p_alive(PUBLISHED_BGNBD, 2, 30.43, 38.86)
    assert np.ndim(scalar) == 0
    array = clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, [13, 26, 39], 2, 30.43, 38.86)
    assert array.shape == (3,) and np.all(np.diff(array) > 0)


# ------------------------------------------------------------------- Gamma-Gamma on CDNOW

def test_fit_gamma_gamma_on_the_cdnow_file_rounded_to_cents(cdnow: pd.DataFrame) -> None:
    """On the distributed summary p and q match the published 6.25 and 3.74 to 2 decimals,
    but gamma lands at 15.4477 (15.45), not 15.44: that file's zbar is rounded to cents.
    The likelihood is nearly flat along gamma (re-optimising p and q with gamma held at
    15.44 loses only 2e-6 log-likelihood units; the standard error of gamma is about 4), so
    the rounding moves the third decimal; the next test, on the unrounded means from the raw
    transactions, reproduces 15.44. Here: gamma within 0.01 of the published value."""
    fit = clv.fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    assert fit["n_customers"] == 946
    assert round(fit["p"], 2) == PUBLISHED_GAMMA_GAMMA["p"]
    assert round(fit["q"], 2) == PUBLISHED_GAMMA_GAMMA["q"]
    assert abs(fit["gamma"] - PUBLISHED_GAMMA_GAMMA["gamma"]) < 0.01
    assert fit["converged"]
    assert fit["standard_errors"]["gamma"] > 1.0


def test_fit_gamma_gamma_on_unrounded_cdnow_spend_matches_published(
        cdnow: pd.DataFrame) -> None:
    spend = unrounded_cdnow_spend()
    repeaters = cdnow.set_index("ID").query("frequency > 0")
    assert len(spend) == 946
    assert (spend["frequency"] == repeaters["frequency"].reindex(spend.index)).all()
    assert (spend["monetary_value"] - repeaters["monetary_value"].reindex(spend.index)
            ).abs().max() <= 0.005 + 1e-9
    fit = clv.fit_gamma_gamma(spend["frequency"], spend["monetary_value"])
    for key, published in PUBLISHED_GAMMA_GAMMA.items():
        assert round(fit[key], 2) == published, (key, fit[key])
    # Population mean spend per transaction, p * gamma / (q - 1), about $35.
    assert fit["mean_spend"] == pytest.approx(35.17, abs=0.01)


def test_gamma_gamma_fit_is_a_true_optimum(cdnow: pd.DataFrame) -> None:
    repeat = cdnow[cdnow["frequency"] > 0]
    fit = clv.fit_gamma_gamma(cdnow["frequency"], cdnow["monetary_value"])
    total = clv.gamma_gamma_log_likelihood(fit, repeat["frequency"],
                                           repeat["monetary_value"]).sum()
    assert total == pytest.approx(fit["log_likelihood"], abs=1e-8)
    for key in clv.GAMMA_GAMMA_KEYS:
        for factor in (1 - 1e-3, 1 + 1e-3):
            moved = {**fit, key: fit[key] * factor}
            assert clv.gamma_gamma_log_likelihood(moved, repeat["frequency"],
                                                  repeat["monetary_value"]).sum() < total


def test_gamma_gamma_expected_spend() -> None:
    p, q, gamma = (PUBLISHED_GAMMA_GAMMA[key] for key in clv.GAMMA_GAMMA_KEYS)
    population = p * gamma / (q - 1)
    # x = 0: the population mean, whatever (even NaN) the monetary value.
    np.testing.assert_allclose(
        clv.gamma_gamma_expected_spend(PUBLISHED_GAMMA_GAMMA, [0, 0], [0.0, np.nan]),
        population)
    # A weighted average of the population mean and the customer's own mean, moving
    # towards the latter as x grows.
    x = np.array([1.0, 2.0, 5.0, 20.0, 1000.0])
    got = clv.gamma_gamma_expected_spend(PUBLISHED_GAMMA_GAMMA, x, 100.0)
    weight = p * x / (p * x + q - 1)
    np.testing.assert_allclose(got, weight * 100.0 + (1 - weight) * population)
    assert np.all(np.diff(got) > 0) and got[-1] == pytest.approx(100.0, rel=1e-3)
    low = clv.gamma_gamma_expected_spend(PUBLISHED_GAMMA_GAMMA, 3, 5.0)
    assert 5.0 < low < population


# --------------------------------------------------------------------------- simulation

def test_bgnbd_recovers_simulated_parameters() -> None:
    """20,000 simulated customers (CDNOW-like parameters, ages 39..78 weeks). Tolerances:
    each estimate within 4 of its reported standard errors, and within 10% (r, alpha) or
    30% (a, b) of the truth; over 40 seeds the relative errors had standard deviations of
    about 1.2%, 2.5%, 5% and 7%, and the z-scores a standard deviation of about 1."""
    true = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    data = simulate_bgnbd(true, 20_000, np.random.default_rng(2005), (39.0, 78.0))
    fit = clv.fit_bgnbd(data["frequency"], data["recency"], data["T"])
    assert fit["converged"]
    tolerance = {"r": 0.10, "alpha": 0.10, "a": 0.30, "b": 0.30}
    for key, value in true.items():
        assert abs(fit[key] - value) < 4 * fit["standard_errors"][key], (key, fit[key])
        assert abs(fit[key] / value - 1) < tolerance[key], (key, fit[key])
    # The mean dropout probability a / (a + b) is much better determined than a and b.
    assert fit["a"] / (fit["a"] + fit["b"]) == pytest.approx(0.8 / 3.3, rel=0.05)


def test_bgnbd_predictions_match_simulated_holdout() -> None:
    """With the true parameters, the conditional expectation and P(alive) match what the
    simulated customers then do, overall and within frequency groups (tolerances of about
    4 standard errors of the group means)."""
    true = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    data = simulate_bgnbd(true, 60_000, np.random.default_rng(39), (30.0, 60.0),
                          horizon=39.0)
    expected = clv.bgnbd_expected_purchases(true, 39.0, data["frequency"], data["recency"],
                                            data["T"])
    p_alive = clv.bgnbd_p_alive(true, data["frequency"], data["recency"], data["T"])
    groups = np.digitize(data["frequency"], [1, 2, 4, 8])
    for group in np.unique(groups):
        member = groups == group
        actual = data["holdout"][member]
        error = actual.std(ddof=1) / np.sqrt(member.sum())
        assert abs(actual.mean() - expected[member].mean()) < 4 * error + 1e-3, group
        alive = data["alive"][member].astype(float)
        alive_error = np.sqrt(alive.var(ddof=1) / member.sum()) + 1e-3
        assert abs(alive.mean() - p_alive[member].mean()) < 4 * alive_error, group


def test_p_no_purchase_matches_simulated_holdout() -> None:
    """P(no purchase in the next t | x, t_x, T) with the true parameters matches the share
    of simulated customers without a holdout purchase, overall and within frequency
    groups (one-time buyers included, for whom 1 - P(alive) would say 0); and it is the
    NBD zero term (alpha / (alpha + t))^r for a customer just acquired."""
    true = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    data = simulate_bgnbd(true, 60_000, np.random.default_rng(41), (30.0, 60.0),
                          horizon=39.0)
    quiet = clv.bgnbd_p_no_purchase(true, 39.0, data["frequency"], data["recency"],
                                    data["T"])
    assert np.all((quiet > 0) & (quiet < 1))
    groups = np.digitize(data["frequency"], [1, 2, 4, 8])
    for group in np.unique(groups):
        member = groups == group
        actual = (data["holdout"][member] == 0).astype(float)
        error = np.sqrt(actual.var(ddof=1) / member.sum()) + 1e-3
        assert abs(actual.mean() - quiet[member].mean()) < 4 * error, group
    one_time = data["frequency"] == 0
    assert np.all(1 - clv.bgnbd_p_alive(true, 0, 0, data["T"][one_time]) == 0)
    assert quiet[one_time].mean() < 0.95
    assert clv.bgnbd_p_no_purchase(true, 10.0, 0, 0, 0) == pytest.approx(
        (4.0 / 14.0) ** 0.25)


def test_gamma_gamma_recovers_simulated_parameters() -> None:
    """20,000 simulated repeat customers. Tolerances: within 4 standard errors and within
    20% (p), 8% (q), 25% (gamma) of the truth; over 30 seeds the relative errors had
    standard deviations of about 5%, 1.4% and 6%."""
    true = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    data = simulate_gamma_gamma(true, 20_000, np.random.default_rng(1999))
    fit = clv.fit_gamma_gamma(data["frequency"], data["monetary_value"])
    assert fit["converged"]
    tolerance = {"p": 0.20, "q": 0.08, "gamma": 0.25}
    for key, value in true.items():
        assert abs(fit[key] - value) < 4 * fit["standard_errors"][key], (key, fit[key])
        assert abs(fit[key] / value - 1) < tolerance[key], (key, fit[key])
    assert abs(fit["corr_frequency_monetary"]) < 0.05
    # The conditional expected spend is unbiased for the true mean spend within groups.
    expected = clv.gamma_gamma_expected_spend(true, data["frequency"], data["monetary_value"])
    terciles = np.digitize(expected, np.quantile(expected, [1 / 3, 2 / 3]))
    for group in range(3):
        member = terciles == group
        gap = data["true_mean"][member] - expected[member]
        assert abs(gap.mean()) < 4 * gap.std(ddof=1) / np.sqrt(member.sum())


# --------------------------------------------------------------------------- value and frame

def test_customer_lifetime_value_undiscounted_and_discounted(cdnow: pd.DataFrame) -> None:
    args = (cdnow["frequency"], cdnow["recency"], cdnow["T"], cdnow["monetary_value"])
    purchases = clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 52, *args[:3])
    spend = clv.gamma_gamma_expected_spend(PUBLISHED_GAMMA_GAMMA, args[0], args[3])
    value = clv.customer_lifetime_value(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, *args,
                                        horizon=52)
    np.testing.assert_allclose(value, purchases * spend)
    # One discounting step covering the horizon: everything discounted once.
    once = clv.customer_lifetime_value(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, *args,
                                       horizon=52, discount_rate=0.1, step=52)
    np.testing.assert_allclose(once, value / 1.1)
    # Monthly-ish steps (4.33 weeks) at 1% a step: a bit below undiscounted, and the
    # last partial step is handled (52 / 4.33 is not whole).
    monthly = clv.customer_lifetime_value(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, *args,
                                          horizon=52, discount_rate=0.01, step=4.33)
    assert np.all(monthly <= value) and np.all(monthly >= value / 1.01 ** 13)
    tiny = clv.customer_lifetime_value(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, *args,
                                       horizon=52, discount_rate=1e-12, step=4.33)
    np.testing.assert_allclose(tiny, value, rtol=1e-9)


def test_score_customers_fits_and_scores_a_frame(cdnow: pd.DataFrame) -> None:
    summary = cdnow.set_index("ID")[["frequency", "recency", "T", "monetary_value"]]
    summary.loc[summary["frequency"] == 0, "monetary_value"] = np.nan
    scored = clv.score_customers(summary, horizon=39)
    assert list(scored.columns) == list(summary.columns) + list(clv.SCORE_COLUMNS)
    assert scored.index.equals(summary.index)
    params = scored.attrs["clv_params"]
    for key, published in PUBLISHED_BGNBD.items():
        assert round(params["bgnbd"][key], 3) == published
    assert scored.loc[1, "expected_purchases"] == pytest.approx(1.226, abs=5e-4)
    assert (scored.loc[summary["frequency"] == 0, "p_alive"] == 1).all()
    np.testing.assert_allclose(scored["expected_spend"],
                               scored["expected_purchases"] * scored["expected_avg_spend"])
    assert scored[list(clv.SCORE_COLUMNS)].notna().all().all()
    assert (scored[list(clv.SCORE_COLUMNS)] >= 0).all().all()
    # Given parameters are used as they are, and the input frame is left untouched.
    given = clv.score_customers(summary, horizon=39, bgnbd_params=PUBLISHED_BGNBD,
                                gamma_gamma_params=PUBLISHED_GAMMA_GAMMA)
    assert given.attrs["clv_params"]["bgnbd"] == PUBLISHED_BGNBD
    assert "expected_spend" not in summary.columns
    # Discounting changes expected_spend only, as customer_lifetime_value does.
    discounted = clv.score_customers(summary, horizon=39, bgnbd_params=PUBLISHED_BGNBD,
                                     gamma_gamma_params=PUBLISHED_GAMMA_GAMMA,
                                     discount_rate=0.01, step=4.33)
    np.testing.assert_allclose(discounted["expected_purchases"], given["expected_purchases"])
    np.testing.assert_allclose(discounted["expected_spend"], clv.customer_lifetime_value(
        PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, summary["frequency"], summary["recency"],
        summary["T"], summary["monetary_value"], horizon=39, discount_rate=0.01, step=4.33))
    assert (discounted["expected_spend"] < given["expected_spend"]).all()


def test_score_customers_rejects_bad_frames(cdnow: pd.DataFrame) -> None:
    summary = cdnow[["frequency", "recency", "T", "monetary_value"]]
    with pytest.raises(ValueError, match="lacks column"):
        clv.score_customers(summary.drop(columns="monetary_value"), horizon=39)
    with pytest.raises(ValueError, match="already has output column"):
        clv.score_customers(summary.assign(p_alive=0.0), horizon=39)
    with pytest.raises(ValueError, match="recency must not exceed T"):
        clv.score_customers(summary.assign(recency=summary["T"] + 1), horizon=39)
    with pytest.raises(ValueError, match="discount_rate"):
        clv.score_customers(summary, horizon=39, discount_rate=-1)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("frequency, recency, T, message", [
    ([1, -1], [5.0, 0.0], [10.0, 10.0], "frequency .* must be >= 0"),
    ([1, 2], [5.0, -1.0], [10.0, 10.0], "recency must be >= 0"),
    ([1, 2], [5.0, 1.0], [10.0, -3.0], "T must be >= 0"),
    ([1, 2], [5.0, 12.0], [10.0, 10.0], "recency must not exceed T"),
    ([0, 2], [3.0, 1.0], [10.0, 10.0], "recency must be 0 when frequency is 0"),
    ([1.5, 2], [3.0, 1.0], [10.0, 10.0], "whole number"),
    ([1, np.nan], [3.0, 1.0], [10.0, 10.0], "frequency must be finite"),
    ([1, 2], [3.0, np.inf], [10.0, 10.0], "recency must be finite"),
    ([1, 2, 3], [3.0, 1.0], [10.0, 10.0], "same length"),
])
def test_bgnbd_inputs_are_validated(frequency: list, recency: list, T: list,
                                    message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clv.fit_bgnbd(frequency, recency, T)
    with pytest.raises(ValueError, match=message):
        clv.bgnbd_p_alive(PUBLISHED_BGNBD, frequency, recency, T)
    with pytest.raises(ValueError, match=message):
        clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, frequency, recency, T)


def test_error_messages_point_at_the_offending_row() -> None:
    with pytest.raises(ValueError, match=r"1 row\(s\), first at position 2 "
                                         r"\(recency=12, T=10\)"):
        clv.bgnbd_p_alive(PUBLISHED_BGNBD, [1, 1, 1], [1.0, 2.0, 12.0], 10.0)


def test_other_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="at least one customer with a repeat"):
        clv.fit_bgnbd([0, 0], [0, 0], [5, 6])
    with pytest.raises(ValueError, match="at least one customer"):
        clv.fit_bgnbd([], [], [])
    with pytest.raises(ValueError, match="penalizer"):
        clv.fit_bgnbd([1, 0], [1, 0], [5, 6], penalizer=-1)
    with pytest.raises(ValueError, match="lack"):
        clv.bgnbd_p_alive({"r": 1, "alpha": 1, "a": 1}, 1, 1, 2)
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        clv.bgnbd_p_alive({**PUBLISHED_BGNBD, "alpha": -1}, 1, 1, 2)
    with pytest.raises(ValueError, match=r"t \(length of the forecast period\)"):
        clv.bgnbd_expected_purchases(PUBLISHED_BGNBD, -1, 1, 1, 2)
    with pytest.raises(ValueError, match="monetary_value must be > 0 for customers with"):
        clv.fit_gamma_gamma([1, 2], [10.0, 0.0])
    with pytest.raises(ValueError, match=r"monetary_value \(mean spend .*\) must be >= 0"):
        clv.fit_gamma_gamma([1, 2], [10.0, -5.0])
    with pytest.raises(ValueError, match="monetary_value must be finite for customers"):
        clv.gamma_gamma_expected_spend(PUBLISHED_GAMMA_GAMMA, [1, 2], [10.0, np.nan])
    with pytest.raises(ValueError, match="frequency > 0"):
        clv.fit_gamma_gamma([0, 0], [0.0, 0.0])
    with pytest.raises(ValueError, match="q must be > 1"):
        clv.gamma_gamma_expected_spend({**PUBLISHED_GAMMA_GAMMA, "q": 0.9}, 1, 10.0)
    with pytest.raises(ValueError, match="discount_rate"):
        clv.customer_lifetime_value(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, 1, 1, 2, 10.0,
                                    horizon=10, discount_rate=-0.1)
    with pytest.raises(ValueError, match="step"):
        clv.customer_lifetime_value(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, 1, 1, 2, 10.0,
                                    horizon=10, discount_rate=0.1, step=0)


# --------------------------------------------------------------------------- degenerate fits

def test_fit_status_flags_the_no_dropout_boundary_on_a_tiny_frame() -> None:
    """Four customers who all bought at the very end of their window: no sign of
    dropout, so unpenalised a/b run to the boundary; the penalty keeps them finite."""
    x, t_x, age = [2, 3, 4, 5], [10.0] * 4, [10.0] * 4
    free = clv.fit_bgnbd(x, t_x, age)
    assert free["fit_status"].startswith("degenerate: ")
    assert "-> infinity" in free["fit_status"]
    held = clv.fit_bgnbd(x, t_x, age, penalizer=0.1)
    assert held["fit_status"] == "ok" and held["b"] < clv.BOUNDARY_SHAPE


def test_fit_status_flags_an_optimiser_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clv, "_minimise", lambda objective, start, args: (start, False, 0))
    fit = clv.fit_bgnbd([1, 0, 3, 2], [4.0, 0.0, 9.0, 5.0], [10.0, 8.0, 12.0, 6.0])
    assert not fit["converged"]
    assert fit["fit_status"] == "degenerate: the optimiser did not converge"


def test_nbd_fallback_recovers_its_parameters_and_handles_no_repeat_buyer() -> None:
    """NBD customers (no dropout): the fit recovers r and alpha; with no repeat purchase
    at all the rate goes to ~0 (E ~ 0, P(no purchase) ~ 1) without an error."""
    rng = np.random.default_rng(7)
    age = rng.uniform(20.0, 60.0, 20_000)
    x = rng.poisson(rng.gamma(0.8, 1 / 10.0, age.size) * age)
    fit = clv.fit_nbd(x, age)
    assert fit["converged"] and fit["model"] == "nbd"
    assert fit["r"] == pytest.approx(0.8, rel=0.1)
    assert fit["alpha"] == pytest.approx(10.0, rel=0.1)
    expected = clv.nbd_expected_purchases(fit, 10.0, [0, 5], [30.0, 30.0])
    np.testing.assert_allclose(expected, (fit["r"] + np.array([0, 5])) / (fit["alpha"] + 30)
                               * 10)
    none = clv.fit_nbd([0, 0, 0], [5.0, 10.0, 20.0])
    assert clv.nbd_expected_purchases(none, 14.0, 0, 10.0) < 1e-9
    assert clv.nbd_p_no_purchase(none, 14.0, 0, 10.0) > 1 - 1e-9


def test_gamma_gamma_q_below_one_is_flagged_and_the_empirical_spend_is_its_fallback(
        ) -> None:
    """Spend with a tail too heavy for a finite mean (Pareto, index 0.6): q <= 1 is
    reported as degenerate rather than raising, and the fallback is each customer's own
    mean, the population mean for the others."""
    rng = np.random.default_rng(0)
    x = np.array([1, 2, 1, 3, 1, 2, 1, 1, 2, 1] * 3, dtype=float)
    spend = 10 * rng.pareto(0.6, x.size) + 1
    fit = clv.fit_gamma_gamma(x, spend)
    assert fit["q"] <= 1 and fit["fit_status"].startswith("degenerate: q = ")
    assert np.isnan(fit["mean_spend"])
    with pytest.raises(ValueError, match="q must be > 1"):
        clv.gamma_gamma_expected_spend(fit, x, spend)
    got = clv.empirical_expected_spend([0, 2, 1, 3], [np.nan, 20.0, 0.0, 5.0], 12.5)
    np.testing.assert_allclose(got, [12.5, 20.0, 12.5, 5.0])
