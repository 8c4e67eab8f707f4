{{ config(materialized='table') }}

-- One row per window x user x product the user interacted with (docs block
-- recommend_windows):
--   `train`: the evaluation users' interactions before the cutoff (their
--            history, recency-weighted to the cutoff);
--   `test`:  the same users' interactions on the cutoff day (the products
--            to find; weight = strongest interaction that day);
--   `validation_train`, `validation_test`: the same one day earlier, for the
--            validation users of validation_date (the blend is chosen there);
--   `full`:  the active users' whole history, recency-weighted to the day
--            after the last event (production).
-- Evaluation users of a day are users with an interaction on that day and at
-- least one before it; above var recs_max_eval_users they are a seeded
-- sample (by hash of user id and var ml_seed).
{%- set max_eval_users = var('recs_max_eval_users') | int %}
{%- set seed = var('ml_seed') | int %}
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with session_items as not materialized (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ ref('int_recommend_windows') }}

),

label_days as (

    -- the days whose interactions are to be found, with their window roles
    select
        'train' as history_role,
        'test' as label_role,
        cutoff_date as label_date
    from windows
    union all
    select
        'validation_train' as history_role,
        'validation_test' as label_role,
        validation_date as label_date
    from windows

),

label_day_users as (

    select distinct
        label_days.history_role,
        label_days.label_role,
        label_days.label_date,
        session_items.user_id
    from session_items
    inner join label_days
        on session_items.event_date = label_days.label_date

),

first_days as (

    select
        user_id,
        min(event_date) as first_event_date
    from session_items
    group by 1

),

eval_users as (

    select label_day_users.*
    from label_day_users
    inner join first_days
        on
            label_day_users.user_id = first_days.user_id
            and label_day_users.label_date > first_days.first_event_date
    qualify
        row_number() over (
            partition by label_day_users.label_role
            order by
                hash(label_day_users.user_id + {{ seed }}),
                label_day_users.user_id
        ) <= {{ max_eval_users }}

),

history_items as (

    select
        eval_users.history_role as window_role,
        session_items.user_id,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'eval_users.label_date'
            ) }}
        ) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join eval_users
        on
            session_items.user_id = eval_users.user_id
            and session_items.event_date < eval_users.label_date
    group by 1, 2, 3

),

label_items as (

    select
        eval_users.label_role as window_role,
        session_items.user_id,
        session_items.product_id,
        max(session_items.interaction_weight) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join eval_users
        on
            session_items.user_id = eval_users.user_id
            and session_items.event_date = eval_users.label_date
    group by 1, 2, 3

),

active_users as (

    select distinct session_items.user_id
    from session_items
    inner join windows
        on session_items.event_date >= windows.active_start_date

),

full_items as (

    select
        'full' as window_role,
        session_items.user_id,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'windows.as_of_date'
            ) }}
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

    select * from history_items
    union all
    select * from label_items
    union all
    select * from full_items

)

select * from final
