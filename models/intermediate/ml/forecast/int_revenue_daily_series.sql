{{ config(materialized='table') }}

-- One row per series x measure x day: daily revenue and orders overall and
-- per category level 1, every day from the first to the last day with
-- activity (days without a purchase are 0), and whether the day is a known
-- sale day (seed sale_days, not read from the data). Docs block
-- ml_forecast_rule.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

daily_trends as (

    select * from {{ ref('fct_daily_trends') }}

),

sale_days as (

    select * from {{ ref('sale_days') }}

),

days as (

    select trend_date as series_date
    from daily_trends

),

categories as (

    select distinct coalesce(category_l1, 'unknown') as category_l1
    from purchases

),

category_daily as (

    select
        purchase_date as series_date,
        coalesce(category_l1, 'unknown') as category_l1,
        sum(price) as revenue,
        count(distinct session_id) as orders
    from purchases
    group by 1, 2

),

category_series as (

    select
        'category_l1=' || categories.category_l1 as series_id,
        'category_l1' as series_level,
        categories.category_l1,
        days.series_date,
        coalesce(category_daily.revenue, 0) as revenue,
        coalesce(category_daily.orders, 0) as orders
    from days
    cross join categories
    left join category_daily
        on
            days.series_date = category_daily.series_date
            and categories.category_l1 = category_daily.category_l1

),

overall_series as (

    select
        'overall' as series_id,
        'overall' as series_level,
        cast(null as {{ dbt.type_string() }}) as category_l1,
        trend_date as series_date,
        revenue,
        orders
    from daily_trends

),

series as (

    select * from overall_series
    union all
    select * from category_series

),

measures as (

    select
        series_id,
        series_level,
        category_l1,
        series_date,
        'revenue' as measure,
        cast(revenue as double) as value  -- noqa: RF04
    from series
    union all
    select
        series_id,
        series_level,
        category_l1,
        series_date,
        'orders' as measure,
        cast(orders as double) as value  -- noqa: RF04
    from series

),

final as (

    select
        measures.series_id,
        measures.series_level,
        measures.category_l1,
        measures.measure,
        measures.series_date,
        measures.value,
        sale_days.sale_date is not null as is_sale_day
    from measures
    left join sale_days
        on measures.series_date = sale_days.sale_date

)

select * from final
