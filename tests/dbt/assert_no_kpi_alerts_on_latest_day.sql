-- KPI alerts of the latest day: warns (does not fail the build) when the last
-- day of rpt_kpi_alerts breaches a threshold of seed kpi_alert_thresholds,
-- and lists the breaches, so `dbt build` output shows them. Earlier days'
-- breaches are in rpt_kpi_alerts (is_breach).
{{ config(severity='warn') }}

with alerts as (

    select * from {{ ref('rpt_kpi_alerts') }}

),

final as (

    select
        kpi_date,
        alert_name,
        kpi,
        kpi_value,
        comparison,
        threshold,
        reference_value
    from alerts
    where is_latest_day and is_breach

)

select * from final
