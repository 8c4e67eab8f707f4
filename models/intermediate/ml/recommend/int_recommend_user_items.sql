{{ config(materialized='table') }}

-- One row per window x user x product the user interacted with (docs block
-- recommend_windows):
--   `train`: the evaluation users' interactions before the cutoff (their
--            history, recency-weighted to the cutoff);
--   `test`:  the same users' interactions on the cutoff day (the products
--            to find; weight = strongest interaction that day);
--   `full`:  the active users' whole history, recency-weighted to the day
--            after the last event (production).
-- Evaluation users are users with an interaction on the cutoff day and at
-- least one before it; above var recs_max_eval_users they are a seeded
-- sample (by hash of user id and var ml_seed).
{%- set half_life = var('recs_half_life_days') | float %}
{%- set max_eval_users = var('recs_max_eval_users') | int %}
{%- set seed = var('ml_seed') | int %}
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with session_items as not materialized (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ ref('int_recommend_windows') }}

),

test_day_users as (

    select distinct session_items.user_id
    from session_items
    inner join windows
        on session_items.event_date = windows.cutoff_date

),

history_users as (

    select distinct session_items.user_id
    from session_items
    inner join windows
        on session_items.event_date < windows.cutoff_date

),

eval_users as (

    select test_day_users.user_id
    from test_day_users
    inner join history_users
        on test_day_users.user_id = history_users.user_id
    order by hash(test_day_users.user_id + {{ seed }}), test_day_users.user_id
    limit {{ max_eval_users }}

),

active_users as (

    select distinct session_items.user_id
    from session_items
    inner join windows
        on session_items.event_date >= windows.active_start_date

),

train_items as (

    select
        'train' as window_role,
        session_items.user_id,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * pow(
                0.5,
                {{ dbt.datediff(
                    'session_items.event_date', 'windows.cutoff_date', 'day'
                ) }} / {{ half_life }}
            )
        ) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join eval_users
        on session_items.user_id = eval_users.user_id
    inner join windows
        on session_items.event_date < windows.cutoff_date
    group by 1, 2, 3

),

test_items as (

    select
        'test' as window_role,
        session_items.user_id,
        session_items.product_id,
        max(session_items.interaction_weight) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join eval_users
        on session_items.user_id = eval_users.user_id
    inner join windows
        on session_items.event_date = windows.cutoff_date
    group by 1, 2, 3

),

full_items as (

    select
        'full' as window_role,
        session_items.user_id,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * pow(
                0.5,
                {{ dbt.datediff(
                    'session_items.event_date', 'windows.as_of_date', 'day'
                ) }} / {{ half_life }}
            )
        ) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join active_users
        on session_items.user_id = active_users.user_id
    cross join windows
    group by 1, 2, 3

),

final as (

    select * from train_items
    union all
    select * from test_items
    union all
    select * from full_items

)

select * from final
