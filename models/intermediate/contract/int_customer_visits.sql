-- the source branches are not indented: each is a whole query
-- sqlfluff:indentation:template_blocks_indent:False
-- One row per customer visit: a session of the click-stream, or an invoice
-- (sale or return) of a transactions-only source, which records no views or
-- carts. The customer ML snapshots read visit features only from here (docs
-- block purchase_contract).
{% if var('source') == 'online_retail' %}

with invoice_lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

final as (

    select
        cast(invoice_id as varchar) as visit_id,
        cast(customer_id as bigint) as user_id,
        min(invoice_date) as visit_date,
        min(invoice_at) as visit_started_at,
        max(invoice_at) as visit_ended_at,
        count(*) as events,
        cast(null as integer) as views,  -- noqa: RF04
        cast(null as integer) as carts,
        cast(null as boolean) as has_cart,
        cast(null as boolean) as is_cart_abandoned
    from invoice_lines
    where has_customer
    group by 1, 2

)

{% else %}

with sessions as (

    select * from {{ ref('fct_sessions') }}

),

final as (

    select
        cast(session_id as varchar) as visit_id,
        user_id,
        session_date as visit_date,
        session_started_at as visit_started_at,
        session_ended_at as visit_ended_at,
        events,
        views,  -- noqa: RF04
        carts,
        has_cart,
        is_cart_abandoned
    from sessions

)

{% endif %}

select
    visit_id,
    user_id,
    visit_date,
    visit_started_at,
    visit_ended_at,
    cast(events as integer) as events,
    cast(views as integer) as views,  -- noqa: RF04
    cast(carts as integer) as carts,
    has_cart,
    is_cart_abandoned
from final
