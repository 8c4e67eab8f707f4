{{ config(materialized='table') }}

-- One row per mining window x basket level x item: the sessions whose basket
-- holds the item, out of the window's basket sessions, and its popularity
-- rank (the popularity baseline recommends the top items). Windows: 'train'
-- (the train split, rules evaluated on the test split) and 'full' (every
-- session, the rules published in rpt_cross_sell_rules). Oversized baskets
-- are left out (see int_cross_sell_baskets). Macro cross_sell_items_counted,
-- shared with the evaluation's windows.
{{ cross_sell_items_counted(cross_sell_production_windows()) }}
