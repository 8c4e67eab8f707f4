{{ config(materialized='table', tags=['ml_evaluation']) }}

-- int_cross_sell_items_counted for the evaluation's mining windows
-- (int_cross_sell_evaluation_windows): per window, the basket sessions before
-- its start. Same macro as production; tag ml_evaluation, so the production
-- build does not count them.
{{ cross_sell_items_counted(cross_sell_evaluation_windows()) }}
