-- needs click-stream events: not built for a transactions-only source
{{ config(enabled=var('source') == 'rees46') }}
-- When do people buy? Purchase lines, buyers and revenue by ISO weekday
-- (1 = Monday) and UTC hour, busiest first. Real REES46 purchases peak around
-- 09:00 UTC.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

by_weekday_hour as (

    select
        extract(isodow from purchased_at) as iso_weekday,
        extract(hour from purchased_at) as hour_utc,
        count(*) as purchases,
        count(distinct user_id) as buyers,
        sum(price) as revenue
    from purchases
    group by 1, 2

),

final as (

    select
        *,
        revenue / sum(revenue) over () as revenue_share,
        rank() over (order by revenue desc) as revenue_rank
    from by_weekday_hour

)

select * from final
order by 7
