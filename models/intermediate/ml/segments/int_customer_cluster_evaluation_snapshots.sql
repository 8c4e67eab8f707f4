{{ config(materialized='table', tags=['ml_evaluation']) }}

-- One row per customer x evaluation test cutoff (ml.evaluation.rolling_cutoffs:
-- var ml_evaluation_cutoffs cutoffs var ml_evaluation_step_days apart, the
-- last one's label window ending the day after the last event): the six
-- clustering features from the days strictly before the cutoff, as
-- int_customer_features_snapshots computes them, the RFM named segment scored
-- at the cutoff, and the spend of the horizon from the cutoff on (the label
-- no feature sees). Read only by the clusters' evaluation model (docs block
-- ml_customer_clusters_rule); the production build does not pay for it.
{%- set horizon = var('ml_label_horizon_days') | int %}
{%- set step = var('ml_evaluation_step_days') | int %}
{%- set n_cutoffs = var('ml_evaluation_cutoffs') | int %}
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

purchases as (

    select * from {{ ref('fct_purchases') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

bounds as (

    select
        min(event_date) as first_event_date,
        max(event_date) as last_event_date
    from events

),

cutoff_numbers as (

    {{ dbt.generate_series(n_cutoffs) }}

),

-- cutoff n of N: the last event date + 1 - H - step x (N - n)
snapshot_dates as (

    select
        bounds.first_event_date,
        bounds.last_event_date,
        cast(cutoff_numbers.generated_number as integer) as cutoff_number,
        cast({{ dbt.dateadd(
            'day',
            '1 - ' ~ horizon ~ ' - ' ~ step ~ ' * (' ~ n_cutoffs
            ~ ' - cutoff_numbers.generated_number)',
            'bounds.last_event_date',
        ) }} as date) as snapshot_date
    from bounds
    cross join cutoff_numbers

),

purchase_days as (

    select
        user_id,
        purchase_date,
        count(distinct session_id) as orders,
        sum(price) as spend
    from purchases
    group by 1, 2

),

session_days as (

    select
        user_id,
        session_date,
        count(*) as sessions,
        sum(carts) as carts
    from sessions
    group by 1, 2

),

purchase_history as (

    select
        snapshot_dates.cutoff_number,
        snapshot_dates.snapshot_date,
        snapshot_dates.first_event_date,
        snapshot_dates.last_event_date,
        purchase_days.user_id,
        max(purchase_days.purchase_date) as last_purchase_date,
        sum(purchase_days.orders) as orders,
        sum(purchase_days.spend) as spend
    from purchase_days
    inner join snapshot_dates
        on purchase_days.purchase_date < snapshot_dates.snapshot_date
    group by 1, 2, 3, 4, 5

),

session_history as (

    select
        snapshot_dates.cutoff_number,
        session_days.user_id,
        max(session_days.session_date) as last_visit_date,
        sum(session_days.sessions) as sessions,
        sum(session_days.carts) as carts
    from session_days
    inner join snapshot_dates
        on session_days.session_date < snapshot_dates.snapshot_date
    group by 1, 2

),

labels as (

    select
        snapshot_dates.cutoff_number,
        purchase_days.user_id,
        sum(purchase_days.spend) as label_spend
    from purchase_days
    inner join snapshot_dates
        on
            purchase_days.purchase_date >= snapshot_dates.snapshot_date
            and purchase_days.purchase_date < {{ dbt.dateadd(
                'day', horizon, 'snapshot_dates.snapshot_date'
            ) }}
    group by 1, 2

),

customers as (

    select
        purchase_history.user_id,
        purchase_history.cutoff_number,
        purchase_history.snapshot_date,
        purchase_history.first_event_date,
        purchase_history.last_event_date,
        cast({{ dbt.datediff(
            'purchase_history.last_purchase_date',
            'purchase_history.snapshot_date',
            'day',
        ) }} as integer) as recency_days,
        cast(purchase_history.orders as integer) as orders,
        cast(purchase_history.spend as double) as monetary_total,
        cast({{ dbt.datediff(
            'coalesce(session_history.last_visit_date, '
            ~ 'purchase_history.last_purchase_date)',
            'purchase_history.snapshot_date',
            'day',
        ) }} as integer) as days_since_last_visit,
        cast(coalesce(session_history.sessions, 0) as integer) as sessions,
        cast(coalesce(session_history.carts, 0) as integer) as carts,
        {{ dbt.dateadd(
            'day', horizon, 'purchase_history.snapshot_date'
        ) }} <= {{ dbt.dateadd(
            'day', 1, 'purchase_history.last_event_date'
        ) }} as is_label_complete,
        labels.label_spend
    from purchase_history
    left join session_history
        on
            purchase_history.cutoff_number = session_history.cutoff_number
            and purchase_history.user_id = session_history.user_id
    left join labels
        on
            purchase_history.cutoff_number = labels.cutoff_number
            and purchase_history.user_id = labels.user_id

),

ranked as (

    select
        *,
        -- customers whose value is no better than this one's, ties included
        count(*) over (
            partition by cutoff_number order by recency_days desc
        ) as recency_no_better,
        count(*) over (partition by cutoff_number) as customers_count
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
        scored.cutoff_number,
        scored.snapshot_date,
        scored.first_event_date,
        scored.last_event_date,
        scored.recency_days,
        scored.orders,
        scored.monetary_total,
        scored.days_since_last_visit,
        scored.sessions,
        scored.carts,
        cast(scored.recency_score as integer) as recency_score,
        cast(scored.frequency_score as integer) as frequency_score,
        segments.segment as rfm_segment,
        scored.is_label_complete,
        case
            when scored.is_label_complete
                then cast(coalesce(scored.label_spend, 0) as double)
        end as label_spend
    from scored
    left join segments
        on
            scored.recency_score = segments.recency_score
            and scored.frequency_score = segments.frequency_score

)

select * from final
