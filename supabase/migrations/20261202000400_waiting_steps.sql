-- Waiting steps (issue 12): a step may park (an approval, a durable wait, a child run).
--
-- A parked step is `waiting`: not finished (the run's `unfinished` still counts it) but
-- not in flight either: parking frees its slot of the run's cap, so held steps are
-- released. `waiting_for` keeps what it waits for (shown to users); `not_before` is when
-- it wakes (null: only an answer ends it, through orchestrate.resolve_step). A waiting
-- step whose time has come is claimed like a queued one (it takes a slot again while it
-- runs); its executor sees `waiting_for` and ends the wait. An approval's callback token
-- is kept only as a hash (`callback_hash`, with `callback_expires_at`), kept after use
-- so a second use (or a use after it expired) is refused as such.
--
-- Replaces: claim_step, complete_step, cancel_unfinished, stuck_steps. Adds: resolve_step.

alter table public.step_runs drop constraint if exists step_runs_status_check;
alter table public.step_runs add constraint step_runs_status_check
  check (status in ('pending', 'queued', 'running', 'waiting', 'succeeded', 'failed', 'skipped', 'cancelled'));

alter table public.step_runs
  add column if not exists waiting_for jsonb,
  add column if not exists callback_hash text,
  add column if not exists callback_expires_at timestamptz;

-- The sweeper: waiting steps with a wake-up time. The callback endpoint: a token's step.
create index if not exists step_runs_waiting_idx on public.step_runs (not_before) where status = 'waiting';
create unique index if not exists step_runs_callback_idx on public.step_runs (callback_hash) where callback_hash is not null;

-- Cancel every unfinished step of a run (waiting ones too); returns the step.cancelled
-- events in order.
create or replace function orchestrate.cancel_unfinished(p_run uuid)
returns jsonb
  language sql set search_path to ''
as $$
  with done as (
    update public.step_runs s set status = 'cancelled', finished_at = now(), lease_until = null, waiting_for = null
    where s.run_id = p_run and s.status in ('pending', 'queued', 'running', 'waiting')
    returning s.step_id, s.position, s.item_index
  )
  select coalesce(jsonb_agg(jsonb_build_object('type', 'step.cancelled', 'step_id', step_id) order by position, item_index nulls first), '[]')
  from done
$$;

-- Claim a released queued step, a running one whose lease lapsed, or a waiting one
-- whose `not_before` has passed (woken: it takes a slot of the cap again), of a queued
-- or running run. Returns {attempt, tries, run: {...the run's fields, spec if asked},
-- steps: [the claimed step and the rows it reads]}; {not_before} for a waiting step
-- whose time has not come (the engine re-arms its wake-up); or null: a duplicate or
-- stale message, to be acknowledged.
create or replace function orchestrate.claim_step(p_run uuid, p_step text, p_lease double precision,
                                                  p_with_spec boolean default true)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_run record;
  v_step record;
  v_first boolean;
  v_woken boolean;
  v_events jsonb;
  v_last bigint;
begin
  -- Lock the run first, as every other change does, so they never deadlock.
  select r.owner_id, r.status, r.mode, r.step_budget into v_run from public.runs r where r.id = p_run for update;
  if not found or v_run.status not in ('queued', 'running') then
    return null;
  end if;
  select s.status, s.attempt, s.retry_base, s.not_before, s.lease_until, s.released, s.parent,
         coalesce(s.reads, s.needs) as reads into v_step
  from public.step_runs s where s.run_id = p_run and s.step_id = p_step;
  if not found then
    return null;
  end if;
  v_woken := v_step.status = 'waiting' and v_step.not_before is not null;
  if v_woken and v_step.not_before > now() then
    return jsonb_build_object('not_before', v_step.not_before);
  end if;
  -- coalesce: a for_each step running its items has no lease, and a null must not claim it.
  if not (v_woken or coalesce((v_step.status = 'queued' and v_step.released and (v_step.not_before is null or v_step.not_before <= now()))
                              or (v_step.status = 'running' and v_step.lease_until < now()), false)) then
    return null;
  end if;
  -- Step mode spends its budget on a step's first claim only: a retry after a
  -- transient error, a reclaim after a crash, or a wake, continues the step already allowed.
  v_first := v_step.status = 'queued' and v_step.not_before is null;
  if v_run.mode = 'step' and v_first and v_run.step_budget < 1 then
    return null;
  end if;
  -- A claim lost in a server crash is harmless (the step is still queued or waiting and
  -- its message not yet deleted), so its commit need not wait for the disk.
  perform set_config('synchronous_commit', 'off', true);
  update public.step_runs s
     set status = 'running', attempt = s.attempt + 1, started_at = now(),
         lease_until = now() + make_interval(secs => p_lease)
   where s.run_id = p_run and s.step_id = p_step;
  v_events := jsonb_build_array(jsonb_build_object('type', 'step.started', 'step_id', p_step,
                'data', jsonb_build_object('attempt', v_step.attempt + 1)
                        || case when v_woken then '{"woken": true}'::jsonb else '{}'::jsonb end));
  if v_run.status = 'queued' then
    v_events := jsonb_build_array(jsonb_build_object('type', 'run.started')) || v_events;
  end if;
  update public.runs r
     set status = 'running', started_at = coalesce(r.started_at, now()),
         step_budget = case when v_run.mode = 'step' and v_first then greatest(r.step_budget - 1, 0) else r.step_budget end,
         in_flight = r.in_flight + (v_woken and v_step.parent is null)::integer,
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
        select jsonb_agg(to_jsonb(s) - 'run_id' - 'owner_id' - 'updated_at' - 'needs' - 'reads' - 'dependents' - 'callback_hash' - 'callback_expires_at')
        from public.step_runs s
        where s.run_id = p_run and s.step_id = any (array_append(v_step.reads, p_step))), '[]'::jsonb))
    from public.runs r where r.id = p_run);
end
$$;

-- Complete a claimed step. p_o: {kind: success|skip|retry|failure|expand|park, prompt,
-- output, outputs, model, usage, latency_ms, error, delay, event; for expand: items,
-- concurrency; for an item: tolerate (failed items its for_each tolerates); for a
-- failure: continue (`on_error: continue`), default ({output, outputs}: an item's
-- for_each step's `on_error` default, used when it fails the step); for park:
-- until (null: until resolved), info (the step's waiting_for), callback_hash,
-- callback_expires_at}. Returns
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
  v_continue boolean := coalesce((p_o ->> 'continue')::boolean, false);
begin
  select r.owner_id, r.status, r.mode, r.unfinished, r.in_flight, r.max_in_flight, r.webhook_url, r.workflow_id into v_run
  from public.runs r where r.id = p_run for update;
  if not found then
    return jsonb_build_object('status', 'stale');
  end if;
  update public.step_runs s set
    status = case v_kind when 'success' then 'succeeded' when 'skip' then 'skipped' when 'retry' then 'queued'
                         when 'expand' then 'running' when 'park' then 'waiting' else 'failed' end,
    prompt = coalesce(p_o ->> 'prompt', s.prompt),
    output = case when v_kind = 'success' then p_o ->> 'output' else s.output end,
    outputs = case when v_kind = 'success' then nullif(p_o -> 'outputs', 'null'::jsonb) else s.outputs end,
    model = coalesce(p_o ->> 'model', s.model),
    usage = case when v_kind = 'success' then p_o -> 'usage' else s.usage end,
    latency_ms = case when v_kind = 'success' then (p_o ->> 'latency_ms')::integer else s.latency_ms end,
    error = case when v_kind in ('success', 'skip', 'expand', 'park') then null else p_o -> 'error' end,
    lease_until = null,
    finished_at = case when v_kind in ('retry', 'expand', 'park') then null else now() end,
    queued_at = case when v_kind in ('retry', 'park') then now() else s.queued_at end,
    not_before = case when v_kind = 'retry' then now() + make_interval(secs => (p_o ->> 'delay')::double precision)
                      when v_kind = 'park' then (p_o ->> 'until')::timestamptz else null end,
    waiting_for = case when v_kind = 'park' then p_o -> 'info' else null end,
    callback_hash = case when v_kind = 'park' then p_o ->> 'callback_hash' else s.callback_hash end,
    callback_expires_at = case when v_kind = 'park' then (p_o ->> 'callback_expires_at')::timestamptz else s.callback_expires_at end,
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

  if v_kind = 'park' then
    -- The step waits: out of flight. A top-level step's slot goes to a held step (an
    -- item keeps its place among its step's items). With a webhook, `run.waiting`.
    if v_step.parent is null and v_run.status in ('queued', 'running') and v_run.mode = 'auto' then
      v_released := orchestrate.release_held(p_run, v_run.max_in_flight - v_run.in_flight + 1);
    end if;
    update public.runs r set
        in_flight = r.in_flight - (v_step.parent is null)::integer + cardinality(v_released),
        held = r.held - cardinality(v_released),
        last_seq = r.last_seq + jsonb_array_length(v_events)
      where r.id = p_run returning r.last_seq into v_last;
    perform orchestrate.log_events(p_run, v_run.owner_id, v_last, v_events);
    if v_run.webhook_url is not null then
      insert into public.webhook_deliveries (owner_id, run_id, event_type, url, payload)
      values (v_run.owner_id, p_run, 'run.waiting', v_run.webhook_url, jsonb_build_object(
        'type', 'run.waiting', 'timestamp', to_jsonb(now()),
        'data', jsonb_build_object('id', p_run, 'workflow_id', v_run.workflow_id, 'status', 'running',
                                   'step_id', p_step, 'waiting', p_o -> 'event' -> 'data')));
    end if;
    return jsonb_build_object('status', 'applied', 'queued', to_jsonb(v_released), 'finished', false);
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
      if p_o -> 'default' is null and not v_continue then
        update public.step_runs s set status = 'failed', error = v_error, finished_at = now()
         where s.run_id = p_run and s.step_id = v_step.parent;
        return orchestrate.fail_run(p_run, v_run.owner_id, v_error,
          v_events || jsonb_build_array(jsonb_build_object('type', 'step.failed', 'step_id', v_step.parent, 'data', jsonb_build_object('error', v_error))));
      end if;
      -- `on_error` of the for_each step: it ends here (failed, the run going on; or with
      -- its default), and its other items are cancelled (once, over its items).
      update public.step_runs s set
          status = case when p_o -> 'default' is null then 'failed' else 'succeeded' end,
          error = case when p_o -> 'default' is null then v_error end,
          output = case when p_o -> 'default' is null then s.output else p_o -> 'default' ->> 'output' end,
          outputs = case when p_o -> 'default' is null then s.outputs else nullif(p_o -> 'default' -> 'outputs', 'null'::jsonb) end,
          finished_at = now()
       where s.run_id = p_run and s.step_id = v_step.parent;
      v_events := v_events || jsonb_build_array(case when p_o -> 'default' is null
        then jsonb_build_object('type', 'step.failed', 'step_id', v_step.parent,
                                'data', jsonb_build_object('error', v_error, 'on_error', 'continue'))
        else jsonb_build_object('type', 'step.succeeded', 'step_id', v_step.parent,
                                'data', jsonb_build_object('on_error', jsonb_build_object('default', true, 'error', v_error))) end);
      with done as (
        update public.step_runs s set status = 'cancelled', finished_at = now(), lease_until = null, waiting_for = null
        where s.run_id = p_run and s.parent = v_step.parent and s.status in ('pending', 'queued', 'running', 'waiting')
        returning s.step_id, s.item_index
      )
      select count(*), v_events || coalesce(jsonb_agg(jsonb_build_object('type', 'step.cancelled', 'step_id', step_id) order by item_index), '[]')
        into v_n, v_events from done;
      return orchestrate.step_finished(p_run, v_parent.dependents, false, v_run.unfinished - 1 - v_n, v_events);
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

  if v_kind = 'failure' and not v_continue then
    return orchestrate.fail_run(p_run, v_run.owner_id, p_o -> 'error', v_events);
  end if;  -- `on_error: continue`: the step failed, the run goes on
  return orchestrate.step_finished(p_run, v_step.dependents, v_kind = 'skip', v_run.unfinished, v_events);
end
$$;

-- End a waiting step with p_o (success or failure, as complete_step takes it): an
-- approval's answer, a child run's end. For p_user (the verified user; null only with
-- p_any_owner, for the service's own callers); ownership is part of the locking query.
-- The step runs again for the moment it finishes (it takes a slot back, which its end
-- frees), so complete_step's counters apply unchanged. {"status": "stale"} if the step
-- is not waiting (answered, woken, cancelled) or the run is not the user's.
create or replace function orchestrate.resolve_step(p_run uuid, p_step text, p_user uuid, p_any_owner boolean, p_o jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_step record;
begin
  if p_user is null and not p_any_owner then
    return jsonb_build_object('status', 'stale');  -- fail closed: no user, no run
  end if;
  perform 1 from public.runs r where r.id = p_run and (p_any_owner or r.owner_id = p_user) for update;
  if not found then
    return jsonb_build_object('status', 'stale');
  end if;
  update public.step_runs s set status = 'running'
   where s.run_id = p_run and s.step_id = p_step and s.status = 'waiting'
   returning s.attempt, s.parent into v_step;
  if not found then
    return jsonb_build_object('status', 'stale');
  end if;
  if v_step.parent is null then
    update public.runs r set in_flight = r.in_flight + 1 where r.id = p_run;
  end if;
  return orchestrate.complete_step(p_run, p_step, v_step.attempt, p_o);
end
$$;

-- The sweeper's question: which steps of active runs need a new wake-up? Released
-- queued steps whose message is overdue by p_grace seconds (lost, or delayed beyond
-- SQS's 15 minutes), waiting steps whose time came p_grace ago without a claim,
-- running steps whose lease lapsed (the invocation died), and held steps of runs that
-- have room (released here). Marks them as re-sent (queued_at) so the next sweep waits
-- another p_grace.
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
           or (s.status = 'waiting' and s.not_before is not null
               and greatest(s.queued_at + make_interval(secs => p_grace), s.not_before) <= now())
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
revoke execute on function orchestrate.resolve_step(uuid, text, uuid, boolean, jsonb) from public, anon, authenticated;
grant execute on function orchestrate.resolve_step(uuid, text, uuid, boolean, jsonb) to service_role;
