-- The fraud review queue: the var fraud_review_queue_size most suspicious
-- users with at least one rule flag, ordered by fraud score, with the
-- evidence an analyst needs to decide (flags, reason codes, the numbers
-- behind each reason, activity span, purchases and revenue).
with user_scores as (

    select * from {{ ref('ml_fraud_user_scores') }}

),

user_features as (

    select * from {{ ref('int_fraud_user_features') }}

),

queued as (

    select
        *,
        row_number() over (
            order by fraud_score desc, user_id asc
        ) as queue_position
    from user_scores
    where is_flagged
    qualify queue_position <= {{ var('fraud_review_queue_size') }}

),

final as (

    select
        cast(queued.queue_position as integer) as queue_position,
        queued.user_id,
        queued.run_id,
        queued.fraud_score,
        queued.rule_score,
        queued.isolation_score,
        queued.reason_codes,
        queued.n_flags,
        queued.is_high_view_rate,
        queued.is_purchase_without_view,
        queued.is_price_off_norm,
        queued.is_high_velocity,
        queued.is_purchase_burst,
        queued.is_shared_session_id,
        user_features.peak_views_per_minute,
        user_features.peak_events_per_hour,
        user_features.blind_purchases,
        user_features.off_norm_purchases,
        user_features.max_abs_log_price_ratio,
        user_features.peak_purchase_burst,
        user_features.shared_raw_sessions,
        user_features.cheap_purchase_share,
        user_features.first_seen_at,
        user_features.last_seen_at,
        user_features.sessions,
        user_features.events,
        user_features.views,  -- noqa: RF04
        user_features.purchases,
        user_features.distinct_products_purchased,
        user_features.revenue,
        queued.is_model_below_baseline
    from queued
    inner join user_features
        on queued.user_id = user_features.user_id

)

select * from final
