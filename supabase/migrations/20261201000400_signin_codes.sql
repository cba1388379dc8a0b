-- One-time sign-in codes for the Studio on a local server (development tokens only).
-- `orchestrate serve` and `orchestrate token --link` create one; POST /v1/auth/link
-- exchanges it once for a development token. Only a SHA-256 of the code is stored, so
-- reading the table does not yield a usable code. No API role reaches the table: the
-- server redeems codes with its own login.

create table if not exists orchestrate.signin_codes (
  code_hash text primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz
);
create index if not exists signin_codes_expires_at on orchestrate.signin_codes (expires_at);

alter table orchestrate.signin_codes enable row level security;  -- and no policy: nobody but the owner role
revoke all on table orchestrate.signin_codes from public, anon, authenticated;
grant select, insert, update, delete on table orchestrate.signin_codes to service_role;
