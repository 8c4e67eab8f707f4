-- Nothing is silently dropped: every line DuckDB read (parsed, or rejected by
-- the reader) is either a kept event, a counted exact duplicate, or a
-- quarantined row. Returns a row when the two sides differ.
with parsed as (

    select count(*) as n from {{ ref('base_rees46__events') }}

),

unparsable as (

    select count(*) as n
    from (
        select distinct
            source_file,
            source_line
        from {{ source('rees46_load', 'csv_rejects') }}
    )

),

events as (

    select
        count(*) as kept,
        coalesce(sum(duplicate_count), 0) as duplicates
    from {{ ref('stg_rees46__events') }}

),

rejected as (

    select count(*) as n from {{ ref('stg_rees46__events_rejected') }}

),

final as (

    select
        parsed.n + unparsable.n as rows_read,
        events.kept + events.duplicates + rejected.n as rows_accounted_for
    from parsed
    cross join unparsable
    cross join events
    cross join rejected

)

select * from final
where rows_read != rows_accounted_for
