{#
    The customer snapshot rows of int_customer_features_snapshots (production:
    train, test and score dates) and int_customer_features_evaluation_snapshots
    (the rolling-origin dates, tag ml_evaluation): one row per customer x
    snapshot date, features from the days strictly before it and labels from
    the horizon after it (docs block ml_customer_snapshots_rule).

    The caller defines the import CTEs `purchases` (int_purchases, customer
    purchases only) and `visits` (int_customer_visits), the purchase contract
    either source maps onto, and a CTE `snapshot_dates` with the columns
    snapshot_role, snapshot_date and last_event_date (one row per snapshot
    date); the macro adds the CTEs from `purchase_days` to `final`. The
    purchases and the sessions are rolled up per user x day once; each snapshot
    is a filtered re-aggregation of those user-days, never a new scan of the
    events.
#}
{% macro customer_feature_snapshot_ctes() %}
{%- set horizon = var('ml_label_horizon_days') | int %}
purchase_days as (

    select
        user_id,
        purchase_date,
        count(*) as purchase_lines,
        count(distinct order_id) as orders,
        sum(amount) as spend
    from purchases
    group by 1, 2

),

category_first_purchases as (

    select
        user_id,
        coalesce(category_l1, 'unknown') as category_l1,
        min(purchase_date) as first_purchase_date
    from purchases
    group by 1, 2

),

session_days as (

    select
        user_id,
        visit_date as session_date,
        count(*) as sessions,
        sum(views) as views,  -- noqa: RF04
        sum(carts) as carts,
        count(*) filter (where has_cart) as cart_sessions,
        count(*) filter (where is_cart_abandoned) as abandoned_cart_sessions
    from visits
    group by 1, 2

),

purchase_history as (

    select
        snapshot_dates.snapshot_role,
        snapshot_dates.snapshot_date,
        purchase_days.user_id,
        min(purchase_days.purchase_date) as first_purchase_date,
        max(purchase_days.purchase_date) as last_purchase_date,
        count(*) as purchase_days,
        sum(purchase_days.orders) as orders,
        sum(purchase_days.purchase_lines) as purchase_lines,
        sum(purchase_days.spend) as spend,
        min_by(
            purchase_days.spend, purchase_days.purchase_date
        ) as first_purchase_day_spend,
        count(*) filter (
            where purchase_days.purchase_date >= {{ dbt.dateadd(
                'day', -horizon, 'snapshot_dates.snapshot_date'
            ) }}
        ) as purchase_days_last_horizon,
        coalesce(sum(purchase_days.spend) filter (
            where purchase_days.purchase_date >= {{ dbt.dateadd(
                'day', -horizon, 'snapshot_dates.snapshot_date'
            ) }}
        ), 0) as spend_last_horizon
    from purchase_days
    inner join snapshot_dates
        on purchase_days.purchase_date < snapshot_dates.snapshot_date
    group by 1, 2, 3

),

category_history as (

    select
        snapshot_dates.snapshot_role,
        snapshot_dates.snapshot_date,
        category_first_purchases.user_id,
        count(*) as distinct_categories_purchased
    from category_first_purchases
    inner join snapshot_dates
        on
            category_first_purchases.first_purchase_date
            < snapshot_dates.snapshot_date
    group by 1, 2, 3

),

{%- set windows = [7, 14, 30] %}

session_history as (

    select
        snapshot_dates.snapshot_role,
        snapshot_dates.snapshot_date,
        session_days.user_id,
        min(session_days.session_date) as first_visit_date,
        max(session_days.session_date) as last_visit_date,
        count(*) as active_days,
        sum(session_days.sessions) as sessions,
        sum(session_days.views) as views,  -- noqa: RF04
        sum(session_days.carts) as carts,
        sum(session_days.cart_sessions) as cart_sessions,
        sum(session_days.abandoned_cart_sessions) as abandoned_cart_sessions,
        {%- for days in windows %}
            {%- for measure in ['sessions', 'views', 'carts'] %}
                coalesce(sum(session_days.{{ measure }}) filter (
                    where session_days.session_date >= {{ dbt.dateadd(
                        'day', -days, 'snapshot_dates.snapshot_date'
                    ) }}
                ), 0) as {{ measure }}_last_{{ days }}d,
            {%- endfor %}
        {%- endfor %}
        count(*) filter (
            where session_days.session_date >= {{ dbt.dateadd(
                'day', -30, 'snapshot_dates.snapshot_date'
            ) }}
        ) as active_days_last_30d
    from session_days
    inner join snapshot_dates
        on session_days.session_date < snapshot_dates.snapshot_date
    group by 1, 2, 3

),

labels as (

    select
        snapshot_dates.snapshot_role,
        snapshot_dates.snapshot_date,
        purchase_days.user_id,
        count(*) as label_purchase_days,
        sum(purchase_days.spend) as label_spend
    from purchase_days
    inner join snapshot_dates
        on
            purchase_days.purchase_date >= snapshot_dates.snapshot_date
            and purchase_days.purchase_date < {{ dbt.dateadd(
                'day', horizon, 'snapshot_dates.snapshot_date'
            ) }}
    group by 1, 2, 3

),

joined as (

    select
        purchase_history.*,
        snapshot_dates.last_event_date,
        category_history.distinct_categories_purchased,
        session_history.first_visit_date,
        session_history.last_visit_date,
        session_history.active_days,
        session_history.sessions,
        session_history.views,  -- noqa: RF04
        session_history.carts,
        session_history.cart_sessions,
        session_history.abandoned_cart_sessions,
        {%- for days in windows %}
            {%- for measure in ['sessions', 'views', 'carts'] %}
                session_history.{{ measure }}_last_{{ days }}d,
            {%- endfor %}
        {%- endfor %}
        session_history.active_days_last_30d,
        labels.label_purchase_days,
        labels.label_spend,
        {{ dbt.dateadd(
            'day', horizon, 'purchase_history.snapshot_date'
        ) }} <= {{ dbt.dateadd(
            'day', 1, 'snapshot_dates.last_event_date'
        ) }} as is_label_complete
    from purchase_history
    inner join snapshot_dates
        on
            purchase_history.snapshot_role = snapshot_dates.snapshot_role
            and purchase_history.snapshot_date = snapshot_dates.snapshot_date
    left join category_history
        on
            purchase_history.snapshot_role = category_history.snapshot_role
            and purchase_history.snapshot_date = category_history.snapshot_date
            and purchase_history.user_id = category_history.user_id
    left join session_history
        on
            purchase_history.snapshot_role = session_history.snapshot_role
            and purchase_history.snapshot_date = session_history.snapshot_date
            and purchase_history.user_id = session_history.user_id
    left join labels
        on
            purchase_history.snapshot_role = labels.snapshot_role
            and purchase_history.snapshot_date = labels.snapshot_date
            and purchase_history.user_id = labels.user_id

),

final as (

    select
        user_id,
        snapshot_role,
        snapshot_date,
        cast({{ horizon }} as integer) as horizon_days,
        first_purchase_date,
        last_purchase_date,
        cast({{ dbt.datediff(
            'last_purchase_date', 'snapshot_date', 'day'
        ) }} as integer) as recency_days,
        cast({{ dbt.datediff(
            'first_purchase_date', 'snapshot_date', 'day'
        ) }} as integer) as customer_age_days,
        cast({{ dbt.datediff(
            'coalesce(first_visit_date, first_purchase_date)',
            'snapshot_date',
            'day',
        ) }} as integer) as tenure_days,
        cast(purchase_days as integer) as purchase_days,
        cast(orders as integer) as orders,
        cast(purchase_lines as integer) as purchase_lines,
        cast(spend as double) as monetary_total,
        cast(spend / purchase_days as double) as monetary_mean,
        cast(purchase_days_last_horizon as integer)
            as purchase_days_last_horizon,
        cast(spend_last_horizon as double) as spend_last_horizon,
        cast(
            coalesce(distinct_categories_purchased, 0) as integer
        ) as distinct_categories_purchased,
        cast({{ dbt.datediff(
            'coalesce(last_visit_date, last_purchase_date)',
            'snapshot_date',
            'day',
        ) }} as integer) as days_since_last_visit,
        cast(coalesce(active_days, 0) as integer) as active_days,
        cast(coalesce(sessions, 0) as integer) as sessions,
        cast(coalesce(views, 0) as integer) as views,  -- noqa: RF04
        cast(coalesce(carts, 0) as integer) as carts,
        {%- for days in windows %}
            {%- for measure in ['sessions', 'views', 'carts'] %}
                cast(
                    coalesce({{ measure }}_last_{{ days }}d, 0) as integer
                ) as {{ measure }}_last_{{ days }}d,
            {%- endfor %}
        {%- endfor %}
        cast(
            coalesce(active_days_last_30d, 0) as integer
        ) as active_days_last_30d,
        cast(
            abandoned_cart_sessions / nullif(cart_sessions, 0) as double
        ) as cart_abandonment_rate,
        -- BG/NBD inputs, in days (docs block ml_customer_snapshots_rule)
        cast(purchase_days - 1 as integer) as bgnbd_frequency,
        cast({{ dbt.datediff(
            'first_purchase_date', 'last_purchase_date', 'day'
        ) }} as integer) as bgnbd_recency_days,
        cast(
            (spend - first_purchase_day_spend) / nullif(purchase_days - 1, 0)
            as double
        ) as bgnbd_monetary_value,
        is_label_complete,
        case
            when is_label_complete
                then cast(coalesce(label_purchase_days, 0) as integer)
        end as label_purchase_days,
        case
            when is_label_complete
                then cast(coalesce(label_spend, 0) as double)
        end as label_spend,
        case
            when is_label_complete then coalesce(label_purchase_days, 0) = 0
        end as is_churned
    from joined

)
{% endmacro %}
