"""ml.relations: DuckDB relations into pandas with text keys."""
from __future__ import annotations

import duckdb

from ml.relations import to_frame


def test_uuid_columns_arrive_as_their_text_and_the_rest_as_df_gives_them() -> None:
    connection = duckdb.connect()
    relation = connection.sql(
        "select cast(md5(i::varchar) as uuid) as session_id, i as user_id, "
        "cast(null as uuid) as missing_id, i * 0.5 as price from range(3) as t(i)")
    frame = to_frame(relation)
    expected = relation.df()
    assert list(frame.columns) == list(expected.columns)
    assert frame["session_id"].tolist() == [str(u) for u in expected["session_id"]]
    assert frame["session_id"].iloc[0] == "cfcd2084-95d5-65ef-66e7-dff9f98764da"  # md5('0')
    assert frame["missing_id"].isna().all()
    assert frame["user_id"].tolist() == expected["user_id"].tolist()
    assert frame["price"].tolist() == expected["price"].tolist()
