{{ config(materialized='table') }}

-- Item-item collaborative filtering: for each product, its top
-- var recs_neighbours co-interacted products by cosine similarity of
-- session co-occurrence (docs block recommend_item_cf), computed for two
-- windows in one self-join of the sessions: `validation_train` (days before
-- the validation day, where the blend is chosen) and `full` (every day), for
-- production. Sessions keep at most var recs_max_items_per_session products
-- (strongest interaction first, then most recent), which bounds the
-- self-join; they are joined on a 64-bit hash of the session id.
-- Co-occurrence is symmetric, so each pair is counted once (product_id <
-- neighbour_product_id) and read from both ends. Only the pairs at or above a
-- product's floor (its var recs_neighbours-th best similarity, from a top-n
-- aggregate) are sorted: any pair ranked above a kept neighbour is at least
-- as similar, so the ranks are those of sorting all of the product's pairs
-- (macro recommend_item_neighbours, shared with the evaluation's windows).
{{ recommend_item_neighbours(
    ref('int_recommend_windows'),
    [{'role': 'validation_train', 'labels': 'validation_test',
      'end': 'validation_date'}],
    with_full=true
) }}
