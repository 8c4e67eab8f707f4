-- fct_customer_rfm has exactly the users with a purchase on or before its
-- as-of date, each in a segment, and monetary value sums to their revenue up
-- to that date. Returns a row when a figure differs.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

rfm as (

    select * from {{ ref('fct_customer_rfm') }}

),

as_of as (

    select max(as_of_date) as as_of_date
    from rfm

),

expected as (

    select
        count(distinct purchases.user_id) as buyers,
        coalesce(sum(purchases.price), 0) as revenue
    from purchases
    inner join as_of
        on purchases.purchase_date <= as_of.as_of_date

),

actual as (

    select
        count(*) as buyers,
        count(segment) as segmented_buyers,
        coalesce(sum(monetary_value), 0) as revenue,
        count(distinct as_of_date) as as_of_dates
    from rfm

)

select
    actual.buyers as actual_buyers,
    expected.buyers as expected_buyers,
    actual.segmented_buyers,
    actual.revenue as actual_revenue,
    expected.revenue as expected_revenue,
    actual.as_of_dates
from actual
cross join expected
where
    actual.buyers != expected.buyers
    or actual.segmented_buyers != actual.buyers
    or actual.revenue != expected.revenue
    or actual.as_of_dates > 1
