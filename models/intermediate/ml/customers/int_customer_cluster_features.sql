{{ config(materialized='table') }}

-- One row per customer x snapshot (test: the cutoff, score: the day after
-- the last event date): the clustering features of
-- int_customer_features_snapshots and the customer's RFM named segment
-- scored at the snapshot by the macros of fct_customer_rfm (docs block
-- ml_customer_clusters_rule), beside the label of the test snapshot.
with snapshots as (

    select * from {{ ref('int_customer_features_snapshots') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

customers as (

    select
        user_id,
        snapshot_role,
        snapshot_date,
        recency_days,
        orders,
        monetary_total,
        monetary_mean,
        tenure_days,
        distinct_categories_purchased,
        days_since_last_visit,
        sessions,
        views,  -- noqa: RF04
        carts,
        active_days_last_30d,
        label_spend,
        is_label_complete
    from snapshots
    where snapshot_role in ('test', 'score')

),

ranked as (

    select
        *,
        -- customers whose value is no better than this one's, ties included
        count(*) over (
            partition by snapshot_role order by recency_days desc
        ) as recency_no_better,
        count(*) over (partition by snapshot_role) as customers_count
    from customers

),

scored as (

    select
        *,
        {{ rfm_quintile_score('recency_no_better', 'customers_count') }}
            as recency_score,
        {{ rfm_frequency_score('orders') }} as frequency_score
    from ranked

),

final as (

    select
        scored.user_id,
        scored.snapshot_role,
        scored.snapshot_date,
        scored.recency_days,
        scored.orders,
        scored.monetary_total,
        scored.monetary_mean,
        scored.tenure_days,
        scored.distinct_categories_purchased,
        scored.days_since_last_visit,
        scored.sessions,
        scored.views,  -- noqa: RF04
        scored.carts,
        scored.active_days_last_30d,
        cast(scored.recency_score as integer) as recency_score,
        cast(scored.frequency_score as integer) as frequency_score,
        segments.segment as rfm_segment,
        scored.is_label_complete,
        scored.label_spend
    from scored
    left join segments
        on
            scored.recency_score = segments.recency_score
            and scored.frequency_score = segments.frequency_score

)

select * from final
