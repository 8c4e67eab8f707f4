"""ml.model_cards: one page per registry model, with its figures and documented purpose."""
from __future__ import annotations

import duckdb

from ml.model_cards import card_texts, write_cards


def test_every_model_in_the_registry_gets_a_card_with_purpose_and_figures(
        synth_warehouse, tmp_path) -> None:
    database = synth_warehouse.database
    manifest = synth_warehouse.target_dir / "manifest.json"
    pages = write_cards(database, manifest, tmp_path / "cards")
    with duckdb.connect(str(database), read_only=True) as con:
        models = {row[0] for row in con.sql(
            "select distinct model_name from ml_model_runs").fetchall()}
        trained = {row[0] for row in con.sql(
            "select distinct model_name from ml_model_runs "
            "where status = 'trained'").fetchall()}
    assert {page.stem for page in pages} == models
    index = (tmp_path / "cards" / "README.md").read_text()
    for page in pages:
        text = page.read_text()
        assert f"[{page.stem}]({page.name})" in index
        assert "_No purpose documented" not in text, f"{page.stem}: no meta.model_card"
        assert "## Known limits" in text and "_None documented._" not in text, page.stem
        if page.stem in trained:
            assert "### Metrics (" in text and "| **" in text, page.stem


def test_card_texts_come_from_the_yml_meta() -> None:
    manifest = {"nodes": {"model.x.ml_churn__training": {
        "original_file_path": "models/ml/churn/_ml_churn__models.yml",
        "config": {"meta": {"model_card": {"churn": {
            "purpose": "Who will stop buying.", "limits": ["Synthetic data only."]}}}}}}}
    assert card_texts(manifest)["churn"]["purpose"] == "Who will stop buying."
    assert card_texts(manifest)["churn"]["limits"] == ["Synthetic data only."]
