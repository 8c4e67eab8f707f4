{{ config(enabled=var('source') == 'online_retail') }}

-- Nothing is silently dropped from the Online Retail II files: every line read
-- (split into fields, or rejected by the reader) is a kept invoice line, a
-- counted duplicate (its copy in a later sheet) or a quarantined line, in all
-- and per file. Returns a row when the two sides differ.
with base_lines as (

    select * from {{ ref('base_online_retail__invoice_lines') }}

),

csv_rejects as (

    select * from {{ source('online_retail_load', 'csv_rejects') }}

),

lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

rejected as (

    select * from {{ ref('stg_online_retail__invoice_lines_rejected') }}

),

audit as (

    select * from {{ ref('stg_online_retail__load_audit') }}

),

read_per_file as (

    select
        source_file,
        count(*) as rows_read
    from (
        select source_file from base_lines
        union all
        select source_file
        from (
            select distinct
                source_file,
                source_line
            from csv_rejects
        ) as unparsable
    ) as read_lines
    group by 1

),

rows_parsed as (

    select count(*) as n from base_lines

),

rows_unparsable as (

    select count(*) as n
    from (
        select distinct
            source_file,
            source_line
        from csv_rejects
    ) as unparsable

),

rows_kept as (

    select
        count(*) as n,
        coalesce(sum(duplicate_count), 0) as duplicates
    from lines

),

rows_rejected as (

    select count(*) as n from rejected

),

audit_duplicates as (

    select coalesce(sum(rows_duplicate), 0) as n from audit

),

totals as (

    select
        rows_parsed.n + rows_unparsable.n as rows_read,
        rows_kept.n as rows_kept,
        rows_kept.duplicates as rows_duplicate,
        rows_rejected.n as rows_rejected,
        audit_duplicates.n as audit_duplicates
    from rows_parsed
    cross join rows_unparsable
    cross join rows_kept
    cross join rows_rejected
    cross join audit_duplicates

),

final as (

    select
        'all files' as source_file,
        'read != kept + duplicates + rejected' as failure
    from totals
    where rows_read != rows_kept + rows_duplicate + rows_rejected
    union all
    select
        'all files' as source_file,
        'duplicates per file do not add up' as failure
    from totals
    where audit_duplicates != rows_duplicate
    union all
    select
        coalesce(audit.source_file, read_per_file.source_file) as source_file,
        'audit differs from the lines read, or a negative count' as failure
    from audit
    full outer join read_per_file
        on audit.source_file = read_per_file.source_file
    where audit.rows_read is distinct from read_per_file.rows_read
        or audit.rows_read
        != audit.rows_kept + audit.rows_duplicate + audit.rows_rejected
        or least(audit.rows_kept, audit.rows_duplicate, audit.rows_rejected) < 0

)

select * from final
