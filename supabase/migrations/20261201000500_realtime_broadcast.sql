-- Push run progress through Supabase Realtime (Broadcast from the Database).
--
-- Every row appended to public.run_events is sent, in the same transaction, to the
-- private Realtime topic `run:<run_id>` with `realtime.send`, the event's `type` as the
-- broadcast event. A policy on realtime.messages (Realtime Authorization) lets only the
-- run's owner join that topic and receive it. run_events stays the source of truth: a
-- client subscribes first, then reads the events after its last `seq` from the API.
--
-- A plain PostgreSQL (the embedded local server, the tests' default database) has no
-- `realtime` schema: there this migration only defines the functions and installs
-- nothing. On a Supabase project the schema exists before any migration runs, so the
-- trigger and the policy are installed when this file is applied.

-- Whether an access token's user owns the run a topic `run:<uuid>` names. Runs with the
-- caller's rights (RLS on public.runs applies too); a malformed topic is simply false.
create or replace function orchestrate.owns_run_topic(p_topic text) returns boolean
  language sql stable set search_path to ''
as $$
  select case
    when p_topic ~ '^run:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      exists (
        select 1 from public.runs r
        where r.id = substr(p_topic, 5)::uuid and r.owner_id = (select auth.uid())
      )
    else false
  end
$$;
revoke all on function orchestrate.owns_run_topic(text) from public;
grant execute on function orchestrate.owns_run_topic(text) to authenticated;

-- The broadcast: the event as the events endpoint returns it, plus its run.
-- security definer: the caller (a protocol function, the service role) need not be
-- granted anything in the realtime schema.
create or replace function orchestrate.broadcast_run_event() returns trigger
  language plpgsql security definer set search_path to ''
as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'run_id', new.run_id, 'seq', new.seq, 'type', new.type, 'step_id', new.step_id,
      'data', new.data, 'created_at', new.created_at
    ),
    new.type,
    'run:' || new.run_id::text,
    true
  );
  return null;
end
$$;
revoke all on function orchestrate.broadcast_run_event() from public;

-- Installs the trigger and the policy when Supabase Realtime's schema is there; does
-- nothing otherwise. Idempotent, so an operator can run it again after enabling
-- Realtime on a database that lacked it: `select orchestrate.enable_realtime_broadcast();`
create or replace function orchestrate.enable_realtime_broadcast() returns boolean
  language plpgsql set search_path to ''
as $$
begin
  if to_regclass('realtime.messages') is null
     or to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null
     or to_regprocedure('realtime.topic()') is null then
    return false;
  end if;

  drop trigger if exists run_events_broadcast on public.run_events;
  create trigger run_events_broadcast after insert on public.run_events
    for each row execute function orchestrate.broadcast_run_event();

  -- Receiving a topic's broadcasts needs a SELECT policy; nobody may send on run topics
  -- from a client (no INSERT policy), so progress only ever comes from the database.
  drop policy if exists orchestrate_run_owner_receives on realtime.messages;
  create policy orchestrate_run_owner_receives on realtime.messages
    for select to authenticated
    using (
      realtime.messages.extension = 'broadcast'
      and (select orchestrate.owns_run_topic((select realtime.topic())))
    );
  return true;
end
$$;
revoke all on function orchestrate.enable_realtime_broadcast() from public;

select orchestrate.enable_realtime_broadcast();
