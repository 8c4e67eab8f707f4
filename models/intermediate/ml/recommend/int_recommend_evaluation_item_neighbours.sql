{{ config(materialized='table', tags=['ml_evaluation']) }}

-- int_recommend_item_neighbours for the rolling-origin evaluation's windows
-- (int_recommend_evaluation_windows): `validation_train`/`validation_test`
-- on the validation day and `train_<i>`/`test_<i>` for each test day, each
-- window's inputs strictly before its day. Same macro as production; tag
-- ml_evaluation, so the production build does not compute these windows.
{{ recommend_item_neighbours(
    ref('int_recommend_evaluation_windows'),
    recommend_evaluation_roles(),
    with_full=false
) }}
