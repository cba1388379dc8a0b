-- Workflows: a user can write them directly through the Data API (RLS lets the owner
-- insert and update them), so the database checks their shape. (webhook_secrets, the
-- other table users write, is checked by the webhook hardening's own constraint.)
-- The API still treats what it reads back as data to check (a spec can be an object
-- and still not a workflow): such a row is a 422 naming it, never a 500 (docs/api.md).
--
-- NOT VALID: the checks bind every new or updated row; rows already stored are kept
-- (nothing accepted is lost) and are handled by the API's checks when read.

alter table public.workflows
  add constraint workflows_spec_is_object check (jsonb_typeof(spec) = 'object') not valid,
  add constraint workflows_name_length check (char_length(name) between 1 and 200) not valid;
