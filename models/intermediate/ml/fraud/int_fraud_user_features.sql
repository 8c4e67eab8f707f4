{{ config(materialized='table') }}

-- One row per user seen in the events: the fraud behaviour features over the
-- whole observed history (first to last event). Rates are peaks over the
-- user's sessions (peak views in a clock minute) or over the user's events
-- (peak events in a clock hour, across sessions); purchase evidence is counted
-- per purchase line; session velocity is sessions per active day.
with session_features as (

    select * from {{ ref('int_fraud_session_features') }}

),

-- read twice or more: inlined, so DuckDB does not first copy the whole table
session_minutes as not materialized (

    select * from {{ ref('int_fraud_session_minutes_aggregated') }}

),

purchases as (

    select * from {{ ref('int_fraud_purchases_enriched') }}

),

user_hours as (

    select
        user_id,
        max(events) as peak_events_per_hour
    from (
        select
            user_id,
            {{ dbt.date_trunc('hour', 'minute_at') }} as hour_at,
            sum(events) as events
        from session_minutes
        group by 1, 2
    ) as hours
    group by 1

),

user_days as (

    select
        user_id,
        count(distinct cast(minute_at as date)) as active_days
    from session_minutes
    group by 1

),

user_purchases as (

    select
        user_id,
        count(distinct product_id) as distinct_products_purchased,
        count(*) filter (where is_cheap) as cheap_purchases,
        count(*) filter (where not is_viewed_before) as blind_purchases,
        count(*) filter (
            where abs_log_price_ratio
            >= ln({{ var('fraud_price_ratio_limit') }})
        ) as off_norm_purchases,
        max(abs_log_price_ratio) as max_abs_log_price_ratio,
        max(purchases_in_burst_window) as peak_purchase_burst
    from purchases
    group by 1

),

user_sessions as (

    select
        user_id,
        min(session_started_at) as first_seen_at,
        max(session_ended_at) as last_seen_at,
        count(*) as sessions,
        sum(events) as events,
        sum(views) as views,  -- noqa: RF04
        sum(purchases) as purchases,
        sum(revenue) as revenue,
        sum(active_minutes) as active_minutes,
        max(peak_views_per_minute) as peak_views_per_minute,
        sum(night_event_share * events) as night_events,
        count(*) filter (
            where users_sharing_raw_session > 1
        ) as shared_raw_sessions
    from session_features
    group by 1

),

final as (

    select
        user_sessions.user_id,
        user_sessions.first_seen_at,
        user_sessions.last_seen_at,
        cast(user_sessions.sessions as integer) as sessions,
        cast(user_days.active_days as integer) as active_days,
        cast(user_sessions.events as integer) as events,
        cast(user_sessions.views as integer) as views,  -- noqa: RF04
        cast(user_sessions.purchases as integer) as purchases,
        cast(user_sessions.revenue as decimal(18, 2)) as revenue,
        cast(user_sessions.active_minutes as integer) as active_minutes,
        cast(user_sessions.peak_views_per_minute as integer)
            as peak_views_per_minute,
        cast(user_sessions.views as double) / user_sessions.active_minutes
            as views_per_active_minute,
        cast(user_hours.peak_events_per_hour as integer)
            as peak_events_per_hour,
        cast(user_sessions.sessions as double) / user_days.active_days
            as sessions_per_active_day,
        user_sessions.night_events / user_sessions.events
            as night_event_share,
        cast(coalesce(user_purchases.blind_purchases, 0) as integer)
            as blind_purchases,
        case
            when user_sessions.purchases > 0
                then
                    cast(coalesce(user_purchases.blind_purchases, 0) as double)
                    / user_sessions.purchases
            else 0
        end as blind_purchase_share,
        cast(user_sessions.purchases as double)
        / greatest(user_sessions.views, 1) as purchases_per_view,
        cast(coalesce(user_purchases.off_norm_purchases, 0) as integer)
            as off_norm_purchases,
        coalesce(user_purchases.max_abs_log_price_ratio, 0)
            as max_abs_log_price_ratio,
        cast(coalesce(user_purchases.peak_purchase_burst, 0) as integer)
            as peak_purchase_burst,
        cast(
            coalesce(user_purchases.distinct_products_purchased, 0)
            as integer
        ) as distinct_products_purchased,
        case
            when user_sessions.purchases > 0
                then
                    cast(user_purchases.cheap_purchases as double)
                    / user_sessions.purchases
            else 0
        end as cheap_purchase_share,
        cast(user_sessions.shared_raw_sessions as integer)
            as shared_raw_sessions
    from user_sessions
    inner join user_hours
        on user_sessions.user_id = user_hours.user_id
    inner join user_days
        on user_sessions.user_id = user_days.user_id
    left join user_purchases
        on user_sessions.user_id = user_purchases.user_id

)

select * from final
