-- One row per buyer per calendar month, from the buyer's cohort month (the
-- month of the first purchase) to the last month with events, active or not,
-- so running lifetime totals and retention need no gap filling. Rules: docs
-- block customers_cohort_rules.
with purchases as (

    select * from {{ ref('int_purchases') }}
    where is_customer_purchase

),

customers as (

    select * from {{ ref('dim_customers') }}

),

month_numbers as (

    {{ dbt.generate_series(1200) }}

),

buyer_months as (

    select
        user_id,
        cast({{ dbt.date_trunc('month', 'purchase_date') }} as date)
            as activity_month,
        count(*) as purchases,
        sum(amount) as revenue
    from purchases
    group by 1, 2

),

cohorts as (

    select
        user_id,
        min(activity_month) as cohort_month
    from buyer_months
    group by 1

),

first_cohort as (

    select min(cohort_month) as first_cohort_month
    from cohorts

),

last_event as (

    select max(last_seen_at) as last_seen_at
    from customers

),

data_span as (

    select
        first_cohort.first_cohort_month,
        cast(
            {{ dbt.date_trunc('month', 'last_event.last_seen_at') }} as date
        ) as last_month
    from first_cohort
    cross join last_event

),

month_offsets as (

    select month_numbers.generated_number - 1 as months_since_first_purchase
    from month_numbers
    cross join data_span
    where
        month_numbers.generated_number - 1
        <= {{ dbt.datediff(
            'data_span.first_cohort_month', 'data_span.last_month', 'month'
        ) }}

),

customer_months as (

    select
        cohorts.user_id,
        cohorts.cohort_month,
        month_offsets.months_since_first_purchase,
        cast({{ dbt.dateadd(
            'month',
            'month_offsets.months_since_first_purchase',
            'cohorts.cohort_month',
        ) }} as date) as activity_month
    from cohorts
    cross join month_offsets
    cross join data_span
    where
        {{ dbt.dateadd(
            'month',
            'month_offsets.months_since_first_purchase',
            'cohorts.cohort_month',
        ) }} <= data_span.last_month

),

joined as (

    select
        customer_months.user_id,
        customer_months.cohort_month,
        customer_months.activity_month,
        customer_months.months_since_first_purchase,
        buyer_months.user_id is not null as is_active,
        coalesce(buyer_months.purchases, 0) as purchases,
        coalesce(buyer_months.revenue, 0) as revenue
    from customer_months
    left join buyer_months
        on
            customer_months.user_id = buyer_months.user_id
            and customer_months.activity_month = buyer_months.activity_month

),

final as (

    select
        user_id,
        cohort_month,
        activity_month,
        cast(months_since_first_purchase as integer)
            as months_since_first_purchase,
        is_active,
        cast(purchases as integer) as purchases,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(
            sum(purchases) over customer_history as integer
        ) as lifetime_purchases,
        cast(
            sum(revenue) over customer_history as decimal(18, 2)
        ) as lifetime_revenue,
        cast(
            sum(case when is_active then 1 else 0 end) over customer_history
            as integer
        ) as active_months_to_date
    from joined
    window customer_history as (
        partition by user_id
        order by activity_month asc
        rows between unbounded preceding and current row
    )

)

select * from final
