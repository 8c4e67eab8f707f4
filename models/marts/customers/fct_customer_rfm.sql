-- One row per buyer (a user with a purchase on or before the as-of date):
-- recency, frequency and monetary value as of var rfm_as_of_date (null = the
-- last event date), their 1-5 scores and the named segment from the seed
-- rfm_segments. Scoring rules: docs block customers_rfm_rules.
with purchases as (

    select * from {{ ref('int_purchases') }}
    where is_customer_purchase

),

customers as (

    select * from {{ ref('dim_customers') }}

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

as_of as (

    select
        {% if var('rfm_as_of_date') -%}
            cast('{{ var("rfm_as_of_date") }}' as date)
        {%- else -%}
            cast(max(last_seen_at) as date)
        {%- endif %} as as_of_date
    from customers

),

buyers as (

    select
        purchases.user_id,
        as_of.as_of_date,
        min(purchases.purchase_date) as first_purchase_date,
        max(purchases.purchase_date) as last_purchase_date,
        count(distinct purchases.order_id) as orders,
        count(*) as purchases,
        sum(purchases.amount) as monetary_value
    from purchases
    inner join as_of
        on purchases.purchase_date <= as_of.as_of_date
    group by 1, 2

),

measured as (

    select
        *,
        {{ dbt.datediff('last_purchase_date', 'as_of_date', 'day') }}
            as recency_days
    from buyers

),

ranked as (

    select
        *,
        -- buyers whose value is no better than this buyer's, ties included
        count(*) over (order by recency_days desc) as recency_no_better,
        count(*) over (order by monetary_value asc) as monetary_no_better,
        count(*) over () as buyers_count
    from measured

),

scored as (

    select
        *,
        {{ rfm_quintile_score('recency_no_better', 'buyers_count') }}
            as recency_score,
        {{ rfm_frequency_score('orders') }} as frequency_score,
        {{ rfm_quintile_score('monetary_no_better', 'buyers_count') }}
            as monetary_score
    from ranked

),

final as (

    select
        scored.user_id,
        scored.as_of_date,
        scored.first_purchase_date,
        scored.last_purchase_date,
        cast(scored.recency_days as integer) as recency_days,
        cast(scored.orders as integer) as frequency,
        cast(scored.purchases as integer) as purchases,
        cast(scored.monetary_value as decimal(18, 2)) as monetary_value,
        cast(scored.recency_score as integer) as recency_score,
        cast(scored.frequency_score as integer) as frequency_score,
        cast(scored.monetary_score as integer) as monetary_score,
        cast(scored.recency_score as {{ dbt.type_string() }})
        || cast(scored.frequency_score as {{ dbt.type_string() }})
        || cast(scored.monetary_score as {{ dbt.type_string() }}) as rfm_cell,
        segments.segment
    from scored
    left join segments
        on
            scored.recency_score = segments.recency_score
            and scored.frequency_score = segments.frequency_score

)

select * from final
