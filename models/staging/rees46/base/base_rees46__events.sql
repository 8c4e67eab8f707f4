{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ rees46_check_files() }}",
    post_hook="{{ rees46_persist_csv_rejects() }}",
) }}

-- Every line the reader could parse, typed, with the file it came from. Nothing
-- is filtered here: validation and deduplication happen in stg_rees46__events,
-- so this table plus the csv rejects is exactly what was in the files.
-- Incremental by file: a file whose name was loaded before is not read again
-- (DuckDB prunes it from the glob), so a daily run reads only the new day.
with source as (

    select * from {{ source('rees46', 'events') }}
    {% if is_incremental() %}
        {%- set loaded = rees46_loaded_files() %}
        {%- if loaded %}
            where filename not in ({{ loaded }})
        {%- endif %}
    {% endif %}

),

typed as (

    select
        -- csv gives TIMESTAMP already; parquet may hold TIMESTAMPTZ or text.
        -- The session time zone is UTC (profiles.yml): wall-clock UTC is kept.
        cast(try_cast(event_time as timestamptz) as timestamp) as event_time,
        cast(event_type as varchar) as event_type,
        try_cast(product_id as bigint) as product_id,
        try_cast(category_id as bigint) as category_id,
        nullif(cast(category_code as varchar), '') as category_code,
        nullif(cast(brand as varchar), '') as brand,
        try_cast(price as double) as price,
        try_cast(user_id as bigint) as user_id,
        nullif(cast(user_session as varchar), '') as user_session,
        filename as source_file,
        {{ rees46_loaded_at() }} as loaded_at

    from source

)

select * from typed
