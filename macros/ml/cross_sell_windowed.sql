{#
    Cross-sell item counts and pairwise rules per mining window, written once
    for production (int_cross_sell_items_counted / _rules_mined: `train`,
    the sessions before the validation split, and `full`) and for the
    rolling-origin evaluation (int_cross_sell_evaluation_*, tag ml_evaluation:
    the sessions before the validation window and before each test window).

    `windows_sql` is a select of (mining_window, mine_before_date): a window
    mines the basket sessions dated before mine_before_date, every session
    when it is NULL.
#}

{% macro cross_sell_items_counted(windows_sql) -%}
with baskets as (

    select * from {{ ref('int_cross_sell_baskets') }}

),

mining_windows as (

    {{ windows_sql }}

),

windowed as (

    -- a window mines the sessions before its mine_before_date (every session
    -- when it is NULL)
    select
        mining_windows.mining_window,
        baskets.*
    from baskets
    inner join mining_windows
        on
            mining_windows.mine_before_date is null
            or baskets.session_date < mining_windows.mine_before_date
    where not baskets.is_oversized

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
{%- endmacro %}


{% macro cross_sell_rules_mined(items_relation, windows_sql) -%}
with baskets as (

    select * from {{ ref('int_cross_sell_baskets') }}

),

items as (

    select * from {{ items_relation }}

),

mining_windows as (

    {{ windows_sql }}

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
        min_counts.min_sessions,
        mining_windows.mine_before_date
    from items
    inner join min_counts
        on items.mining_window = min_counts.mining_window
    inner join mining_windows
        on items.mining_window = mining_windows.mining_window
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
                frequent_items.mine_before_date is null
                or baskets.session_date < frequent_items.mine_before_date
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
{%- endmacro %}


{#
    Production's mining windows: `train` (the sessions before the last var
    cross_sell_test_days days, the validation split) and `full`.
#}
{% macro cross_sell_production_windows() -%}
    select
        'train' as mining_window,
        min(session_date) filter (where split = 'test') as mine_before_date
    from {{ ref('int_cross_sell_baskets') }}
    union all
    select
        'full' as mining_window,
        cast(null as date) as mine_before_date
{%- endmacro %}


{#  The evaluation's mining windows, from int_cross_sell_evaluation_windows. #}
{% macro cross_sell_evaluation_windows() -%}
    select
        mining_window,
        start_date as mine_before_date
    from {{ ref('int_cross_sell_evaluation_windows') }}
{%- endmacro %}


{#
    The cross-sell evaluation's windows as rows (mining_window, start_date,
    end_date) from a relation with last_date: var ml_evaluation_cutoffs test
    windows `test_<i>` of var ml_evaluation_step_days days, the last ending
    with last_date, and the `validation` window of var cross_sell_test_days
    days before the first.
#}
{% macro cross_sell_evaluation_window_rows(bounds) -%}
    {%- set n_cutoffs = var('ml_evaluation_cutoffs') | int -%}
    {%- set step = var('ml_evaluation_step_days') | int -%}
    {%- set validation_days = var('cross_sell_test_days') | int -%}
    {%- for i in range(1, n_cutoffs + 1) %}
    select
        'test_{{ i }}' as mining_window,
        cast({{ dbt.dateadd('day', 1 - step * (n_cutoffs - i + 1), 'last_date') }}
            as date) as start_date,
        cast({{ dbt.dateadd('day', 1 - step * (n_cutoffs - i), 'last_date') }}
            as date) as end_date
    from {{ bounds }}
    union all
    {%- endfor %}
    select
        'validation' as mining_window,
        cast({{ dbt.dateadd('day', 1 - step * n_cutoffs - validation_days,
                            'last_date') }} as date) as start_date,
        cast({{ dbt.dateadd('day', 1 - step * n_cutoffs, 'last_date') }}
            as date) as end_date
    from {{ bounds }}
{%- endmacro %}
