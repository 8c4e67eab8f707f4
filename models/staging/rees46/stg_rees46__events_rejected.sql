{{ config(materialized='incremental', incremental_strategy='append') }}

-- The quarantine: one row per raw line that did not become an event, with the
-- reason. Lines the csv reader could not parse come from DuckDB's reject tables
-- (several errors on one line are merged); lines that parsed but break a rule
-- come from the base table. Incremental: appends what later loads add.
with csv_rejects as (

    select * from {{ source('rees46_load', 'csv_rejects') }}
    {{ rees46_loaded_after_this() }}

),

base_events as (

    select * from {{ ref('base_rees46__events') }}
    {{ rees46_loaded_after_this() }}

),

reader_errors as (

    select
        source_file,
        source_line,
        csv_line,
        error_message,
        loaded_at,
        case
            when error_type = 'CAST' then 'unparsable_' || column_name
            when error_type in ('MISSING COLUMNS', 'TOO MANY COLUMNS')
                then 'wrong_column_count'
            else lower(replace(error_type, ' ', '_'))
        end as reject_reason
    from csv_rejects

),

unparsable_lines as (

    select
        source_file,
        source_line,
        string_agg(distinct reject_reason, ', ') as reject_reason,
        trim(any_value(csv_line), chr(10) || chr(13)) as raw_line,
        string_agg(error_message, ' | ') as error_message,
        max(loaded_at) as loaded_at
    from reader_errors
    group by 1, 2

),

invalid_events as (

    select
        source_file,
        cast(null as ubigint) as source_line,
        {{ rees46_reject_reason() }} as reject_reason,
        concat_ws(
            ',',
            coalesce(strftime(event_time, '%Y-%m-%d %H:%M:%S UTC'), ''),
            coalesce(event_type, ''),
            coalesce(cast(product_id as varchar), ''),
            coalesce(cast(category_id as varchar), ''),
            coalesce(category_code, ''),
            coalesce(brand, ''),
            coalesce(cast(price as varchar), ''),
            coalesce(cast(user_id as varchar), ''),
            coalesce(user_session, '')
        ) as raw_line,
        cast(null as varchar) as error_message,
        loaded_at
    from base_events
    where {{ rees46_reject_reason() }} is not null

),

final as (

    select
        *,
        'parse' as reject_stage
    from unparsable_lines
    union all
    select
        *,
        'validate' as reject_stage
    from invalid_events

)

select * from final
