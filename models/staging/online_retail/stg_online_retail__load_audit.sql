-- Where every raw line of each file went: rows_read = rows_kept +
-- rows_duplicate + rows_rejected, and what the kept lines are. A duplicate
-- (the copy of a line in a later sheet) is counted in the file it was read
-- from; the kept copy in the first file, by name, that holds it.
with base_lines as (

    select * from {{ ref('base_online_retail__invoice_lines') }}

),

lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

rejected as (

    select * from {{ ref('stg_online_retail__invoice_lines_rejected') }}

),

parsed_per_file as (

    select
        source_file,
        count(*) as rows_parsed
    from base_lines
    group by 1

),

kept_per_file as (

    select
        source_file,
        count(*) as rows_kept,
        count(*) filter (where line_type = 'sale') as rows_sale,
        count(*) filter (where line_type = 'return') as rows_return,
        count(*) filter (
            where line_type in ('stock_adjustment', 'bad_debt_adjustment')
        ) as rows_adjustment,
        count(*) filter (where not has_customer) as rows_without_customer,
        count(*) filter (where not is_product) as rows_non_product,
        count(*) filter (where is_zero_price) as rows_zero_price,
        count(*) filter (where unit_price < 0) as rows_negative_price
    from lines
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
        coalesce(rejected.rows_rejected, 0) as rows_rejected,
        coalesce(kept.rows_sale, 0) as rows_sale,
        coalesce(kept.rows_return, 0) as rows_return,
        coalesce(kept.rows_adjustment, 0) as rows_adjustment,
        coalesce(kept.rows_without_customer, 0) as rows_without_customer,
        coalesce(kept.rows_non_product, 0) as rows_non_product,
        coalesce(kept.rows_zero_price, 0) as rows_zero_price,
        coalesce(kept.rows_negative_price, 0) as rows_negative_price
    from files
    left join parsed_per_file as parsed
        on files.source_file = parsed.source_file
    left join kept_per_file as kept
        on files.source_file = kept.source_file
    left join rejected_per_file as rejected
        on files.source_file = rejected.source_file

)

select * from final
