-- The published cross-sell rules: pairwise rules antecedent -> consequent at
-- product and category level, mined over every session basket (the 'full'
-- window of int_cross_sell_rules_mined; docs block cross_sell_rules), with
-- the run of ml_cross_sell__training that measured how well rules mined this
-- way predict later baskets, and whether that run fell below popularity.
with rules as (

    select * from {{ ref('int_cross_sell_rules_mined') }}

),

training_runs as (

    select * from {{ ref('ml_cross_sell__training') }}

),

latest_run as (

    select
        run_id,
        is_below_baseline
    from training_runs
    qualify row_number() over (order by trained_at desc) = 1

),

final as (

    select
        rules.basket_level,
        rules.antecedent_id,
        rules.antecedent_label,
        rules.consequent_id,
        rules.consequent_label,
        rules.rule_rank,
        rules.n_sessions,
        rules.antecedent_sessions,
        rules.consequent_sessions,
        rules.pair_sessions,
        rules.support,
        rules.confidence,
        rules.lift,
        rules.window_start_date,
        rules.window_end_date,
        latest_run.run_id,
        latest_run.is_below_baseline as is_model_below_baseline
    from rules
    cross join latest_run
    where rules.mining_window = 'full'

)

select * from final
