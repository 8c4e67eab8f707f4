{{ config(materialized='table') }}

-- One row per series x measure x day: daily revenue and orders overall and
-- per category level 1 (when the source has categories), every day from the
-- first to the last day with activity (days without a purchase are 0), and
-- whether the day is a known sale day (seed sale_days, not read from the
-- data). All purchases count, with or without a known customer. Docs block
-- ml_forecast_rule.
with purchases as (

    select * from {{ ref('int_purchases') }}

),

visits as (

    select * from {{ ref('int_customer_visits') }}

),

sale_days as (

    select * from {{ ref('sale_days') }}

),

day_numbers as (

    {{ dbt.generate_series(8192) }}

),

activity_dates as (

    select purchase_date as activity_date from purchases
    union all
    select visit_date as activity_date from visits

),

span as (

    select
        min(activity_date) as first_date,
        max(activity_date) as last_date
    from activity_dates

),

days as (

    select
        cast({{ dbt.dateadd(
            'day', 'day_numbers.generated_number - 1', 'span.first_date'
        ) }} as date) as series_date
    from day_numbers
    cross join span
    where
        day_numbers.generated_number - 1
        <= {{ dbt.datediff('span.first_date', 'span.last_date', 'day') }}

),

source_categories as (

    select count(category_l1) > 0 as has_categories
    from purchases

),

categories as (

    select distinct coalesce(purchases.category_l1, 'unknown') as category_l1
    from purchases
    cross join source_categories
    -- a source without categories has the overall series only
    where source_categories.has_categories

),

category_daily as (

    select
        purchase_date as series_date,
        coalesce(category_l1, 'unknown') as category_l1,
        sum(amount) as revenue,
        count(distinct order_id) as orders
    from purchases
    group by 1, 2

),

overall_daily as (

    select
        purchase_date as series_date,
        sum(amount) as revenue,
        count(distinct order_id) as orders
    from purchases
    group by 1

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
        days.series_date,
        coalesce(overall_daily.revenue, 0) as revenue,
        coalesce(overall_daily.orders, 0) as orders
    from days
    left join overall_daily
        on days.series_date = overall_daily.series_date

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
