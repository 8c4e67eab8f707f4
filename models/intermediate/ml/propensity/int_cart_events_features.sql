{{ config(materialized='table') }}

-- One row per cart event: features from the events of its session up to and
-- including the cart, the user's history before the session started, the
-- label "this user buys this product in the same session or within var
-- propensity_cart_horizon_hours of the cart", and the row's role in the
-- time split (docs block propensity_cart_rule).
--
-- Each CTE reads only the columns and rows it needs from the events (a
-- shared `select *` of them would be materialised whole): the running counts
-- sort only the narrow events of sessions with a cart, once; the product
-- counts and the user history come from the carts and purchases alone.
{%- set horizon_hours = var('propensity_cart_horizon_hours') | int %}
{%- set gap_minutes = var('session_inactivity_minutes') | int %}
with sessions as (

    select * from {{ ref('fct_sessions') }}

),

bounds as (

    {{ propensity_bounds() }}

),

cart_events as (

    select
        event_id,
        session_id,
        user_id,
        product_id,
        event_at,
        price,
        category_l1,
        brand,
        event_number_in_raw_session
    from {{ ref('int_events_sessionized') }}
    where event_type = 'cart'

),

purchases as (

    select
        session_id,
        user_id,
        product_id,
        event_at
    from {{ ref('int_events_sessionized') }}
    where event_type = 'purchase'

),

-- Only users with a cart get rows; each keeps all their sessions.
user_sessions as (

    select
        session_id,
        session_started_at,
        session_ended_at,
        {{ propensity_session_history_columns() }}
    from sessions
    where user_id in (select cart_events.user_id from cart_events)

),

cart_session_events as (

    select
        session_id,
        product_id,
        event_type,
        price,
        event_number_in_raw_session
    from {{ ref('int_events_sessionized') }}
    where session_id in (select cart_events.session_id from cart_events)

),

-- Running counts over the session in event order: each cart sees only the
-- events up to and including itself.
session_so_far as (

    select
        session_id,
        event_type,
        event_number_in_raw_session,
        row_number() over session_so_far as session_events_so_far,
        sum(case when event_type = 'view' then 1 else 0 end)
            over session_so_far as session_views_so_far,
        sum(case when event_type = 'cart' then 1 else 0 end)
            over session_so_far as session_carts_so_far,
        sum(case when event_type = 'remove_from_cart' then 1 else 0 end)
            over session_so_far as session_removes_so_far,
        sum(case when event_type = 'purchase' then 1 else 0 end)
            over session_so_far as session_purchases_so_far,
        max(price) over session_so_far as session_max_price_so_far
    from cart_session_events
    window
        session_so_far as (
            partition by session_id
            order by event_number_in_raw_session asc
            rows between unbounded preceding and current row
        )
    qualify event_type = 'cart'

),

-- The same product's views and carts in the session up to the cart: a join
-- of each cart to the few events of its product, not a second sort.
product_so_far as (

    select
        cart_events.event_id,
        sum(case when cart_session_events.event_type = 'view' then 1 else 0 end)
            as product_views_so_far,
        sum(case when cart_session_events.event_type = 'cart' then 1 else 0 end)
            as product_carts_so_far
    from cart_events
    inner join cart_session_events
        on
            cart_events.session_id = cart_session_events.session_id
            and cart_events.product_id
            is not distinct from cart_session_events.product_id
            and cart_events.event_number_in_raw_session
            >= cart_session_events.event_number_in_raw_session
    where cart_session_events.event_type in ('view', 'cart')
    group by 1

),

carts as (

    select
        cart_events.*,
        session_so_far.session_events_so_far,
        session_so_far.session_views_so_far,
        session_so_far.session_carts_so_far,
        session_so_far.session_removes_so_far,
        session_so_far.session_purchases_so_far,
        session_so_far.session_max_price_so_far,
        product_so_far.product_views_so_far,
        product_so_far.product_carts_so_far,
        user_sessions.session_started_at,
        user_sessions.session_ended_at,
        user_sessions.user_prior_sessions,
        user_sessions.hours_since_previous_session
    from cart_events
    inner join session_so_far
        on
            cart_events.session_id = session_so_far.session_id
            and cart_events.event_number_in_raw_session
            = session_so_far.event_number_in_raw_session
    inner join product_so_far
        on cart_events.event_id = product_so_far.event_id
    inner join user_sessions
        on cart_events.session_id = user_sessions.session_id

),

user_history as (

    {{ propensity_user_history('carts', 'event_id') }}

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
                then 'validation'
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
