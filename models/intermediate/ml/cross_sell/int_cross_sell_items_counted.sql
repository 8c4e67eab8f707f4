{{ config(materialized='table') }}

-- One row per mining window x basket level x item: the sessions whose basket
-- holds the item, out of the window's basket sessions, and its popularity
-- rank (the popularity baseline recommends the top items). Windows: 'train'
-- (the train split, rules evaluated on the test split) and 'full' (every
-- session, the rules published in rpt_cross_sell_rules). Oversized baskets
-- are left out (see int_cross_sell_baskets).
with baskets as (

    select * from {{ ref('int_cross_sell_baskets') }}

),

windowed as (

    select
        'train' as mining_window,
        *
    from baskets
    where split = 'train' and not is_oversized
    union all
    select
        'full' as mining_window,
        *
    from baskets
    where not is_oversized

),

window_sessions as (

    select
        mining_window,
        min(session_date) as window_start_date,
        max(session_date) + 1 as window_end_date,
        count(distinct session_id) as n_sessions
    from windowed
    group by 1

),

item_sessions as (

    select
        mining_window,
        basket_level,
        item_id,
        any_value(item_label) as item_label,
        count(*) as item_sessions
    from windowed
    group by 1, 2, 3

),

final as (

    select
        item_sessions.mining_window,
        item_sessions.basket_level,
        item_sessions.item_id,
        item_sessions.item_label,
        cast(item_sessions.item_sessions as integer) as item_sessions,
        cast(window_sessions.n_sessions as integer) as n_sessions,
        item_sessions.item_sessions
        / window_sessions.n_sessions as item_support,
        cast(row_number() over (
            partition by item_sessions.mining_window, item_sessions.basket_level
            order by item_sessions.item_sessions desc, item_sessions.item_id asc
        ) as integer) as popularity_rank,
        window_sessions.window_start_date,
        window_sessions.window_end_date
    from item_sessions
    inner join window_sessions
        on item_sessions.mining_window = window_sessions.mining_window

)

select * from final
