-- Child runs and reruns (issue 12).
--
-- A run started by a `workflow` step is a child run: it names the parent run and step
-- (parent_run_id, parent_step_id), and the parent's step row names it (child_run_id),
-- both written by create_run in the child's own transaction. A rerun names the run it
-- reran and the step it reran from (rerun_of_run_id, rerun_from); the steps it reuses
-- are created finished (reused), with the source run's answers and no usage.
--
-- The links reference (id, owner_id) of the run they name, so a run can only ever be
-- linked to a run of its own owner. RLS is unchanged: a user reads only their rows.

alter table public.runs
  add column if not exists parent_run_id uuid,
  add column if not exists parent_step_id text,
  add column if not exists rerun_of_run_id uuid,
  add column if not exists rerun_from text;

alter table public.runs drop constraint if exists runs_parent_fkey;
alter table public.runs add constraint runs_parent_fkey foreign key (parent_run_id, owner_id)
  references public.runs (id, owner_id) on delete set null (parent_run_id);
alter table public.runs drop constraint if exists runs_rerun_of_fkey;
alter table public.runs add constraint runs_rerun_of_fkey foreign key (rerun_of_run_id, owner_id)
  references public.runs (id, owner_id) on delete set null (rerun_of_run_id);

alter table public.step_runs
  add column if not exists reused boolean not null default false,
  add column if not exists child_run_id uuid;

-- A run's children, newest first: GET /v1/runs?parent_run_id=, cancelling a parent's
-- children, the sweeper's question about ended children.
create index if not exists runs_parent_idx on public.runs (parent_run_id, created_at desc, id)
  where parent_run_id is not null;
create index if not exists runs_rerun_of_idx on public.runs (rerun_of_run_id) where rerun_of_run_id is not null;

-- Start a run for p_owner (the verified user). p_run: {id, workflow_id, spec, inputs,
-- mode, webhook_url, idempotency_key, request_hash, max_in_flight, parent_run_id,
-- parent_step_id, rerun_of_run_id, rerun_from}; p_steps: [{id, position, needs, reads,
-- dependents, reused?: {status, prompt, output, outputs, model}}] from the plan. A
-- reused step is created finished (its answer copied, no usage) and its dependents do
-- not wait for it; the other steps with nothing to wait for are queued, and as many as
-- the cap allows released. A child run (parent_run_id) records itself on its parent's
-- step. Returns {run, queued: [released]}.
create or replace function orchestrate.create_run(p_owner uuid, p_run jsonb, p_steps jsonb)
returns jsonb
  language plpgsql set search_path to ''
as $$
declare
  v_id uuid := (p_run ->> 'id')::uuid;
  v_cap integer := coalesce((p_run ->> 'max_in_flight')::integer, 50);
  v_parent uuid := (p_run ->> 'parent_run_id')::uuid;
  v_reused_ids text[] := array(select s.value ->> 'id' from jsonb_array_elements(p_steps) as s
                               where nullif(s.value -> 'reused', 'null'::jsonb) is not null);
  v_ready integer;
  v_released text[];
  v_events jsonb;
  v_last bigint;
begin
  if p_owner is null then
    raise exception 'a run needs an owner' using errcode = 'insufficient_privilege';
  end if;
  if v_parent is not null then
    -- Lock the parent first, as every change of a run does; it must be the owner's.
    perform 1 from public.runs r where r.id = v_parent and r.owner_id = p_owner for update;
    if not found then
      raise exception 'parent run % not found', v_parent using errcode = 'foreign_key_violation';
    end if;
  end if;
  insert into public.runs (id, owner_id, workflow_id, spec, inputs, mode, webhook_url, idempotency_key,
                           request_hash, step_budget, max_in_flight, unfinished,
                           parent_run_id, parent_step_id, rerun_of_run_id, rerun_from)
  values (v_id, p_owner, (p_run ->> 'workflow_id')::uuid, p_run -> 'spec', p_run -> 'inputs',
          coalesce(p_run ->> 'mode', 'auto'), p_run ->> 'webhook_url', p_run ->> 'idempotency_key',
          p_run ->> 'request_hash', case when p_run ->> 'mode' = 'step' then 1 else 0 end, v_cap,
          jsonb_array_length(p_steps) - cardinality(v_reused_ids),
          v_parent, p_run ->> 'parent_step_id', (p_run ->> 'rerun_of_run_id')::uuid, p_run ->> 'rerun_from');
  insert into public.step_runs (run_id, owner_id, step_id, position, needs, reads, dependents, waiting,
                                status, queued_at, started_at, finished_at, reused, prompt, output, outputs,
                                model, usage)
  select v_id, p_owner, s.value ->> 'id', (s.value ->> 'position')::integer, n.needs,
         case when s.value -> 'reads' is null or s.value -> 'reads' = 'null'::jsonb then null
              else array(select jsonb_array_elements_text(s.value -> 'reads')) end,
         array(select jsonb_array_elements_text(coalesce(s.value -> 'dependents', '[]'))),
         case when u.r is null then w.waiting else 0 end,
         case when u.r is not null then u.r ->> 'status' when w.waiting = 0 then 'queued' else 'pending' end,
         case when u.r is not null or w.waiting = 0 then now() end,
         case when u.r is not null then now() end,
         case when u.r is not null then now() end,
         u.r is not null,
         u.r ->> 'prompt', u.r ->> 'output', nullif(u.r -> 'outputs', 'null'::jsonb), u.r ->> 'model',
         case when u.r is not null then '{"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}'::jsonb end
  from jsonb_array_elements(p_steps) as s,
       lateral (select nullif(s.value -> 'reused', 'null'::jsonb) as r) as u,
       lateral (select array(select jsonb_array_elements_text(coalesce(s.value -> 'needs', '[]'))) as needs) as n,
       -- a step waits only for its needs that are not reused
       lateral (select count(*)::integer as waiting from unnest(n.needs) as need where need <> all (v_reused_ids)) as w;
  if v_parent is not null then
    update public.step_runs s set child_run_id = v_id
     where s.run_id = v_parent and s.step_id = p_run ->> 'parent_step_id';
  end if;
  select count(*) into v_ready from public.step_runs where run_id = v_id and status = 'queued';
  v_released := orchestrate.release_held(v_id, v_cap);
  select jsonb_build_array(jsonb_build_object('type', 'run.queued', 'data',
           jsonb_build_object('workflow', p_run -> 'spec' ->> 'name', 'mode', coalesce(p_run ->> 'mode', 'auto'))
           || case when v_parent is not null then jsonb_build_object('parent', jsonb_build_object(
                'run_id', v_parent, 'step_id', p_run ->> 'parent_step_id')) else '{}'::jsonb end
           || case when p_run ->> 'rerun_of_run_id' is not null then jsonb_build_object('rerun_of', jsonb_build_object(
                'run_id', p_run ->> 'rerun_of_run_id', 'from', p_run ->> 'rerun_from')) else '{}'::jsonb end))
         || coalesce((select jsonb_agg(jsonb_build_object('type', 'step.reused', 'step_id', s.step_id, 'data',
                        jsonb_build_object('source_run_id', p_run ->> 'rerun_of_run_id', 'status', s.status,
                                           'edited', coalesce((e.value -> 'reused' ->> 'edited')::boolean, false)))
                        order by s.position)
                      from public.step_runs s
                      join jsonb_array_elements(p_steps) as e on e.value ->> 'id' = s.step_id
                      where s.run_id = v_id and s.step_id = any (v_reused_ids)), '[]')
         || coalesce((select jsonb_agg(jsonb_build_object('type', 'step.queued', 'step_id', s.step_id) order by s.position)
                      from public.step_runs s where s.run_id = v_id and s.status = 'queued'), '[]')
    into v_events;
  update public.runs set in_flight = cardinality(v_released), held = v_ready - cardinality(v_released),
                         last_seq = jsonb_array_length(v_events)
   where id = v_id returning last_seq into v_last;
  perform orchestrate.log_events(v_id, p_owner, v_last, v_events);
  return jsonb_build_object('run', orchestrate.run_json(v_id), 'queued', to_jsonb(v_released));
end
$$;

-- The sweeper's questions (PostgresStore.ended_children): a waiting step whose child
-- run has ended, and a child run still going whose parent has ended.
create index if not exists step_runs_waiting_child_idx on public.step_runs (child_run_id)
  where status = 'waiting' and child_run_id is not null;
create index if not exists runs_active_child_idx on public.runs (parent_run_id)
  where parent_run_id is not null and status in ('queued', 'running', 'paused');
