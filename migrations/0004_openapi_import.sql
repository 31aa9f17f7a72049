-- Imports of OpenAPI documents for review (docs/openapi-import.md). They are not read models:
-- no event rebuilds them, so they live in `public`, outside the `read_model` schema that a
-- rebuild replaces (a rebuild must not drop an operator's review).

-- One import job.
create table public.openapi_import (
    openapi_import_id uuid primary key,
    -- pending | ready | failed
    status text not null default 'pending',
    -- the URL the document is fetched from; null when it came in the request body
    url text,
    -- the text to import, kept only while the job is pending (a crash re-runs it at start-up)
    document text,
    -- the document's `openapi` field and `info.title`, once read
    version text,
    title text,
    -- notes for the reviewer (e.g. webhooks not imported): a JSON array of strings
    notes jsonb not null default '[]',
    -- why a failed import was refused: a code of docs/openapi-import.md and a message
    error_code text,
    error_message text,
    created_at timestamptz not null default now(),
    finished_at timestamptz
);

-- One operation of a ready import, with the reviewer's choices.
create table public.openapi_operation (
    openapi_import_id uuid not null references public.openapi_import on delete cascade,
    operation_id text not null,
    -- order in the document
    position integer not null,
    -- the operation as extracted and classified (workers::tools::import::ImportedOperation)
    detail jsonb not null,
    -- read | write | destructive: the suggestion until a reviewer changes it
    class text not null,
    agent text,
    enabled boolean not null,
    primary key (openapi_import_id, operation_id)
);
