{{ config(materialized='table') }}

{%- set truth_dir = var('synth_truth_dir') %}

-- The planted bot and fraud actors of a generated dataset (ml.synth's
-- truth/actors.parquet), one row per actor (a taken-over account with when
-- its new user took over and last visited), read only when var
-- synth_truth_dir names the truth folder; otherwise empty. Lets the fraud
-- training run store planted-truth metrics in the registry on synthetic
-- data. Never set it on real data.
{% if truth_dir %}

    with actors as (

        select *
        from read_parquet('{{ truth_dir }}/actors.parquet')

    ),

{% else %}

    with actors as (

        select
            cast(null as bigint) as user_id,
            cast(null as varchar) as actor_type,
            cast(null as timestamptz) as takeover_started_at,
            cast(null as timestamptz) as takeover_last_visit_at
        where false

    ),

{% endif %}

final as (

    select
        cast(user_id as bigint) as user_id,
        cast(actor_type as varchar) as actor_type,
        cast(takeover_started_at as timestamptz) as takeover_started_at,
        cast(takeover_last_visit_at as timestamptz) as takeover_last_visit_at
    from actors

)

select * from final
