{{ config(materialized='table') }}

{%- set truth_dir = var('synth_truth_dir') %}

-- The planted top category (level 1) of each generated human user (ml.synth's
-- truth/users.parquet; `unknown` stands for products without a category
-- code), read only when var synth_truth_dir names the truth folder;
-- otherwise empty. Lets the recommendations run store its agreement with the
-- planted preferences in the registry. Never set it on real data.
{% if truth_dir %}

    with users as (

        select
            user_id,
            top_category_l1
        from read_parquet('{{ truth_dir }}/users.parquet')
        where actor_type = 'human'

    ),

{% else %}

    with users as (

        select
            cast(null as bigint) as user_id,
            cast(null as varchar) as top_category_l1
        where false

    ),

{% endif %}

final as (

    select
        cast(user_id as bigint) as user_id,
        cast(top_category_l1 as varchar) as top_category_l1
    from users

)

select * from final
