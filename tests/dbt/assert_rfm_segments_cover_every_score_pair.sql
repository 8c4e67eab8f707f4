-- The seed rfm_segments maps every (recency score, frequency score) pair in
-- 1..5 x 1..5 to exactly one segment, and nothing else. Returns the pairs
-- that are missing, mapped more than once, or out of range.
with segments as (

    select * from {{ ref('rfm_segments') }}

),

scores as (

    select 1 as score
    union all
    select 2 as score
    union all
    select 3 as score
    union all
    select 4 as score
    union all
    select 5 as score

),

score_pairs as (

    select
        recency.score as recency_score,
        frequency.score as frequency_score
    from scores as recency
    cross join scores as frequency

),

mapped as (

    select
        recency_score,
        frequency_score,
        count(*) as mappings
    from segments
    group by 1, 2

),

final as (

    select
        coalesce(
            score_pairs.recency_score, mapped.recency_score
        ) as recency_score,
        coalesce(
            score_pairs.frequency_score, mapped.frequency_score
        ) as frequency_score,
        coalesce(mapped.mappings, 0) as mappings,
        score_pairs.recency_score is not null as is_valid_pair
    from score_pairs
    full outer join mapped
        on
            score_pairs.recency_score = mapped.recency_score
            and score_pairs.frequency_score = mapped.frequency_score

)

select * from final
where mappings != 1 or not is_valid_pair
