-- Where every raw line went, per file: rows_read = rows_kept + rows_duplicate +
-- rows_rejected. A duplicate is attributed to the file it was read from; the
-- kept copy to the first file (by name) that holds it, so a re-delivered file
-- shows up as all duplicates.
with base_events as (

    select * from {{ ref('base_rees46__events') }}

),

events as (

    select * from {{ ref('stg_rees46__events') }}

),

rejected as (

    select * from {{ ref('stg_rees46__events_rejected') }}

),

parsed_per_file as (

    select
        source_file,
        count(*) as rows_parsed
    from base_events
    group by 1

),

kept_per_file as (

    select
        source_file,
        count(*) as rows_kept
    from events
    group by 1

),

rejected_per_file as (

    select
        source_file,
        count(*) as rows_rejected,
        count(*) filter (where reject_stage = 'parse') as rows_unparsable
    from rejected
    group by 1

),

files as (

    select source_file from parsed_per_file
    union
    select source_file from rejected_per_file

),

final as (

    select
        files.source_file,
        coalesce(parsed.rows_parsed, 0)
        + coalesce(rejected.rows_unparsable, 0) as rows_read,
        coalesce(kept.rows_kept, 0) as rows_kept,
        coalesce(parsed.rows_parsed, 0)
        - coalesce(rejected.rows_rejected, 0)
        + coalesce(rejected.rows_unparsable, 0)
        - coalesce(kept.rows_kept, 0) as rows_duplicate,
        coalesce(rejected.rows_rejected, 0) as rows_rejected
    from files
    left join parsed_per_file as parsed
        on files.source_file = parsed.source_file
    left join kept_per_file as kept
        on files.source_file = kept.source_file
    left join rejected_per_file as rejected
        on files.source_file = rejected.source_file

)

select * from final
