-- The run protocol as SQL functions, so each phase of a step is one round trip:
-- claim (one call), record the outcome (one call), apply the engine's decisions
-- (one call). The decisions themselves (what is ready, skipped, finished) are made by
-- the engine in Python; these functions only apply them, under the run row's lock.
--
-- They live in a schema of their own, not exposed through the Data API. A signed-in
-- user may only start runs and control their own (create_run, lock_run, apply_control:
-- `security definer`, each checking the owner against auth.uid()); they cannot write
-- the run tables otherwise. Everything else is for the service role.

create schema if not exists orchestrate;

-- Whether the caller may act on a row of p_owner: a user (a JWT with role
-- authenticated or anon) only on their own; the service role and the database's own
-- roles on any.
create or replace function orchestrate.may_act_for(p_owner uuid)
returns boolean
  language sql stable set search_path to ''
as $$
  select coalesce(auth.role(), '') not in ('authenticated', 'anon') or p_owner = auth.uid()
$$;

-- Bumped by every change the engine's decisions depend on (a step finishing, being
-- queued, skipped or cancelled; the run's status), not by claims. A completion
-- carries the version its decisions were made on, and applies them only if it still
-- holds (optimistic concurrency): one round trip, exact fan-in.
alter table public.runs add column if not exists version bigint not null default 0;
-- Step-by-step mode: how many more claims the run allows before it pauses again.
alter table public.runs add column if not exists step_budget integer not null default 0;
-- A run retry resets failed steps; attempts count from here against max_attempts again
-- (attempt itself keeps rising, so a late result of an older attempt stays stale).
alter table public.step_runs add column if not exists retry_base integer not null default 0;

-- Append events to a run's log: one bump of runs.last_seq (which locks the run row,
-- keeping seq gapless) for any number of events. p_events: [{type, step_id, data}].
create or replace function orchestrate.append_events(p_run uuid, p_owner uuid, p_events jsonb, p_bump_version boolean default false)
returns bigint
  language plpgsql set search_path to ''
as $$
declare
  v_n integer := jsonb_array_length(p_events);
  v_last bigint;
begin
  if v_n = 0 and not p_bump_version then
    return null;
  end if;
  -- One write of the run row for both counters.
  update public.runs set last_seq = last_seq + v_n, version = version + p_bump_version::int
   where id = p_run returning last_seq into v_last;
  if v_n = 0 then
    return v_last;
  end if;
  insert into public.run_events (run_id, seq, owner_id, type, step_id, data)
  select p_run, v_last - v_n + e.ordinality, p_owner, e.value ->> 'type', e.value ->> 'step_id',
         coalesce(e.value -> 'data', '{}'::jsonb)
  from jsonb_array_elements(p_events) with ordinality as e;
  return v_last;
end
$$;

-- The run with every step, as the engine reads it.
create or replace function orchestrate.run_json(p_run uuid)
returns jsonb
  language sql stable set search_path to ''
as $$
  select to_jsonb(r) - 'last_seq' - 'request_hash' || jsonb_build_object(
    'steps', coalesce((
      select jsonb_agg(to_jsonb(s) - 'run_id' - 'owner_id' - 'updated_at' order by s.position)
      from public.step_runs s where s.run_id = r.id), '[]'::jsonb))
  from public.runs r where r.id = p_run
$$;

-- Apply a transition decided by the engine: {queue: [ids], skip: {id: reason},
-- fail: {id: error}, cancel: [ids], finish: status|null, error, outputs, events: [...]}.
create or replace function orchestrate.apply_transition(p_run uuid, p_owner uuid, p_t jsonb)
returns void
  language plpgsql set search_path to ''
as $$
begin
  -- Most transitions queue one or two steps and nothing else: skip the empty parts.
  if jsonb_array_length(p_t -> 'queue') > 0 then
    update public.step_runs s set status = 'queued', queued_at = now(), not_before = null
      where s.run_id = p_run and s.step_id in (select jsonb_array_elements_text(p_t -> 'queue'));
  end if;
  if p_t -> 'skip' <> '{}'::jsonb then
    update public.step_runs s set status = 'skipped', finished_at = now()
      where s.run_id = p_run and s.step_id in (select jsonb_object_keys(p_t -> 'skip'));
  end if;
  if p_t -> 'fail' <> '{}'::jsonb then
    update public.step_runs s set status = 'failed', finished_at = now(), error = p_t -> 'fail' -> s.step_id
      where s.run_id = p_run and s.step_id in (select jsonb_object_keys(p_t -> 'fail'));
  end if;
  if jsonb_array_length(p_t -> 'cancel') > 0 then
    update public.step_runs s set status = 'cancelled', finished_at = now(), lease_until = null
      where s.run_id = p_run and s.step_id in (select jsonb_array_elements_text(p_t -> 'cancel'));
  end if;
  if p_t ->> 'finish' is null and coalesce((p_t ->> 'pause')::boolean, false) then
    update public.runs set status = 'paused' where id = p_run and status in ('queued', 'running');
  end if;
  if p_t ->> 'finish' is not null then
    update public.runs r set
      status = p_t ->> 'finish',
      finished_at = now(),
      error = nullif(p_t -> 'error', 'null'::jsonb),
      -- a run's outputs: each succeeded step's structured outputs, or its text
      outputs = case when p_t ->> 'finish' = 'succeeded' then (
        select coalesce(jsonb_object_agg(s.step_id, coalesce(s.outputs, to_jsonb(s.output))), '{}'::jsonb)
        from public.step_runs s where s.run_id = p_run and s.status = 'succeeded') end,
      usage = (
        select jsonb_build_object(
          'prompt_tokens', coalesce(sum((s.usage ->> 'prompt_tokens')::bigint), 0),
          'completion_tokens', coalesce(sum((s.usage ->> 'completion_tokens')::bigint), 0),
          'total_tokens', coalesce(sum((s.usage ->> 'total_tokens')::bigint), 0))
        from public.step_runs s where s.run_id = p_run)
    where r.id = p_run;
    -- Finishing records the webhook delivery in the same transaction: it cannot be lost.
    insert into public.webhook_deliveries (owner_id, run_id, event_type, url, payload)
    select r.owner_id, r.id, 'run.' || r.status, r.webhook_url,
           jsonb_build_object(
             'type', 'run.' || r.status,
             'timestamp', to_jsonb(now()),
             'data', jsonb_build_object('id', r.id, 'workflow_id', r.workflow_id, 'status', r.status,
                                        'outputs', r.outputs, 'usage', r.usage, 'error', r.error))
    from public.runs r where r.id = p_run and r.webhook_url is not null;
  end if;
  perform orchestrate.append_events(p_run, p_owner, coalesce(p_t -> 'events', '[]'::jsonb), true);
end
$$;

-- Start: insert the run and its steps and apply the first decisions, atomically.
create or replace function orchestrate.create_run(p_run jsonb, p_steps jsonb, p_t jsonb)
returns jsonb
  language plpgsql security definer set search_path to ''
as $$
declare
  v_id uuid := (p_run ->> 'id')::uuid;
  v_owner uuid := (p_run ->> 'owner_id')::uuid;
begin
  if not orchestrate.may_act_for(v_owner) then
    raise exception 'a run can only be started for oneself' using errcode = 'insufficient_privilege';
  end if;
  insert into public.runs (id, owner_id, workflow_id, spec, inputs, mode, webhook_url, idempotency_key, request_hash, step_budget)
  values (v_id, v_owner, (p_run ->> 'workflow_id')::uuid, p_run -> 'spec', p_run -> 'inputs',
          coalesce(p_run ->> 'mode', 'auto'), p_run ->> 'webhook_url', p_run ->> 'idempotency_key',
          p_run ->> 'request_hash', case when p_run ->> 'mode' = 'step' then 1 else 0 end);
  insert into public.step_runs (run_id, owner_id, step_id, position)
  select v_id, v_owner, s.value ->> 'id', (s.value ->> 'position')::int
  from jsonb_array_elements(p_steps) as s;
  perform orchestrate.apply_transition(v_id, v_owner, p_t);
  return orchestrate.run_json(v_id);
end
$$;

-- The run as a claim needs it: the run's fields (the spec only when asked: the engine
-- caches plans), every step's status, and the full rows of the steps in p_need (all
-- when p_need is null): what the prompt and the decisions after it will read.
create or replace function orchestrate.run_view(p_run uuid, p_need text[], p_with_spec boolean)
returns jsonb
  language sql stable set search_path to ''
as $$
  -- Named columns: to_jsonb(r) would detoast and convert the whole spec on every claim.
  select jsonb_build_object(
      'id', r.id, 'owner_id', r.owner_id, 'workflow_id', r.workflow_id, 'inputs', r.inputs,
      'status', r.status, 'mode', r.mode, 'outputs', r.outputs, 'error', r.error, 'usage', r.usage,
      'webhook_url', r.webhook_url, 'created_at', r.created_at, 'started_at', r.started_at,
      'finished_at', r.finished_at, 'version', r.version, 'step_budget', r.step_budget)
    || case when p_with_spec then jsonb_build_object('spec', r.spec) else '{}'::jsonb end
    || jsonb_build_object(
      'statuses', (select jsonb_object_agg(s.step_id, s.status) from public.step_runs s where s.run_id = r.id),
      'steps', coalesce((
        select jsonb_agg(to_jsonb(s) - 'run_id' - 'owner_id' - 'updated_at')
        from public.step_runs s
        where s.run_id = r.id and (p_need is null or s.step_id = any (p_need))), '[]'::jsonb))
  from public.runs r where r.id = p_run
$$;

-- Claim: a queued step (or a running one whose lease lapsed) of a queued or running
-- run. Returns {attempt, run: run_view(...)}, or null: a duplicate or stale message,
-- to be acknowledged.
create or replace function orchestrate.claim_step(
  p_run uuid, p_step text, p_lease double precision, p_need text[] default null, p_with_spec boolean default true)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run public.runs%rowtype;
  v_step public.step_runs%rowtype;
  v_first boolean;
  v_events jsonb;
begin
  -- Lock the run first, as completion does, so the two never deadlock.
  select * into v_run from public.runs where id = p_run for update;
  if not found or v_run.status not in ('queued', 'running') then
    return null;
  end if;
  select * into v_step from public.step_runs s where s.run_id = p_run and s.step_id = p_step;
  if not found or not ((v_step.status = 'queued' and (v_step.not_before is null or v_step.not_before <= now()))
                       or (v_step.status = 'running' and v_step.lease_until < now())) then
    return null;
  end if;
  -- A claim lost in a server crash is harmless (the step is still queued and its
  -- message not yet deleted), so its commit need not wait for the disk.
  perform set_config('synchronous_commit', 'off', true);
  -- Step mode spends its budget on a step's first claim only: a retry after a
  -- transient error, or a reclaim after a crash, continues the step already allowed.
  v_first := v_step.status = 'queued' and v_step.not_before is null;
  if v_run.mode = 'step' and v_first and v_run.step_budget < 1 then
    return null;
  end if;
  update public.step_runs s
     set status = 'running', attempt = s.attempt + 1, started_at = now(),
         lease_until = now() + make_interval(secs => p_lease)
   where s.run_id = p_run and s.step_id = p_step;
  v_events := jsonb_build_array(jsonb_build_object('type', 'step.started', 'step_id', p_step,
                                                   'data', jsonb_build_object('attempt', v_step.attempt + 1)));
  if v_run.status = 'queued' or (v_run.mode = 'step' and v_first) then
    update public.runs set status = 'running', started_at = coalesce(started_at, now()),
                           step_budget = case when v_run.mode = 'step' and v_first then greatest(step_budget - 1, 0) else step_budget end
     where id = p_run;
  end if;
  if v_run.status = 'queued' then
    v_events := jsonb_build_array(jsonb_build_object('type', 'run.started')) || v_events;
  end if;
  perform orchestrate.append_events(p_run, v_run.owner_id, v_events);
  return jsonb_build_object('attempt', v_step.attempt + 1, 'tries', v_step.attempt + 1 - v_step.retry_base,
                            'run', orchestrate.run_view(p_run, p_need, p_with_spec));
end
$$;

-- Complete a claimed step in one call. p_o is the outcome: {kind: success|retry|
-- failure, prompt, output, outputs, model, usage, latency_ms, error, delay, event}.
-- p_t is the transition the engine decided assuming run version p_version.
-- Returns {"status": "stale"} when the claim is no longer current (a newer claim owns
-- the step: this late result is discarded), {"status": "conflict", "run": ...} when
-- the run changed since p_version (nothing written: decide again on the fresh run),
-- else {"status": "applied"}.
create or replace function orchestrate.complete_step(
  p_run uuid, p_step text, p_attempt integer, p_o jsonb, p_t jsonb, p_version bigint, p_need text[] default null)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run public.runs%rowtype;
  v_kind text := p_o ->> 'kind';
begin
  select * into v_run from public.runs where id = p_run for update;
  if not found then
    return jsonb_build_object('status', 'stale');
  end if;
  if v_kind <> 'retry' and v_run.version <> p_version then
    if exists (select 1 from public.step_runs s
               where s.run_id = p_run and s.step_id = p_step and s.status = 'running' and s.attempt = p_attempt) then
      return jsonb_build_object('status', 'conflict', 'run', orchestrate.run_view(p_run, p_need, false));
    end if;
    return jsonb_build_object('status', 'stale');
  end if;
  update public.step_runs s set
    status = case v_kind when 'success' then 'succeeded' when 'retry' then 'queued' else 'failed' end,
    prompt = coalesce(p_o ->> 'prompt', s.prompt),
    output = case when v_kind = 'success' then p_o ->> 'output' else s.output end,
    outputs = case when v_kind = 'success' then nullif(p_o -> 'outputs', 'null'::jsonb) else s.outputs end,
    model = coalesce(p_o ->> 'model', s.model),
    usage = case when v_kind = 'success' then p_o -> 'usage' else s.usage end,
    latency_ms = case when v_kind = 'success' then (p_o ->> 'latency_ms')::int else s.latency_ms end,
    error = case when v_kind = 'success' then null else p_o -> 'error' end,
    lease_until = null,
    finished_at = case when v_kind = 'retry' then null else now() end,
    queued_at = case when v_kind = 'retry' then now() else s.queued_at end,
    not_before = case when v_kind = 'retry' then now() + make_interval(secs => (p_o ->> 'delay')::double precision) else null end
  where s.run_id = p_run and s.step_id = p_step and s.status = 'running' and s.attempt = p_attempt;
  if not found then
    return jsonb_build_object('status', 'stale');  -- a newer claim owns the step
  end if;
  if v_kind = 'retry' then
    perform orchestrate.append_events(p_run, v_run.owner_id, jsonb_build_array(p_o -> 'event'));
  else
    perform orchestrate.apply_transition(p_run, v_run.owner_id,
      jsonb_set(p_t, '{events}', jsonb_build_array(p_o -> 'event') || coalesce(p_t -> 'events', '[]'::jsonb)));
  end if;
  return jsonb_build_object('status', 'applied');
end
$$;

-- A control action (pause, resume, step, cancel, retry), decided by the engine on the
-- run it read under lock (select ... for update) in the same transaction.
-- p_c: {status, step_budget, reset: [ids], event, transition}.
-- Lock a run for a control action and return it (null if it is not the caller's).
create or replace function orchestrate.lock_run(p_run uuid)
returns jsonb
  language plpgsql security definer set search_path to ''
as $$
declare
  v_owner uuid;
begin
  select owner_id into v_owner from public.runs where id = p_run for update;
  if not found or not orchestrate.may_act_for(v_owner) then
    return null;
  end if;
  return orchestrate.run_json(p_run);
end
$$;

create or replace function orchestrate.apply_control(p_run uuid, p_c jsonb)
returns void
  language plpgsql security definer set search_path to ''
as $$
declare
  v_owner uuid;
  v_reset boolean := jsonb_array_length(p_c -> 'reset') > 0;
begin
  select owner_id into v_owner from public.runs where id = p_run;
  if not found or not orchestrate.may_act_for(v_owner) then
    raise exception 'run % not found', p_run using errcode = 'no_data_found';
  end if;
  update public.step_runs s
     set status = 'pending', error = null, finished_at = null, lease_until = null, started_at = null,
         retry_base = s.attempt
   where s.run_id = p_run and s.step_id in (select jsonb_array_elements_text(p_c -> 'reset'));
  update public.runs r set
    status = p_c ->> 'status',
    step_budget = coalesce((p_c ->> 'step_budget')::int, r.step_budget),
    error = case when v_reset then null else r.error end,
    outputs = case when v_reset then null else r.outputs end,
    finished_at = case when v_reset then null else r.finished_at end
  where r.id = p_run
  returning owner_id into v_owner;
  if p_c ->> 'event' is not null then
    perform orchestrate.append_events(p_run, v_owner, jsonb_build_array(jsonb_build_object('type', p_c ->> 'event')));
  end if;
  perform orchestrate.apply_transition(p_run, v_owner, p_c -> 'transition');
end
$$;

-- The sweeper's question: which steps of active runs need a new wake-up? Queued steps
-- whose message is overdue by p_grace seconds (lost, or delayed beyond SQS's 15
-- minutes), and running steps whose lease lapsed (the invocation died). Marks them
-- as re-sent (queued_at) so the next sweep waits another p_grace.
create or replace function orchestrate.stuck_steps(p_grace double precision, p_limit integer)
returns table (run_id uuid, step_id text)
  language sql set search_path to ''
as $$
  with due as (
    select s.run_id, s.step_id
    from public.step_runs s
    join public.runs r on r.id = s.run_id
    where r.status in ('queued', 'running')
      and ((s.status = 'queued'
            and greatest(s.queued_at + make_interval(secs => p_grace), coalesce(s.not_before, '-infinity')) <= now())
           or (s.status = 'running' and s.lease_until < now()))
    order by s.queued_at
    limit p_limit
    for update of s skip locked
  )
  update public.step_runs s set queued_at = now()
  from due where s.run_id = due.run_id and s.step_id = due.step_id
  returning s.run_id, s.step_id
$$;

revoke all on schema orchestrate from public;
grant usage on schema orchestrate to authenticated, service_role;
revoke all on all functions in schema orchestrate from public, anon;
-- A signed-in user may start runs, control and read their own; only the service role
-- runs steps.
grant execute on function orchestrate.create_run(jsonb, jsonb, jsonb), orchestrate.lock_run(uuid),
  orchestrate.apply_control(uuid, jsonb), orchestrate.run_json(uuid), orchestrate.may_act_for(uuid)
  to authenticated, service_role;
grant execute on function orchestrate.apply_transition(uuid, uuid, jsonb),
  orchestrate.append_events(uuid, uuid, jsonb, boolean) to service_role;
grant execute on function orchestrate.claim_step(uuid, text, double precision, text[], boolean),
  orchestrate.complete_step(uuid, text, integer, jsonb, jsonb, bigint, text[]),
  orchestrate.run_view(uuid, text[], boolean), orchestrate.stuck_steps(double precision, integer) to service_role;
