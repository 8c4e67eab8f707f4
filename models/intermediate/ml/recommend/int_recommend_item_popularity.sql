{{ config(materialized='table') }}

-- One row per window x catalogue product (every product in the events):
-- category, brand, price band and the product's popularity in the window,
-- the recency-weighted sum of its session interaction weights (docs block
-- recommend_popularity). Window `validation_train` counts the days before
-- the validation day, `full` every day; a product without interactions in a
-- window has popularity 0 and stays in the catalogue. One pass over the
-- interactions, grouped by product and user, counts every window (macro
-- recommend_item_popularity, shared with the evaluation's windows).
{{ recommend_item_popularity(
    ref('int_recommend_windows'),
    [{'role': 'validation_train', 'labels': 'validation_test',
      'end': 'validation_date'}],
    with_full=true
) }}
