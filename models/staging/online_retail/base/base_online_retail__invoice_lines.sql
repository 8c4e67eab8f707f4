{{ config(
    pre_hook="{{ online_retail_check_files() }}",
    post_hook="{{ persist_csv_rejects(
        'base_online_retail__csv_rejects',
        'online_retail_reject_errors',
        'online_retail_reject_scans',
        replace=true,
    ) }}",
) }}

-- Every line the reader could split into fields: the raw text of each field,
-- the typed values, and why the line cannot be used (NULL when it can). Nothing
-- is filtered here; stg_online_retail__invoice_lines keeps the valid lines and
-- stg_online_retail__invoice_lines_rejected the others. Rules and their order:
-- _online_retail__docs.md, "Rejected lines".
with source as (

    -- the sheet column is optional: a file without it gives NULL
    select *
    from (
        select cast(null as varchar) as sheet
        where false
    ) as no_sheet
    union all by name
    select * from {{ source('online_retail', 'invoice_lines') }}

),

raw_fields as (

    select
        nullif(trim(invoice), '') as raw_invoice,
        nullif(trim(stockcode), '') as raw_stock_code,
        description as raw_description,
        nullif(trim(quantity), '') as raw_quantity,
        nullif(trim(invoicedate), '') as raw_invoice_date,
        nullif(trim(price), '') as raw_price,
        nullif(trim("Customer ID"), '') as raw_customer_id,
        country as raw_country,
        nullif(trim(sheet), '') as sheet_name,
        filename as source_file,
        {{ rees46_loaded_at() }} as loaded_at
    from source

),

typed as (

    select
        *,
        upper(raw_invoice) as invoice_id,
        upper(raw_stock_code) as stock_code,
        nullif(trim(raw_description), '') as description,
        {{ online_retail_integer('raw_quantity') }} as quantity,
        -- ISO (the UCI csv) or the US layout Excel writes (12/1/2009 7:45)
        try_strptime(
            raw_invoice_date,
            [
                '%Y-%m-%d %H:%M:%S',
                '%Y-%m-%d %H:%M',
                '%m/%d/%Y %H:%M',
                '%m/%d/%Y %H:%M:%S',
            ]
        ) as invoice_local_at,
        try_cast(raw_price as decimal(14, 3)) as unit_price,
        {{ online_retail_integer('raw_customer_id') }} as customer_id,
        nullif(trim(raw_country), '') as country
    from raw_fields

),

validated as (

    select
        *,
        case
            when invoice_id is null then 'missing_invoice'
            when not regexp_full_match(invoice_id, '[CA]?[0-9]+')
                then 'unparsable_invoice'
            when stock_code is null then 'missing_stock_code'
            when raw_quantity is null then 'missing_quantity'
            when quantity is null then 'unparsable_quantity'
            when quantity = 0 then 'zero_quantity'
            when raw_invoice_date is null then 'missing_invoice_date'
            when invoice_local_at is null then 'unparsable_invoice_date'
            when raw_price is null then 'missing_price'
            when unit_price is null then 'unparsable_price'
            when raw_customer_id is not null and customer_id is null
                then 'unparsable_customer_id'
            when invoice_id like 'C%' and quantity > 0
                then 'cancellation_with_positive_quantity'
            when unit_price < 0 and invoice_id not like 'A%'
                then 'negative_price'
        end as reject_reason
    from typed

)

select * from validated
