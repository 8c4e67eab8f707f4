{{ config(materialized='table') }}

-- One row per session with at least k = var propensity_session_prefix_events
-- events before its first purchase: features of its first k events (the
-- prediction point is the k-th event), the user's history before the session
-- started, the label "the session purchases", and the row's role in the time
-- split (docs block propensity_session_rule).
--
-- Each CTE reads only the columns and rows it needs from the events (a
-- shared `select *` of them would be materialised whole): only the first k
-- events of each session are read past the scan, with no join or sort of
-- all the events.
{%- set k = var('propensity_session_prefix_events') | int %}
{%- set ranks = range(1, k + 1) %}
{#- The values whose distinct count over the first k events is a feature. #}
{%- set distinct_values = {
    'products': 'product_id',
    'carted_products': "case when event_type = 'cart' then product_id end",
    'categories': "coalesce(category_l1, 'unknown')",
    'brands': 'brand',
} %}
{%- set gap_minutes = var('session_inactivity_minutes') | int %}
with sessions as (

    select * from {{ ref('fct_sessions') }}

),

bounds as (

    {{ propensity_bounds() }}

),

purchases as (

    select
        session_id,
        user_id,
        event_at
    from {{ ref('int_events_sessionized') }}
    where event_type = 'purchase'

),

-- Every earlier session of the user is history, whatever its length; only
-- the sessions with at least k events get a row.
user_session_history as (

    select
        session_id,
        user_id,
        session_started_at,
        session_ended_at,
        has_purchase,
        events,
        {{ propensity_session_history_columns() }}
    from sessions

),

user_sessions as (

    select * exclude (events)
    from user_session_history
    where events >= {{ k }}

),

-- The first k events of the sessions with at least k events (filtered in
-- each scan, where the join filter skips the other sessions' rows). A
-- session is a contiguous run of its raw session id's events, numbered from
-- 1 in the raw id, so an event's rank in its session is its number minus the
-- number of the session's first event (is_session_start) plus 1: the number
-- itself in a raw id's first session.
resplit_session_starts as (

    select
        session_id,
        event_number_in_raw_session as first_event_number
    from {{ ref('int_events_sessionized') }}
    where
        is_session_start
        and session_number > 1
        and session_id in (select user_sessions.session_id from user_sessions)

),

first_events as (

    select
        session_id,
        event_type,
        event_at,
        product_id,
        category_l1,
        brand,
        price,
        event_number_in_raw_session as event_rank
    from {{ ref('int_events_sessionized') }}
    where
        session_number = 1
        and event_number_in_raw_session <= {{ k }}
        and session_id in (select user_sessions.session_id from user_sessions)

    union all

    select
        resplit_events.session_id,
        resplit_events.event_type,
        resplit_events.event_at,
        resplit_events.product_id,
        resplit_events.category_l1,
        resplit_events.brand,
        resplit_events.price,
        resplit_events.event_number_in_raw_session
        - resplit_session_starts.first_event_number + 1 as event_rank
    from {{ ref('int_events_sessionized') }} as resplit_events
    inner join resplit_session_starts
        on resplit_events.session_id = resplit_session_starts.session_id
    where
        resplit_events.session_number > 1
        and resplit_events.event_number_in_raw_session
        < resplit_session_starts.first_event_number + {{ k }}

),

-- Sessions whose first k events hold no purchase (the session's first
-- purchase, if any, comes later). The products, carted products, categories
-- and brands of those events are laid out by rank, so each distinct count
-- compares k columns of one row instead of building a hash aggregate of its
-- own over all the events.
prefix_aggregated as (

    select
        session_id,
        max(event_at) as predicted_at,
        sum(case when event_type = 'view' then 1 else 0 end) as prefix_views,
        sum(case when event_type = 'cart' then 1 else 0 end) as prefix_carts,
        sum(
            case when event_type = 'remove_from_cart' then 1 else 0 end
        ) as prefix_removes,
        -- The mean as double sum / count, which avg() on this DECIMAL
        -- gives in some plans and not others (one ulp apart): stable.
        cast(sum(price) as double) / count(price) as prefix_mean_price,
        max(price) as prefix_max_price,
        min(price) as prefix_min_price,
        avg(case when category_l1 is null then 1.0 else 0.0 end)
            as prefix_unknown_category_share,
        avg(case when brand is null then 1.0 else 0.0 end)
            as prefix_unknown_brand_share,
        {%- for name, value in distinct_values.items() %}
            {%- for rank in ranks %}
                max(case when event_rank = {{ rank }} then {{ value }} end)
                    as {{ name }}_{{ rank }},
            {%- endfor %}
        {%- endfor %}
        max(case when event_rank = 1 then category_l1 end)
            as first_category_l1
    from first_events
    group by 1
    having
        count(*) = {{ k }}
        and count(*) filter (where event_type = 'purchase') = 0

),

prefix_sessions as (

    select
        prefix_aggregated.session_id,
        prefix_aggregated.predicted_at,
        prefix_aggregated.prefix_views,
        prefix_aggregated.prefix_carts,
        prefix_aggregated.prefix_removes,
        {%- for name in distinct_values %}
            {%- set by_rank = [] %}
            {%- for rank in ranks %}
                {%- do by_rank.append(
                    'prefix_aggregated.' ~ name ~ '_' ~ rank
                ) %}
            {%- endfor %}
            {{ distinct_count(by_rank) }} as prefix_distinct_{{ name }},
        {%- endfor %}
        prefix_aggregated.prefix_mean_price,
        prefix_aggregated.prefix_max_price,
        prefix_aggregated.prefix_min_price,
        prefix_aggregated.prefix_unknown_category_share,
        prefix_aggregated.prefix_unknown_brand_share,
        prefix_aggregated.first_category_l1,
        user_sessions.user_id,
        user_sessions.session_started_at,
        user_sessions.session_ended_at,
        user_sessions.has_purchase,
        user_sessions.user_prior_sessions,
        user_sessions.hours_since_previous_session
    from prefix_aggregated
    inner join user_sessions
        on prefix_aggregated.session_id = user_sessions.session_id

),

user_history as (

    {{ propensity_user_history('prefix_sessions', 'session_id') }}

),

-- The label (the session purchases) is known once the session has closed:
-- no event for session_inactivity_minutes after its last one.
timed as (

    select
        prefix_sessions.*,
        user_history.user_prior_purchases,
        user_history.user_prior_orders,
        bounds.data_end_at,
        bounds.cutoff_at,
        {{ dbt.dateadd(
            'minute', gap_minutes, 'prefix_sessions.session_ended_at'
        ) }} as label_known_at
    from prefix_sessions
    inner join user_history
        on prefix_sessions.session_id = user_history.session_id
    cross join bounds

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
                then 'validation'
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
