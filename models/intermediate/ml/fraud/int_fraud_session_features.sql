{{ config(materialized='table') }}

{%- set night_hours = var('fraud_night_hours_utc') %}

-- One row per session (fct_sessions grain) with the behaviour features the
-- fraud rules and the isolation forest read: rates (peak views in a clock
-- minute, views per active minute, peak events in a clock hour), purchase
-- evidence (purchases without a view, prices far from the norm, bursts,
-- cheap items) and whether the raw session id is shared by several users.
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with sessions as not materialized (

    select * from {{ ref('fct_sessions') }}

),

session_minutes as (

    select * from {{ ref('int_fraud_session_minutes_aggregated') }}

),

purchases as (

    select * from {{ ref('int_fraud_purchases_enriched') }}

),

-- The minutes roll up to clock hours and the hours to the session: one pass
-- over the session minutes gives both the minute and the hour rates.
session_hours as (

    select
        session_id,
        {{ dbt.date_trunc('hour', 'minute_at') }} as hour_at,
        sum(events) as events,
        max(views) as peak_views_per_minute,
        count(*) as active_minutes
    from session_minutes
    group by 1, 2

),

session_rates as (

    select
        session_id,
        max(peak_views_per_minute) as peak_views_per_minute,
        sum(active_minutes) as active_minutes,
        max(events) as peak_events_per_hour,
        sum(events) filter (
            where
            extract(hour from hour_at)
            in ({{ night_hours | join(', ') }})
        ) as night_events
    from session_hours
    group by 1

),

purchase_evidence as (

    select
        session_id,
        count(*) filter (where not is_viewed_before) as blind_purchases,
        count(*) filter (
            where abs_log_price_ratio
            >= ln({{ var('fraud_price_ratio_limit') }})
        ) as off_norm_purchases,
        max(abs_log_price_ratio) as max_abs_log_price_ratio,
        max(purchases_in_burst_window) as peak_purchase_burst,
        count(distinct product_id) as distinct_products_purchased,
        count(*) filter (where is_cheap) as cheap_purchases
    from purchases
    group by 1

),

raw_session_users as (

    select
        raw_session_id,
        count(distinct user_id) as users_sharing_raw_session
    from sessions
    group by 1

),

final as (

    select
        sessions.session_id,
        sessions.user_id,
        sessions.raw_session_id,
        sessions.session_started_at,
        sessions.session_ended_at,
        sessions.duration_seconds,
        sessions.events,
        sessions.views,  -- noqa: RF04
        sessions.purchases,
        sessions.revenue,
        cast(session_rates.active_minutes as integer) as active_minutes,
        cast(session_rates.peak_views_per_minute as integer)
            as peak_views_per_minute,
        cast(sessions.views as double) / session_rates.active_minutes
            as views_per_active_minute,
        cast(session_rates.peak_events_per_hour as integer)
            as peak_events_per_hour,
        coalesce(cast(session_rates.night_events as double), 0)
        / sessions.events as night_event_share,
        cast(coalesce(purchase_evidence.blind_purchases, 0) as integer)
            as blind_purchases,
        case
            when sessions.purchases > 0
                then
                    cast(purchase_evidence.blind_purchases as double)
                    / sessions.purchases
            else 0
        end as blind_purchase_share,
        cast(sessions.purchases as double)
        / greatest(sessions.views, 1) as purchases_per_view,
        cast(coalesce(purchase_evidence.off_norm_purchases, 0) as integer)
            as off_norm_purchases,
        coalesce(purchase_evidence.max_abs_log_price_ratio, 0)
            as max_abs_log_price_ratio,
        cast(coalesce(purchase_evidence.peak_purchase_burst, 0) as integer)
            as peak_purchase_burst,
        cast(
            coalesce(purchase_evidence.distinct_products_purchased, 0)
            as integer
        ) as distinct_products_purchased,
        case
            when sessions.purchases > 0
                then
                    cast(purchase_evidence.cheap_purchases as double)
                    / sessions.purchases
            else 0
        end as cheap_purchase_share,
        cast(raw_session_users.users_sharing_raw_session as integer)
            as users_sharing_raw_session,
        cast(
            raw_session_users.users_sharing_raw_session > 1 as integer
        ) as shared_raw_sessions
    from sessions
    inner join session_rates
        on sessions.session_id = session_rates.session_id
    left join purchase_evidence
        on sessions.session_id = purchase_evidence.session_id
    left join raw_session_users
        on sessions.raw_session_id = raw_session_users.raw_session_id

)

select * from final
