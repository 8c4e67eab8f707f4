{{ config(materialized='table') }}

-- One row per cart event: features from the events of its session up to and
-- including the cart, the user's history before the session started, the
-- label "this user buys this product in the same session or within var
-- propensity_cart_horizon_hours of the cart", and the row's role in the
-- time split (docs block propensity_cart_rule).
{%- set horizon_hours = var('propensity_cart_horizon_hours') | int %}
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
        product_id,
        event_at
    from events
    where event_type = 'purchase'

),

user_sessions as (

    select
        session_id,
        session_started_at,
        session_ended_at,
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

),

cart_sessions as (

    select distinct session_id
    from events
    where event_type = 'cart'

),

session_events as (

    select events.*
    from events
    inner join cart_sessions
        on events.session_id = cart_sessions.session_id

),

-- Running counts over the session in event order: each row sees only the
-- events up to and including itself.
positioned as (

    select
        event_id,
        session_id,
        user_id,
        product_id,
        event_type,
        event_at,
        price,
        category_l1,
        brand,
        row_number() over session_so_far as session_events_so_far,
        sum(case when event_type = 'view' then 1 else 0 end)
            over session_so_far as session_views_so_far,
        sum(case when event_type = 'cart' then 1 else 0 end)
            over session_so_far as session_carts_so_far,
        sum(case when event_type = 'remove_from_cart' then 1 else 0 end)
            over session_so_far as session_removes_so_far,
        sum(case when event_type = 'purchase' then 1 else 0 end)
            over session_so_far as session_purchases_so_far,
        sum(case when event_type = 'view' then 1 else 0 end)
            over product_so_far as product_views_so_far,
        sum(case when event_type = 'cart' then 1 else 0 end)
            over product_so_far as product_carts_so_far,
        max(price) over session_so_far as session_max_price_so_far
    from session_events
    window
        session_so_far as (
            partition by session_id
            order by event_number_in_raw_session asc
            rows between unbounded preceding and current row
        ),
        product_so_far as (
            partition by session_id, product_id
            order by event_number_in_raw_session asc
            rows between unbounded preceding and current row
        )

),

carts as (

    select
        positioned.*,
        user_sessions.session_started_at,
        user_sessions.session_ended_at,
        user_sessions.user_prior_sessions,
        user_sessions.hours_since_previous_session
    from positioned
    inner join user_sessions
        on positioned.session_id = user_sessions.session_id
    where positioned.event_type = 'cart'

),

user_history as (

    select
        carts.event_id,
        count(purchases.event_at) as user_prior_purchases,
        count(distinct purchases.session_id) as user_prior_orders
    from carts
    left join purchases
        on
            carts.user_id = purchases.user_id
            and carts.session_started_at > purchases.event_at
    group by 1

),

labels as (

    select
        carts.event_id,
        count(purchases.event_at) > 0 as is_purchased_so_far,
        coalesce(
            bool_or(purchases.session_id = carts.session_id), false
        ) as is_purchased_in_session,
        min(purchases.event_at) as first_purchased_at
    from carts
    left join purchases
        on
            carts.user_id = purchases.user_id
            and carts.product_id = purchases.product_id
            and carts.event_at <= purchases.event_at
            and (
                {{ dbt.dateadd('hour', horizon_hours, 'carts.event_at') }}
                >= purchases.event_at
                or carts.session_id = purchases.session_id
            )
    group by 1

),

-- The label is known once the horizon has passed and the session has closed
-- (no event for session_inactivity_minutes after its last one).
timed as (

    select
        carts.*,
        user_history.user_prior_purchases,
        user_history.user_prior_orders,
        labels.is_purchased_so_far,
        labels.is_purchased_in_session,
        labels.first_purchased_at,
        bounds.data_end_at,
        bounds.cutoff_at,
        greatest(
            {{ dbt.dateadd('hour', horizon_hours, 'carts.event_at') }},
            {{ dbt.dateadd('minute', gap_minutes, 'carts.session_ended_at') }}
        ) as label_known_at
    from carts
    inner join user_history on carts.event_id = user_history.event_id
    inner join labels on carts.event_id = labels.event_id
    cross join bounds

),

final as (

    select
        event_id as cart_event_id,
        session_id,
        user_id,
        product_id,
        event_at as predicted_at,
        label_known_at,
        cast(event_at as date) as predicted_date,
        case
            when label_known_at <= cutoff_at then 'train'
            when
                event_at >= cutoff_at and label_known_at <= data_end_at
                then 'test'
            when label_known_at <= data_end_at then 'embargo'
            when is_purchased_so_far then 'converted_open'
            else 'score'
        end as ml_role,
        label_known_at <= data_end_at as is_label_complete,
        case
            when label_known_at <= data_end_at or is_purchased_so_far
                then is_purchased_so_far
        end as is_purchased,
        is_purchased_in_session,
        first_purchased_at,
        category_l1,
        brand is not null as has_brand,
        price,
        price / nullif(session_max_price_so_far, 0) as price_to_session_max,
        session_events_so_far,
        session_views_so_far,
        session_carts_so_far,
        session_removes_so_far,
        session_purchases_so_far,
        product_views_so_far,
        product_carts_so_far,
        {{ dbt.datediff('session_started_at', 'event_at', 'second') }}
            as seconds_since_session_start,
        user_prior_sessions,
        hours_since_previous_session,
        user_prior_purchases,
        user_prior_orders,
        extract(hour from event_at) as hour_of_day,
        data_end_at,
        cutoff_at
    from timed

)

select * from final
