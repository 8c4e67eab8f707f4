-- How many buyers come back? Share of buyers with two or more orders
-- (distinct purchasing sessions), and with purchases on two or more days,
-- over the whole period in the warehouse.
with customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        count(*) as buyers,
        count(*) filter (where lifetime_orders >= 2) as repeat_buyers,
        cast(count(*) filter (where lifetime_orders >= 2) as double)
        / nullif(count(*), 0) as repeat_purchase_rate,
        count(*) filter (
            where lifetime_purchase_days >= 2
        ) as buyers_on_two_days_or_more,
        cast(count(*) filter (where lifetime_purchase_days >= 2) as double)
        / nullif(count(*), 0) as repeat_purchase_day_rate,
        avg(lifetime_orders) as avg_orders_per_buyer
    from customers
    where is_buyer

)

select * from final
