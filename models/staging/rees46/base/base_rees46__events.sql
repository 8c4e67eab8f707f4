{{ config(
    pre_hook="{{ rees46_check_files() }}",
    post_hook="{{ rees46_persist_csv_rejects() }}",
) }}

-- Every line the reader could parse, typed, with the file it came from. Nothing
-- is filtered here: validation and deduplication happen in stg_rees46__events,
-- so this table plus the csv rejects is exactly what was in the files.
with source as (

    select * from {{ source('rees46', 'events') }}

),

typed as (

    select
        -- csv gives TIMESTAMP already; parquet may hold TIMESTAMPTZ or text.
        -- The session time zone is UTC (profiles.yml), so the cast keeps wall-
        -- clock UTC.
        cast(try_cast(event_time as timestamptz) as timestamp) as event_time,
        cast(event_type as varchar) as event_type,
        try_cast(product_id as bigint) as product_id,
        try_cast(category_id as bigint) as category_id,
        nullif(cast(category_code as varchar), '') as category_code,
        nullif(cast(brand as varchar), '') as brand,
        try_cast(price as double) as price,
        try_cast(user_id as bigint) as user_id,
        nullif(cast(user_session as varchar), '') as user_session,
        filename as source_file

    from source

)

select * from typed
