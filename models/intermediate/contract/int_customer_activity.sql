-- the source branches are not indented: each is a whole query
-- sqlfluff:indentation:template_blocks_indent:False
-- One row per customer the source has seen: first and last activity, visits,
-- events and favourites; what dim_customers needs beyond purchases (docs
-- block purchase_contract). A transactions-only source records no views or
-- carts (null) and no categories or brands; its visits are the customer's
-- invoices, sales and returns alike.
{% if var('source') == 'online_retail' %}

with invoice_lines as (

    select * from {{ ref('stg_online_retail__invoice_lines') }}

),

final as (

    select
        cast(customer_id as bigint) as user_id,
        min(invoice_at) as first_seen_at,
        max(invoice_at) as last_seen_at,
        count(distinct invoice_id) as sessions,
        count(*) as events,
        cast(null as integer) as views,  -- noqa: RF04
        cast(null as integer) as carts,
        cast(null as varchar) as favourite_category_code,
        cast(null as varchar) as favourite_brand
    from invoice_lines
    where has_customer
    group by 1

)

{% else %}

with users as (

    select * from {{ ref('int_customers_events_aggregated') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

sessions_per_user as (

    select
        user_id,
        count(*) as sessions
    from sessions
    group by 1

),

final as (

    select
        users.user_id,
        users.first_event_at as first_seen_at,
        users.last_event_at as last_seen_at,
        coalesce(sessions_per_user.sessions, 0) as sessions,
        users.events,
        users.views,  -- noqa: RF04
        users.carts,
        users.favourite_category_code,
        users.favourite_brand
    from users
    left join sessions_per_user
        on users.user_id = sessions_per_user.user_id

)

{% endif %}

select
    user_id,
    first_seen_at,
    last_seen_at,
    cast(sessions as integer) as sessions,
    cast(events as integer) as events,
    cast(views as integer) as views,  -- noqa: RF04
    cast(carts as integer) as carts,
    favourite_category_code,
    favourite_brand
from final
