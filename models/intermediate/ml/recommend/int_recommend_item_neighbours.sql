{{ config(materialized='table') }}

-- Item-item collaborative filtering: for each product, its top
-- var recs_neighbours co-interacted products by cosine similarity of
-- session co-occurrence (docs block recommend_item_cf), computed twice:
-- window `train` (days before the cutoff, for evaluation) and `full` (every
-- day, for production). Sessions keep at most var recs_max_items_per_session
-- products (strongest interaction first, then most recent), which bounds the
-- self-join.
{%- set max_items = var('recs_max_items_per_session') | int %}
{%- set neighbours = var('recs_neighbours') | int %}
with session_items as (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ ref('int_recommend_windows') }}

),

window_items as (

    select
        'train' as window_role,
        session_items.session_id,
        session_items.product_id,
        max(session_items.interaction_weight) as interaction_weight,
        max(session_items.last_event_at) as last_event_at
    from session_items
    cross join windows
    where session_items.event_date < windows.cutoff_date
    group by 1, 2, 3
    union all
    select
        'full' as window_role,
        session_id,
        product_id,
        max(interaction_weight) as interaction_weight,
        max(last_event_at) as last_event_at
    from session_items
    group by 1, 2, 3

),

capped as (

    select
        window_role,
        session_id,
        product_id,
        interaction_weight
    from window_items
    qualify
        row_number() over (
            partition by window_role, session_id
            order by interaction_weight desc, last_event_at desc, product_id
        ) <= {{ max_items }}

),

item_totals as (

    select
        window_role,
        product_id,
        sum(interaction_weight) as total_weight
    from capped
    group by 1, 2

),

pairs as (

    select
        left_items.window_role,
        left_items.product_id,
        right_items.product_id as neighbour_product_id,
        sum(
            least(left_items.interaction_weight, right_items.interaction_weight)
        ) as co_weight,
        count(*) as co_sessions
    from capped as left_items
    inner join capped as right_items
        on
            left_items.window_role = right_items.window_role
            and left_items.session_id = right_items.session_id
            and left_items.product_id != right_items.product_id
    group by 1, 2, 3

),

scored as (

    select
        pairs.window_role,
        pairs.product_id,
        pairs.neighbour_product_id,
        pairs.co_weight,
        pairs.co_sessions,
        pairs.co_weight
        / sqrt(item_totals.total_weight * neighbour_totals.total_weight)
            as similarity
    from pairs
    inner join item_totals
        on
            pairs.window_role = item_totals.window_role
            and pairs.product_id = item_totals.product_id
    inner join item_totals as neighbour_totals
        on
            pairs.window_role = neighbour_totals.window_role
            and pairs.neighbour_product_id = neighbour_totals.product_id

),

final as (

    select
        window_role,
        product_id,
        neighbour_product_id,
        co_weight,
        co_sessions,
        similarity,
        row_number() over (
            partition by window_role, product_id
            order by similarity desc, co_weight desc, neighbour_product_id
        ) as neighbour_rank
    from scored
    qualify neighbour_rank <= {{ neighbours }}

)

select * from final
