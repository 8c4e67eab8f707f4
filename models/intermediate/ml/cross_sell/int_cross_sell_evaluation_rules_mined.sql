{{ config(materialized='table', tags=['ml_evaluation']) }}

-- int_cross_sell_rules_mined for the evaluation's mining windows
-- (int_cross_sell_evaluation_windows): rules mined strictly before each
-- window's start. Same macro as production; tag ml_evaluation.
{{ cross_sell_rules_mined(
    ref('int_cross_sell_evaluation_items_counted'),
    cross_sell_evaluation_windows()
) }}
