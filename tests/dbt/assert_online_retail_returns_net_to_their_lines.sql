{{ config(enabled=var('source') == 'online_retail') }}

-- Return netting keeps quantities whole: every return line's allocated and
-- unmatched quantities add up to its returned quantity, no sale line is netted
-- below zero, and no return is netted against a later sale or another
-- customer's. Returns the offending lines.
with lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

returns as (

    select * from {{ ref('stg_online_retail__returns') }}

),

returned_per_line as (

    select
        return_line_id,
        sum(quantity) as quantity
    from returns
    group by 1

),

netted_per_sale as (

    select
        sale_line_id,
        sum(quantity) as quantity
    from returns
    where is_matched
    group by 1

),

return_lines_off as (

    select
        lines.invoice_line_id,
        'return line quantity not fully allocated' as failure
    from lines
    left join returned_per_line
        on lines.invoice_line_id = returned_per_line.return_line_id
    where lines.line_type = 'return'
        and returned_per_line.quantity is distinct from -lines.quantity

),

sales_overnetted as (

    select
        netted_per_sale.sale_line_id as invoice_line_id,
        'sale line netted below zero' as failure
    from netted_per_sale
    inner join lines
        on netted_per_sale.sale_line_id = lines.invoice_line_id
    where netted_per_sale.quantity > lines.quantity
        or lines.line_type != 'sale'

),

mismatched as (

    select
        returns.return_line_id as invoice_line_id,
        'netted against a later sale or another customer or product' as failure
    from returns
    inner join lines as sold
        on returns.sale_line_id = sold.invoice_line_id
    where sold.invoice_at > returns.returned_at
        or sold.customer_id != returns.customer_id
        or sold.stock_code != returns.stock_code

),

final as (

    select * from return_lines_off
    union all
    select * from sales_overnetted
    union all
    select * from mismatched

)

select * from final
