{{ config(materialized='table') }}

-- One row per session x product x day: the strongest interaction of the
-- session with the product that day, as a weight (purchase 5, cart 3, view
-- or remove from cart 1; docs block recommend_interactions). The day is kept
-- so that a session crossing midnight into the test day never leaks that
-- day's interactions into training.
with events as (

    select * from {{ ref('int_events_sessionized') }}

),

final as (

    select
        session_id,
        user_id,
        product_id,
        event_date,
        max(
            case event_type
                when 'purchase' then 5
                when 'cart' then 3
                else 1
            end
        ) as interaction_weight,
        bool_or(event_type = 'purchase') as is_purchased,
        max(event_at) as last_event_at
    from events
    group by 1, 2, 3, 4

)

select * from final
