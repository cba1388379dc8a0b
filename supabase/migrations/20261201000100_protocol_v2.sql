-- Run protocol v2: counters instead of whole-run decisions (issue 10).
--
-- Each step row knows, from the plan, the steps it waits for (needs), the steps that
-- wait for it (dependents), what its claim reads (reads: its needs, or every earlier
-- step in a conversation) and how many of its needs are unfinished (waiting). The run
-- row counts its unfinished steps, the steps in flight (released to the queue: queued
-- with a message out, or running) and the steps held back by the per-run cap.
--
-- A completion touches only the finished step, its direct dependents and the run row:
-- it decrements each dependent's `waiting` (one that reaches 0 is queued), releases
-- queued steps while the run has room, and finishes the run when `unfinished` reaches
-- 0. Nothing re-reads or re-decides the run, so a completion is never retried because
-- a sibling finished. A step's `when:` (and skip propagation) is decided by the engine
-- when that step is claimed, from its dependencies alone; a skipped step completes as
-- skipped. Fail-fast (the first step failed for good fails the run and cancels the
-- rest) is the one O(width) write, once per run.
--
-- Every function here is for the service connection only (see the privileges
-- migration); the ones acting for a user take that user's id and check it before
-- taking any lock.

alter table public.runs
  add column if not exists unfinished integer not null default 0,
  add column if not exists in_flight integer not null default 0,
  add column if not exists held integer not null default 0,
  add column if not exists max_in_flight integer not null default 50 check (max_in_flight > 0);

alter table public.step_runs
  add column if not exists needs text[] not null default '{}',
  add column if not exists reads text[],  -- null: same as needs
  add column if not exists dependents text[] not null default '{}',
  add column if not exists waiting integer not null default 0,
  add column if not exists released boolean not null default false,
  -- for_each items: one row per item, named step[i], reporting to their step (parent)
  add column if not exists parent text,
  add column if not exists item_index integer,
  add column if not exists item jsonb,  -- {value, index, length}
  add column if not exists items_failed integer not null default 0;

-- A run's row is updated at every claim and completion of its steps, a for_each step's
-- row at every item: room in each page keeps those updates HOT (no index writes, old
-- versions pruned in place) instead of spreading the row over new pages.
alter table public.runs set (fillfactor = 50);
alter table public.step_runs set (fillfactor = 80);

-- Queued steps the cap holds back, in the order they are released.
create index if not exists step_runs_held_idx on public.step_runs (run_id, position)
  where status = 'queued' and not released and parent is null;
-- Held items of a for_each, released in order as its items finish.
create index if not exists step_runs_held_items_idx on public.step_runs (run_id, parent, item_index)
  where status = 'queued' and not released and parent is not null;
-- The sweeper: runs with held steps and room again.
create index if not exists runs_held_idx on public.runs (id) where held > 0;

-- Child rows already reference (run_id, owner_id) of their run, whose owner references
-- auth.users with a cascade: their own owner foreign keys were a second check on every
-- insert (one per event) that proved nothing more.
alter table public.step_runs drop constraint if exists step_runs_owner_id_fkey;
alter table public.run_events drop constraint if exists run_events_owner_id_fkey;

-- Version-checked decisions are gone.
drop function if exists orchestrate.complete_step(uuid, text, integer, jsonb, jsonb, bigint, text[]);
drop function if exists orchestrate.claim_step(uuid, text, double precision, text[], boolean);
drop function if exists orchestrate.run_view(uuid, text[], boolean);
drop function if exists orchestrate.apply_control(uuid, jsonb);
drop function if exists orchestrate.lock_run(uuid);
drop function if exists orchestrate.create_run(jsonb, jsonb, jsonb);
drop function if exists orchestrate.apply_transition(uuid, uuid, jsonb);

-- Insert events [{type, step_id, data}] as seqs p_last - n + 1 .. p_last; the caller
-- has moved runs.last_seq to p_last in its own update of the run row (which holds the
-- row lock, keeping seq gapless).
create or replace function orchestrate.log_events(p_run uuid, p_owner uuid, p_last bigint, p_events jsonb)
returns void
  language sql set search_path to ''
as $$
  insert into public.run_events (run_id, seq, owner_id, type, step_id, data)
  select p_run, p_last - jsonb_array_length(p_events) + e.ordinality, p_owner, e.value ->> 'type',
         e.value ->> 'step_id', coalesce(e.value -> 'data', '{}'::jsonb)
  from jsonb_array_elements(p_events) with ordinality as e
$$;

-- Release up to p_room held steps of a run (queued, no message out yet), in position
-- order; returns their ids. The caller updates runs.in_flight and runs.held.
create or replace function orchestrate.release_held(p_run uuid, p_room integer)
returns text[]
  language sql set search_path to ''
as $$
  with next as (
    select s.step_id from public.step_runs s
    where s.run_id = p_run and s.status = 'queued' and not s.released and s.parent is null
    order by s.position limit greatest(p_room, 0)
    for update
  ), done as (
    update public.step_runs s set released = true
    from next where s.run_id = p_run and s.step_id = next.step_id
    returning s.step_id, s.position
  )
  select coalesce(array_agg(step_id order by position), '{}') from done
$$;

-- End a run: status, error, outputs and usage (once per run, over its steps), and the
-- webhook delivery in the same transaction, so it cannot be lost.
create or replace function orchestrate.finish_run(p_run uuid, p_status text, p_error jsonb)
returns void
  language plpgsql set search_path to ''
as $$
begin
  update public.runs r set
    status = p_status,
    finished_at = now(),
    error = nullif(p_error, 'null'::jsonb),
    in_flight = 0,
    held = 0,
    -- a run's outputs: each succeeded step's structured outputs, or its text
    outputs = case when p_status = 'succeeded' then (
      select coalesce(jsonb_object_agg(s.step_id, coalesce(s.outputs, to_jsonb(s.output))), '{}'::jsonb)
      from public.step_runs s where s.run_id = p_run and s.status = 'succeeded' and s.parent is null) end,
    usage = (
      select jsonb_build_object(
        'prompt_tokens', coalesce(sum((s.usage ->> 'prompt_tokens')::bigint), 0),
        'completion_tokens', coalesce(sum((s.usage ->> 'completion_tokens')::bigint), 0),
        'total_tokens', coalesce(sum((s.usage ->> 'total_tokens')::bigint), 0))
      from public.step_runs s where s.run_id = p_run)
  where r.id = p_run;
  insert into public.webhook_deliveries (owner_id, run_id, event_type, url, payload)
  select r.owner_id, r.id, 'run.' || r.status, r.webhook_url,
         jsonb_build_object(
           'type', 'run.' || r.status,
           'timestamp', to_jsonb(now()),
           'data', jsonb_build_object('id', r.id, 'workflow_id', r.workflow_id, 'status', r.status,
                                      'outputs', r.outputs, 'usage', r.usage, 'error', r.error))
  from public.runs r where r.id = p_run and r.webhook_url is not null;
end
$$;

-- Cancel every unfinished step of a run; returns the step.cancelled events in order.
create or replace function orchestrate.cancel_unfinished(p_run uuid)
returns jsonb
  language sql set search_path to ''
as $$
  with done as (
    update public.step_runs s set status = 'cancelled', finished_at = now(), lease_until = null
    where s.run_id = p_run and s.status in ('pending', 'queued', 'running')
    returning s.step_id, s.position, s.item_index
  )
  select coalesce(jsonb_agg(jsonb_build_object('type', 'step.cancelled', 'step_id', step_id) order by position, item_index nulls first), '[]')
  from done
$$;

-- The run with every step, as the engine and the API read it.
create or replace function orchestrate.run_json(p_run uuid)
returns jsonb
  language sql stable set search_path to ''
as $$
  select to_jsonb(r) - 'last_seq' - 'request_hash' || jsonb_build_object(
    'steps', coalesce((
      select jsonb_agg(to_jsonb(s) - 'run_id' - 'owner_id' - 'updated_at' - 'needs' - 'reads' - 'dependents'
                       order by s.position, s.item_index nulls first)
      from public.step_runs s where s.run_id = r.id), '[]'::jsonb))
  from public.runs r where r.id = p_run
$$;

-- Start a run for p_owner (the verified user). p_run: {id, workflow_id, spec, inputs,
-- mode, webhook_url, idempotency_key, request_hash, max_in_flight}; p_steps: [{id,
-- position, needs, reads, dependents}] from the plan. The steps without needs are
-- queued, and as many as the cap allows released. Returns {run, queued: [released]}.
create or replace function orchestrate.create_run(p_owner uuid, p_run jsonb, p_steps jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_id uuid := (p_run ->> 'id')::uuid;
  v_cap integer := coalesce((p_run ->> 'max_in_flight')::integer, 50);
  v_ready integer;
  v_released text[];
  v_events jsonb;
  v_last bigint;
begin
  if p_owner is null then
    raise exception 'a run needs an owner' using errcode = 'insufficient_privilege';
  end if;
  insert into public.runs (id, owner_id, workflow_id, spec, inputs, mode, webhook_url, idempotency_key,
                           request_hash, step_budget, max_in_flight, unfinished)
  values (v_id, p_owner, (p_run ->> 'workflow_id')::uuid, p_run -> 'spec', p_run -> 'inputs',
          coalesce(p_run ->> 'mode', 'auto'), p_run ->> 'webhook_url', p_run ->> 'idempotency_key',
          p_run ->> 'request_hash', case when p_run ->> 'mode' = 'step' then 1 else 0 end, v_cap,
          jsonb_array_length(p_steps));
  insert into public.step_runs (run_id, owner_id, step_id, position, needs, reads, dependents, waiting,
                                status, queued_at)
  select v_id, p_owner, s.value ->> 'id', (s.value ->> 'position')::integer, n.needs,
         case when s.value -> 'reads' is null or s.value -> 'reads' = 'null'::jsonb then null
              else array(select jsonb_array_elements_text(s.value -> 'reads')) end,
         array(select jsonb_array_elements_text(coalesce(s.value -> 'dependents', '[]'))),
         cardinality(n.needs),
         case when cardinality(n.needs) = 0 then 'queued' else 'pending' end,
         case when cardinality(n.needs) = 0 then now() end
  from jsonb_array_elements(p_steps) as s,
       lateral (select array(select jsonb_array_elements_text(coalesce(s.value -> 'needs', '[]'))) as needs) as n;
  select count(*) into v_ready from public.step_runs where run_id = v_id and status = 'queued';
  v_released := orchestrate.release_held(v_id, v_cap);
  select jsonb_build_array(jsonb_build_object('type', 'run.queued', 'data',
           jsonb_build_object('workflow', p_run -> 'spec' ->> 'name', 'mode', coalesce(p_run ->> 'mode', 'auto'))))
         || coalesce(jsonb_agg(jsonb_build_object('type', 'step.queued', 'step_id', s.step_id) order by s.position), '[]')
    into v_events
  from public.step_runs s where s.run_id = v_id and s.status = 'queued';
  update public.runs set in_flight = cardinality(v_released), held = v_ready - cardinality(v_released),
                         last_seq = jsonb_array_length(v_events)
   where id = v_id returning last_seq into v_last;
  perform orchestrate.log_events(v_id, p_owner, v_last, v_events);
  return jsonb_build_object('run', orchestrate.run_json(v_id), 'queued', to_jsonb(v_released));
end
$$;

-- Claim a released queued step (or a running one whose lease lapsed) of a queued or
-- running run. Returns {attempt, tries, run: {...the run's fields, spec if asked},
-- steps: [the claimed step and the rows it reads]}, or null: a duplicate or stale
-- message, to be acknowledged.
create or replace function orchestrate.claim_step(p_run uuid, p_step text, p_lease double precision,
                                                  p_with_spec boolean default true)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run record;
  v_step record;
  v_first boolean;
  v_events jsonb;
  v_last bigint;
begin
  -- Lock the run first, as every other change does, so they never deadlock.
  select r.owner_id, r.status, r.mode, r.step_budget into v_run from public.runs r where r.id = p_run for update;
  if not found or v_run.status not in ('queued', 'running') then
    return null;
  end if;
  select s.status, s.attempt, s.retry_base, s.not_before, s.lease_until, s.released,
         coalesce(s.reads, s.needs) as reads into v_step
  from public.step_runs s where s.run_id = p_run and s.step_id = p_step;
  -- coalesce: a for_each step running its items has no lease, and a null must not claim it.
  if not found or not coalesce((v_step.status = 'queued' and v_step.released and (v_step.not_before is null or v_step.not_before <= now()))
                               or (v_step.status = 'running' and v_step.lease_until < now()), false) then
    return null;
  end if;
  -- Step mode spends its budget on a step's first claim only: a retry after a
  -- transient error, or a reclaim after a crash, continues the step already allowed.
  v_first := v_step.status = 'queued' and v_step.not_before is null;
  if v_run.mode = 'step' and v_first and v_run.step_budget < 1 then
    return null;
  end if;
  -- A claim lost in a server crash is harmless (the step is still queued and its
  -- message not yet deleted), so its commit need not wait for the disk.
  perform set_config('synchronous_commit', 'off', true);
  update public.step_runs s
     set status = 'running', attempt = s.attempt + 1, started_at = now(),
         lease_until = now() + make_interval(secs => p_lease)
   where s.run_id = p_run and s.step_id = p_step;
  v_events := jsonb_build_array(jsonb_build_object('type', 'step.started', 'step_id', p_step,
                                                   'data', jsonb_build_object('attempt', v_step.attempt + 1)));
  if v_run.status = 'queued' then
    v_events := jsonb_build_array(jsonb_build_object('type', 'run.started')) || v_events;
  end if;
  update public.runs r
     set status = 'running', started_at = coalesce(r.started_at, now()),
         step_budget = case when v_run.mode = 'step' and v_first then greatest(r.step_budget - 1, 0) else r.step_budget end,
         last_seq = r.last_seq + jsonb_array_length(v_events)
   where r.id = p_run returning r.last_seq into v_last;
  perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
  return (
    select jsonb_build_object(
      'attempt', v_step.attempt + 1, 'tries', v_step.attempt + 1 - v_step.retry_base,
      'run', jsonb_build_object(
        'id', r.id, 'owner_id', r.owner_id, 'workflow_id', r.workflow_id, 'inputs', r.inputs,
        'status', r.status, 'mode', r.mode, 'outputs', r.outputs, 'error', r.error, 'usage', r.usage,
        'webhook_url', r.webhook_url, 'created_at', r.created_at, 'started_at', r.started_at,
        'finished_at', r.finished_at, 'step_budget', r.step_budget)
        || case when p_with_spec then jsonb_build_object('spec', r.spec) else '{}'::jsonb end,
      'steps', coalesce((
        select jsonb_agg(to_jsonb(s) - 'run_id' - 'owner_id' - 'updated_at' - 'needs' - 'reads' - 'dependents')
        from public.step_runs s
        where s.run_id = p_run and s.step_id = any (array_append(v_step.reads, p_step))), '[]'::jsonb))
    from public.runs r where r.id = p_run);
end
$$;

-- After a top-level step finished (succeeded, skipped, or a for_each whose items all
-- finished): its dependents wait for one step fewer (one that reaches 0 is queued),
-- queued steps are released while the run has room, and the run finishes when no
-- step is left. p_events: the events so far (appended to here). Updates the run row
-- (counters, last_seq) and logs the events; returns {queued: [released], finished}.
-- A paused run (or one in step mode, which pauses now) releases nothing: resuming does.
create or replace function orchestrate.step_finished(
  p_run uuid, p_deps text[], p_skip boolean, p_unfinished integer, p_events jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run record;
  v_ready text[] := '{}';
  v_released text[] := '{}';
  v_events jsonb := p_events;
  v_in_flight integer;
  v_room integer;
  v_fast boolean;
  v_may boolean;
  v_status text;
  v_done boolean := p_unfinished = 1;
  v_last bigint;
begin
  select r.owner_id, r.status, r.mode, r.in_flight, r.held, r.max_in_flight into v_run
  from public.runs r where r.id = p_run;
  v_in_flight := v_run.in_flight - 1;
  v_room := v_run.max_in_flight - v_in_flight;
  v_may := v_run.status in ('queued', 'running') and (v_run.mode = 'auto' or p_skip);
  -- Dependents are released as they are queued when they all fit: no search needed.
  v_fast := v_may and v_run.held = 0 and cardinality(p_deps) <= v_room;
  if cardinality(p_deps) > 0 then
    with d as (
      update public.step_runs s set
        waiting = s.waiting - 1,
        status = case when s.waiting = 1 then 'queued' else s.status end,
        queued_at = case when s.waiting = 1 then now() else s.queued_at end,
        released = s.waiting = 1 and v_fast
      where s.run_id = p_run and s.step_id = any (p_deps) and s.status = 'pending'
      returning s.step_id, s.status, s.position
    )
    select coalesce(array_agg(d.step_id order by d.position) filter (where d.status = 'queued'), '{}') into v_ready from d;
  end if;
  if v_fast then
    v_released := v_ready;
  elsif v_may then
    v_released := orchestrate.release_held(p_run, v_room);
  end if;
  select v_events || coalesce(jsonb_agg(jsonb_build_object('type', 'step.queued', 'step_id', r.id)), '[]')
    into v_events from unnest(v_ready) as r(id);
  v_status := v_run.status;
  if v_done then
    v_events := v_events || jsonb_build_array(jsonb_build_object('type', 'run.succeeded'));
    perform orchestrate.finish_run(p_run, 'succeeded', null);
  elsif v_run.mode = 'step' and not p_skip and v_run.status in ('queued', 'running') then
    v_status := 'paused';
    v_events := v_events || jsonb_build_array(jsonb_build_object('type', 'run.paused', 'data', jsonb_build_object('after_step', true)));
  end if;
  update public.runs r set
    unfinished = p_unfinished - 1,
    in_flight = case when v_done then 0 else v_in_flight + cardinality(v_released) end,
    held = case when v_done then 0 else r.held + cardinality(v_ready) - cardinality(v_released) end,
    -- a skip in step mode gives back the claim it spent: it ran nothing
    step_budget = case when v_run.mode = 'step' and p_skip then r.step_budget + 1 else r.step_budget end,
    status = case when v_done then r.status else v_status end,
    last_seq = r.last_seq + jsonb_array_length(v_events)
  where r.id = p_run returning r.last_seq into v_last;
  perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
  return jsonb_build_object('status', 'applied', 'queued', to_jsonb(v_released), 'finished', v_done);
end
$$;

-- Fail fast: the run fails with p_error, every unfinished step is cancelled (the one
-- O(width) write, once per run).
create or replace function orchestrate.fail_run(p_run uuid, p_owner uuid, p_error jsonb, p_events jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_events jsonb;
  v_last bigint;
begin
  v_events := p_events || orchestrate.cancel_unfinished(p_run)
              || jsonb_build_array(jsonb_build_object('type', 'run.failed', 'data', jsonb_build_object('error', p_error)));
  perform orchestrate.finish_run(p_run, 'failed', p_error);
  update public.runs r set last_seq = r.last_seq + jsonb_array_length(v_events) where r.id = p_run returning r.last_seq into v_last;
  perform orchestrate.log_events(p_run, p_owner, v_last, v_events);
  return jsonb_build_object('status', 'applied', 'queued', '[]'::jsonb, 'finished', true);
end
$$;

-- Complete a claimed step. p_o: {kind: success|skip|retry|failure|expand, prompt,
-- output, outputs, model, usage, latency_ms, error, delay, event; for expand: items,
-- concurrency; for an item: tolerate (failed items its for_each tolerates)}. Returns
-- {"status": "stale"} when the claim is no longer current (a newer claim owns the
-- step, or the run ended: this late result is discarded), else {"status": "applied",
-- "queued": [steps released to the queue], "delay", "finished": bool}.
create or replace function orchestrate.complete_step(p_run uuid, p_step text, p_attempt integer, p_o jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run record;
  v_step record;
  v_parent record;
  v_kind text := p_o ->> 'kind';
  v_events jsonb := jsonb_build_array(p_o -> 'event');
  v_released text[] := '{}';
  v_n integer;
  v_last bigint;
  v_error jsonb;
begin
  select r.owner_id, r.status, r.mode, r.unfinished into v_run from public.runs r where r.id = p_run for update;
  if not found then
    return jsonb_build_object('status', 'stale');
  end if;
  update public.step_runs s set
    status = case v_kind when 'success' then 'succeeded' when 'skip' then 'skipped' when 'retry' then 'queued'
                         when 'expand' then 'running' else 'failed' end,
    prompt = coalesce(p_o ->> 'prompt', s.prompt),
    output = case when v_kind = 'success' then p_o ->> 'output' else s.output end,
    outputs = case when v_kind = 'success' then nullif(p_o -> 'outputs', 'null'::jsonb) else s.outputs end,
    model = coalesce(p_o ->> 'model', s.model),
    usage = case when v_kind = 'success' then p_o -> 'usage' else s.usage end,
    latency_ms = case when v_kind = 'success' then (p_o ->> 'latency_ms')::integer else s.latency_ms end,
    error = case when v_kind in ('success', 'skip', 'expand') then null else p_o -> 'error' end,
    lease_until = null,
    finished_at = case when v_kind in ('retry', 'expand') then null else now() end,
    queued_at = case when v_kind = 'retry' then now() else s.queued_at end,
    not_before = case when v_kind = 'retry' then now() + make_interval(secs => (p_o ->> 'delay')::double precision) else null end,
    waiting = case when v_kind = 'expand' then jsonb_array_length(p_o -> 'items') else s.waiting end,
    items_failed = case when v_kind = 'expand' then 0 else s.items_failed end
  where s.run_id = p_run and s.step_id = p_step and s.status = 'running' and s.attempt = p_attempt
  returning s.dependents, s.parent, s.position, coalesce(s.reads, s.needs) as reads, (s.item ->> 'length')::integer as length
    into v_step;
  if not found then
    return jsonb_build_object('status', 'stale');  -- a newer claim owns the step, or the run ended
  end if;

  if v_kind = 'retry' then  -- still in flight: its next message is sent with a delay
    update public.runs r set last_seq = r.last_seq + 1 where r.id = p_run returning r.last_seq into v_last;
    perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
    return jsonb_build_object('status', 'applied', 'queued', jsonb_build_array(p_step),
                              'delay', (p_o ->> 'delay')::double precision, 'finished', false);
  end if;

  if v_kind = 'expand' then
    -- A for_each step: one row per item, each its own execution. The step keeps its
    -- slot of the run's cap; its items are released `concurrency` at a time.
    v_n := jsonb_array_length(p_o -> 'items');
    delete from public.step_runs s where s.run_id = p_run and s.parent = p_step;  -- a run retry's earlier items
    with made as (
      insert into public.step_runs (run_id, owner_id, step_id, position, parent, item_index, item, reads,
                                    status, queued_at, released)
      select p_run, v_run.owner_id, p_step || '[' || (e.ordinality - 1) || ']', v_step.position, p_step,
             (e.ordinality - 1)::integer,
             jsonb_build_object('value', e.value, 'index', e.ordinality - 1, 'length', v_n), v_step.reads,
             'queued', now(), e.ordinality <= (p_o ->> 'concurrency')::integer
      from jsonb_array_elements(p_o -> 'items') with ordinality as e
      returning step_id, item_index, released
    )
    select coalesce(array_agg(step_id order by item_index) filter (where released), '{}'),
           v_events || coalesce(jsonb_agg(jsonb_build_object('type', 'step.queued', 'step_id', step_id) order by item_index), '[]')
      into v_released, v_events from made;
    update public.runs r set
      unfinished = r.unfinished + v_n,
      -- step mode: the expansion ran nothing; its first item spends the claim
      step_budget = case when r.mode = 'step' then r.step_budget + 1 else r.step_budget end,
      last_seq = r.last_seq + jsonb_array_length(v_events)
    where r.id = p_run returning r.last_seq into v_last;
    perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
    return jsonb_build_object('status', 'applied', 'queued', to_jsonb(v_released), 'finished', false);
  end if;

  if v_step.parent is not null then  -- an item of a for_each
    update public.step_runs s set
        waiting = s.waiting - 1,
        items_failed = s.items_failed + (v_kind = 'failure')::integer
      where s.run_id = p_run and s.step_id = v_step.parent
      returning s.waiting, s.items_failed, s.dependents into v_parent;
    if v_kind = 'failure' and v_parent.items_failed > coalesce((p_o ->> 'tolerate')::integer, 0) then
      v_error := jsonb_build_object('type', p_o -> 'error' ->> 'type', 'step_id', v_step.parent,
        'message', format('item %s of step ''%s'' failed: %s', p_step, v_step.parent, p_o -> 'error' ->> 'message'));
      update public.step_runs s set status = 'failed', error = v_error, finished_at = now()
       where s.run_id = p_run and s.step_id = v_step.parent;
      return orchestrate.fail_run(p_run, v_run.owner_id, v_error,
        v_events || jsonb_build_array(jsonb_build_object('type', 'step.failed', 'step_id', v_step.parent, 'data', jsonb_build_object('error', v_error))));
    end if;
    if v_parent.waiting > 0 then
      -- The next held item of this for_each takes the finished one's place.
      with next as (
        select s.step_id from public.step_runs s
        where s.run_id = p_run and s.parent = v_step.parent and s.status = 'queued' and not s.released
        order by s.item_index limit 1 for update
      )
      update public.step_runs s set released = true from next
       where s.run_id = p_run and s.step_id = next.step_id returning array[s.step_id] into v_released;
      update public.runs r set unfinished = r.unfinished - 1, last_seq = r.last_seq + jsonb_array_length(v_events)
       where r.id = p_run returning r.last_seq into v_last;
      perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
      return jsonb_build_object('status', 'applied', 'queued', to_jsonb(coalesce(v_released, '{}')), 'finished', false);
    end if;
    -- The last item: the for_each step's answer is the list of its items' answers, in
    -- order (a failed item tolerated: null).
    update public.step_runs s set
        status = 'succeeded', finished_at = now(),
        output = (select jsonb_agg(case when i.status = 'succeeded' then to_jsonb(i.output) end order by i.item_index)::text
                  from public.step_runs i where i.run_id = p_run and i.parent = v_step.parent),
        outputs = (select jsonb_agg(case when i.status = 'succeeded' then coalesce(i.outputs, to_jsonb(i.output)) end order by i.item_index)
                   from public.step_runs i where i.run_id = p_run and i.parent = v_step.parent)
      where s.run_id = p_run and s.step_id = v_step.parent;
    return orchestrate.step_finished(p_run, v_parent.dependents, false, v_run.unfinished - 1,
      v_events || jsonb_build_array(jsonb_build_object('type', 'step.succeeded', 'step_id', v_step.parent,
                                                       'data', jsonb_build_object('items', v_step.length))));
  end if;

  if v_kind = 'failure' then
    return orchestrate.fail_run(p_run, v_run.owner_id, p_o -> 'error', v_events);
  end if;
  return orchestrate.step_finished(p_run, v_step.dependents, v_kind = 'skip', v_run.unfinished, v_events);
end
$$;

-- A control action for p_user (the verified user; null only with p_any_owner, for the
-- service's own tools). Ownership is part of the locking query, so another user's run
-- is never locked, not even for a moment. p_action: pause | resume | step | cancel |
-- retry; the engine has already checked that the run's status allows it (on the row
-- this function returns from orchestrate.lock_run, in the same transaction).
create or replace function orchestrate.lock_run(p_run uuid, p_user uuid, p_any_owner boolean default false)
returns jsonb
  language plpgsql set search_path to ''
as $$
begin
  if p_user is null and not p_any_owner then
    return null;  -- fail closed: no user, no run
  end if;
  perform 1 from public.runs r where r.id = p_run and (p_any_owner or r.owner_id = p_user) for update;
  if not found then
    return null;
  end if;
  return orchestrate.run_json(p_run);
end
$$;

-- Apply a control action to a run locked by lock_run in this transaction. p_c: {action,
-- reset: [step ids to run again], step_budget}. The function derives every change
-- itself (statuses, counters, releases, events); returns {status, queued: [steps to
-- send], finished}.
create or replace function orchestrate.apply_control(p_run uuid, p_c jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run record;
  v_action text := p_c ->> 'action';
  v_events jsonb := '[]';
  v_send text[] := '{}';
  v_released text[] := '{}';
  v_last bigint;
  v_finished boolean := false;
  v_first text;
  v_first_released boolean;
begin
  select r.owner_id, r.status, r.mode, r.in_flight, r.held, r.max_in_flight into v_run
  from public.runs r where r.id = p_run for update;
  if not found then
    raise exception 'run % not found', p_run using errcode = 'no_data_found';
  end if;
  if v_action = 'pause' then
    update public.runs set status = 'paused' where id = p_run;
    v_events := jsonb_build_array(jsonb_build_object('type', 'run.paused'));
  elsif v_action = 'cancel' then
    v_events := orchestrate.cancel_unfinished(p_run) || jsonb_build_array(jsonb_build_object(
      'type', 'run.cancelled', 'data', jsonb_build_object('error', jsonb_build_object(
        'type', 'cancelled', 'message', 'the run was cancelled', 'step_id', null))));
    perform orchestrate.finish_run(p_run, 'cancelled',
      jsonb_build_object('type', 'cancelled', 'message', 'the run was cancelled', 'step_id', null));
    v_finished := true;
  else
    if v_action = 'retry' then
      -- The steps to run again become pending, and the counters are recounted (once).
      update public.step_runs s
         set status = 'pending', error = null, finished_at = null, lease_until = null, started_at = null,
             released = false, retry_base = s.attempt
       where s.run_id = p_run and s.step_id in (select jsonb_array_elements_text(p_c -> 'reset'));
      update public.step_runs s set
          waiting = (select count(*) from public.step_runs d
                     where d.run_id = p_run and d.step_id = any (s.needs) and d.status = 'pending'),
          status = case when exists (select 1 from public.step_runs d
                                     where d.run_id = p_run and d.step_id = any (s.needs) and d.status = 'pending')
                        then 'pending' else 'queued' end,
          queued_at = now()
       where s.run_id = p_run and s.status = 'pending';
      update public.runs r set
          error = null, outputs = null, finished_at = null, in_flight = 0,
          unfinished = (select count(*) from public.step_runs s where s.run_id = p_run and s.status in ('pending', 'queued')),
          held = (select count(*) from public.step_runs s where s.run_id = p_run and s.status = 'queued')
       where r.id = p_run;
      v_events := jsonb_build_array(jsonb_build_object('type', 'run.retried')) || coalesce((
        select jsonb_agg(jsonb_build_object('type', 'step.queued', 'step_id', s.step_id) order by s.position)
        from public.step_runs s where s.run_id = p_run and s.status = 'queued'), '[]');
    else
      v_events := jsonb_build_array(jsonb_build_object('type', 'run.resumed'));
    end if;
    update public.runs r set status = 'running', step_budget = coalesce((p_c ->> 'step_budget')::integer, r.step_budget)
     where r.id = p_run returning r.in_flight, r.held, r.max_in_flight into v_run.in_flight, v_run.held, v_run.max_in_flight;
    if v_run.mode = 'step' then
      -- One step at a time: the first queued step, released if the cap held it.
      select s.step_id, s.released into v_first, v_first_released from public.step_runs s
       where s.run_id = p_run and s.status = 'queued' order by s.position limit 1;
      if v_first is not null then
        v_send := array[v_first];
        if not v_first_released then
          update public.step_runs set released = true where run_id = p_run and step_id = v_first;
          update public.runs set in_flight = in_flight + 1, held = held - 1 where id = p_run;
        end if;
      end if;
    else
      -- Messages refused while the run was paused are sent again; held steps released.
      select coalesce(array_agg(s.step_id order by s.position), '{}') into v_send from public.step_runs s
       where s.run_id = p_run and s.status = 'queued' and s.released;
      v_released := orchestrate.release_held(p_run, v_run.max_in_flight - v_run.in_flight);
      update public.runs set in_flight = in_flight + cardinality(v_released), held = held - cardinality(v_released)
       where id = p_run;
      v_send := v_send || v_released;
    end if;
  end if;
  update public.runs r set last_seq = r.last_seq + jsonb_array_length(v_events) where r.id = p_run
   returning r.last_seq, r.status into v_last, v_run.status;
  perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
  return jsonb_build_object('status', v_run.status, 'queued', to_jsonb(v_send), 'finished', v_finished);
end
$$;

-- The sweeper's question: which steps of active runs need a new wake-up? Released
-- queued steps whose message is overdue by p_grace seconds (lost, or delayed beyond
-- SQS's 15 minutes), running steps whose lease lapsed (the invocation died), and held
-- steps of runs that have room (released here). Marks them as re-sent (queued_at) so
-- the next sweep waits another p_grace.
create or replace function orchestrate.stuck_steps(p_grace double precision, p_limit integer)
returns table (run_id uuid, step_id text)
  language plpgsql set search_path to ''
as $$
#variable_conflict use_column
declare
  v_run record;
  v_released text[];
begin
  for v_run in
    select r.id, r.max_in_flight - r.in_flight as room from public.runs r
    where r.held > 0 and r.in_flight < r.max_in_flight and r.status in ('queued', 'running') and r.mode = 'auto'
    for update skip locked
  loop
    v_released := orchestrate.release_held(v_run.id, v_run.room);
    update public.runs set in_flight = in_flight + cardinality(v_released), held = held - cardinality(v_released)
     where id = v_run.id;
    return query select v_run.id, x from unnest(v_released) as x;
  end loop;
  return query
  with due as (
    select s.run_id, s.step_id
    from public.step_runs s
    join public.runs r on r.id = s.run_id
    where r.status in ('queued', 'running')
      and ((s.status = 'queued' and s.released
            and greatest(s.queued_at + make_interval(secs => p_grace), coalesce(s.not_before, '-infinity')) <= now())
           or (s.status = 'running' and s.lease_until < now()))
    order by s.queued_at
    limit p_limit
    for update of s skip locked
  )
  update public.step_runs s set queued_at = now()
  from due where s.run_id = due.run_id and s.step_id = due.step_id
  returning s.run_id, s.step_id;
end
$$;

-- Only the service connection runs the protocol.
revoke execute on all functions in schema orchestrate from public, anon, authenticated;
grant execute on all functions in schema orchestrate to service_role;
