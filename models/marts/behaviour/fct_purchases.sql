-- One row per purchase line: every staged purchase event. Exact duplicate
-- lines were collapsed in staging; purchases of distinct products or at
-- distinct prices in the same second stay separate lines (docs block
-- purchase_lines_rule).
with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

purchase_events as (

    select *
    from sessionized_events
    where event_type = 'purchase'

),

final as (

    select
        event_id as purchase_id,
        event_id,
        event_at as purchased_at,
        event_date as purchase_date,
        user_id,
        session_id,
        raw_session_id,
        product_id,
        category_id,
        category_code,
        category_l1,
        category_l2,
        brand,
        price
    from purchase_events

)

select * from final
