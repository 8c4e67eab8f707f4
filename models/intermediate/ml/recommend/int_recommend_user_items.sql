{{ config(materialized='table') }}

-- One row per window x user x product the user interacted with (docs block
-- recommend_windows):
--   `validation_train`: the validation users' interactions before the
--            validation day (their history, recency-weighted to that day);
--   `validation_test`: the same users' interactions on the validation day
--            (the products to find; weight = strongest interaction that day);
--   `full`:  the active users' whole history, recency-weighted to the day
--            after the last event (production).
-- Validation users of a day are users with an interaction on that day and at
-- least one before it; above var recs_max_eval_users they are a seeded
-- sample (by hash of user id and var ml_seed). Macro recommend_user_items,
-- shared with the evaluation's windows.
{{ recommend_user_items(
    ref('int_recommend_windows'),
    [{'role': 'validation_train', 'labels': 'validation_test',
      'end': 'validation_date'}],
    with_full=true
) }}
