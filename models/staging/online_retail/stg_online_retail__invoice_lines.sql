-- One row per distinct invoice line: typed, UTC, classified and flagged. The
-- two yearly sheets overlap (2010-12-01..09); a line present in both is kept
-- once and counted in duplicate_count, while lines repeated within one sheet
-- (the same item keyed twice on one invoice) are all kept. Rules:
-- _online_retail__docs.md.
with base_lines as (

    select * from {{ ref('base_online_retail__invoice_lines') }}

),

non_product_codes as (

    select * from {{ ref('online_retail_non_product_stock_codes') }}

),

valid_lines as (

    select
        *,
        -- a sheet is one sheet of one file: a re-delivered file is a copy too
        concat_ws(' / ', source_file, sheet_name) as sheet_key
    from base_lines
    where reject_reason is null

),

-- The k-th copy of a line within its sheet (k = 1, 2, ... for lines repeated in
-- one sheet); copies are identical, so which one is k-th does not matter.
numbered as (

    select
        *,
        row_number() over (
            partition by
                invoice_id, stock_code, description, quantity, invoice_local_at,
                unit_price, customer_id, country, sheet_key
            order by sheet_key
        ) as occurrence
    from valid_lines

),

-- The k-th copy in the first sheet (by file, then sheet name) is kept; the
-- k-th copies in later sheets are its duplicates. So a line kept n times is
-- the most times any one sheet holds it.
ranked as (

    select
        *,
        row_number() over (
            partition by
                invoice_id, stock_code, description, quantity, invoice_local_at,
                unit_price, customer_id, country, occurrence
            order by source_file, sheet_name
        ) as copy_rank,
        count(*) over (
            partition by
                invoice_id, stock_code, description, quantity, invoice_local_at,
                unit_price, customer_id, country, occurrence
        ) as copies
    from numbered

),

kept as (

    select * from ranked
    where copy_rank = 1

),

classified as (

    select
        kept.*,
        non_product.line_kind as non_product_kind
    from kept
    left join non_product_codes as non_product
        on kept.stock_code like upper(non_product.stock_code_pattern)

),

final as (

    select
        {{ surrogate_key([
            'invoice_id', 'stock_code', 'description', 'quantity',
            'invoice_local_at', 'unit_price', 'customer_id', 'country',
            'occurrence',
        ]) }} as invoice_line_id,
        invoice_id,
        case
            when invoice_id like 'C%' then 'return'
            when invoice_id like 'A%' then 'bad_debt_adjustment'
            when quantity < 0 then 'stock_adjustment'
            else 'sale'
        end as line_type,
        stock_code,
        description,
        non_product_kind is null as is_product,
        coalesce(non_product_kind, 'product') as line_kind,
        cast(quantity as integer) as quantity,
        unit_price,
        cast(quantity * unit_price as decimal(18, 3)) as line_amount,
        unit_price = 0 as is_zero_price,
        customer_id,
        customer_id is not null as has_customer,
        country,
        -- UK local wall-clock time (GMT, or BST in summer) converted to UTC
        timezone(
            'UTC', timezone('Europe/London', invoice_local_at)
        ) as invoice_at,
        cast(
            timezone('UTC', timezone('Europe/London', invoice_local_at)) as date
        ) as invoice_date,
        invoice_local_at,
        cast(occurrence as integer) as occurrence_in_sheet,
        sheet_name,
        source_file,
        cast(copies - 1 as integer) as duplicate_count,
        loaded_at
    from classified

)

select * from final
