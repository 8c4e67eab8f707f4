-- Cohort sizes sum to the number of buyers; each cohort keeps its size in
-- every cell of the triangle; the triangle's cells are exactly the months
-- from the cohort month to the last month; and every buyer's lifetime totals
-- in the last month equal dim_customers'. Returns the offending rows.
with customers as (

    select * from {{ ref('dim_customers') }}

),

customer_cohorts as (

    select * from {{ ref('fct_customer_cohorts') }}

),

retention as (

    select * from {{ ref('fct_cohort_retention') }}

),

cohort_sizes as (

    select
        cohort_month,
        min(cohort_size) as min_size,
        max(cohort_size) as max_size,
        count(*) as cells,
        max(months_since_first_purchase) as max_months_since
    from retention
    group by 1

),

last_month as (

    select max(activity_month) as activity_month
    from customer_cohorts

),

size_total as (

    select coalesce(sum(min_size), 0) as cohort_buyers
    from cohort_sizes

),

buyer_total as (

    select count(*) as buyers
    from customers
    where is_buyer

),

last_month_totals as (

    select customer_cohorts.*
    from customer_cohorts
    inner join last_month
        on customer_cohorts.activity_month = last_month.activity_month

),

failures as (

    select
        'cohort sizes sum to buyers' as failed_check,
        cast(null as date) as cohort_month,
        cast(null as bigint) as user_id
    from size_total
    cross join buyer_total
    where size_total.cohort_buyers != buyer_total.buyers

    union all

    select
        'cohort size constant, triangle complete' as failed_check,
        cohort_sizes.cohort_month,
        cast(null as bigint) as user_id
    from cohort_sizes
    cross join last_month
    where
        cohort_sizes.min_size != cohort_sizes.max_size
        or cohort_sizes.cells != cohort_sizes.max_months_since + 1
        or cohort_sizes.max_months_since
        != {{ dbt.datediff(
            'cohort_sizes.cohort_month', 'last_month.activity_month', 'month'
        ) }}

    union all

    select
        'lifetime totals match dim_customers' as failed_check,
        last_month_totals.cohort_month,
        customers.user_id
    from customers
    left join last_month_totals
        on customers.user_id = last_month_totals.user_id
    where
        customers.is_buyer
        and (
            last_month_totals.user_id is null
            or last_month_totals.lifetime_purchases
            != customers.lifetime_purchases
            or last_month_totals.lifetime_revenue
            != customers.lifetime_revenue
            or last_month_totals.cohort_month
            != cast(
                {{ dbt.date_trunc('month', 'customers.first_purchase_at') }}
                as date
            )
        )

)

select * from failures
