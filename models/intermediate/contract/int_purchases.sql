-- the source branches are not indented: each is a whole query
-- sqlfluff:indentation:template_blocks_indent:False
-- a table: six models read it, and the click-stream branch filters the events
{{ config(materialized='table') }}

-- The purchase contract: one row per purchased product line, whatever the
-- source. The customer marts (dim_customers, RFM, cohorts) and the churn,
-- CLV, cross-sell and forecast models read purchases only from here, so
-- they run unchanged on either source (var source; docs block
-- purchase_contract). Each branch maps one staged source onto the contract.
{% if var('source') == 'online_retail' %}
{{- announce_source() }}

with invoice_lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

returns as (

    select * from {{ ref('stg_online_retail__returns') }}

),

-- matched returns, netted against the sale line they return
-- (docs block online_retail_returns)
returned_per_sale as (

    select
        sale_line_id,
        sum(quantity) as returned_quantity,
        sum(refund_amount) as refund_amount
    from returns
    where is_matched
    group by 1

),

-- product sales only: postage, fees and adjustments stay in staging for
-- revenue reconciliation; lines without a customer stay (user_id null)
sales as (

    select
        invoice_lines.*,
        coalesce(returned_per_sale.returned_quantity, 0) as returned_quantity,
        coalesce(returned_per_sale.refund_amount, 0) as refund_amount
    from invoice_lines
    left join returned_per_sale
        on invoice_lines.invoice_line_id = returned_per_sale.sale_line_id
    where invoice_lines.line_type = 'sale' and invoice_lines.is_product

),

final as (

    select
        cast(invoice_line_id as varchar) as purchase_id,
        cast(invoice_id as varchar) as order_id,
        cast(customer_id as bigint) as user_id,
        cast(stock_code as varchar) as product_id,
        description as product_label,
        cast(null as varchar) as category_l1,
        invoice_at as purchased_at,
        invoice_date as purchase_date,
        cast(quantity as integer) as ordered_quantity,
        cast(returned_quantity as integer) as returned_quantity,
        cast(quantity - returned_quantity as integer) as quantity,
        cast(unit_price as decimal(18, 3)) as unit_price,
        cast(line_amount - refund_amount as decimal(18, 2)) as amount,
        customer_id is not null and quantity > returned_quantity
            as is_customer_purchase,
        'online_retail' as source  -- noqa: RF04
    from sales

)

{% else %}

with sessionized_events as (

    select * from {{ ref('int_events_sessionized') }}

),

-- a REES46 purchase event is one unit of one product; the session is the
-- order (the shop's order id is not in the data); returns are not recorded
final as (

    select
        cast(event_id as varchar) as purchase_id,
        cast(session_id as varchar) as order_id,
        user_id,
        cast(product_id as varchar) as product_id,
        nullif(concat_ws(' ', brand, category_code), '') as product_label,
        category_l1,
        event_at as purchased_at,
        event_date as purchase_date,
        1 as ordered_quantity,
        0 as returned_quantity,
        1 as quantity,
        cast(price as decimal(18, 3)) as unit_price,
        cast(price as decimal(18, 2)) as amount,
        true as is_customer_purchase,
        'rees46' as source  -- noqa: RF04
    from sessionized_events
    where event_type = 'purchase'

)

{% endif %}

select * from final
