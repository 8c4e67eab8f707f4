-- The fraud review queue: a review budget, not a fixed size - the var
-- fraud_review_budget share of the users scored (rounded up), the most
-- suspicious by fraud score, flagged by a rule or not (an isolation-forest
-- outlier no rule describes is queued too), with the evidence an analyst
-- needs to decide (flags, reason codes, the numbers behind each reason,
-- activity span, purchases and revenue).
with user_scores as (

    select * from {{ ref('ml_fraud_user_scores') }}

),

budget as (

    select
        cast(ceil({{ var('fraud_review_budget') }} * count(*)) as bigint)
            as queue_size
    from user_scores

),

user_features as (

    select * from {{ ref('int_fraud_user_features') }}

),

queued as (

    select
        user_scores.*,
        row_number() over (
            order by user_scores.fraud_score desc, user_scores.user_id asc
        ) as queue_position
    from user_scores
    cross join budget
    qualify queue_position <= budget.queue_size

),

final as (

    select
        cast(queued.queue_position as integer) as queue_position,
        queued.user_id,
        queued.run_id,
        queued.fraud_score,
        queued.rule_score,
        queued.isolation_score,
        case
            when queued.reason_codes = '' then 'ISOLATION_OUTLIER'
            else queued.reason_codes
        end as reason_codes,
        queued.is_flagged,
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
