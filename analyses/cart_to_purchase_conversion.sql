-- needs click-stream events: not built for a transactions-only source
{{ config(enabled=var('source') == 'rees46') }}
-- What share of sessions that reach the cart go on to buy, overall and by
-- brand? Counted in sessions with the funnel's monotone rule (docs block
-- funnel_rules): a session reaches the cart when it has a cart or a purchase
-- event, so the rate never exceeds 100% although most purchasing sessions in
-- REES46 have no cart event. By brand, a session counts for every brand it
-- carts or buys (events without a brand are 'unknown').
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

session_brands as (

    select
        session_id,
        coalesce(brand, 'unknown') as brand,
        max(case when event_type = 'purchase' then 1 else 0 end)
            as has_purchase
    from sessionized_events
    where event_type in ('cart', 'purchase')
    group by 1, 2

),

by_brand as (

    select
        brand,
        count(*) as sessions_reaching_cart,
        sum(has_purchase) as sessions_with_purchase
    from session_brands
    group by 1

),

overall as (

    select
        '(all brands)' as brand,
        count(*) as sessions_reaching_cart,
        sum(has_purchase) as sessions_with_purchase
    from (
        select
            session_id,
            max(has_purchase) as has_purchase
        from session_brands
        group by 1
    ) as sessions

),

final as (

    select
        brand,
        sessions_reaching_cart,
        sessions_with_purchase,
        cast(sessions_with_purchase as double)
        / sessions_reaching_cart as cart_to_purchase_rate
    from overall

    union all

    select
        brand,
        sessions_reaching_cart,
        sessions_with_purchase,
        cast(sessions_with_purchase as double)
        / sessions_reaching_cart as cart_to_purchase_rate
    from by_brand

)

select * from final
order by 2 desc
