{{ config(materialized='table') }}

-- One row per mining window x basket level x pairwise rule antecedent ->
-- consequent (one item -> one item) over the session baskets: support,
-- confidence and lift (docs block cross_sell_rules). Bounded like Apriori's
-- first two passes: only items with at least the minimum support enter the
-- self-join, baskets above var cross_sell_max_basket_products are left out,
-- and a pair needs the minimum support itself. The minimum support in
-- sessions is the larger of var cross_sell_min_support x the window's basket
-- sessions and var cross_sell_min_pair_sessions. Macro cross_sell_rules_mined,
-- shared with the evaluation's windows.
{{ cross_sell_rules_mined(
    ref('int_cross_sell_items_counted'), cross_sell_production_windows()
) }}
