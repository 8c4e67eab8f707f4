{#
    The recommender's per-window inputs, written once for the production path
    (int_recommend_*: the validation day and `full`) and for the rolling-origin
    evaluation (int_recommend_evaluation_*, tag ml_evaluation: the validation
    day before the first test cutoff and one window per test cutoff), so both
    paths compute their windows the same way (docs block recommend_windows).

    `windows` is a one-row relation with a date column per window; `roles` is a
    list of {'role': history role, 'labels': label role, 'end': date column}:
    the window's history is the days strictly before `end`, its labels the
    interactions of day `end`. `with_full` adds the `full` window (every day,
    recency-weighted to windows.as_of_date), for production.
#}

{% macro recommend_history_windows(roles, with_full) -%}
    {%- set out = [] -%}
    {%- for w in roles -%}
        {%- do out.append({'role': w.role, 'end': w.end, 'filtered': true}) -%}
    {%- endfor -%}
    {%- if with_full -%}
        {%- do out.append({'role': 'full', 'end': 'as_of_date',
                           'filtered': false}) -%}
    {%- endif -%}
    {{ return(out) }}
{%- endmacro %}


{% macro recommend_item_popularity(windows_relation, roles, with_full) -%}
{%- set bands = var('recs_price_bands') | int %}
{%- set windows_list = recommend_history_windows(roles, with_full) %}
with products as (

    select * from {{ ref('int_products_aggregated') }}

),

session_items as (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ windows_relation }}

),

product_users as (

    -- one row per product x user: its recency-weighted weight in each window
    -- (a window counts the days before its end)
    select
        session_items.product_id,
        session_items.user_id,
        {%- for w in windows_list %}
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'windows.' ~ w.end
            ) }}
        ) {% if w.filtered -%}
        filter (
            where session_items.event_date < windows.{{ w.end }}
        ) {% endif -%}
        as {{ w.role }}_popularity{{ "," if not loop.last }}
        {%- endfor %}
    from session_items
    cross join windows
    group by 1, 2

),

products_in_windows as (

    select
        product_id,
        {%- for w in windows_list %}
        sum({{ w.role }}_popularity) as {{ w.role }}_popularity,
        count({{ w.role }}_popularity) as {{ w.role }}_users
        {{- "," if not loop.last }}
        {%- endfor %}
    from product_users
    group by 1

),

interactions as (

    -- one row per window x product
    {%- for w in windows_list %}
    select
        '{{ w.role }}' as window_role,
        product_id,
        {{ w.role }}_popularity as popularity,
        {{ w.role }}_users as interacting_users
    from products_in_windows
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

catalogue as (

    select
        product_id,
        category_id,
        category_l1,
        brand,
        avg_price,
        ntile({{ bands }}) over (
            partition by category_id
            order by avg_price asc, product_id asc
        ) as price_band
    from products

),

window_roles as (

    {%- for w in windows_list %}
    select '{{ w.role }}' as window_role
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

final as (

    select
        window_roles.window_role,
        catalogue.product_id,
        catalogue.category_id,
        catalogue.category_l1,
        catalogue.brand,
        catalogue.price_band,
        coalesce(interactions.popularity, 0) as popularity,
        coalesce(interactions.interacting_users, 0) as interacting_users
    from catalogue
    cross join window_roles
    left join interactions
        on
            window_roles.window_role = interactions.window_role
            and catalogue.product_id = interactions.product_id

)

select * from final
{%- endmacro %}


{% macro recommend_item_neighbours(windows_relation, roles, with_full) -%}
{%- set max_items = var('recs_max_items_per_session') | int %}
{%- set neighbours = var('recs_neighbours') | int %}
{%- set windows_list = recommend_history_windows(roles, with_full) %}
with session_items as (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ windows_relation }}

),

session_products as (

    -- one row per session x product
    select
        hash(session_items.session_id) as session_key,
        session_items.product_id,
        max(session_items.interaction_weight) as interaction_weight,
        max(session_items.last_event_at) as last_event_at,
        max(session_items.event_date) as last_event_date
    from session_items
    group by 1, 2

),

capped as (

    select
        session_products.session_key,
        session_products.product_id,
        session_products.interaction_weight,
        max(session_products.last_event_date) over (
            partition by session_products.session_key
        ) as session_last_date
    from session_products
    qualify
        row_number() over (
            partition by session_products.session_key
            order by
                session_products.interaction_weight desc,
                session_products.last_event_at desc,
                session_products.product_id asc
        ) <= {{ max_items }}

),

session_windows as (

    -- a session is in a window when all of it is before the window's end
    -- (one crossing into a label day is not in its history); `full` holds
    -- every session
    select
        capped.session_key,
        capped.product_id,
        capped.interaction_weight
        {%- for w in windows_list if w.filtered %},
        capped.session_last_date < windows.{{ w.end }} as in_{{ w.role }}
        {%- endfor %}
    from capped
    cross join windows

),

item_totals as (

    select
        product_id,
        {%- for w in windows_list %}
        sum(interaction_weight) {% if w.filtered -%}
        filter (where in_{{ w.role }}) {% endif -%}
        as {{ w.role }}_total_weight{{ "," if not loop.last }}
        {%- endfor %}
    from session_windows
    group by 1

),

session_pairs as (

    -- each unordered pair once: the windows are the session's, so both orders
    -- of a pair add up the same
    select
        left_items.product_id,
        right_items.product_id as neighbour_product_id,
        {%- for w in windows_list %}
        sum(
            least(left_items.interaction_weight, right_items.interaction_weight)
        ) {% if w.filtered -%}
        filter (where left_items.in_{{ w.role }}) {% endif -%}
        as {{ w.role }}_co_weight,
        count(*) {% if w.filtered -%}
        filter (where left_items.in_{{ w.role }}) {% endif -%}
        as {{ w.role }}_co_sessions{{ "," if not loop.last }}
        {%- endfor %}
    from session_windows as left_items
    inner join session_windows as right_items
        on
            left_items.session_key = right_items.session_key
            and left_items.product_id < right_items.product_id
    group by 1, 2

),

pair_similarities as (

    select
        session_pairs.*,
        {%- for w in windows_list %}
        session_pairs.{{ w.role }}_co_weight / sqrt(
            item_totals.{{ w.role }}_total_weight
            * neighbour_totals.{{ w.role }}_total_weight
        ) as {{ w.role }}_similarity{{ "," if not loop.last }}
        {%- endfor %}
    from session_pairs
    inner join item_totals
        on session_pairs.product_id = item_totals.product_id
    inner join item_totals as neighbour_totals
        on session_pairs.neighbour_product_id = neighbour_totals.product_id

),

-- every pair from both of its ends; inlined, so the floors read only the
-- similarities and the candidates only the pairs that pass a floor
directed_pairs as not materialized (

    select * from pair_similarities
    union all
    select
        * replace (
            pair_similarities.neighbour_product_id as product_id,
            pair_similarities.product_id as neighbour_product_id
        )
    from pair_similarities

),

similarity_floors as (

    -- the var recs_neighbours-th best similarity of each product in each
    -- window (its worst when it has fewer pairs); a filtered window only
    -- counts the pairs sharing one of its sessions, as its rank does
    select
        product_id,
        {%- for w in windows_list %}
        list_min(
            max({{ w.role }}_similarity, {{ neighbours }})
            {%- if w.filtered %} filter (
                where {{ w.role }}_co_sessions > 0
            ){% endif %}
        ) as {{ w.role }}_floor{{ "," if not loop.last }}
        {%- endfor %}
    from directed_pairs
    group by 1

),

candidates as (

    -- the pairs at or above the floor of their product in some window (no
    -- session of the window: a NULL similarity, never a candidate there)
    select
        directed_pairs.*,
        {%- for w in windows_list %}
        (
            {% if w.filtered -%}
            directed_pairs.{{ w.role }}_co_sessions > 0
            and {% endif -%}
            directed_pairs.{{ w.role }}_similarity
            >= similarity_floors.{{ w.role }}_floor
        ) as is_{{ w.role }}_candidate{{ "," if not loop.last }}
        {%- endfor %}
    from directed_pairs
    inner join similarity_floors
        on directed_pairs.product_id = similarity_floors.product_id
    where
        {%- for w in windows_list %}
        {{ "or " if not loop.first }}directed_pairs.{{ w.role }}_similarity
        >= similarity_floors.{{ w.role }}_floor
        {%- endfor %}

),

final as (

    {%- for w in windows_list %}
    select
        '{{ w.role }}' as window_role,
        product_id,
        neighbour_product_id,
        {{ w.role }}_co_weight as co_weight,
        {{ w.role }}_co_sessions as co_sessions,
        {{ w.role }}_similarity as similarity,
        row_number() over (
            partition by product_id
            order by
                {{ w.role }}_similarity desc,
                {{ w.role }}_co_weight desc,
                neighbour_product_id asc
        ) as neighbour_rank
    from candidates
    where is_{{ w.role }}_candidate
    qualify neighbour_rank <= {{ neighbours }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

)

select * from final
{%- endmacro %}


{% macro recommend_user_items(windows_relation, roles, with_full) -%}
{%- set max_eval_users = var('recs_max_eval_users') | int %}
{%- set seed = var('ml_seed') | int %}
-- read twice or more: inlined, so DuckDB does not first copy the whole table
with session_items as not materialized (

    select * from {{ ref('int_recommend_session_items') }}

),

windows as (

    select * from {{ windows_relation }}

),

label_days as (

    -- the days whose interactions are to be found, with their window roles
    {%- for w in roles %}
    select
        '{{ w.role }}' as history_role,
        '{{ w.labels }}' as label_role,
        {{ w.end }} as label_date
    from windows
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

label_day_users as (

    select distinct
        label_days.history_role,
        label_days.label_role,
        label_days.label_date,
        session_items.user_id
    from session_items
    inner join label_days
        on session_items.event_date = label_days.label_date

),

first_days as (

    select
        user_id,
        min(event_date) as first_event_date
    from session_items
    group by 1

),

eval_users as (

    select label_day_users.*
    from label_day_users
    inner join first_days
        on
            label_day_users.user_id = first_days.user_id
            and label_day_users.label_date > first_days.first_event_date
    qualify
        row_number() over (
            partition by label_day_users.label_role
            order by
                hash(label_day_users.user_id + {{ seed }}),
                label_day_users.user_id
        ) <= {{ max_eval_users }}

),

history_items as (

    select
        eval_users.history_role as window_role,
        session_items.user_id,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'eval_users.label_date'
            ) }}
        ) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join eval_users
        on
            session_items.user_id = eval_users.user_id
            and session_items.event_date < eval_users.label_date
    group by 1, 2, 3

),

label_items as (

    select
        eval_users.label_role as window_role,
        session_items.user_id,
        session_items.product_id,
        max(session_items.interaction_weight) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join eval_users
        on
            session_items.user_id = eval_users.user_id
            and session_items.event_date = eval_users.label_date
    group by 1, 2, 3

),
{%- if with_full %}

active_users as (

    select distinct session_items.user_id
    from session_items
    inner join windows
        on session_items.event_date >= windows.active_start_date

),

full_items as (

    select
        'full' as window_role,
        session_items.user_id,
        session_items.product_id,
        sum(
            session_items.interaction_weight
            * {{ recommend_recency_decay(
                'session_items.event_date', 'windows.as_of_date'
            ) }}
        ) as interaction_weight,
        bool_or(session_items.is_purchased) as is_purchased,
        max(session_items.event_date) as last_interaction_date
    from session_items
    inner join active_users
        on session_items.user_id = active_users.user_id
    cross join windows
    group by 1, 2, 3

),
{%- endif %}

final as (

    select * from history_items
    union all
    select * from label_items
    {%- if with_full %}
    union all
    select * from full_items
    {%- endif %}

)

select * from final
{%- endmacro %}


{#
    The evaluation's windows (int_recommend_evaluation_windows): the
    validation day before the first test cutoff, then `train_<i>` (history)
    and `test_<i>` (labels) for each of var ml_evaluation_cutoffs test days.
#}
{% macro recommend_evaluation_roles() -%}
    {%- set out = [{'role': 'validation_train', 'labels': 'validation_test',
                    'end': 'validation_date'}] -%}
    {%- for i in range(1, var('ml_evaluation_cutoffs') | int + 1) -%}
        {%- do out.append({'role': 'train_' ~ i, 'labels': 'test_' ~ i,
                           'end': 'cutoff_' ~ i ~ '_date'}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}


{#
    The evaluation's test days as columns cutoff_1_date ... cutoff_<n>_date
    (var ml_evaluation_cutoffs), `step` days apart, the last one
    `last_cutoff`, and the validation day before the first (for
    int_recommend_evaluation_windows).
#}
{% macro recommend_evaluation_days(last_cutoff, step) -%}
    {%- set n_cutoffs = var('ml_evaluation_cutoffs') | int -%}
    cast(
        {{ dbt.dateadd('day', -1 - step * (n_cutoffs - 1), last_cutoff) }}
        as date
    ) as validation_date,
    {%- for i in range(1, n_cutoffs + 1) %}
    cast(
        {{ dbt.dateadd('day', -step * (n_cutoffs - i), last_cutoff) }} as date
    ) as cutoff_{{ i }}_date{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
