-- Functions are not for the API roles (issue 8, section 2).
--
-- Postgres lets PUBLIC execute every new function, and Supabase adds default grants of
-- functions in `public` to anon and authenticated. The run protocol's functions must
-- not be reachable by a signed-in user at all: the API calls them on its own (service)
-- connection with the verified user id as an argument, and each function checks that
-- ownership itself, before taking any lock. Users keep reading their rows directly,
-- as role authenticated under RLS (no function needed).

-- Every function the migrating role creates from now on: no EXECUTE for PUBLIC
-- (a global default: per-schema defaults can only add to it) ...
alter default privileges revoke execute on functions from public;
-- ... nor for the API roles through Supabase's per-schema defaults.
alter default privileges in schema public revoke execute on functions from anon, authenticated;
alter default privileges in schema orchestrate revoke execute on functions from anon, authenticated;

-- And the functions that exist already.
revoke execute on all functions in schema orchestrate from public, anon, authenticated;
revoke execute on all functions in schema public from public, anon, authenticated;
-- Signed-in users keep USAGE on the schema (it exposes nothing without EXECUTE): a
-- function meant for them takes an intent only and is granted one by one.
revoke usage on schema orchestrate from public, anon;
grant usage on schema orchestrate to service_role;

-- It failed open (no claims, or claims without a role, counted as "not a user"); no
-- function needs it any more.
drop function if exists orchestrate.may_act_for(uuid);
