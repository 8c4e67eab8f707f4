{{ config(
    materialized='incremental',
    unique_key='event_id',
    incremental_strategy='delete+insert',
) }}

-- One row per distinct valid event. Exact duplicate lines (the same nine raw
-- values, within a file or across re-delivered files) collapse into one row
-- that counts them. Incremental: only base rows loaded after this table's
-- latest load are read, and an event seen again is rewritten with its new
-- count, so a batch of duplicates is counted, never added.
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with base_events as not materialized (

    select * from {{ ref('base_rees46__events') }}
    {{ rees46_loaded_after_this() }}

),

validated as (

    select
        *,
        {{ rees46_reject_reason() }} as reject_reason
    from base_events

),

-- The files of this load, numbered: the duplicate counting below keeps the
-- first file of each event as a number, because a text aggregate over every
-- row does not spill to disk and runs out of memory on a full month.
load_files as (

    select
        source_file,
        row_number() over (order by source_file) as file_number
    from (select distinct base_events.source_file from base_events) as files

),

-- Exact duplicates collapse on the nine raw values first, so the key is
-- hashed once per distinct event rather than once per line.
new_copies as (

    select
        validated.event_time,
        validated.event_type,
        validated.product_id,
        validated.category_id,
        validated.category_code,
        validated.brand,
        validated.price,
        validated.user_id,
        validated.user_session,
        min(load_files.file_number) as first_file_number,
        count(*) as copies,
        max(validated.loaded_at) as loaded_at
    from validated
    inner join load_files
        on validated.source_file = load_files.source_file
    where validated.reject_reason is null
    group by all

),

hashed as (

    select
        {{ surrogate_key([
            'event_time', 'event_type', 'product_id', 'category_id',
            'category_code', 'brand', 'price', 'user_id', 'user_session',
        ]) }} as event_id,
        *
    from new_copies

),

keyed as (

    select
        hashed.event_id,
        hashed.event_time as event_at,
        hashed.event_type,
        hashed.product_id,
        hashed.category_id,
        hashed.category_code,
        hashed.brand,
        cast(hashed.price as decimal(12, 2)) as price,
        hashed.user_id,
        hashed.user_session as raw_session_id,
        load_files.source_file,
        hashed.copies,
        hashed.loaded_at
    from hashed
    inner join load_files
        on hashed.first_file_number = load_files.file_number

),

{% if is_incremental() %}

    -- An event loaded before and seen again is rewritten with both counts.
    deduplicated as (

        select
            event_id,
            any_value(event_at) as event_at,
            any_value(event_type) as event_type,
            any_value(product_id) as product_id,
            any_value(category_id) as category_id,
            any_value(category_code) as category_code,
            any_value(brand) as brand,
            any_value(price) as price,
            any_value(user_id) as user_id,
            any_value(raw_session_id) as raw_session_id,
            min(source_file) as source_file,
            sum(copies) - 1 as duplicate_count,
            max(loaded_at) as loaded_at
        from (
            select * from keyed
            union all
            select
                event_id,
                event_at,
                event_type,
                product_id,
                category_id,
                category_code,
                brand,
                price,
                user_id,
                raw_session_id,
                source_file,
                duplicate_count + 1 as copies,
                loaded_at
            from {{ this }}
            where event_id in (select keyed.event_id from keyed)
        ) as all_copies
        group by 1

    ),

{% else %}

    deduplicated as (

        select
            * exclude (copies),
            copies - 1 as duplicate_count
        from keyed

    ),

{% endif %}

final as (

    select
        event_id,
        event_at,
        cast(event_at as date) as event_date,
        event_type,
        product_id,
        category_id,
        category_code,
        split_part(category_code, '.', 1) as category_l1,
        nullif(split_part(category_code, '.', 2), '') as category_l2,
        nullif(split_part(category_code, '.', 3), '') as category_l3,
        brand,
        price,
        user_id,
        raw_session_id,
        source_file,
        cast(duplicate_count as integer) as duplicate_count,
        loaded_at
    from deduplicated

)

select * from final
