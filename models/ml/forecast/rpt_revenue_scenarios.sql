-- One row per series x measure x forecast day: the conservative, expected and
-- optimistic paths of the selected forecasting model (the conformal 80%
-- interval's lower bound, the point forecast, its upper bound) and their
-- running totals
-- over the horizon (docs block ml_revenue_scenarios_rule).
with forecasts as (

    select * from {{ ref('ml_revenue_forecast') }}

),

selected as (

    select
        series_id,
        series_level,
        category_l1,
        measure,
        forecast_date,
        horizon,
        model,
        lo80 as conservative,
        point as expected,
        hi80 as optimistic,
        is_sale_day,
        run_id,
        is_model_below_baseline
    from forecasts
    where is_selected_model

),

final as (

    select
        series_id,
        series_level,
        category_l1,
        measure,
        forecast_date,
        horizon,
        model,
        conservative,
        expected,
        optimistic,
        sum(conservative) over path as cumulative_conservative,
        sum(expected) over path as cumulative_expected,
        sum(optimistic) over path as cumulative_optimistic,
        is_sale_day,
        run_id,
        is_model_below_baseline
    from selected
    window path as (
        partition by series_id, measure
        order by horizon
        rows between unbounded preceding and current row
    )

)

select * from final
