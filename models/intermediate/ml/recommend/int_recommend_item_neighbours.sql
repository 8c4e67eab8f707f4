{{ config(materialized='table') }}

-- Item-item collaborative filtering: for each product, its top
-- var recs_neighbours co-interacted products by cosine similarity of
-- session co-occurrence (docs block recommend_item_cf), computed for three
-- windows in one self-join of the sessions: `validation_train` (days before
-- the validation day) and `train` (days before the cutoff), for evaluation,
-- and `full` (every day), for production. Sessions keep at
-- most var recs_max_items_per_session products (strongest interaction first,
-- then most recent), which bounds the self-join; they are joined on a 64-bit
-- hash of the session id. Co-occurrence is symmetric, so each pair is counted
-- once (product_id < neighbour_product_id) and read from both ends. Only the
-- pairs at or above a product's floor (its var recs_neighbours-th best
-- similarity, from a top-n aggregate) are sorted: any pair ranked above a kept
-- neighbour is at least as similar, so the ranks are those of sorting all of
-- the product's pairs.
{%- set max_items = var('recs_max_items_per_session') | int %}
{%- set neighbours = var('recs_neighbours') | int %}
with session_items as (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ ref('int_recommend_windows') }}

),

session_products as (

    -- one row per session x product
    select
        hash(session_items.session_id) as session_key,
        session_items.product_id,
        max(session_items.interaction_weight) as interaction_weight,
        max(session_items.last_event_at) as last_event_at,
        max(session_items.event_date) as last_event_date
    from session_items
    group by 1, 2

),

capped as (

    select
        session_products.session_key,
        session_products.product_id,
        session_products.interaction_weight,
        max(session_products.last_event_date) over (
            partition by session_products.session_key
        ) as session_last_date
    from session_products
    qualify
        row_number() over (
            partition by session_products.session_key
            order by
                session_products.interaction_weight desc,
                session_products.last_event_at desc,
                session_products.product_id asc
        ) <= {{ max_items }}

),

session_windows as (

    -- a session is in an evaluation window when all of it is before the
    -- window's end (one crossing into the test day is not in `train`); `full`
    -- holds every session
    select
        capped.session_key,
        capped.product_id,
        capped.interaction_weight,
        capped.session_last_date
        < windows.validation_date as in_validation_train,
        capped.session_last_date < windows.cutoff_date as in_train
    from capped
    cross join windows

),

item_totals as (

    select
        product_id,
        sum(interaction_weight) filter (
            where in_validation_train
        ) as validation_train_total_weight,
        sum(interaction_weight) filter (
            where in_train
        ) as train_total_weight,
        sum(interaction_weight) as full_total_weight
    from session_windows
    group by 1

),

session_pairs as (

    -- each unordered pair once: the windows are the session's, so both orders
    -- of a pair add up the same
    select
        left_items.product_id,
        right_items.product_id as neighbour_product_id,
        sum(
            least(left_items.interaction_weight, right_items.interaction_weight)
        ) filter (
            where left_items.in_validation_train
        ) as validation_train_co_weight,
        count(*) filter (
            where left_items.in_validation_train
        ) as validation_train_co_sessions,
        sum(
            least(left_items.interaction_weight, right_items.interaction_weight)
        ) filter (where left_items.in_train) as train_co_weight,
        count(*) filter (where left_items.in_train) as train_co_sessions,
        sum(
            least(left_items.interaction_weight, right_items.interaction_weight)
        ) as full_co_weight,
        count(*) as full_co_sessions
    from session_windows as left_items
    inner join session_windows as right_items
        on
            left_items.session_key = right_items.session_key
            and left_items.product_id < right_items.product_id
    group by 1, 2

),

pair_similarities as (

    select
        session_pairs.*,
        session_pairs.validation_train_co_weight / sqrt(
            item_totals.validation_train_total_weight
            * neighbour_totals.validation_train_total_weight
        ) as validation_train_similarity,
        session_pairs.train_co_weight / sqrt(
            item_totals.train_total_weight
            * neighbour_totals.train_total_weight
        ) as train_similarity,
        session_pairs.full_co_weight / sqrt(
            item_totals.full_total_weight
            * neighbour_totals.full_total_weight
        ) as full_similarity
    from session_pairs
    inner join item_totals
        on session_pairs.product_id = item_totals.product_id
    inner join item_totals as neighbour_totals
        on session_pairs.neighbour_product_id = neighbour_totals.product_id

),

-- every pair from both of its ends; inlined, so the floors read only the
-- similarities and the candidates only the pairs that pass a floor
directed_pairs as not materialized (

    select * from pair_similarities
    union all
    select
        * replace (
            pair_similarities.neighbour_product_id as product_id,
            pair_similarities.product_id as neighbour_product_id
        )
    from pair_similarities

),

similarity_floors as (

    -- the var recs_neighbours-th best similarity of each product in each
    -- window (its worst when it has fewer pairs); an evaluation window only
    -- counts the pairs sharing one of its sessions, as its rank does
    select
        product_id,
        list_min(
            max(validation_train_similarity, {{ neighbours }}) filter (
                where validation_train_co_sessions > 0
            )
        ) as validation_train_floor,
        list_min(
            max(train_similarity, {{ neighbours }}) filter (
                where train_co_sessions > 0
            )
        ) as train_floor,
        list_min(max(full_similarity, {{ neighbours }})) as full_floor
    from directed_pairs
    group by 1

),

candidates as (

    -- the pairs at or above the floor of their product in some window (no
    -- session of the window: a NULL similarity, never a candidate there)
    select
        directed_pairs.*,
        (
            directed_pairs.validation_train_co_sessions > 0
            and directed_pairs.validation_train_similarity
            >= similarity_floors.validation_train_floor
        ) as is_validation_train_candidate,
        (
            directed_pairs.train_co_sessions > 0
            and directed_pairs.train_similarity >= similarity_floors.train_floor
        ) as is_train_candidate,
        (
            directed_pairs.full_similarity >= similarity_floors.full_floor
        ) as is_full_candidate
    from directed_pairs
    inner join similarity_floors
        on directed_pairs.product_id = similarity_floors.product_id
    where
        directed_pairs.validation_train_similarity
        >= similarity_floors.validation_train_floor
        or directed_pairs.train_similarity >= similarity_floors.train_floor
        or directed_pairs.full_similarity >= similarity_floors.full_floor

),

final as (

    select
        'validation_train' as window_role,
        product_id,
        neighbour_product_id,
        validation_train_co_weight as co_weight,
        validation_train_co_sessions as co_sessions,
        validation_train_similarity as similarity,
        row_number() over (
            partition by product_id
            order by
                validation_train_similarity desc,
                validation_train_co_weight desc,
                neighbour_product_id asc
        ) as neighbour_rank
    from candidates
    where is_validation_train_candidate
    qualify neighbour_rank <= {{ neighbours }}
    union all
    select
        'train' as window_role,
        product_id,
        neighbour_product_id,
        train_co_weight as co_weight,
        train_co_sessions as co_sessions,
        train_similarity as similarity,
        row_number() over (
            partition by product_id
            order by
                train_similarity desc,
                train_co_weight desc,
                neighbour_product_id asc
        ) as neighbour_rank
    from candidates
    where is_train_candidate
    qualify neighbour_rank <= {{ neighbours }}
    union all
    select
        'full' as window_role,
        product_id,
        neighbour_product_id,
        full_co_weight as co_weight,
        full_co_sessions as co_sessions,
        full_similarity as similarity,
        row_number() over (
            partition by product_id
            order by
                full_similarity desc,
                full_co_weight desc,
                neighbour_product_id asc
        ) as neighbour_rank
    from candidates
    where is_full_candidate
    qualify neighbour_rank <= {{ neighbours }}

)

select * from final
