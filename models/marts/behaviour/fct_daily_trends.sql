-- One row per UTC day with activity: revenue, purchase lines, orders, buyers,
-- AOV, sessions and session conversion, plus the sale-spike flag (docs block
-- trends_rules). Derived from fct_purchases and fct_sessions, not events.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

purchases_daily as (

    select
        purchase_date as trend_date,
        sum(price) as revenue,
        count(*) as purchases,
        count(distinct session_id) as orders,
        count(distinct user_id) as buyers
    from purchases
    group by 1

),

sessions_daily as (

    select
        session_date as trend_date,
        count(*) as sessions,
        count(*) filter (where has_purchase) as converted_sessions
    from sessions
    group by 1

),

days as (

    select trend_date from purchases_daily
    union
    select trend_date from sessions_daily

),

joined as (

    select
        days.trend_date,
        coalesce(purchases_daily.revenue, 0) as revenue,
        coalesce(purchases_daily.purchases, 0) as purchases,
        coalesce(purchases_daily.orders, 0) as orders,
        coalesce(purchases_daily.buyers, 0) as buyers,
        coalesce(sessions_daily.sessions, 0) as sessions,
        coalesce(sessions_daily.converted_sessions, 0) as converted_sessions
    from days
    left join purchases_daily
        on days.trend_date = purchases_daily.trend_date
    left join sessions_daily
        on days.trend_date = sessions_daily.trend_date

),

with_baseline as (

    select
        *,
        median(revenue) over trailing_28_days as trailing_28d_median_revenue,
        count(*) over trailing_28_days as trailing_days_observed
    from joined
    window trailing_28_days as (
        order by trend_date asc
        range between interval 28 day preceding and interval 1 day preceding
    )

),

final as (

    select
        trend_date,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(purchases as integer) as purchases,
        cast(orders as integer) as orders,
        cast(buyers as integer) as buyers,
        cast(revenue / nullif(orders, 0) as decimal(18, 2))
            as average_order_value,
        cast(sessions as integer) as sessions,
        cast(converted_sessions as integer) as converted_sessions,
        cast(converted_sessions as double)
        / nullif(sessions, 0) as session_conversion_rate,
        cast(trailing_28d_median_revenue as decimal(18, 2))
            as trailing_28d_median_revenue,
        cast(trailing_days_observed as integer) as trailing_days_observed,
        case
            when trailing_days_observed >= 7
                then
                    revenue
                    > {{ var('trend_spike_ratio') }}
                    * trailing_28d_median_revenue
        end as is_revenue_spike
    from with_baseline

)

select * from final
