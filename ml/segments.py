"""Customer segmentation: K-Means on log-scaled, standardised RFM and behaviour features.

Input frames are rows of `int_customer_cluster_features` (one row per customer x
snapshot; features from the days before `snapshot_date`, the RFM named segment scored at
the snapshot, and on the ``test`` snapshot the spend of the `horizon_days` after it).

Fitting (`fit_clusters`): each feature of CLUSTER_FEATURES is log1p-transformed and
standardised (mean 0, sd 1 over the fitted customers); K-Means (k-means++, `n_init`
starts) is fitted for every k in `k_range` and k is the one with the highest silhouette.
The silhouette is O(n^2), so it is computed on one seeded subsample of at most
`silhouette_sample` customers, the same rows for every k. Above `max_fit_rows`
customers K-Means itself is fitted on a seeded subsample and assigns everyone (memory and
time stay bounded at a 67.5M-event month). Stability: K-Means with the chosen k is
refitted with `stability_seeds` other seeds; the adjusted Rand index of each refit's
labels against the chosen fit (all customers) is reported, mean and minimum.

Evaluation (`train_clusters`), a time split: the procedure runs on the ``test``
snapshot (features before the cutoff); its clusters are compared with the RFM named
segments of the same customers at the same date on how well they separate next-period
revenue (spend in [cutoff, cutoff + horizon), which no feature sees): eta^2 (between-group
share of the variance) of log1p(spend), eta^2 of spend, and Kruskal-Wallis epsilon^2
(H / (n - 1)). Production: K-Means with the same k and seed is refitted on the ``score``
snapshot, and each cluster gets a generated name from its mean recency, orders and spend.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy.stats import kruskal, rankdata
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score

from ml.drift import feature_drift
from ml.evaluation import (BOOTSTRAP_SAMPLES, InsufficientHistory, Resampler, compare,
                           require_history, rolling_cutoffs, train_or_skip)
from ml.registry import Metric, TrainingRun, Window

__all__ = [
    "CLUSTER_FEATURES", "RFM_BASELINE", "MIN_HISTORY_DAYS", "transform", "fit_clusters",
    "assign_clusters", "eta_squared", "epsilon_squared", "separation_metrics",
    "cluster_names", "train_clusters", "evaluate_clusters", "evaluate_clusters_or_skip",
    "score_clusters", "empty_clusters",
]

# Recency, frequency and monetary value, and three behaviour measures.
CLUSTER_FEATURES = ("recency_days", "orders", "monetary_total", "days_since_last_visit",
                    "sessions", "carts")
RFM_BASELINE = "rfm_segments"
# K-Means starts per fit. With 4, one reseed of the 600k-event test data fell into another
# local optimum (ARI 0.54 against the chosen fit); 10 found the same partition every time.
# Chosen after that test failed, on the validation snapshot's own stability (no label).
N_INIT = 10
# Days of purchases before the first evaluation cutoff (RFM needs some history).
MIN_HISTORY_DAYS = 14
_SEPARATION = ("eta2_log_next_revenue", "eta2_next_revenue", "epsilon2_next_revenue")


def transform(frame: pd.DataFrame, mean: np.ndarray | None = None,
              sd: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(standardised log1p features, mean, sd); mean and sd are fitted when not given.
    Negative values are an error (every feature is a count, days or money)."""
    raw = frame[list(CLUSTER_FEATURES)].astype(float).to_numpy()
    if np.isnan(raw).any():
        bad = [name for name, col in zip(CLUSTER_FEATURES, raw.T) if np.isnan(col).any()]
        raise ValueError(f"clustering features hold nulls: {bad}")
    if (raw < 0).any():
        bad = [name for name, col in zip(CLUSTER_FEATURES, raw.T) if (col < 0).any()]
        raise ValueError(f"clustering features hold negative values: {bad}")
    logged = np.log1p(raw)
    if mean is None:
        mean = logged.mean(axis=0)
        sd = logged.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
    return (logged - mean) / sd, mean, sd


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False)) if n > size else np.arange(n)


def _kmeans(x: np.ndarray, k: int, seed: int, n_init: int, max_fit_rows: int) -> KMeans:
    model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    return model.fit(x[_sample(len(x), max_fit_rows, seed)])


def fit_clusters(frame: pd.DataFrame, k_range: tuple[int, int], seed: int,
                 silhouette_sample: int = 2000, stability_seeds: int = 3, n_init: int = N_INIT,
                 max_fit_rows: int = 200_000) -> dict[str, Any]:
    """Choose k by silhouette and fit (see the module docstring).

    Returns {"k", "kmeans", "mean", "sd", "labels", "silhouettes" {k: value},
    "stability_ari" [per seed]}. Raises ValueError when there are fewer customers than
    the largest k asks for.
    """
    k_min, k_max = int(k_range[0]), int(k_range[1])
    if k_min < 2 or k_max < k_min:
        raise ValueError(f"k_range must be 2 <= min <= max, got {k_range}")
    if len(frame) < max(10 * k_max, 50):
        raise ValueError(f"{len(frame)} customers are too few to cluster into up to "
                         f"{k_max} groups (at least {max(10 * k_max, 50)} needed)")
    x, mean, sd = transform(frame)
    sub = _sample(len(x), silhouette_sample, seed + 1)
    fits, silhouettes = {}, {}
    for k in range(k_min, k_max + 1):
        fits[k] = _kmeans(x, k, seed, n_init, max_fit_rows)
        labels = fits[k].predict(x[sub])
        silhouettes[k] = (float(silhouette_score(x[sub], labels))
                          if len(set(labels)) > 1 else -1.0)
    k = max(silhouettes, key=lambda key: (silhouettes[key], -key))
    labels = fits[k].predict(x)
    ari = [float(adjusted_rand_score(
        labels, _kmeans(x, k, seed + 100 * (s + 1), n_init, max_fit_rows).predict(x)))
        for s in range(stability_seeds)]
    return {"k": k, "kmeans": fits[k], "mean": mean, "sd": sd, "labels": labels,
            "silhouettes": silhouettes, "stability_ari": ari}


def assign_clusters(model: Mapping[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """Cluster ids of `frame`'s rows under a fitted model (its own scaling)."""
    x, _, _ = transform(frame, model["mean"], model["sd"])
    return model["kmeans"].predict(x)


def eta_squared(values: np.ndarray, groups: np.ndarray) -> float:
    """Between-group share of the total variance of `values` (0..1; NaN if constant)."""
    values = np.asarray(values, dtype=float)
    frame = pd.DataFrame({"v": values, "g": np.asarray(groups)})
    total = ((values - values.mean()) ** 2).sum()
    if total == 0:
        return float("nan")
    stats = frame.groupby("g")["v"].agg(["size", "mean"])
    between = (stats["size"] * (stats["mean"] - values.mean()) ** 2).sum()
    return float(between / total)


def epsilon_squared(values: np.ndarray, groups: np.ndarray) -> float:
    """Kruskal-Wallis effect size H / (n - 1) (0..1); NaN with one group or no ties
    broken (all values equal)."""
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups)
    samples = [values[groups == g] for g in pd.unique(groups)]
    if len(samples) < 2 or np.all(values == values[0]):
        return float("nan")
    return float(kruskal(*samples).statistic / (len(values) - 1))


def cluster_names(frame: pd.DataFrame, labels: np.ndarray) -> dict[int, str]:
    """A name per cluster from its mean recency, orders and spend against everyone's:
    "<Recent|Cooling|Lapsed> <repeat|one-time> <high|mid|low>-spend buyers", each word
    from the cluster's mean standardised log feature (above +0.5 sd, below -0.5 sd, in
    between; repeat = mean orders of at least 1.5). Clusters whose words coincide are
    told apart by their browsing (more or fewer sessions than the other) and then by
    number."""
    x, _, _ = transform(frame)
    z = pd.DataFrame(x, columns=list(CLUSTER_FEATURES)).groupby(labels).mean()
    orders = frame["orders"].astype(float).groupby(labels).mean()

    def word(value: float, high: str, mid: str, low: str) -> str:
        return high if value > 0.5 else low if value < -0.5 else mid

    names = {}
    for cluster, row in z.iterrows():
        recency = word(row["recency_days"], "Lapsed", "Cooling", "Recent")
        frequency = "repeat" if orders[cluster] >= 1.5 else "one-time"
        spend = word(row["monetary_total"], "high", "mid", "low")
        names[int(cluster)] = f"{recency} {frequency} {spend}-spend buyers"
    by_name: dict[str, list[int]] = {}
    for cluster, name in names.items():
        by_name.setdefault(name, []).append(cluster)
    for name, clusters in by_name.items():
        if len(clusters) < 2:
            continue
        ordered = sorted(clusters, key=lambda c: -z.loc[c, "sessions"])
        for rank, cluster in enumerate(ordered):
            tag = ("frequent visitors" if rank == 0 else "rare visitors"
                   if rank == len(ordered) - 1 else f"visitors group {rank + 1}")
            names[cluster] = f"{name}, {tag}"
    return names


def _codes(groups: np.ndarray) -> np.ndarray:
    return pd.factorize(pd.Series(np.asarray(groups).astype(str)))[0]


def _eta_on_rows(values: np.ndarray, groups: np.ndarray) -> Callable[[np.ndarray], float]:
    """rows -> eta^2 of values[rows] by groups[rows] (O(n) with bincount)."""
    values = np.asarray(values, dtype=float)
    codes = _codes(groups)

    def statistic(rows: np.ndarray) -> float:
        v, g = values[rows], codes[rows]
        total = float(((v - v.mean()) ** 2).sum())
        if total <= 0:
            raise ValueError("next-period revenue is constant: eta^2 is undefined")
        sizes = np.bincount(g)
        sums = np.bincount(g, weights=v)
        inside = sizes > 0
        between = float((sums[inside] ** 2 / sizes[inside]).sum() - v.size * v.mean() ** 2)
        return between / total
    return statistic


def _epsilon_on_rows(values: np.ndarray,
                     groups: np.ndarray) -> Callable[[np.ndarray], float]:
    """rows -> Kruskal-Wallis H / (n - 1) with the tie correction (scipy's H)."""
    values = np.asarray(values, dtype=float)
    codes = _codes(groups)

    def statistic(rows: np.ndarray) -> float:
        v, g = values[rows], codes[rows]
        n = v.size
        sizes = np.bincount(g)
        if (sizes > 0).sum() < 2:
            raise ValueError("a single group: epsilon^2 is undefined")
        ranks = rankdata(v)
        sums = np.bincount(g, weights=ranks)
        inside = sizes > 0
        h = 12.0 / (n * (n + 1)) * float((sums[inside] ** 2 / sizes[inside]).sum()) \
            - 3.0 * (n + 1)
        ties = np.unique(v, return_counts=True)[1].astype(float)
        correction = 1.0 - float((ties ** 3 - ties).sum()) / (n ** 3 - n)
        if correction <= 0:
            raise ValueError("next-period revenue is constant: epsilon^2 is undefined")
        return h / correction / (n - 1)
    return statistic


def separation_metrics(spend: np.ndarray, clusters: np.ndarray, segments: np.ndarray,
                       resampler: Resampler, split: str,
                       cutoff: date | None = None) -> list[Metric]:
    """eta2_log_next_revenue (primary), eta2_next_revenue and epsilon2_next_revenue of
    the clusters beside the RFM segments, with customer-resampled intervals (one row
    per customer, so resampling rows resamples customers)."""
    spend = np.asarray(spend, dtype=float)
    statistics = {"eta2_log_next_revenue": (_eta_on_rows, np.log1p(spend)),
                  "eta2_next_revenue": (_eta_on_rows, spend),
                  "epsilon2_next_revenue": (_epsilon_on_rows, spend)}
    metrics: list[Metric] = []
    for name, (make, values) in statistics.items():
        metrics += compare(name, make(values, clusters),
                           {RFM_BASELINE: make(values, segments)}, resampler,
                           is_primary=name == "eta2_log_next_revenue", split=split,
                           cutoff=cutoff)
    return metrics


def _role(snapshots: pd.DataFrame, role: str) -> pd.DataFrame:
    rows = snapshots[snapshots["snapshot_role"] == role]
    return rows.sort_values("user_id", kind="stable").reset_index(drop=True)


def train_clusters(snapshots: pd.DataFrame, seed: int, k_range: tuple[int, int] = (3, 8),
                   horizon_days: int = 30, silhouette_sample: int = 2000,
                   stability_seeds: int = 3, max_fit_rows: int = 200_000,
                   n_samples: int = BOOTSTRAP_SAMPLES) -> TrainingRun:
    """The production run: the procedure on the validation snapshot (SQL snapshot_role
    ``test``, the latest one whose next-period revenue is complete), refitted on the
    score snapshot with the same k.

    k is chosen by silhouette on the snapshot's own features: unsupervised, no label is
    read. Metrics (split "validation", baseline ``rfm_segments`` = the RFM named segments
    of the same customers at the cutoff, customer-resampled intervals):
    eta2_log_next_revenue (primary), eta2_next_revenue,
    epsilon2_next_revenue, silhouette (the RFM segments' silhouette in the same feature
    space, same subsample, as baseline); stability_ari_mean and stability_ari_min
    (no baseline). Feature importance: each feature's eta^2 across the production
    clusters (standardised log scale), normalised to sum 1. The stored model holds the
    production K-Means, its scaling, the names and the features.
    """
    from threadpoolctl import threadpool_limits

    # One thread: faster than contended BLAS/OpenMP threads on frames of this size.
    with threadpool_limits(limits=1):
        return _train_clusters(snapshots, seed, k_range, horizon_days, silhouette_sample,
                               stability_seeds, max_fit_rows, n_samples)


def _require_customers(rows: pd.DataFrame, k_max: int, what: str) -> None:
    need = max(10 * int(k_max), 50)
    require_history(need, len(rows), unit=f"customers with a purchase before {what}",
                    detail=f"{need} to cluster into up to {k_max} groups")


def _train_clusters(snapshots: pd.DataFrame, seed: int, k_range: tuple[int, int],
                    horizon_days: int, silhouette_sample: int, stability_seeds: int,
                    max_fit_rows: int, n_samples: int) -> TrainingRun:
    test = _role(snapshots, "test")
    score = _role(snapshots, "score")
    _require_customers(test, k_range[1], "the validation snapshot")
    _require_customers(score, k_range[1], "the score snapshot")
    if not test["is_label_complete"].all():
        raise ValueError("the test snapshot's next-period revenue is incomplete")
    fitted = fit_clusters(test, k_range, seed, silhouette_sample, stability_seeds,
                          max_fit_rows=max_fit_rows)
    spend = test["label_spend"].astype(float).to_numpy()
    segments = test["rfm_segment"].fillna("unmapped").to_numpy()
    resampler = Resampler(len(test), n_samples=n_samples, seed=seed,
                          keys=test["user_id"].to_numpy())
    metrics = separation_metrics(spend, fitted["labels"], segments, resampler,
                                 "validation")
    x, _, _ = transform(test, fitted["mean"], fitted["sd"])
    sub = _sample(len(x), silhouette_sample, seed + 1)
    segment_silhouette = (float(silhouette_score(x[sub], segments[sub]))
                          if len(set(segments[sub])) > 1 else float("nan"))
    metrics += [
        Metric("silhouette", fitted["silhouettes"][fitted["k"]], RFM_BASELINE,
               segment_silhouette, split="validation"),
        Metric("stability_ari_mean", float(np.mean(fitted["stability_ari"])),
               split="validation"),
        Metric("stability_ari_min", float(np.min(fitted["stability_ari"])),
               split="validation"),
    ]

    k = fitted["k"]
    production = fit_clusters(score, (k, k), seed, silhouette_sample, stability_seeds=0,
                              max_fit_rows=max_fit_rows)
    names = cluster_names(score, production["labels"])
    x_score, _, _ = transform(score, production["mean"], production["sd"])
    importance = {name: eta_squared(x_score[:, j], production["labels"])
                  for j, name in enumerate(CLUSTER_FEATURES)}
    total = sum(importance.values()) or 1.0
    cutoff = pd.Timestamp(test["snapshot_date"].iloc[0]).date()
    return TrainingRun(
        model_name="customer_clusters",
        train_window=Window(None, cutoff),
        label_window=Window(cutoff, (pd.Timestamp(cutoff)
                                     + pd.Timedelta(days=horizon_days)).date()),
        n_train=len(test), n_test=len(test),
        params={"seed": seed, "k_range": list(k_range), "k": k, "n_init": N_INIT,
                "features": list(CLUSTER_FEATURES), "scaling": "log1p, standardised",
                "silhouette_sample": silhouette_sample, "max_fit_rows": max_fit_rows,
                "silhouettes": {str(key): value
                                for key, value in fitted["silhouettes"].items()},
                "stability_ari": fitted["stability_ari"],
                "rfm_segments_count": int(len(set(segments))),
                "horizon_days": horizon_days, "cutoff_date": str(cutoff),
                "chosen_on": "k by silhouette on the validation snapshot's features "
                             "(unsupervised, no label read)",
                "production_fit": "score snapshot (every customer to date), same k and seed",
                "production_customers": len(score), "resampled_unit": "customer"},
        metrics=metrics,
        drift=feature_drift(test, score, CLUSTER_FEATURES),
        feature_importance={name: value / total for name, value in importance.items()},
        model={"kmeans": production["kmeans"], "mean": production["mean"],
               "sd": production["sd"], "names": names, "features": list(CLUSTER_FEATURES)},
    )


def evaluate_clusters(snapshots: pd.DataFrame, seed: int, k_range: tuple[int, int],
                      horizon_days: int, step_days: int, n_cutoffs: int,
                      silhouette_sample: int = 2000, max_fit_rows: int = 200_000,
                      n_samples: int = BOOTSTRAP_SAMPLES) -> TrainingRun:
    """The evaluation run: at each test cutoff (rows of
    int_customer_cluster_evaluation_snapshots, one snapshot per `cutoff_number`), the
    procedure of the production run (k by silhouette and K-Means on the snapshot's
    features, all from before the cutoff) and the separation of the next `horizon_days`
    days' revenue beside the RFM segments, with customer-resampled intervals (split
    "test", one cutoff each)."""
    from threadpoolctl import threadpool_limits

    if snapshots.empty:
        raise InsufficientHistory(max(10 * int(k_range[1]), 50), 0,
                                  unit="customers with a purchase before the first "
                                       "evaluation cutoff")
    first = pd.Timestamp(snapshots["first_event_date"].min()).date()
    last = pd.Timestamp(snapshots["last_event_date"].max()).date()
    cutoffs = rolling_cutoffs(last + timedelta(days=1), horizon_days, step_days, n_cutoffs)
    require_history(MIN_HISTORY_DAYS + horizon_days + step_days * (n_cutoffs - 1),
                    (last - first).days + 1, detail=(
                        f"{MIN_HISTORY_DAYS} days of purchases before the first of "
                        f"{n_cutoffs} cutoffs {step_days} days apart, each followed by "
                        f"{horizon_days} days of revenue"))
    metrics: list[Metric] = []
    chosen: dict[str, Any] = {}
    n_customers = 0
    with threadpool_limits(limits=1):
        for number, cutoff in enumerate(cutoffs, start=1):
            rows = snapshots[snapshots["cutoff_number"] == number]
            rows = rows.sort_values("user_id", kind="stable").reset_index(drop=True)
            if pd.Timestamp(rows["snapshot_date"].iloc[0]).date() != cutoff:
                raise ValueError(f"snapshot {number} is not at the test cutoff {cutoff}")
            _require_customers(rows, k_range[1], f"the cutoff {cutoff}")
            if not rows["is_label_complete"].all():
                raise ValueError(f"the next-period revenue after {cutoff} is incomplete")
            fitted = fit_clusters(rows, k_range, seed, silhouette_sample,
                                  stability_seeds=0, max_fit_rows=max_fit_rows)
            resampler = Resampler(len(rows), n_samples=n_samples, seed=seed)
            metrics += separation_metrics(
                rows["label_spend"].astype(float).to_numpy(), fitted["labels"],
                rows["rfm_segment"].fillna("unmapped").to_numpy(), resampler, "test",
                cutoff)
            chosen[str(cutoff)] = {
                "k": fitted["k"], "customers": len(rows),
                "silhouettes": {str(k): v for k, v in fitted["silhouettes"].items()}}
            n_customers += len(rows)
    return TrainingRun(
        model_name="customer_clusters",
        train_window=Window(first, cutoffs[-1]),
        label_window=Window(cutoffs[0], cutoffs[-1] + timedelta(days=horizon_days)),
        n_train=n_customers, n_test=n_customers,
        params={"seed": seed, "k_range": list(k_range), "features": list(CLUSTER_FEATURES),
                "chosen_per_cutoff": chosen, "horizon_days": horizon_days,
                "step_days": step_days, "silhouette_sample": silhouette_sample,
                "max_fit_rows": max_fit_rows, "resampled_unit": "customer",
                "bootstrap_samples": n_samples},
        metrics=metrics, run_kind="evaluation")


def evaluate_clusters_or_skip(snapshots: pd.DataFrame, strict: bool = False,
                              **kwargs: Any) -> TrainingRun:
    """`evaluate_clusters`, or a skipped evaluation run on data too short for it."""
    return train_or_skip("customer_clusters", lambda: evaluate_clusters(snapshots, **kwargs),
                         strict=strict, run_kind="evaluation")


def empty_clusters() -> pd.DataFrame:
    """The columns and dtypes of `score_clusters` without rows (a skipped run)."""
    frame = pd.DataFrame({"user_id": pd.Series(dtype="int64"),
                          "as_of_date": pd.Series(dtype=object),
                          "cluster_id": pd.Series(dtype="int64"),
                          "cluster_name": pd.Series(dtype=object)})
    for name in CLUSTER_FEATURES:
        frame[name] = pd.Series(dtype=float if name == "monetary_total" else "int64")
    return frame


def score_clusters(model: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """One row per customer of `frame` (the score snapshot): cluster id and name and the
    raw features it was clustered on."""
    labels = assign_clusters(model, frame)
    out = pd.DataFrame({
        "user_id": frame["user_id"].to_numpy(),
        "as_of_date": pd.to_datetime(frame["snapshot_date"]).dt.date.to_numpy(),
        "cluster_id": labels.astype(int),
        "cluster_name": [model["names"][int(label)] for label in labels],
    })
    for name in CLUSTER_FEATURES:
        out[name] = frame[name].to_numpy()
    return out
