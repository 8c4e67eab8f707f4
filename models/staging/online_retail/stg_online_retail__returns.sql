-- Cancellation lines netted against the sales they return, first in, first
-- out: one row per (return line, sale line) pair it is netted against, plus one
-- row for the part of a return no earlier sale covers. Rule (docs block
-- online_retail_returns): within a customer and stock code, returns in time
-- order each take what is left of the sales made at or before them, oldest
-- sale first, never more than was bought.
with lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

-- Returns that can be netted: a known customer and a product.
return_lines as (

    select
        invoice_line_id as return_line_id,
        customer_id,
        stock_code,
        invoice_at as returned_at,
        -quantity as return_quantity,
        unit_price as return_unit_price,
        is_product,
        has_customer
    from lines
    where line_type = 'return'

),

sale_lines as (

    select
        invoice_line_id as sale_line_id,
        customer_id,
        stock_code,
        invoice_at as sold_at,
        quantity as sale_quantity
    from lines
    where line_type = 'sale' and is_product and has_customer

),

-- Each sale's interval on the axis of the customer's cumulative purchases of
-- the stock code: [sale_start, sale_end).
sale_ends as (

    select
        *,
        sum(sale_quantity) over (
            partition by customer_id, stock_code
            order by sold_at, sale_line_id
            rows between unbounded preceding and current row
        ) as sale_end
    from sale_lines

),

sale_intervals as (

    select
        *,
        sale_end - sale_quantity as sale_start
    from sale_ends

),

nettable_returns as (

    select * from return_lines
    where is_product and has_customer

),

-- S: what the customer bought of the stock code at or before each return.
bought_to_date as (

    select
        nettable_returns.return_line_id,
        coalesce(max(sale_intervals.sale_end), 0) as bought_to_date
    from nettable_returns
    left join sale_intervals
        on nettable_returns.customer_id = sale_intervals.customer_id
            and nettable_returns.stock_code = sale_intervals.stock_code
            and nettable_returns.returned_at >= sale_intervals.sold_at
    group by 1

),

-- Q: what the customer returned of it up to and including each return.
return_totals as (

    select
        nettable_returns.*,
        bought_to_date.bought_to_date,
        sum(nettable_returns.return_quantity) over (
            partition by
                nettable_returns.customer_id, nettable_returns.stock_code
            order by
                nettable_returns.returned_at, nettable_returns.return_line_id
            rows between unbounded preceding and current row
        ) as returned_to_date
    from nettable_returns
    inner join bought_to_date
        on nettable_returns.return_line_id = bought_to_date.return_line_id

),

-- Matched to date M = min(M_prev + q, S), unrolled:
-- M = Q + min(0, min over earlier-or-same returns of (S - Q)).
matched_totals as (

    select
        *,
        returned_to_date + least(
            0,
            min(bought_to_date - returned_to_date) over (
                partition by customer_id, stock_code
                order by returned_at, return_line_id
                rows between unbounded preceding and current row
            )
        ) as matched_to_date
    from return_totals

),

-- The return's interval on the same axis: [matched_from, matched_to_date).
return_intervals as (

    select
        *,
        coalesce(lag(matched_to_date) over (
            partition by customer_id, stock_code
            order by returned_at, return_line_id
        ), 0) as matched_from
    from matched_totals

),

allocations as (

    select
        return_intervals.return_line_id,
        sale_intervals.sale_line_id,
        least(return_intervals.matched_to_date, sale_intervals.sale_end)
        - greatest(return_intervals.matched_from, sale_intervals.sale_start)
            as quantity,
        cast(null as varchar) as unmatched_reason
    from return_intervals
    inner join sale_intervals
        on return_intervals.customer_id = sale_intervals.customer_id
            and return_intervals.stock_code = sale_intervals.stock_code
            and return_intervals.matched_to_date > sale_intervals.sale_start
            and return_intervals.matched_from < sale_intervals.sale_end

),

matched_per_return as (

    select
        return_line_id,
        sum(quantity) as matched_quantity
    from allocations
    group by 1

),

remainders as (

    select
        return_lines.return_line_id,
        cast(null as uuid) as sale_line_id,
        return_lines.return_quantity
        - coalesce(matched_returns.matched_quantity, 0) as quantity,
        case
            when not return_lines.has_customer then 'no_customer'
            when not return_lines.is_product then 'non_product'
            when return_intervals.bought_to_date = 0 then 'no_earlier_sale'
            else 'exceeds_earlier_sales'
        end as unmatched_reason
    from return_lines
    left join matched_per_return as matched_returns
        on return_lines.return_line_id = matched_returns.return_line_id
    left join return_intervals
        on return_lines.return_line_id = return_intervals.return_line_id
    where
        return_lines.return_quantity
        > coalesce(matched_returns.matched_quantity, 0)

),

pieces as (

    select * from allocations
    union all
    select * from remainders

),

final as (

    select
        {{ surrogate_key(['pieces.return_line_id', 'pieces.sale_line_id']) }}
            as return_allocation_id,
        pieces.return_line_id,
        pieces.sale_line_id,
        returned.invoice_id as return_invoice_id,
        sold.invoice_id as sale_invoice_id,
        returned.customer_id,
        returned.stock_code,
        returned.invoice_at as returned_at,
        sold.invoice_at as sold_at,
        cast(pieces.quantity as integer) as quantity,
        returned.unit_price as return_unit_price,
        cast(pieces.quantity * returned.unit_price as decimal(18, 3))
            as refund_amount,
        pieces.sale_line_id is not null as is_matched,
        pieces.unmatched_reason
    from pieces
    inner join lines as returned
        on pieces.return_line_id = returned.invoice_line_id
    left join lines as sold
        on pieces.sale_line_id = sold.invoice_line_id

)

select * from final
