"""Probabilistic customer-lifetime-value models: BG/NBD transactions and Gamma-Gamma spend.

Plain functions on arrays and frames, usable outside dbt. No I/O, no global state.

Models (the published formulas, implemented here; the `lifetimes`/`btyd` packages are not
used):

- BG/NBD (Fader, Hardie & Lee 2005, "'Counting your customers' the easy way: an
  alternative to the Pareto/NBD model", Marketing Science 24(2)). While alive, a customer
  buys as a Poisson process with rate lambda ~ Gamma(shape r, rate alpha); after each repeat
  purchase she drops out with probability p ~ Beta(a, b).
- Gamma-Gamma spend (Colombo & Jiang 1999; Fader, Hardie & Lee 2005, "RFM and CLV: using
  iso-value curves", JMR 42(4); Fader & Hardie 2013, "The Gamma-Gamma model of monetary
  value"). The value of each transaction is Gamma(shape p, rate nu) with nu ~ Gamma(shape q,
  rate gamma) across customers, independent of the transaction process. The mean spend per
  transaction in the population is p * gamma / (q - 1) (finite only when q > 1).
- NBD (Ehrenberg 1959), the fallback of a degenerate BG/NBD fit: the same gamma mixture
  of Poisson purchase rates without dropout.

Inputs follow the literature's units, per customer:

- ``frequency`` (x): number of *repeat* transactions, a non-negative integer;
- ``recency`` (t_x): time of the last repeat transaction, measured from the first
  transaction (0 when x = 0);
- ``T``: age of the customer, time from the first transaction to the end of the observation
  period. ``recency`` and ``T`` share one time unit (CDNOW uses weeks; days work as well),
  and every horizon ``t`` passed to a prediction is in that unit too; ``alpha`` is then in
  that unit as well, the other parameters are unitless;
- ``monetary_value`` (z-bar): mean value of the customer's *repeat* transactions, in
  currency per transaction (the first purchase is excluded, as in the literature).
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

__all__ = [
    "BGNBD_KEYS", "GAMMA_GAMMA_KEYS", "SCORE_COLUMNS",
    "bgnbd_expected_purchases", "bgnbd_expected_purchases_new_customer",
    "BOUNDARY_SHAPE", "bgnbd_log_likelihood", "bgnbd_p_alive", "bgnbd_p_no_purchase",
    "customer_lifetime_value", "empirical_expected_spend", "fit_bgnbd", "fit_nbd",
    "nbd_expected_purchases", "nbd_p_no_purchase",
    "fit_gamma_gamma", "gamma_gamma_expected_spend", "gamma_gamma_log_likelihood",
    "score_customers",
]

BGNBD_KEYS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_KEYS = ("p", "q", "gamma")
SCORE_COLUMNS = ("expected_purchases", "p_alive", "expected_avg_spend", "expected_spend")

# Bounds of the log-parameters during optimisation: exp(+-30) is far outside any
# meaningful value and keeps every intermediate finite.
_LOG_BOUND = 30.0
# The conditional expectation has removable (0/0) singularities at a = 1 and, for x = 0, at
# a + b = 1; within this distance of one the value is interpolated linearly from both sides
# (the error of the interpolation is O(1e-12), that of evaluating 1e-6 away about 1e-10).
_NEAR_SINGULAR = 1e-6
# The BG/NBD penalty, penalizer * ((ln r)^2 + (ln a)^2 + (ln b)^2), shrinks the three
# unitless shapes towards 1 and leaves the scale alpha (a time) free; see `fit_bgnbd`.
_BGNBD_PENALISED = np.array([1.0, 0.0, 1.0, 1.0])
# A Beta(a, b) dropout distribution with a or b above this is a point mass to within a
# hundredth of its mean: the fit has run to the boundary a, b -> infinity (heterogeneity
# in dropout is not identified, and the conditional expectation loses its precision).
BOUNDARY_SHAPE = 1e4


# --------------------------------------------------------------------------- validation

def _as_float_array(values: ArrayLike, name: str) -> np.ndarray:
    """`values` as a float array, or a ValueError naming the input."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    return array


def _describe_first(mask: np.ndarray, *arrays: tuple[str, np.ndarray]) -> str:
    """'n rows, first at index i (name=value, ...)' for the rows flagged by mask."""
    flat = np.flatnonzero(mask.ravel())
    first = int(flat[0])
    shown = ", ".join(f"{name}={array.ravel()[first]:g}" for name, array in arrays)
    return f"{flat.size} row(s), first at position {first} ({shown})"


def _validate_frequency(frequency: ArrayLike) -> np.ndarray:
    """Repeat-transaction counts as floats: finite, >= 0, whole numbers."""
    x = _as_float_array(frequency, "frequency")
    if not np.all(np.isfinite(x)):
        raise ValueError("frequency must be finite (no NaN or inf): "
                         + _describe_first(~np.isfinite(x), ("frequency", x)))
    if np.any(x < 0):
        raise ValueError("frequency (number of repeat transactions) must be >= 0: "
                         + _describe_first(x < 0, ("frequency", x)))
    if np.any(x != np.round(x)):
        raise ValueError("frequency (number of repeat transactions) must be a whole number: "
                         + _describe_first(x != np.round(x), ("frequency", x)))
    return x


def _validate_rft(frequency: ArrayLike, recency: ArrayLike,
                  T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcast (frequency, recency, T) to one shape and check the BG/NBD contract."""
    x = _validate_frequency(frequency)
    t_x = _as_float_array(recency, "recency")
    age = _as_float_array(T, "T")
    try:
        x, t_x, age = np.broadcast_arrays(x, t_x, age)
    except ValueError:
        shapes = f"{np.shape(x)}, {np.shape(t_x)}, {np.shape(age)}"
        raise ValueError("frequency, recency and T must have the same length "
                         f"(got shapes {shapes})") from None
    for name, array in (("recency", t_x), ("T", age)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite (no NaN or inf): "
                             + _describe_first(~np.isfinite(array), (name, array)))
        if np.any(array < 0):
            raise ValueError(f"{name} must be >= 0 (time since the first transaction): "
                             + _describe_first(array < 0, (name, array)))
    late = t_x > age
    if np.any(late):
        raise ValueError("recency must not exceed T (the last repeat transaction happens "
                         "within the customer's age): "
                         + _describe_first(late, ("recency", t_x), ("T", age)))
    orphan = (x == 0) & (t_x > 0)
    if np.any(orphan):
        raise ValueError("recency must be 0 when frequency is 0 (no repeat transaction, "
                         "so no time of last repeat transaction): "
                         + _describe_first(orphan, ("frequency", x), ("recency", t_x)))
    return x, t_x, age


def _validate_spend(frequency: ArrayLike,
                    monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast (frequency, monetary_value); NaN spend is allowed only where x = 0."""
    x = _validate_frequency(frequency)
    m = _as_float_array(monetary_value, "monetary_value")
    try:
        x, m = np.broadcast_arrays(x, m)
    except ValueError:
        raise ValueError("frequency and monetary_value must have the same length "
                         f"(got shapes {np.shape(x)}, {np.shape(m)})") from None
    bad = (x > 0) & ~np.isfinite(m)
    if np.any(bad):
        raise ValueError("monetary_value must be finite for customers with frequency > 0: "
                         + _describe_first(bad, ("frequency", x), ("monetary_value", m)))
    negative = np.isfinite(m) & (m < 0)
    if np.any(negative):
        raise ValueError("monetary_value (mean spend per repeat transaction) must be >= 0: "
                         + _describe_first(negative, ("monetary_value", m)))
    return x, m


def _params(params: Mapping[str, float], keys: tuple[str, ...],
            model: str) -> tuple[float, ...]:
    """The parameters named by `keys`, as floats, each checked to be finite and > 0."""
    missing = [key for key in keys if key not in params]
    if missing:
        raise ValueError(f"{model} params lack {missing}; expected keys {list(keys)}")
    values = tuple(float(params[key]) for key in keys)
    for key, value in zip(keys, values):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{model} parameter {key} must be finite and > 0, got {value}")
    return values


def _validate_horizon(t: ArrayLike, name: str = "t") -> np.ndarray:
    """A forecast length (scalar or array): finite and >= 0."""
    horizon = _as_float_array(t, name)
    if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
        raise ValueError(f"{name} (length of the forecast period) must be finite and >= 0")
    return horizon


def _scalar_or_array(values: np.ndarray) -> np.ndarray | np.float64:
    """A numpy scalar for 0-d results, the array otherwise."""
    return values[()] if values.ndim == 0 else values


# --------------------------------------------------------------------------- BG/NBD

def bgnbd_log_likelihood(params: Mapping[str, float], frequency: ArrayLike,
                         recency: ArrayLike, T: ArrayLike) -> np.ndarray | np.float64:
    """Per-customer BG/NBD log-likelihood ln L(r, alpha, a, b | x, t_x, T).

    Fader, Hardie & Lee (2005), eq. (6), evaluated in log space: with
    A1 = Gamma(r+x) alpha^r / Gamma(r), A2 = B(a, b+x) / B(a, b) / (alpha+T)^(r+x) and,
    for x > 0 only, A3 = B(a+1, b+x-1) / B(a, b) / (alpha+t_x)^(r+x),
    ln L = ln A1 + logsumexp(ln A2, ln A3). Stable for any x (no #NUM! overflow).

    Args:
        params: mapping with r, alpha, a, b (all > 0; alpha in the time unit of T).
        frequency, recency, T: per-customer x, t_x, T (see the module docstring).

    Returns:
        Array of log-likelihoods (natural log), one per customer, shape of the broadcast
        inputs.
    """
    r, alpha, a, b = _params(params, BGNBD_KEYS, "BG/NBD")
    x, t_x, age = _validate_rft(frequency, recency, T)
    return _scalar_or_array(_bgnbd_ll_terms(r, alpha, a, b, x, t_x, age))


def _bgnbd_ll_terms(r: float, alpha: float, a: float, b: float, x: np.ndarray,
                    t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood on validated arrays (see bgnbd_log_likelihood)."""
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)  # keeps b + x - 1 > 0 where the term is unused
    ln_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    ln_a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + age)
    ln_a3 = np.where(repeat, betaln(a + 1, b + x_safe - 1) - betaln(a, b)
                     - (r + x) * np.log(alpha + t_x), -np.inf)
    return ln_a1 + np.logaddexp(ln_a2, ln_a3)


def _aggregate(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows collapsed: the distinct rows (as columns) and how often each occurs.

    Hash-based (pandas groupby), so linear in the number of rows.
    """
    frame = pd.DataFrame({f"c{j}": np.ravel(column) for j, column in enumerate(columns)})
    counts = frame.groupby(list(frame.columns), sort=False).size()
    levels = [counts.index.get_level_values(j).to_numpy(dtype=float)
              for j in range(len(columns))]
    return levels, counts.to_numpy(dtype=float)


class _BgnbdData(NamedTuple):
    """Distinct (x, t_x, T) rows with counts, split by x = 0 / x > 0 for the objective."""

    age_zero: np.ndarray      # T of the x = 0 rows
    weight_zero: np.ndarray   # their counts
    x_levels: np.ndarray      # distinct x > 0
    x_index: np.ndarray       # row -> position in x_levels, for the x > 0 rows
    x: np.ndarray             # x of the x > 0 rows
    t_x: np.ndarray
    age: np.ndarray
    weight: np.ndarray
    total: float              # number of customers


def _bgnbd_data(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> _BgnbdData:
    (xu, txu, ageu), counts = _aggregate(x, t_x, age)
    zero = xu == 0
    x_levels, x_index = np.unique(xu[~zero], return_inverse=True)
    return _BgnbdData(ageu[zero], counts[zero], x_levels, x_index, xu[~zero], txu[~zero],
                      ageu[~zero], counts[~zero], float(counts.sum()))


def _bgnbd_objective(log_params: np.ndarray, data: _BgnbdData,
                     penalizer: float) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (+ the penalty on ln r, ln a, ln b) and its gradient
    in log-parameters.

    x = 0 rows: L = (alpha / (alpha + T))^r. x > 0 rows: with d = ln A3 - ln A2,
    ln L = ln A1 + ln A2 + softplus(d), and the weight of the "dropped out after t_x"
    branch is w3 = expit(d). Terms that depend on x only are computed once per distinct x
    and summed against per-x totals (bincount), so the per-row work is a few logs.
    """
    r, alpha, a, b = np.exp(log_params)
    log_alpha = np.log(alpha)
    # x = 0.
    log_at0 = np.log(alpha + data.age_zero)
    w0 = data.weight_zero
    ll_sum = r * np.sum(w0 * (log_alpha - log_at0))
    g_r = np.sum(w0 * (log_alpha - log_at0))
    g_alpha = np.sum(w0 * (r / alpha - r / (alpha + data.age_zero)))
    g_a = g_b = 0.0
    if data.x.size:
        xl = data.x_levels
        # Per distinct x > 0.
        ln_a1 = gammaln(r + xl) - gammaln(r) + r * log_alpha
        ln_b2 = betaln(a, b + xl) - betaln(a, b)
        ln_b3 = betaln(a + 1, b + xl - 1) - betaln(a, b)
        d_r1 = digamma(r + xl) - digamma(r) + log_alpha
        common = digamma(a + b) - digamma(a + b + xl)
        d_a2 = common
        d_b2 = digamma(b + xl) - digamma(b) + common
        d_a3 = 1.0 / a + common
        d_b3 = digamma(b + xl - 1) - digamma(b) + common
        # Per distinct row.
        idx, x, w = data.x_index, data.x, data.weight
        log_at = np.log(alpha + data.age)
        log_gap = log_at - np.log(alpha + data.t_x)
        rx = r + x
        d = (ln_b3 - ln_b2)[idx] + rx * log_gap
        w3 = expit(d)
        ww3 = w * w3
        per_x = np.bincount(idx, weights=w, minlength=xl.size)
        per_x3 = np.bincount(idx, weights=ww3, minlength=xl.size)
        ll_sum += (np.dot(per_x, ln_a1 + ln_b2)
                   + np.sum(w * (np.logaddexp(0.0, d) - rx * log_at)))
        g_r += np.dot(per_x, d_r1) + np.sum(ww3 * log_gap - w * log_at)
        g_alpha += (np.dot(per_x, np.full(xl.size, r / alpha))
                    - np.sum(w * rx * ((1.0 - w3) / (alpha + data.age)
                                       + w3 / (alpha + data.t_x))))
        g_a = np.dot(per_x, d_a2) + np.dot(per_x3, d_a3 - d_a2)
        g_b = np.dot(per_x, d_b2) + np.dot(per_x3, d_b3 - d_b2)
    values = np.array([r, alpha, a, b])
    shrunk = log_params * _BGNBD_PENALISED
    nll = -ll_sum / data.total + penalizer * np.sum(shrunk ** 2)
    grad = np.array([g_r, g_alpha, g_a, g_b]) / data.total
    return float(nll), -grad * values + 2.0 * penalizer * shrunk


def _minimise(objective: Callable[..., tuple[float, np.ndarray]], start: np.ndarray,
              args: tuple) -> tuple[np.ndarray, bool, int]:
    """L-BFGS-B in log-parameter space, then a restarted L-BFGS-B as a polish.

    Returns the log-parameters, whether the last run reported success, and the total
    number of iterations.
    """
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * start.size
    options = {"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20}
    first = minimize(objective, start, args=args, jac=True, method="L-BFGS-B",
                     bounds=bounds, options=options)
    polished = minimize(objective, first.x, args=args, jac=True, method="L-BFGS-B",
                        bounds=bounds, options=options)
    best = polished if polished.fun <= first.fun else first
    return best.x, bool(best.success), int(first.nit + polished.nit)


def _standard_errors(objective: Callable[..., tuple[float, np.ndarray]],
                     log_params: np.ndarray, args: tuple, n: float,
                     keys: tuple[str, ...]) -> dict[str, float]:
    """Asymptotic standard errors of the parameters from the observed information.

    The Hessian of the mean objective in log-parameters is taken by central differences
    of the analytic gradient; the covariance of the log-parameters is its inverse over n,
    and the delta method gives se(theta) = theta * se(log theta). NaN when the Hessian is
    not positive definite (e.g. an estimate on a boundary).
    """
    k = log_params.size
    step = 1e-5
    hessian = np.empty((k, k))
    for i in range(k):
        shift = np.zeros(k)
        shift[i] = step
        hessian[:, i] = (objective(log_params + shift, *args)[1]
                         - objective(log_params - shift, *args)[1]) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    try:
        np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return {key: float("nan") for key in keys}
    se_log = np.sqrt(np.diag(np.linalg.inv(hessian * n)))
    return {key: float(value) for key, value in zip(keys, np.exp(log_params) * se_log)}


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike,
              penalizer: float = 0.0) -> dict[str, float | int | bool | dict[str, float]]:
    """Maximum-likelihood BG/NBD parameters (Fader, Hardie & Lee 2005).

    Maximises the log-likelihood of eq. (6) of the paper (see `bgnbd_log_likelihood`) in
    log-parameter space with L-BFGS-B and an analytic gradient, then polishes with a
    restart. Identical (x, t_x, T) rows are aggregated with counts, and terms depending on
    x only are computed once per distinct x, so a million customers fit in seconds.

    Args:
        frequency: repeat transactions per customer (x), whole numbers >= 0.
        recency: time of the last repeat transaction since the first (t_x), 0 if x = 0.
        T: age since the first transaction, same unit as recency, T >= recency.
        penalizer: weight of the penalty penalizer * ((ln r)^2 + (ln a)^2 + (ln b)^2)
            added to the *mean* negative log-likelihood (alpha is not penalised); 0 gives
            the plain MLE. It does not depend on the time unit (see Notes).

    Returns:
        dict with the estimates ``r``, ``alpha`` (in the time unit of T), ``a``, ``b`` and
        diagnostics: ``log_likelihood`` (total over customers, natural log, unpenalised),
        ``n_customers``, ``n_distinct`` (distinct (x, t_x, T) rows), ``converged``
        (optimizer success and a small gradient), ``iterations``, ``gradient_norm``
        (of the mean objective in log-parameters) and ``standard_errors`` (dict of
        asymptotic standard errors of r, alpha, a, b from the observed information).

    Raises:
        ValueError: invalid inputs (see the module docstring), no customers, or no repeat
            transaction at all (the MLE is then degenerate).

    Notes:
        The penalty. Measuring time in a unit c times smaller (weeks -> days: c = 7)
        multiplies recency and T by c; the likelihood of (r, c alpha, a, b) on the new
        data is that of (r, alpha, a, b) on the old times c^(-sum x), a constant. So the
        MLE moves with the unit exactly (alpha -> c alpha, r, a, b unchanged), and a
        penalised fit does too if and only if the penalty is a function of r, a, b and
        alpha / (a time of the data). The former L2 penalty on (r, alpha, a, b) was not:
        on CDNOW in days a weight of 0.001 pulled alpha from 30.9 to 5.5 days and r from
        0.243 to 0.127, while in weeks it barely moved. Here: (ln theta)^2 on the
        unitless shapes r, a, b, a log-normal prior centred at 1 (the estimate is a
        posterior mode), which grows without bound at both ends of each shape (a, b ->
        infinity is the no-dropout boundary of a short window, r -> infinity the
        homogeneous-Poisson one) and treats a factor of 10 up or down alike. The scale
        alpha is left free: given r it is pinned by the observed purchase rate (the mean
        rate is r / alpha), so it is finite whenever someone repeats; a penalty on
        ln(alpha / s) would need a time scale s of the data (the mean T, say) and would
        pull the mean purchase rate towards 1 / s, biasing every expected count.
    """
    x, t_x, age = _validate_rft(frequency, recency, T)
    x, t_x, age = x.ravel(), t_x.ravel(), age.ravel()
    if x.size == 0:
        raise ValueError("fit_bgnbd needs at least one customer")
    if not np.any(x > 0):
        raise ValueError("fit_bgnbd needs at least one customer with a repeat transaction "
                         "(with none, the maximum-likelihood estimate is degenerate)")
    if not (np.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"penalizer must be finite and >= 0, got {penalizer}")
    data = _bgnbd_data(x, t_x, age)
    # Start: r = 1 and alpha matching the observed repeat rate, a = 1, b = 1.
    rate = x.sum() / max(age.sum(), np.finfo(float).tiny)
    start = np.log(np.array([1.0, 1.0 / rate, 1.0, 1.0]))
    start = np.clip(start, -_LOG_BOUND + 1, _LOG_BOUND - 1)
    args = (data, float(penalizer))
    log_params, success, iterations = _minimise(_bgnbd_objective, start, args)
    r, alpha, a, b = np.exp(log_params)
    _, gradient = _bgnbd_objective(log_params, *args)
    ll = float(np.sum(data.weight_zero * r * (np.log(alpha) - np.log(alpha + data.age_zero)))
               + np.sum(data.weight * _bgnbd_ll_terms(r, alpha, a, b, data.x, data.t_x,
                                                      data.age)))
    gradient_norm = float(np.max(np.abs(gradient)))
    converged = bool((success or gradient_norm < 1e-6) and gradient_norm < 1e-4)
    return {
        "r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b),
        "log_likelihood": ll,
        "n_customers": int(x.size),
        "n_distinct": int(data.age_zero.size + data.x.size),
        "n_repeat_customers": int(np.sum(x > 0)),
        "penalizer": float(penalizer),
        "converged": converged,
        "iterations": iterations,
        "gradient_norm": gradient_norm,
        "standard_errors": _standard_errors(_bgnbd_objective, log_params, args, data.total,
                                            BGNBD_KEYS),
        "fit_status": _bgnbd_status(log_params, converged),
    }


def _bgnbd_status(log_params: np.ndarray, converged: bool) -> str:
    """"ok", or "degenerate: <why>" for a fit on a boundary or one that did not converge
    (see BOUNDARY_SHAPE)."""
    problems = []
    r, alpha, a, b = np.exp(log_params)
    for key, value in (("a", a), ("b", b)):
        if value > BOUNDARY_SHAPE:
            problems.append(f"{key} = {value:.3g} > {BOUNDARY_SHAPE:g} (boundary "
                            f"{key} -> infinity)")
    for key, log_value in zip(BGNBD_KEYS, log_params):
        if key not in ("a", "b") and abs(log_value) > _LOG_BOUND - 1:
            problems.append(f"{key} = {np.exp(log_value):.3g} at the optimiser's bound")
    if not converged:
        problems.append("the optimiser did not converge")
    return "ok" if not problems else "degenerate: " + "; ".join(problems)


def bgnbd_p_alive(params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike,
                  T: ArrayLike) -> np.ndarray | np.float64:
    """P(customer still alive at T | x, t_x, T) under the BG/NBD model.

    Fader, Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model":
    1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)), evaluated
    as a logistic of the log-odds so that large x cannot overflow. Customers with no repeat
    transaction are alive with probability 1 (in this model dropout happens only right
    after a repeat transaction).

    Returns:
        Probabilities in [0, 1], shape of the broadcast inputs (a numpy scalar for scalars).
    """
    r, alpha, a, b = _params(params, BGNBD_KEYS, "BG/NBD")
    x, t_x, age = _validate_rft(frequency, recency, T)
    return _scalar_or_array(_p_alive(r, alpha, a, b, x, t_x, age))


def _p_alive(r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray,
             age: np.ndarray) -> np.ndarray:
    """P(alive) on validated arrays, as the logistic of minus the log-odds of dropout."""
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    log_odds_dead = (np.log(a) - np.log(b + x_safe - 1)
                     + (r + x_safe) * (np.log(alpha + age) - np.log(alpha + t_x)))
    return np.where(repeat, expit(-log_odds_dead), 1.0)


def bgnbd_p_no_purchase(params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike,
                        recency: ArrayLike, T: ArrayLike) -> np.ndarray | np.float64:
    """P(no transaction in (T, T + t] | x, t_x, T) under the BG/NBD model.

    A customer makes no purchase in the next t periods if she is dead at T, or alive and
    her next purchase comes after T + t (dropout happens only right after a purchase, so
    an alive customer cannot leave before purchasing again). Given alive at T, the
    likelihood of the history is lambda^x e^(-lambda T) (1-p)^x, so lambda has the
    posterior Gamma(r + x, alpha + T) and P(no purchase in t | alive) =
    E[e^(-lambda t)] = ((alpha + T) / (alpha + T + t))^(r + x). Hence

        P(X(T, T+t) = 0 | x, t_x, T) = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x),

    the x* = 0 case of the conditional PMF of Fader, Hardie & Lee ("Deriving the
    conditional PMF of the BG/NBD", 2007). Unlike 1 - P(alive), which is 0 for every
    one-time buyer, it is below 1 and falls with T for them too.

    Args:
        params: r, alpha, a, b.
        t: length of the period (>= 0), in the time unit of recency and T.
        frequency, recency, T: per-customer x, t_x, T.

    Returns:
        Probabilities in [0, 1], shape of the broadcast inputs.
    """
    r, alpha, a, b = _params(params, BGNBD_KEYS, "BG/NBD")
    x, t_x, age = _validate_rft(frequency, recency, T)
    horizon = _validate_horizon(t)
    alive = _p_alive(r, alpha, a, b, x, t_x, age)
    quiet = np.exp((r + x) * (np.log(alpha + age) - np.log(alpha + age + horizon)))
    return _scalar_or_array(1.0 - alive + alive * quiet)


def _conditional_numerator(r: float, alpha: float, a: float, b: float, t: np.ndarray,
                           x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)].

    Evaluated in the Euler-transformed form: with z = t / (alpha + T + t) and
    c = a + b + x - 1, (1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)
    (2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)). The transformed 2F1 has
    parameters that do not grow with x, so it neither overflows nor loses precision for
    heavy buyers, and (1-z)^(r+x) never underflows. Singular (0/0) at a = 1 and, for x = 0,
    at a + b = 1; the caller interpolates across those removable singularities.
    """
    log_keep = np.log(alpha + age) - np.log(alpha + age + t)  # log(1 - z)
    z = -np.expm1(log_keep)
    c = a + b + x - 1.0
    g = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    u = (a - 1.0) * log_keep
    bracket = -np.expm1(u) - np.exp(u) * (g - 1.0)
    return c / (a - 1.0) * bracket


def _interpolated(function: Callable[[float], np.ndarray], value: float, singular: float,
                  lowest: float = -np.inf) -> np.ndarray:
    """function(value), or, within _NEAR_SINGULAR of a removable singularity of `function`,
    the straight line through its values at singular -+ _NEAR_SINGULAR (at singular +
    1 and 2 * _NEAR_SINGULAR when the point below would not exceed `lowest`)."""
    if abs(value - singular) >= _NEAR_SINGULAR:
        return function(value)
    left = singular - _NEAR_SINGULAR
    if left <= lowest:
        left = singular + _NEAR_SINGULAR
    right = left + 2 * _NEAR_SINGULAR if left > singular else singular + _NEAR_SINGULAR
    at_left, at_right = function(left), function(right)
    return at_left + (value - left) / (right - left) * (at_right - at_left)


def _expected_purchases(r: float, alpha: float, a: float, b: float, t: np.ndarray,
                        x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """E[X(T, T + t) | x, t_x, T], FHL (2005) eq. (10): numerator times P(alive)."""
    def at_a(a_value: float) -> np.ndarray:
        if abs(a_value + b - 1.0) >= _NEAR_SINGULAR or not np.any(x == 0):
            return _conditional_numerator(r, alpha, a_value, b, t, x, age)
        # c = a + b - 1 ~ 0 for x = 0: interpolate those rows in b, keeping b > 0.
        def at_b(b_value: float) -> np.ndarray:
            return _conditional_numerator(r, alpha, a_value, b_value, t, x, age)
        with np.errstate(invalid="ignore", divide="ignore"):
            direct = _conditional_numerator(r, alpha, a_value, b, t, x, age)
        return np.where(x == 0, _interpolated(at_b, b, 1.0 - a_value, lowest=0.0), direct)

    numerator = _interpolated(at_a, a, 1.0)
    return numerator * _p_alive(r, alpha, a, b, x, t_x, age)


def bgnbd_expected_purchases(params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike,
                             recency: ArrayLike, T: ArrayLike) -> np.ndarray | np.float64:
    """Expected number of transactions in the next t periods, given (x, t_x, T).

    E[Y(t) | x, t_x, T] of Fader, Hardie & Lee (2005), eq. (10):
    (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
    / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)), computed stably (see
    `_conditional_numerator`). It is the numerator times `bgnbd_p_alive`.

    Args:
        params: r, alpha, a, b.
        t: length of the forecast period (>= 0), in the time unit of recency and T; a
            scalar or an array broadcast against the customers.
        frequency, recency, T: per-customer x, t_x, T.

    Returns:
        Expected transaction counts, shape of the broadcast inputs.
    """
    r, alpha, a, b = _params(params, BGNBD_KEYS, "BG/NBD")
    x, t_x, age = _validate_rft(frequency, recency, T)
    horizon = _validate_horizon(t)
    horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
    return _scalar_or_array(_expected_purchases(r, alpha, a, b, horizon, x, t_x, age))


def bgnbd_expected_purchases_new_customer(params: Mapping[str, float],
                                          t: ArrayLike) -> np.ndarray | np.float64:
    """E[X(t)]: expected repeat transactions in (0, t] of a customer just acquired.

    Fader, Hardie & Lee (2005), eq. (9):
    (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]; it is the
    conditional expectation at x = t_x = T = 0.

    Args:
        params: r, alpha, a, b.
        t: time since the first purchase (>= 0), in the unit of alpha.
    """
    r, alpha, a, b = _params(params, BGNBD_KEYS, "BG/NBD")
    horizon = _validate_horizon(t)
    zeros = np.zeros_like(horizon)
    return _scalar_or_array(_expected_purchases(r, alpha, a, b, horizon, zeros, zeros, zeros))


# --------------------------------------------------------------------------- NBD fallback

def _nbd_objective(log_params: np.ndarray, x_levels: tuple[np.ndarray, np.ndarray],
                   weight: np.ndarray, total: float,
                   penalizer: float) -> tuple[float, np.ndarray]:
    """Mean negative NBD log-likelihood (+ penalizer (ln r)^2) and its gradient in
    (ln r, ln alpha). Per customer, up to a constant: ln Gamma(r + x) - ln Gamma(r)
    + r ln alpha - (r + x) ln(alpha + T)."""
    r, alpha = np.exp(log_params)
    x, age = x_levels
    log_at = np.log(alpha + age)
    ll = np.sum(weight * (gammaln(r + x) - gammaln(r) + r * np.log(alpha)
                          - (r + x) * log_at))
    g_r = np.sum(weight * (digamma(r + x) - digamma(r) + np.log(alpha) - log_at))
    g_alpha = np.sum(weight * (r / alpha - (r + x) / (alpha + age)))
    nll = -ll / total + penalizer * log_params[0] ** 2
    grad = -np.array([g_r * r, g_alpha * alpha]) / total
    grad[0] += 2.0 * penalizer * log_params[0]
    return float(nll), grad


def fit_nbd(frequency: ArrayLike, T: ArrayLike,
            penalizer: float = 0.0) -> dict[str, float | int | bool | str]:
    """The NBD (Ehrenberg 1959): BG/NBD without dropout, the documented fallback of a
    degenerate BG/NBD fit.

    Each customer buys as a Poisson process with rate lambda ~ Gamma(r, rate alpha) and
    never drops out; x repeat transactions in an age T. Maximum likelihood in
    (ln r, ln alpha) with the penalty penalizer * (ln r)^2 (alpha, a time, is free, as
    in `fit_bgnbd`). With no repeat transaction at all the estimate runs to alpha at the
    optimiser's bound (a purchase rate of about 0), which is the honest answer: the
    expected count is then ~0 for everyone and P(no purchase) ~1.

    Returns:
        dict with ``model`` = "nbd", ``r``, ``alpha`` (time unit of T),
        ``log_likelihood`` (up to the constant sum ln(T^x / x!)), ``converged``,
        ``gradient_norm``, ``n_customers``.
    """
    x = _validate_frequency(frequency).ravel()
    age = _as_float_array(T, "T").ravel()
    if x.size != age.size:
        raise ValueError("frequency and T must have the same length")
    if x.size == 0:
        raise ValueError("fit_nbd needs at least one customer")
    if not (np.all(np.isfinite(age)) and np.all(age >= 0)):
        raise ValueError("T must be finite and >= 0")
    if not (np.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"penalizer must be finite and >= 0, got {penalizer}")
    (xu, ageu), counts = _aggregate(x, age)
    total = float(counts.sum())
    rate = max(x.sum(), 1e-3) / max(age.sum(), np.finfo(float).tiny)
    start = np.clip(np.log(np.array([1.0, 1.0 / rate])), -_LOG_BOUND + 1, _LOG_BOUND - 1)
    args = ((xu, ageu), counts, total, float(penalizer))
    log_params, success, _ = _minimise(_nbd_objective, start, args)
    value, gradient = _nbd_objective(log_params, *args)
    gradient_norm = float(np.max(np.abs(gradient)))
    r, alpha = np.exp(log_params)
    return {"model": "nbd", "r": float(r), "alpha": float(alpha),
            "log_likelihood": float(-(value - penalizer * log_params[0] ** 2) * total),
            "converged": bool(success or gradient_norm < 1e-6),
            "gradient_norm": gradient_norm, "n_customers": int(x.size)}


def nbd_expected_purchases(params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike,
                           T: ArrayLike) -> np.ndarray | np.float64:
    """E[X(T, T + t) | x, T] under the NBD: (r + x) / (alpha + T) * t (the posterior
    mean rate times t; no dropout, so recency carries no information)."""
    r, alpha = _params(params, ("r", "alpha"), "NBD")
    x = _validate_frequency(frequency)
    age = _as_float_array(T, "T")
    horizon = _validate_horizon(t)
    return _scalar_or_array(np.asarray((r + x) / (alpha + age) * horizon))


def nbd_p_no_purchase(params: Mapping[str, float], t: ArrayLike, frequency: ArrayLike,
                      T: ArrayLike) -> np.ndarray | np.float64:
    """P(no transaction in (T, T + t] | x, T) under the NBD:
    ((alpha + T) / (alpha + T + t))^(r + x)."""
    r, alpha = _params(params, ("r", "alpha"), "NBD")
    x = _validate_frequency(frequency)
    age = _as_float_array(T, "T")
    horizon = _validate_horizon(t)
    return _scalar_or_array(np.asarray(np.exp(-(r + x) * np.log1p(horizon / (alpha + age)))))


# --------------------------------------------------------------------------- Gamma-Gamma

def gamma_gamma_log_likelihood(params: Mapping[str, float], frequency: ArrayLike,
                               monetary_value: ArrayLike) -> np.ndarray | np.float64:
    """Per-customer log-density of the mean spend z-bar under the Gamma-Gamma model.

    Fader & Hardie (2013), eq. (3):
    ln f = ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln gamma + px ln x
           + (px-1) ln z - (px+q) ln(gamma + x z).

    Args:
        params: p, q, gamma.
        frequency: repeat transactions x, all > 0.
        monetary_value: mean spend per repeat transaction z-bar, all > 0.
    """
    p, q, gamma = _params(params, GAMMA_GAMMA_KEYS, "Gamma-Gamma")
    x, m = _validate_spend(frequency, monetary_value)
    if np.any(x <= 0) or np.any(m <= 0):
        raise ValueError("the Gamma-Gamma likelihood needs frequency > 0 and "
                         "monetary_value > 0 for every customer")
    return _scalar_or_array(_gg_ll_terms(p, q, gamma, x, m))


def _gg_ll_terms(p: float, q: float, gamma: float, x: np.ndarray,
                 m: np.ndarray) -> np.ndarray:
    """Per-customer Gamma-Gamma log-density on validated arrays with x > 0, m > 0."""
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma) + px * np.log(x)
            + (px - 1) * np.log(m) - (px + q) * np.log(gamma + x * m))


class _GammaGammaData(NamedTuple):
    """Distinct (x, z-bar) rows with counts, and per-distinct-x totals, for the objective."""

    x_levels: np.ndarray      # distinct x (all > 0)
    x_weight: np.ndarray      # number of customers per distinct x
    x_index: np.ndarray       # row -> position in x_levels
    x: np.ndarray
    log_m: np.ndarray         # log z-bar of each row
    m: np.ndarray
    weight: np.ndarray        # count of each row
    total: float              # number of customers


def _gamma_gamma_data(x: np.ndarray, m: np.ndarray) -> _GammaGammaData:
    (xu, mu), counts = _aggregate(x, m)
    x_levels, x_index = np.unique(xu, return_inverse=True)
    x_weight = np.bincount(x_index, weights=counts, minlength=x_levels.size)
    return _GammaGammaData(x_levels, x_weight, x_index, xu, np.log(mu), mu, counts,
                           float(counts.sum()))


def _gg_objective(log_params: np.ndarray, data: _GammaGammaData,
                  penalizer: float) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood (+ L2 penalty) and gradient in log-parameters.

    The gamma-function terms depend on x only and are computed once per distinct x; the
    per-row work is one log.
    """
    p, q, gamma = np.exp(log_params)
    xl, wl = data.x_levels, data.x_weight
    pxl = p * xl
    psi_pxq = digamma(pxl + q)
    log_xl = np.log(xl)
    x, w = data.x, data.weight
    px = p * x
    log_gxm = np.log(gamma + x * data.m)
    ll_sum = (np.dot(wl, gammaln(pxl + q) - gammaln(pxl) + pxl * log_xl)
              + data.total * (q * np.log(gamma) - gammaln(q))
              + np.sum(w * ((px - 1) * data.log_m - (px + q) * log_gxm)))
    g_p = (np.dot(wl, xl * (psi_pxq - digamma(pxl) + log_xl))
           + np.sum(w * x * (data.log_m - log_gxm)))
    g_q = (np.dot(wl, psi_pxq) + data.total * (np.log(gamma) - digamma(q))
           - np.sum(w * log_gxm))
    g_gamma = data.total * q / gamma - np.sum(w * (px + q) / (gamma + x * data.m))
    values = np.array([p, q, gamma])
    nll = -ll_sum / data.total + penalizer * np.sum(values ** 2)
    grad = np.array([g_p, g_q, g_gamma]) / data.total
    return float(nll), -grad * values + 2.0 * penalizer * values ** 2


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike,
                    penalizer: float = 0.0) -> dict[str, float | int | bool | dict[str, float]]:
    """Maximum-likelihood Gamma-Gamma spend parameters (Fader & Hardie 2013; FHL 2005).

    Fit on the customers with at least one repeat transaction: those with frequency 0
    carry no information on spend and are ignored (their monetary_value may be anything,
    NaN included). The model assumes spend is independent of frequency; the Pearson
    correlation of x and z-bar among the fitted customers is returned as a check (it should
    be near 0).

    Args:
        frequency: repeat transactions per customer (x), whole numbers >= 0.
        monetary_value: mean value of the repeat transactions (z-bar), currency per
            transaction; must be > 0 where frequency > 0 (drop or floor zero-spend
            customers first).
        penalizer: L2 penalty on (p, q, gamma) added to the mean negative log-likelihood.
            gamma is in currency, so this penalty depends on the currency unit; the
            warehouse fits Gamma-Gamma unpenalised (ml.ltv.fit_spend).

    Returns:
        dict with ``p``, ``q``, ``gamma`` (gamma in currency units) and diagnostics:
        ``log_likelihood`` (total, natural log), ``n_customers`` (fitted, x > 0),
        ``mean_spend`` (population mean spend per transaction p*gamma/(q-1), NaN if
        q <= 1), ``corr_frequency_monetary``, ``converged``, ``iterations``,
        ``gradient_norm``, ``standard_errors`` (dict for p, q, gamma) and
        ``fit_status``: "ok", or "degenerate: <why>" when q <= 1 (no finite mean spend:
        `gamma_gamma_expected_spend` refuses it), a parameter is at the optimiser's
        bound or the optimiser did not converge; `empirical_expected_spend` is the
        documented fallback then.

    Raises:
        ValueError: invalid inputs, zero spend where frequency > 0, or no repeat customer.
    """
    x, m = _validate_spend(frequency, monetary_value)
    x, m = x.ravel(), m.ravel()
    repeat = x > 0
    if not np.any(repeat):
        raise ValueError("fit_gamma_gamma needs at least one customer with frequency > 0")
    x, m = x[repeat], m[repeat]
    if np.any(m <= 0):
        raise ValueError("monetary_value must be > 0 for customers with frequency > 0 "
                         "(the Gamma-Gamma model has positive spend): "
                         + _describe_first(m <= 0, ("frequency", x), ("monetary_value", m)))
    if not (np.isfinite(penalizer) and penalizer >= 0):
        raise ValueError(f"penalizer must be finite and >= 0, got {penalizer}")
    data = _gamma_gamma_data(x, m)
    # Start: p = 1, q = 2 and gamma so that the model mean p*gamma/(q-1) is the sample mean.
    start = np.log(np.array([1.0, 2.0, float(np.mean(m))]))
    args = (data, float(penalizer))
    log_params, success, iterations = _minimise(_gg_objective, start, args)
    p, q, gamma = np.exp(log_params)
    _, gradient = _gg_objective(log_params, *args)
    gradient_norm = float(np.max(np.abs(gradient)))
    corr = float(np.corrcoef(x, m)[0, 1]) if x.size > 1 and np.ptp(x) > 0 and np.ptp(m) > 0 \
        else float("nan")
    converged = bool((success or gradient_norm < 1e-6) and gradient_norm < 1e-4)
    problems = []
    if q <= 1:
        problems.append(f"q = {q:.3g} <= 1 (infinite mean spend)")
    for key, log_value in zip(GAMMA_GAMMA_KEYS, log_params):
        if abs(log_value) > _LOG_BOUND - 1:
            problems.append(f"{key} = {np.exp(log_value):.3g} at the optimiser's bound")
    if not converged:
        problems.append("the optimiser did not converge")
    return {
        "p": float(p), "q": float(q), "gamma": float(gamma),
        "log_likelihood": float(np.sum(data.weight
                                       * _gg_ll_terms(p, q, gamma, data.x, data.m))),
        "n_customers": int(x.size),
        "mean_spend": float(p * gamma / (q - 1)) if q > 1 else float("nan"),
        "corr_frequency_monetary": corr,
        "converged": converged,
        "iterations": iterations,
        "gradient_norm": gradient_norm,
        "standard_errors": _standard_errors(_gg_objective, log_params, args, data.total,
                                            GAMMA_GAMMA_KEYS),
        "fit_status": "ok" if not problems else "degenerate: " + "; ".join(problems),
    }


def gamma_gamma_expected_spend(params: Mapping[str, float], frequency: ArrayLike,
                               monetary_value: ArrayLike) -> np.ndarray | np.float64:
    """Expected mean spend per transaction given x repeat transactions averaging z-bar.

    Fader & Hardie (2013), eq. (5): E[M | p, q, gamma, x, z-bar] =
    (q-1)/(px+q-1) * p*gamma/(q-1) + px/(px+q-1) * z-bar, a weighted average of the
    population mean and the customer's own mean. For x = 0 it is the population mean
    p*gamma/(q-1) (monetary_value is then ignored and may be NaN).

    Args:
        params: p, q, gamma with q > 1 (otherwise the mean spend is infinite).
        frequency: repeat transactions x (whole numbers >= 0).
        monetary_value: z-bar, currency per transaction, >= 0 where x > 0.

    Returns:
        Expected spend per future transaction, in the currency of monetary_value.
    """
    p, q, gamma = _params(params, GAMMA_GAMMA_KEYS, "Gamma-Gamma")
    if q <= 1:
        raise ValueError(f"Gamma-Gamma q must be > 1 for a finite expected spend, got {q}")
    x, m = _validate_spend(frequency, monetary_value)
    return _scalar_or_array(_expected_spend(p, q, gamma, x, m))


def _expected_spend(p: float, q: float, gamma: float, x: np.ndarray,
                    m: np.ndarray) -> np.ndarray:
    """Conditional expected spend on validated arrays (see gamma_gamma_expected_spend)."""
    population = p * gamma / (q - 1)
    px = p * x
    own = np.where(x > 0, m, 0.0)
    return ((q - 1) * population + px * own) / (px + q - 1)


def empirical_expected_spend(frequency: ArrayLike, monetary_value: ArrayLike,
                             population_mean: float) -> np.ndarray | np.float64:
    """The fallback of a degenerate Gamma-Gamma fit: each customer's own mean repeat
    spend z-bar where x > 0 and z-bar > 0, else `population_mean` (the Gamma-Gamma
    expectation without its shrinkage, the limit of eq. (5) as q -> 1)."""
    x, m = _validate_spend(frequency, monetary_value)
    if not (np.isfinite(population_mean) and population_mean >= 0):
        raise ValueError(f"population_mean must be finite and >= 0, got {population_mean}")
    own = (x > 0) & np.isfinite(m) & (m > 0)
    return _scalar_or_array(np.where(own, np.where(own, m, 0.0), float(population_mean)))


# --------------------------------------------------------------------------- value

def customer_lifetime_value(bgnbd_params: Mapping[str, float],
                            gamma_gamma_params: Mapping[str, float], frequency: ArrayLike,
                            recency: ArrayLike, T: ArrayLike, monetary_value: ArrayLike,
                            horizon: float, discount_rate: float = 0.0,
                            step: float = 1.0) -> np.ndarray | np.float64:
    """Expected (optionally discounted) spend of each customer over the next `horizon`.

    Undiscounted (discount_rate = 0): E[Y(horizon) | x, t_x, T] * E[M | x, z-bar], the
    BG/NBD expected purchases times the Gamma-Gamma expected spend per transaction (the
    two are independent by assumption). With a discount rate d per `step` time units, the
    horizon is cut into steps ending at s_i = min(i * step, horizon) and each step's
    expected purchases E[Y(s_i)] - E[Y(s_{i-1})] are discounted to now by
    (1 + d)^(-s_i / step) (purchases counted at the end of their step).

    Args:
        bgnbd_params: r, alpha, a, b. gamma_gamma_params: p, q, gamma (q > 1).
        frequency, recency, T, monetary_value: per customer (see the module docstring).
        horizon: length of the forecast period (a scalar >= 0), in the time unit of
            recency and T.
        discount_rate: rate per `step` (e.g. 0.01 per month), >= 0. Discounting costs one
            evaluation of the expectation per step.
        step: length of one discounting period in the time unit of T (e.g. 30 for
            monthly discounting with days), > 0. Unused when discount_rate = 0.

    Returns:
        Expected spend over the horizon, in the currency of monetary_value (a residual,
        horizon-limited value, not counting the value of past purchases).
    """
    r, alpha, a, b = _params(bgnbd_params, BGNBD_KEYS, "BG/NBD")
    x, t_x, age = _validate_rft(frequency, recency, T)
    spend = np.asarray(gamma_gamma_expected_spend(gamma_gamma_params, frequency,
                                                  monetary_value))
    horizon = float(_validate_horizon(horizon, "horizon"))
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(f"discount_rate must be finite and >= 0, got {discount_rate}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be finite and > 0, got {step}")
    purchases = _discounted_purchases((r, alpha, a, b), x, t_x, age, horizon,
                                      discount_rate, step)
    return _scalar_or_array(np.asarray(purchases * spend))


def _discounted_purchases(params: tuple[float, float, float, float], x: np.ndarray,
                          t_x: np.ndarray, age: np.ndarray, horizon: float,
                          discount_rate: float, step: float,
                          undiscounted: np.ndarray | None = None) -> np.ndarray:
    """Expected purchases over the horizon, each discounted to now (see
    `customer_lifetime_value`); `undiscounted` may pass E[Y(horizon)] if already known.
    Costs one evaluation of the conditional expectation per discounting step."""
    if discount_rate == 0 or horizon == 0:
        if undiscounted is not None:
            return undiscounted
        return _expected_purchases(*params, np.float64(horizon), x, t_x, age)
    n_steps = int(np.ceil(horizon / step - 1e-12))
    ends = np.minimum(np.arange(1, n_steps + 1) * step, horizon)
    total = np.zeros(np.broadcast(x, t_x, age).shape)
    previous = np.zeros_like(total)
    for end in ends:
        cumulative = _expected_purchases(*params, np.float64(end), x, t_x, age)
        total = total + (cumulative - previous) * (1.0 + discount_rate) ** (-end / step)
        previous = cumulative
    return total


def score_customers(summary: pd.DataFrame, horizon: float,
                    bgnbd_params: Mapping[str, float] | None = None,
                    gamma_gamma_params: Mapping[str, float] | None = None,
                    discount_rate: float = 0.0, step: float = 1.0,
                    penalizer: float = 0.0) -> pd.DataFrame:
    """Score a customer summary: expected purchases, P(alive), expected spend.

    Args:
        summary: one row per customer with columns ``frequency`` (repeat transactions),
            ``recency`` (time of the last repeat transaction since the first), ``T`` (age
            since the first transaction; same time unit as recency) and
            ``monetary_value`` (mean value of the repeat transactions, currency per
            transaction; ignored, and may be NaN or 0, where frequency = 0). Other columns
            (e.g. the customer id) are carried through unchanged.
        horizon: forecast period in the time unit of recency and T (e.g. 90 with days).
        bgnbd_params: r, alpha, a, b; fitted on `summary` with `fit_bgnbd` when None.
        gamma_gamma_params: p, q, gamma; fitted on `summary` with `fit_gamma_gamma` when
            None, on the customers with frequency > 0 and monetary_value > 0.
        discount_rate, step: discounting of expected_spend (see `customer_lifetime_value`).
        penalizer: L2 penalty used when fitting.

    Returns:
        A copy of `summary` (same index and row order) with the added columns
        ``expected_purchases`` (over the horizon, undiscounted), ``p_alive``,
        ``expected_avg_spend`` (currency per future transaction) and ``expected_spend``
        (currency over the horizon, discounted if discount_rate > 0). The parameters used
        are in ``result.attrs["clv_params"]`` as {"bgnbd": {...}, "gamma_gamma": {...}}.
    """
    required = ["frequency", "recency", "T", "monetary_value"]
    missing = [column for column in required if column not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks column(s) {missing}; expected {required}")
    clash = [column for column in SCORE_COLUMNS if column in summary.columns]
    if clash:
        raise ValueError(f"summary already has output column(s) {clash}")
    if not (np.isfinite(discount_rate) and discount_rate >= 0):
        raise ValueError(f"discount_rate must be finite and >= 0, got {discount_rate}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be finite and > 0, got {step}")
    x = summary["frequency"].to_numpy(dtype=float)
    t_x = summary["recency"].to_numpy(dtype=float)
    age = summary["T"].to_numpy(dtype=float)
    m = summary["monetary_value"].to_numpy(dtype=float)
    _validate_rft(x, t_x, age)
    _validate_spend(x, m)
    if bgnbd_params is None:
        bgnbd_params = fit_bgnbd(x, t_x, age, penalizer=penalizer)
    if gamma_gamma_params is None:
        spenders = (x > 0) & (m > 0)
        gamma_gamma_params = fit_gamma_gamma(x[spenders], m[spenders], penalizer=penalizer)
    bgnbd_used = {key: float(bgnbd_params[key]) for key in BGNBD_KEYS}
    gg_used = {key: float(gamma_gamma_params[key]) for key in GAMMA_GAMMA_KEYS}
    purchases = np.asarray(bgnbd_expected_purchases(bgnbd_used, horizon, x, t_x, age),
                           dtype=float)
    spend = np.asarray(gamma_gamma_expected_spend(gg_used, x, m), dtype=float)
    discounted = _discounted_purchases(tuple(bgnbd_used.values()), x, t_x, age,
                                       float(horizon), discount_rate, step,
                                       undiscounted=purchases)
    result = summary.copy()
    result["expected_purchases"] = purchases
    result["p_alive"] = np.asarray(bgnbd_p_alive(bgnbd_used, x, t_x, age), dtype=float)
    result["expected_avg_spend"] = spend
    result["expected_spend"] = discounted * spend
    result.attrs["clv_params"] = {"bgnbd": bgnbd_used, "gamma_gamma": gg_used}
    return result
