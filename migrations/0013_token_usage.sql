-- Tokens the model server reported (issue 18 item 4): `agent.replied`'s optional `usage`,
-- summed per hour and agent like the other counters. Rows of turns answered by the rule
-- engine, and rows written before this migration, count 0 (until a rebuild folds the
-- stream's `usage` into them).
alter table read_model.analytics_hourly
    -- sum of `usage.prompt_tokens` of the replies of this hour and agent
    add column prompt_tokens bigint not null default 0,
    -- sum of `usage.completion_tokens`
    add column completion_tokens bigint not null default 0;
