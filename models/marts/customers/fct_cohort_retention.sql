-- The retention triangle: one row per cohort month (month of first purchase)
-- and month since first purchase, up to the last month with events. Ready for
-- a heatmap (cohort down, months since first purchase across).
with customer_cohorts as (

    select * from {{ ref('fct_customer_cohorts') }}

),

cells as (

    select
        cohort_month,
        months_since_first_purchase,
        activity_month,
        count(*) as cohort_size,
        count(*) filter (where is_active) as active_buyers,
        sum(purchases) as purchases,
        sum(revenue) as revenue,
        sum(lifetime_revenue) as cumulative_revenue
    from customer_cohorts
    group by 1, 2, 3

),

final as (

    select
        cohort_month,
        cast(months_since_first_purchase as integer)
            as months_since_first_purchase,
        activity_month,
        cast(cohort_size as integer) as cohort_size,
        cast(active_buyers as integer) as active_buyers,
        cast(active_buyers as double) / cohort_size as retention_rate,
        cast(purchases as integer) as purchases,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(cumulative_revenue as decimal(18, 2)) as cumulative_revenue,
        cast(cumulative_revenue as double)
        / cohort_size as cumulative_revenue_per_customer
    from cells

)

select * from final
