-- The quarantine: one row per raw line that did not become an invoice line,
-- with the reason. Lines the csv reader could not split into the columns of
-- the header come from DuckDB's reject tables (several errors on one line are
-- merged); lines that split but break a rule come from the base table.
with csv_rejects as (

    select * from {{ source('online_retail_load', 'csv_rejects') }}

),

base_lines as (

    select * from {{ ref('base_online_retail__invoice_lines') }}

),

reader_errors as (

    select
        source_file,
        source_line,
        csv_line,
        error_message,
        loaded_at,
        case
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
        cast(null as varchar) as sheet_name,
        string_agg(distinct reject_reason, ', ') as reject_reason,
        trim(any_value(csv_line), chr(10) || chr(13)) as raw_line,
        string_agg(error_message, ' | ') as error_message,
        max(loaded_at) as loaded_at
    from reader_errors
    group by 1, 2

),

invalid_lines as (

    select
        source_file,
        cast(null as ubigint) as source_line,
        sheet_name,
        reject_reason,
        concat_ws(
            ',',
            coalesce(raw_invoice, ''),
            coalesce(raw_stock_code, ''),
            coalesce(raw_description, ''),
            coalesce(raw_quantity, ''),
            coalesce(raw_invoice_date, ''),
            coalesce(raw_price, ''),
            coalesce(raw_customer_id, ''),
            coalesce(raw_country, '')
        ) as raw_line,
        cast(null as varchar) as error_message,
        loaded_at
    from base_lines
    where reject_reason is not null

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
    from invalid_lines

)

select * from final
