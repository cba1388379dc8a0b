-- A stand-in for Supabase Realtime's database objects, for the tests only, written from
-- Supabase's documentation of its interface (Broadcast from the Database, Realtime
-- Authorization), not from its source:
--   * realtime.messages: the rows Realtime broadcasts (topic, extension, event, payload,
--     private) and the table whose RLS policies decide who may join a private topic;
--   * realtime.send(payload, event, topic, private): writes one broadcast message;
--   * realtime.topic(): the topic being joined, set by Realtime for its
--     authorization query.
-- Real Realtime reads new rows from the WAL; tests/fakes/realtime_server.py polls them.

create schema if not exists realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table if not exists realtime.messages (
  id uuid not null default gen_random_uuid() primary key,
  topic text not null,
  extension text not null,
  event text,
  payload jsonb,
  private boolean default false,
  inserted_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table realtime.messages enable row level security;
grant select, insert on table realtime.messages to anon, authenticated;
grant all on table realtime.messages to service_role;

create or replace function realtime.topic() returns text
  language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
  language plpgsql security definer set search_path to ''
as $$
begin
  insert into realtime.messages (payload, event, topic, private, extension)
  values (payload, event, topic, private, 'broadcast');
end
$$;
