-- One row per customer cluster x RFM named segment (fct_customer_rfm) with
-- at least one customer: the cross-tab of the two segmentations, with each
-- cell's share of its cluster and of its segment.
with clusters as (

    select * from {{ ref('ml_customer_clusters') }}

),

rfm as (

    select * from {{ ref('fct_customer_rfm') }}

),

cells as (

    select
        clusters.cluster_id,
        clusters.cluster_name,
        -- a clustered customer outside fct_customer_rfm is kept, not dropped
        coalesce(rfm.segment, 'not in fct_customer_rfm') as rfm_segment,
        count(*) as customers
    from clusters
    left join rfm
        on clusters.user_id = rfm.user_id
    group by 1, 2, 3

),

final as (

    select
        cluster_id,
        cluster_name,
        rfm_segment,
        cast(customers as integer) as customers,
        cast(customers as double)
        / sum(customers) over (partition by cluster_id) as share_of_cluster,
        cast(customers as double)
        / sum(customers) over (partition by rfm_segment) as share_of_segment
    from cells

)

select * from final
