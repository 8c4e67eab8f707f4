-- the source branches are not indented: each is a whole query
-- sqlfluff:indentation:template_blocks_indent:False
{{ config(materialized='table') }}

-- One row per session x basket level x item: the distinct products (level
-- 'product') and category ids (level 'category') a session carted or bought
-- (an invoice bought, for a transactions-only source: var source),
-- numbered in the order they were first added. Each session is dated by its
-- start (as in fct_sessions) and falls in the train or the test split: the
-- test split is the last var cross_sell_test_days days of basket sessions.
-- Sessions with more than var cross_sell_max_basket_products products stay
-- here with is_oversized = true; rule mining and evaluation leave them out.
{% if var('source') == 'online_retail' %}

-- a transactions-only source: the basket is the invoice (every product sale
-- line, with or without a customer, kept or later returned); no categories
with purchases as (

    select * from {{ ref('int_purchases') }}

),

basket_events as (

    select
        order_id as session_id,
        purchased_at as event_at,
        product_id,
        cast(null as bigint) as category_id,
        cast(null as varchar) as category_code,
        product_label
    from purchases

),

session_starts as (

    select
        session_id,
        cast(min(event_at) as date) as session_date
    from basket_events
    group by 1

),

{% else %}

-- read twice or more: inlined, so DuckDB does not first copy the whole table
with sessionized_events as not materialized (

    select * from {{ ref('int_events_sessionized') }}

),

basket_events as (

    select
        session_id,
        event_at,
        product_id,
        category_id,
        category_code,
        nullif(concat_ws(' ', brand, category_code), '') as product_label
    from sessionized_events
    where event_type in ('cart', 'purchase')

),

session_starts as (

    select
        session_id,
        cast(min(event_at) as date) as session_date
    from sessionized_events
    where
        session_id in (
            select basket_events.session_id from basket_events
        )
    group by 1

),

{% endif %}

product_items as (

    select
        session_id,
        'product' as basket_level,
        product_id as item_id,
        any_value(product_label) as item_label,
        min(event_at) as first_added_at
    from basket_events
    group by 1, 2, 3

),

category_items as (

    select
        session_id,
        'category' as basket_level,
        category_id as item_id,
        any_value(category_code) as item_label,
        min(event_at) as first_added_at
    from basket_events
    where category_id is not null  -- a source without categories has none
    group by 1, 2, 3

),

items as (

    select * from product_items
    union all
    select * from category_items

),

numbered as (

    select
        items.session_id,
        session_starts.session_date,
        items.basket_level,
        items.item_id,
        items.item_label,
        items.first_added_at,
        row_number() over (
            partition by items.session_id, items.basket_level
            order by items.first_added_at asc, items.item_id asc
        ) as item_order,
        count(*) over (
            partition by items.session_id, items.basket_level
        ) as basket_items
    from items
    inner join session_starts
        on items.session_id = session_starts.session_id

),

with_products as (

    select
        *,
        max(
            case when basket_level = 'product' then basket_items end
        ) over (partition by session_id) as basket_products,
        max(session_date) over () - (
            {{ var('cross_sell_test_days') | int }} - 1
        ) as test_start_date
    from numbered

),

final as (

    select
        session_id,
        session_date,
        case
            when session_date >= test_start_date then 'test' else 'train'
        end as split,
        basket_level,
        item_id,
        item_label,
        first_added_at,
        cast(item_order as integer) as item_order,
        cast(basket_items as integer) as basket_items,
        cast(basket_products as integer) as basket_products,
        basket_products
        > {{ var('cross_sell_max_basket_products') | int }} as is_oversized
    from with_products

)

select * from final
