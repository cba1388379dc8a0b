-- Users' named secrets, read by http steps as {{ secrets.NAME }}.
--
-- The value is sealed by the service (AES-256-GCM under ORCHESTRATE_SECRETS_KEY, which
-- never enters the database, bound to the owner and the name), so a copy of the table
-- is useless without the key. Signed-in users manage their secrets through the API
-- (PUT/GET/DELETE /v1/secrets), which runs as them under RLS; they may list names and
-- timestamps and delete, but the `value` column is not granted to them: no user reads a
-- value back, not even their own. Only the step runner (service role) reads values, for
-- the run's owner, and decrypts them in memory.

create table public.user_secrets (
  owner_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (name ~ '^[A-Z][A-Z0-9_]{0,63}$'),
  -- version byte, 12-byte nonce, ciphertext (up to 8192 characters of UTF-8) and tag
  value bytea not null check (octet_length(value) between 30 and 32797),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (owner_id, name)
);

create trigger user_secrets_updated_at before update on public.user_secrets
  for each row execute function public.set_updated_at();

revoke all on table public.user_secrets from public, anon, authenticated;
grant select (owner_id, name, created_at, updated_at), insert (owner_id, name, value), update (value), delete
  on table public.user_secrets to authenticated;
grant select, insert, update, delete on table public.user_secrets to service_role;

alter table public.user_secrets enable row level security;

create policy user_secrets_select_own on public.user_secrets for select
  to authenticated using (owner_id = (select auth.uid()));
create policy user_secrets_insert_own on public.user_secrets for insert
  to authenticated with check (owner_id = (select auth.uid()));
create policy user_secrets_update_own on public.user_secrets for update
  to authenticated using (owner_id = (select auth.uid()))
  with check (owner_id = (select auth.uid()));
create policy user_secrets_delete_own on public.user_secrets for delete
  to authenticated using (owner_id = (select auth.uid()));
