-- Purchase-line rule: exact duplicates are collapsed (in staging), so no two
-- purchase lines carry the same nine raw values; lines in the same second
-- differ in product, price or another raw value. Returns offending groups.
with purchases as (

    select * from {{ ref('fct_purchases') }}

),

final as (

    select
        purchased_at,
        user_id,
        raw_session_id,
        product_id,
        category_id,
        category_code,
        brand,
        price,
        count(*) as line_count
    from purchases
    group by all
    having count(*) > 1

)

select * from final
