"""Model cards from the registry: `python -m ml.model_cards [--database PATH] [--out DIR]`.

One Markdown page per model (`docs/models/<model>.md`) and an index, written from the
registry tables of a built warehouse (read-only) and the dbt manifest: what the model is
for, its windows, features, training rows, every metric per test cutoff with its interval
beside each baseline and the verdict, calibration, drift, and its known limits. Run after
`make build` (`make model-cards`); the committed pages come from the demo data.

Purpose and known limits are written once, in the training model's yml:
`meta: {model_card: {<model_name>: {purpose: ..., limits: [...]}}}`.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Iterable

import duckdb

DEFAULT_DATABASE = "warehouse/ecommerce.duckdb"
DEFAULT_MANIFEST = "target/manifest.json"
DEFAULT_OUT = "docs/models"

LATEST_RUNS_SQL = """
select *
from ml_model_runs
qualify row_number() over (
    partition by model_name, run_kind order by trained_at desc) = 1
order by model_name, run_kind
"""

METRICS_SQL = """
select metric, split, cutoff, value, ci_low, ci_high, baseline, baseline_value,
       baseline_ci_low, baseline_ci_high, diff, diff_ci_low, diff_ci_high, verdict,
       is_primary, higher_is_better, undefined_reason, n_units
from ml_model_metrics
where run_id = ?
order by is_primary desc, metric, split, cutoff, baseline
"""

IMPORTANCE_SQL = """
select feature, importance
from ml_feature_importance
where run_id = ?
order by importance_rank
"""

DRIFT_SQL = """
select task_name as task, feature, psi, mean_reference, mean_current, is_drifted
from ml_feature_drift
where run_id = ?
order by psi desc nulls last, task_name, feature
"""

CALIBRATION_SQL = """
select task_name as task, cutoff, stage, bin, n_rows, mean_predicted, observed_rate
from ml_model_calibration
where run_id = ?
order by task_name, cutoff, stage, bin
"""


def card_texts(manifest: dict) -> dict[str, dict[str, Any]]:
    """{model_name: {"purpose": str, "limits": [str]}} from the models' yml meta."""
    texts: dict[str, dict[str, Any]] = {}
    for node in manifest.get("nodes", {}).values():
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        for name, text in (meta.get("model_card") or {}).items():
            texts[name] = {"purpose": str(text.get("purpose", "")).strip(),
                           "limits": [str(x).strip() for x in text.get("limits", [])],
                           "source": node.get("original_file_path", "")}
    return texts


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _interval(low: Any, high: Any) -> str:
    return "" if low is None or high is None else f" [{_fmt(low)}, {_fmt(high)}]"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, run_id: str) -> list[dict[str, Any]]:
    relation = con.execute(sql, [run_id])
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row)) for row in relation.fetchall()]


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _metric_lines(metrics: list[dict[str, Any]]) -> list[str]:
    if not metrics:
        return ["No metrics recorded."]
    rows = []
    for m in metrics:
        value = (_fmt(m["value"]) + _interval(m["ci_low"], m["ci_high"])
                 if m["value"] is not None else f"NULL ({m['undefined_reason']})")
        baseline = ("" if m["baseline"] is None else
                    f"{m['baseline']}: " + (_fmt(m["baseline_value"]) + _interval(
                        m["baseline_ci_low"], m["baseline_ci_high"])
                        if m["baseline_value"] is not None else "NULL"))
        diff = ("" if m["diff"] is None else
                _fmt(m["diff"]) + _interval(m["diff_ci_low"], m["diff_ci_high"]))
        name = f"**{m['metric']}**" if m["is_primary"] else m["metric"]
        direction = "↑" if m["higher_is_better"] else "↓"
        rows.append([name + " " + direction, m["split"], str(m["cutoff"] or ""), value, baseline,
                     diff, m["verdict"] or "", _fmt(m["n_units"])])
    return _table(["metric", "split", "cutoff", "model [95% CI]", "baseline [95% CI]",
                   "model − baseline [95% CI]", "verdict", "units"], rows)


def render_card(model_name: str, runs: dict[str, dict[str, Any]], con, text: dict) -> str:
    """The Markdown card of `model_name` from its latest production and evaluation runs."""
    lines = [f"# Model card: `{model_name}`", ""]
    lines += [text.get("purpose") or "_No purpose documented (meta.model_card in the "
              "training model's yml)._", ""]
    lines += ["Generated by `python -m ml.model_cards` from the registry "
              "(`ml_model_runs`, `ml_model_metrics`, `ml_model_calibration`, "
              "`ml_feature_drift`, `ml_feature_importance`); the protocol is "
              "[docs/evaluation.md](../evaluation.md).", ""]
    for kind in ("production", "evaluation"):
        run = runs.get(kind)
        title = {"production": "Production run (scores published from it)",
                 "evaluation": "Evaluation run (rolling origin; the reported figures)"}[kind]
        lines += [f"## {title}", ""]
        if run is None:
            lines += ["Not built yet (`make evaluate` builds the evaluation)." if
                      kind == "evaluation" else "No production run.", ""]
            continue
        lines += [f"- status: **{run['status']}**"
                  + (f": {run['status_reason']}" if run["status_reason"] else ""),
                  f"- trained at {run['trained_at']:%Y-%m-%d %H:%M} UTC, run `{run['run_id']}`",
                  f"- features from {_fmt(run['train_start'])} to {_fmt(run['train_end'])}; "
                  f"labels {_fmt(run['label_start'])} to {_fmt(run['label_end'])}",
                  f"- training rows {run['n_train']:,}, evaluated rows {run['n_test']:,}", ""]
        params = json.loads(run["params_json"] or "{}")
        if params:
            shown = {k: v for k, v in params.items() if not isinstance(v, (list, dict))
                     or len(json.dumps(v)) < 300}
            lines += ["<details><summary>Parameters and choices</summary>", "", "```json",
                      json.dumps(shown, indent=1, sort_keys=True, default=str), "```", "",
                      "</details>", ""]
        if run["status"] != "trained":
            continue
        lines += [f"### Metrics ({kind})", ""]
        lines += _metric_lines(_rows(con, METRICS_SQL, run["run_id"])) + [""]
        calibration = _rows(con, CALIBRATION_SQL, run["run_id"])
        if calibration:
            lines += [f"### Calibration ({kind}): reliability tables", ""]
            lines += _table(["task", "cutoff", "stage", "bin", "rows", "mean predicted",
                             "observed rate"],
                            [[c["task"], _fmt(c["cutoff"]), c["stage"], c["bin"],
                              f"{c['n_rows']:,}", _fmt(c["mean_predicted"]),
                              _fmt(c["observed_rate"])] for c in calibration]) + [""]
        if kind == "production":
            importance = _rows(con, IMPORTANCE_SQL, run["run_id"])
            if importance:
                lines += ["### Features (importance in the production model)", ""]
                lines += _table(["feature", "importance"],
                                [[i["feature"], _fmt(i["importance"])]
                                 for i in importance]) + [""]
            drift = _rows(con, DRIFT_SQL, run["run_id"])
            lines += ["### Drift (training snapshot vs scoring snapshot)", ""]
            lines += (_table(["task", "feature", "PSI", "mean at training", "mean now",
                              "above 0.25"],
                             [[d["task"], d["feature"], _fmt(d["psi"]),
                               _fmt(d["mean_reference"]), _fmt(d["mean_current"]),
                               "yes" if d["is_drifted"] else ""] for d in drift])
                      if drift else ["Not measured for this model."]) + [""]
    lines += ["## Known limits", ""]
    lines += [f"- {limit}" for limit in text.get("limits", [])] or ["_None documented._"]
    return "\n".join(lines) + "\n"


SUMMARY_SQL = """
with latest as (
    select run_id, model_name, status, status_reason
    from ml_model_runs
    where run_kind = 'evaluation'
    qualify row_number() over (partition by model_name order by trained_at desc) = 1
)
select latest.model_name, latest.status, latest.status_reason, metrics.metric,
       metrics.cutoff, metrics.value, metrics.ci_low, metrics.ci_high, metrics.baseline,
       metrics.baseline_value, metrics.diff_ci_low, metrics.diff_ci_high, metrics.verdict,
       metrics.undefined_reason
from latest
left join ml_model_metrics as metrics
    on latest.run_id = metrics.run_id and metrics.is_primary and metrics.split = 'test'
order by 1, 4, 5, 9
"""


def summary_table(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The primary metric of every model's latest evaluation: the model's value and 95%
    interval at each test cutoff (oldest first), and each baseline's values with the
    verdict at each cutoff (the README's model table)."""
    relation = con.sql(SUMMARY_SQL)
    names = relation.columns
    grouped: dict[tuple, dict[Any, list[dict[str, Any]]]] = {}
    for values in relation.fetchall():
        r = dict(zip(names, values))
        grouped.setdefault((r["model_name"], r["metric"]), {}).setdefault(
            r["baseline"], []).append(r)
    rows = []
    for (model, metric), baselines in grouped.items():
        cutoffs = next(iter(baselines.values()))
        first = cutoffs[0]
        if first["status"] != "trained":
            rows.append([model, "", f"skipped: {first['status_reason']}", ""])
            continue
        value = " · ".join(
            _fmt(r["value"]) + _interval(r["ci_low"], r["ci_high"])
            if r["value"] is not None else "NULL" for r in cutoffs)
        where = ("pooled" if first["cutoff"] is None
                 else f"{cutoffs[0]['cutoff']:%m-%d} … {cutoffs[-1]['cutoff']:%m-%d}")
        against = "<br>".join(
            f"{name}: " + " · ".join(_fmt(r["baseline_value"]) for r in rs)
            + " (" + ", ".join(r["verdict"] or "—" for r in rs) + ")"
            for name, rs in baselines.items() if name is not None)
        rows.append([model, f"{metric} ({where})", value, against])
    return _table(["model", "primary metric (test cutoffs)", "model [95% CI] per cutoff",
                   "baselines per cutoff (verdict)"], rows)


def write_cards(database: Path, manifest_path: Path, out: Path) -> list[Path]:
    """Write one card per model in the registry and an index; returns the pages."""
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    texts = card_texts(manifest)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with duckdb.connect(str(database), read_only=True) as con:
        relation = con.sql(LATEST_RUNS_SQL)
        names = relation.columns
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        for row in relation.fetchall():
            record = dict(zip(names, row))
            runs.setdefault(record["model_name"], {})[record["run_kind"]] = record
        for model_name, by_kind in sorted(runs.items()):
            page = out / f"{model_name}.md"
            page.write_text(render_card(model_name, by_kind, con,
                                        texts.get(model_name, {})))
            written.append(page)
        summary = summary_table(con)
    index = ["# Model cards", "",
             "One page per model, generated from the registry by `make model-cards`.", ""]
    index += [f"- [{p.stem}]({p.name})" for p in written]
    index += ["", "## Primary metrics of the latest evaluation", "",
              "Each model's primary metric at each test cutoff beside each baseline, with "
              "95% paired-bootstrap intervals; the verdict reads the interval of the "
              "difference ([docs/evaluation.md](../evaluation.md)).", "", *summary]
    (out / "README.md").write_text("\n".join(index) + "\n")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", type=Path,
                        default=Path(os.environ.get("DUCKDB_PATH", DEFAULT_DATABASE)))
    parser.add_argument("--manifest", type=Path, default=Path(DEFAULT_MANIFEST))
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT))
    parser.add_argument("--summary", action="store_true",
                        help="print the primary-metric table only, write no page")
    args = parser.parse_args(argv)
    if args.summary:
        with duckdb.connect(str(args.database), read_only=True) as con:
            print("\n".join(summary_table(con)))
        return
    pages = write_cards(args.database, args.manifest, args.out)
    print(f"model cards: {len(pages)} page(s) in {args.out}/")


if __name__ == "__main__":
    main()
