-- An operation of an import that cannot become a tool (issue 22 item 7): a `$ref` in its
-- parameters or request body points at nothing. The rest of the document imports; this one
-- is listed for review, cannot be enabled and is never published (docs/openapi-import.md).
alter table public.openapi_operation
    -- false: the operation cannot be enabled or published
    add column usable boolean not null default true,
    -- why it is not usable, e.g. "`#/components/schemas/Missing` does not exist (at …)"
    add column unusable_reason text;
