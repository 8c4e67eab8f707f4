{{ config(materialized='table') }}

-- One row per mining window x basket level x pairwise rule antecedent ->
-- consequent (one item -> one item) over the session baskets: support,
-- confidence and lift (docs block cross_sell_rules). Bounded like Apriori's
-- first two passes: only items with at least the minimum support enter the
-- self-join, baskets above var cross_sell_max_basket_products are left out,
-- and a pair needs the minimum support itself. The minimum support in
-- sessions is the larger of var cross_sell_min_support x the window's basket
-- sessions and var cross_sell_min_pair_sessions.
with baskets as (

    select * from {{ ref('int_cross_sell_baskets') }}

),

items as (

    select * from {{ ref('int_cross_sell_items_counted') }}

),

min_counts as (

    select distinct
        mining_window,
        greatest(
            ceil({{ var('cross_sell_min_support') }} * n_sessions),
            {{ var('cross_sell_min_pair_sessions') | int }}
        ) as min_sessions
    from items

),

frequent_items as (

    select
        items.mining_window,
        items.basket_level,
        items.item_id,
        items.item_label,
        items.item_sessions,
        items.n_sessions,
        items.window_start_date,
        items.window_end_date,
        min_counts.min_sessions
    from items
    inner join min_counts
        on items.mining_window = min_counts.mining_window
    where items.item_sessions >= min_counts.min_sessions

),

frequent_basket_items as (

    select
        frequent_items.mining_window,
        baskets.basket_level,
        baskets.session_id,
        baskets.item_id
    from baskets
    inner join frequent_items
        on
            baskets.basket_level = frequent_items.basket_level
            and baskets.item_id = frequent_items.item_id
            and (
                frequent_items.mining_window = 'full'
                or baskets.split = frequent_items.mining_window
            )
    where not baskets.is_oversized

),

pairs as (

    select
        antecedents.mining_window,
        antecedents.basket_level,
        antecedents.item_id as antecedent_id,
        consequents.item_id as consequent_id,
        count(*) as pair_sessions
    from frequent_basket_items as antecedents
    inner join frequent_basket_items as consequents
        on
            antecedents.mining_window = consequents.mining_window
            and antecedents.basket_level = consequents.basket_level
            and antecedents.session_id = consequents.session_id
            and antecedents.item_id != consequents.item_id
    group by 1, 2, 3, 4

),

rules as (

    select
        pairs.mining_window,
        pairs.basket_level,
        pairs.antecedent_id,
        antecedents.item_label as antecedent_label,
        pairs.consequent_id,
        consequents.item_label as consequent_label,
        antecedents.n_sessions,
        antecedents.item_sessions as antecedent_sessions,
        consequents.item_sessions as consequent_sessions,
        pairs.pair_sessions,
        pairs.pair_sessions / antecedents.n_sessions as support,  -- noqa: RF04
        pairs.pair_sessions / antecedents.item_sessions as confidence,
        (pairs.pair_sessions / antecedents.item_sessions)
        / (consequents.item_sessions / antecedents.n_sessions) as lift,
        antecedents.window_start_date,
        antecedents.window_end_date
    from pairs
    inner join frequent_items as antecedents
        on
            pairs.mining_window = antecedents.mining_window
            and pairs.basket_level = antecedents.basket_level
            and pairs.antecedent_id = antecedents.item_id
    inner join frequent_items as consequents
        on
            pairs.mining_window = consequents.mining_window
            and pairs.basket_level = consequents.basket_level
            and pairs.consequent_id = consequents.item_id
    where
        pairs.pair_sessions >= antecedents.min_sessions
        and pairs.pair_sessions / antecedents.item_sessions
        >= {{ var('cross_sell_min_confidence') }}

),

final as (

    select
        mining_window,
        basket_level,
        antecedent_id,
        antecedent_label,
        consequent_id,
        consequent_label,
        cast(n_sessions as integer) as n_sessions,
        cast(antecedent_sessions as integer) as antecedent_sessions,
        cast(consequent_sessions as integer) as consequent_sessions,
        cast(pair_sessions as integer) as pair_sessions,
        support,
        confidence,
        lift,
        cast(row_number() over (
            partition by mining_window, basket_level, antecedent_id
            order by confidence desc, lift desc, consequent_id asc
        ) as integer) as rule_rank,
        window_start_date,
        window_end_date
    from rules

)

select * from final
