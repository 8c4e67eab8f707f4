-- One row per ISO weekday x UTC hour of day (at most 7 x 24): totals and
-- per-day averages over the hours with activity, for a heatmap. Derived from
-- fct_hourly_trends.
with hourly as (

    select * from {{ ref('fct_hourly_trends') }}

),

bucketed as (

    select
        cast(extract(isodow from hour_started_at) as integer) as iso_weekday,
        cast(extract(hour from hour_started_at) as integer) as hour_of_day,
        trend_date,
        revenue,
        purchases,
        orders,
        sessions,
        converted_sessions
    from hourly

),

aggregated as (

    select
        iso_weekday,
        hour_of_day,
        count(distinct trend_date) as days_observed,
        sum(revenue) as revenue,
        sum(purchases) as purchases,
        sum(orders) as orders,
        sum(sessions) as sessions,
        sum(converted_sessions) as converted_sessions
    from bucketed
    group by 1, 2

),

final as (

    select
        iso_weekday,
        case iso_weekday
            when 1 then 'Mon'
            when 2 then 'Tue'
            when 3 then 'Wed'
            when 4 then 'Thu'
            when 5 then 'Fri'
            when 6 then 'Sat'
            when 7 then 'Sun'
        end as weekday_name,
        hour_of_day,
        cast(days_observed as integer) as days_observed,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(purchases as integer) as purchases,
        cast(orders as integer) as orders,
        cast(sessions as integer) as sessions,
        cast(converted_sessions as integer) as converted_sessions,
        cast(revenue / days_observed as decimal(18, 2))
            as average_revenue_per_day,
        cast(sessions as double) / days_observed as average_sessions_per_day,
        cast(converted_sessions as double)
        / nullif(sessions, 0) as session_conversion_rate,
        cast(revenue as double)
        / nullif(sum(revenue) over (), 0) as share_of_revenue
    from aggregated

)

select * from final
