{{ config(materialized='table', tags=['ml_evaluation']) }}

-- The cross-sell evaluation's windows (docs block cross_sell_windows), one row
-- each: var ml_evaluation_cutoffs test windows `test_<i>` of var
-- ml_evaluation_step_days days, the last one ending with the last basket
-- session day, and before the first a `validation` window of var
-- cross_sell_test_days days (as long as production's). A window's rules are
-- mined on the basket sessions before its start_date.
with baskets as (

    select * from {{ ref('int_cross_sell_baskets') }}

),

bounds as (

    select
        min(session_date) as first_date,
        max(session_date) as last_date
    from baskets

),

windows as (

    {{ cross_sell_evaluation_window_rows('bounds') }}

),

final as (

    select
        windows.mining_window,
        bounds.first_date,
        windows.start_date,
        windows.end_date
    from windows
    cross join bounds

)

select * from final
