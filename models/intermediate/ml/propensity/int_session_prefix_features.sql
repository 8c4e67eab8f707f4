{{ config(materialized='table') }}

-- One row per session with at least k = var propensity_session_prefix_events
-- events before its first purchase: features of its first k events (the
-- prediction point is the k-th event), the user's history before the session
-- started, the label "the session purchases", and the row's role in the time
-- split (docs block propensity_session_rule).
{%- set k = var('propensity_session_prefix_events') | int %}
{%- set gap_minutes = var('session_inactivity_minutes') | int %}
{%- set test_days = var('ml_label_horizon_days') | int %}
{%- set cutoff = var('ml_cutoff_date') %}
with events as (

    select * from {{ ref('int_events_sessionized') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

bounds as (

    select
        max(event_at) as data_end_at,
        {% if cutoff is none -%}
            cast(
                {{ dbt.dateadd('day', -test_days, 'max(event_date)') }}
                as timestamp
            )
        {%- else -%}
            cast('{{ cutoff }}' as timestamp)
        {%- endif %} as cutoff_at
    from events

),

purchases as (

    select
        session_id,
        user_id,
        event_at
    from events
    where event_type = 'purchase'

),

user_sessions as (

    select
        session_id,
        user_id,
        session_started_at,
        session_ended_at,
        has_purchase,
        row_number() over (
            partition by user_id
            order by session_started_at asc, session_id asc
        ) - 1 as user_prior_sessions,
        {{ dbt.datediff(
            'lag(session_started_at) over (
                partition by user_id
                order by session_started_at asc, session_id asc
            )',
            'session_started_at',
            'second',
        ) }} / 3600.0 as hours_since_previous_session
    from sessions
    where events >= {{ k }}

),

-- A session is a contiguous run of its raw session id's events, so an
-- event's rank in its session is its rank in the raw id minus the session's
-- first rank: an aggregate and a join instead of another sort of the events.
session_first_events as (

    select
        events.session_id,
        min(events.event_number_in_raw_session) as first_event_number
    from events
    inner join user_sessions
        on events.session_id = user_sessions.session_id
    group by 1

),

ranked as (

    select
        events.session_id,
        events.event_type,
        events.event_at,
        events.product_id,
        events.category_l1,
        events.brand,
        events.price,
        events.event_number_in_raw_session
        - session_first_events.first_event_number + 1 as event_rank
    from events
    inner join session_first_events
        on events.session_id = session_first_events.session_id

),

first_purchases as (

    select
        session_id,
        min(event_rank) as first_purchase_rank
    from ranked
    where event_type = 'purchase'
    group by 1

),

-- The first k events of sessions whose first purchase (if any) comes later.
prefix_events as (

    select ranked.*
    from ranked
    left join first_purchases
        on ranked.session_id = first_purchases.session_id
    where
        ranked.event_rank <= {{ k }}
        and coalesce(first_purchases.first_purchase_rank, {{ k + 1 }})
        > {{ k }}

),

prefix_aggregated as (

    select
        session_id,
        count(*) as prefix_events,
        max(event_at) as predicted_at,
        sum(case when event_type = 'view' then 1 else 0 end) as prefix_views,
        sum(case when event_type = 'cart' then 1 else 0 end) as prefix_carts,
        sum(
            case when event_type = 'remove_from_cart' then 1 else 0 end
        ) as prefix_removes,
        count(distinct product_id) as prefix_distinct_products,
        count(distinct case when event_type = 'cart' then product_id end)
            as prefix_distinct_carted_products,
        count(distinct coalesce(category_l1, 'unknown'))
            as prefix_distinct_categories,
        count(distinct brand) as prefix_distinct_brands,
        avg(price) as prefix_mean_price,
        max(price) as prefix_max_price,
        min(price) as prefix_min_price,
        avg(case when category_l1 is null then 1.0 else 0.0 end)
            as prefix_unknown_category_share,
        avg(case when brand is null then 1.0 else 0.0 end)
            as prefix_unknown_brand_share,
        max(case when event_rank = 1 then category_l1 end)
            as first_category_l1
    from prefix_events
    group by 1

),

user_history as (

    select
        user_sessions.session_id,
        count(purchases.event_at) as user_prior_purchases,
        count(distinct purchases.session_id) as user_prior_orders
    from user_sessions
    inner join prefix_aggregated
        on user_sessions.session_id = prefix_aggregated.session_id
    left join purchases
        on
            user_sessions.user_id = purchases.user_id
            and user_sessions.session_started_at > purchases.event_at
    group by 1

),

-- The label (the session purchases) is known once the session has closed:
-- no event for session_inactivity_minutes after its last one.
timed as (

    select
        prefix_aggregated.*,
        user_sessions.user_id,
        user_sessions.session_started_at,
        user_sessions.has_purchase,
        user_sessions.user_prior_sessions,
        user_sessions.hours_since_previous_session,
        user_history.user_prior_purchases,
        user_history.user_prior_orders,
        bounds.data_end_at,
        bounds.cutoff_at,
        {{ dbt.dateadd(
            'minute', gap_minutes, 'user_sessions.session_ended_at'
        ) }} as label_known_at
    from prefix_aggregated
    inner join user_sessions
        on prefix_aggregated.session_id = user_sessions.session_id
    inner join user_history
        on prefix_aggregated.session_id = user_history.session_id
    cross join bounds
    where prefix_aggregated.prefix_events = {{ k }}

),

final as (

    select
        session_id,
        user_id,
        predicted_at,
        label_known_at,
        cast(predicted_at as date) as predicted_date,
        case
            when label_known_at <= cutoff_at then 'train'
            when
                predicted_at >= cutoff_at and label_known_at <= data_end_at
                then 'test'
            when label_known_at <= data_end_at then 'embargo'
            when has_purchase then 'converted_open'
            else 'score'
        end as ml_role,
        label_known_at <= data_end_at as is_label_complete,
        case
            when label_known_at <= data_end_at or has_purchase
                then has_purchase
        end as is_purchased,
        {{ k }} as prefix_events,
        first_category_l1,
        prefix_views,
        prefix_carts,
        prefix_removes,
        prefix_distinct_products,
        prefix_distinct_carted_products,
        prefix_distinct_categories,
        prefix_distinct_brands,
        prefix_mean_price,
        prefix_max_price,
        prefix_min_price,
        prefix_unknown_category_share,
        prefix_unknown_brand_share,
        {{ dbt.datediff('session_started_at', 'predicted_at', 'second') }}
            as seconds_to_prediction,
        user_prior_sessions,
        hours_since_previous_session,
        user_prior_purchases,
        user_prior_orders,
        extract(hour from session_started_at) as hour_of_day,
        data_end_at,
        cutoff_at
    from timed

)

select * from final
