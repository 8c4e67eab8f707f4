-- One row per customer cluster of the latest customer_clusters run: size,
-- mean recency, frequency and monetary value, revenue share and the
-- behaviour it was clustered on (docs block ml_customer_clusters_rule).
with clusters as (

    select * from {{ ref('ml_customer_clusters') }}

),

profiles as (

    select
        cluster_id,
        cluster_name,
        run_id,
        count(*) as customers,
        avg(recency_days) as mean_recency_days,
        avg(orders) as mean_orders,
        avg(monetary_total) as mean_monetary_total,
        sum(monetary_total) as revenue,
        avg(days_since_last_visit) as mean_days_since_last_visit,
        avg(sessions) as mean_sessions,
        avg(carts) as mean_carts
    from clusters
    group by 1, 2, 3

),

final as (

    select
        cluster_id,
        cluster_name,
        cast(customers as integer) as customers,
        cast(customers as double)
        / sum(customers) over () as customer_share,
        cast(mean_recency_days as double) as mean_recency_days,
        cast(mean_orders as double) as mean_orders,
        cast(mean_monetary_total as double) as mean_monetary_total,
        cast(revenue as double) as revenue,
        cast(revenue / sum(revenue) over () as double) as revenue_share,
        cast(mean_days_since_last_visit as double)
            as mean_days_since_last_visit,
        cast(mean_sessions as double) as mean_sessions,
        cast(mean_carts as double) as mean_carts,
        run_id
    from profiles

)

select * from final
