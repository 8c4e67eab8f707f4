-- One row per day x alert of seed kpi_alert_thresholds: the day's KPI value,
-- the alert's threshold, and whether the day breaches it (docs block
-- kpi_alerts). Days come from a gap-free calendar between the first and the
-- last session date, so a day without data reads as 0 sessions and revenue.
-- KPIs relative to the trailing 7-day median need var
-- kpi_alert_min_history_days earlier days; before that they are NULL and
-- never breach.
with daily_trends as (

    select * from {{ ref('fct_daily_trends') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

fraud_session_scores as (

    select * from {{ ref('ml_fraud_session_scores') }}

),

thresholds as (

    select * from {{ ref('kpi_alert_thresholds') }}

),

calendar as (

    select
        cast(unnest(generate_series(
            min(trend_date), max(trend_date), interval 1 day
        )) as date) as kpi_date
    from daily_trends

),

sessions_daily as (

    select
        sessions.session_date as kpi_date,
        count(*) filter (where sessions.is_bounce) as bounced_sessions,
        count(*) filter (
            where fraud_session_scores.is_flagged
        ) as fraud_flagged_sessions
    from sessions
    left join fraud_session_scores
        on sessions.session_id = fraud_session_scores.session_id
    group by 1

),

daily as (

    select
        calendar.kpi_date,
        coalesce(daily_trends.sessions, 0) as sessions,
        coalesce(daily_trends.converted_sessions, 0) as converted_sessions,
        coalesce(daily_trends.revenue, 0) as revenue,
        coalesce(sessions_daily.bounced_sessions, 0) as bounced_sessions,
        coalesce(
            sessions_daily.fraud_flagged_sessions, 0
        ) as fraud_flagged_sessions
    from calendar
    left join daily_trends
        on calendar.kpi_date = daily_trends.trend_date
    left join sessions_daily
        on calendar.kpi_date = sessions_daily.kpi_date

),

with_trailing as (

    select
        *,
        count(*) over trailing_7_days as history_days,
        median(revenue) over trailing_7_days as trailing_7d_median_revenue,
        median(sessions) over trailing_7_days as trailing_7d_median_sessions
    from daily
    window trailing_7_days as (
        order by kpi_date asc
        rows between 7 preceding and 1 preceding
    )

),

judged as (

    select
        *,
        history_days >= {{ var('kpi_alert_min_history_days') | int }}
            as has_history
    from with_trailing

),

kpis as (

    select
        kpi_date,
        'session_conversion_rate' as kpi,
        cast(converted_sessions as double) / nullif(sessions, 0) as kpi_value,
        cast(null as double) as reference_value
    from judged
    union all
    select
        kpi_date,
        'bounce_rate' as kpi,
        cast(bounced_sessions as double) / nullif(sessions, 0) as kpi_value,
        cast(null as double) as reference_value
    from judged
    union all
    select
        kpi_date,
        'fraud_session_share' as kpi,
        cast(fraud_flagged_sessions as double)
        / nullif(sessions, 0) as kpi_value,
        cast(null as double) as reference_value
    from judged
    union all
    select
        kpi_date,
        'revenue_vs_trailing_7d_median' as kpi,
        case
            when has_history
                then
                    cast(revenue as double)
                    / nullif(trailing_7d_median_revenue, 0)
        end as kpi_value,
        cast(trailing_7d_median_revenue as double) as reference_value
    from judged
    union all
    select
        kpi_date,
        'sessions_vs_trailing_7d_median' as kpi,
        case
            when has_history
                then
                    cast(sessions as double)
                    / nullif(trailing_7d_median_sessions, 0)
        end as kpi_value,
        cast(trailing_7d_median_sessions as double) as reference_value
    from judged

),

alerts as (

    select
        kpis.kpi_date,
        thresholds.alert_name,
        kpis.kpi,
        kpis.kpi_value,
        thresholds.comparison,
        thresholds.threshold,
        kpis.reference_value,
        thresholds.description,
        coalesce(
            case thresholds.comparison
                when 'below' then kpis.kpi_value < thresholds.threshold
                when 'above' then kpis.kpi_value > thresholds.threshold
            end,
            false
        ) as is_breach
    from kpis
    inner join thresholds
        on kpis.kpi = thresholds.kpi

),

final as (

    select
        kpi_date,
        alert_name,
        kpi,
        kpi_value,
        comparison,
        threshold,
        reference_value,
        is_breach,
        kpi_date = max(kpi_date) over () as is_latest_day,
        description
    from alerts

)

select * from final
