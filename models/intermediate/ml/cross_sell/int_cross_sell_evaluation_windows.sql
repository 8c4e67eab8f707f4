{{ config(materialized='table', tags=['ml_evaluation']) }}

-- The cross-sell evaluation's windows (docs block cross_sell_windows), one row
-- each: var ml_evaluation_cutoffs test windows `test_<i>` of var
-- ml_evaluation_step_days days, the last one ending with the last basket
-- session day, and before the first a `validation` window of var
-- cross_sell_test_days days (as long as production's). A window's rules are
-- mined on the basket sessions before its start_date.
{%- set n_cutoffs = var('ml_evaluation_cutoffs') | int %}
{%- set step = var('ml_evaluation_step_days') | int %}
{%- set validation_days = var('cross_sell_test_days') | int %}
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

    {%- for i in range(1, n_cutoffs + 1) %}
    select
        'test_{{ i }}' as mining_window,
        cast(
            {{ dbt.dateadd('day', 1 - step * (n_cutoffs - i + 1), 'last_date') }}
            as date
        ) as start_date,
        cast(
            {{ dbt.dateadd('day', 1 - step * (n_cutoffs - i), 'last_date') }}
            as date
        ) as end_date,
        first_date
    from bounds
    union all
    {%- endfor %}
    select
        'validation' as mining_window,
        cast(
            {{ dbt.dateadd('day', 1 - step * n_cutoffs - validation_days,
                           'last_date') }} as date
        ) as start_date,
        cast(
            {{ dbt.dateadd('day', 1 - step * n_cutoffs, 'last_date') }} as date
        ) as end_date,
        first_date
    from bounds

),

final as (

    select
        mining_window,
        first_date,
        start_date,
        end_date
    from windows

)

select * from final
