{{ config(materialized='table') }}

{%- set truth_dir = var('synth_truth_dir') %}

-- The planted price elasticities of a generated dataset (ml.synth's
-- truth/categories.parquet: traffic, conversion and their sum, demand), one
-- row per category_l1, read only when var synth_truth_dir names the truth
-- folder; otherwise empty. Lets the price-elasticity run store its recovery
-- errors in the registry. Never set it on real data.
{% if truth_dir %}

    with planted as (

        select
            category_l1,
            traffic_elasticity,
            elasticity as conversion_elasticity,
            demand_elasticity
        from read_parquet('{{ truth_dir }}/categories.parquet')

    ),

{% else %}

    with planted as (

        select
            cast(null as varchar) as category_l1,
            cast(null as double) as traffic_elasticity,
            cast(null as double) as conversion_elasticity,
            cast(null as double) as demand_elasticity
        where false

    ),

{% endif %}

final as (

    select
        cast(category_l1 as varchar) as category_l1,
        cast(traffic_elasticity as double) as traffic_elasticity,
        cast(conversion_elasticity as double) as conversion_elasticity,
        cast(demand_elasticity as double) as demand_elasticity
    from planted

)

select * from final
