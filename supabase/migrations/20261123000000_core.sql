-- Orchestrate core schema: workflows, runs, steps, the event log, webhooks.
--
-- Applies as-is to a Supabase project (`supabase db push`) and to a plain PostgreSQL
-- prepared by shared/orchestrate/db/bootstrap.sql. It relies on what Supabase provides
-- (roles anon/authenticated/service_role, auth.users, auth.uid(), the publication
-- supabase_realtime) and never creates those.
--
-- Ownership: every row carries owner_id. Child rows reference their run through
-- (run_id, owner_id), so a child always belongs to its run's owner, whoever writes it:
-- one user can never attach a step, event or delivery to another user's run.

-- Shared trigger function: keep updated_at honest whoever writes the row.
create or replace function public.set_updated_at() returns trigger
  language plpgsql set search_path to ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- Workflows: the YAML as written and its normalized spec.
create table public.workflows (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  name text not null,
  description text,
  source text,
  spec jsonb not null,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint workflows_id_owner_key unique (id, owner_id)
);

create index workflows_owner_created_idx on public.workflows (owner_id, created_at desc, id);

-- Runs: a snapshot of the spec they run, so editing a workflow never changes a run.
create table public.runs (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  workflow_id uuid,
  spec jsonb not null,
  inputs jsonb not null default '{}'::jsonb,
  status text not null default 'queued'
    check (status in ('queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled')),
  mode text not null default 'auto' check (mode in ('auto', 'step')),
  outputs jsonb,
  error jsonb,  -- {"type", "message", "step_id"}
  usage jsonb,
  webhook_url text,
  idempotency_key text,
  request_hash text,  -- fingerprint of the request an idempotency key was first used with
  last_seq bigint not null default 0,  -- last run_events.seq handed out (see orchestrate.append_events)
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint runs_id_owner_key unique (id, owner_id),
  -- NULL keys never conflict, so this only binds runs that carry a key.
  constraint runs_owner_idempotency_key unique (owner_id, idempotency_key),
  -- Deleting a workflow keeps its runs (they hold their own spec) and forgets the link.
  constraint runs_workflow_fkey foreign key (workflow_id, owner_id)
    references public.workflows (id, owner_id) on delete set null (workflow_id)
);

create index runs_owner_created_idx on public.runs (owner_id, created_at desc, id);
create index runs_owner_workflow_idx on public.runs (owner_id, workflow_id);
create index runs_status_idx on public.runs (status);

-- Step runs: one row per step of a run; the row is also the claim (attempt + lease).
create table public.step_runs (
  run_id uuid not null,
  step_id text not null,
  owner_id uuid not null references auth.users (id) on delete cascade,
  position integer not null default 0,  -- order of the step in the spec
  status text not null default 'pending'
    check (status in ('pending', 'queued', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
  attempt integer not null default 0,
  prompt text,
  output text,
  outputs jsonb,
  error jsonb,
  model text,
  usage jsonb,
  latency_ms integer,
  lease_until timestamptz,
  queued_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  not_before timestamptz,  -- a retry must not start before this
  updated_at timestamptz not null default now(),
  primary key (run_id, step_id),
  constraint step_runs_run_fkey foreign key (run_id, owner_id)
    references public.runs (id, owner_id) on delete cascade
);

-- The sweeper's two questions: what was queued long ago, whose lease has lapsed.
create index step_runs_queued_idx on public.step_runs (status, queued_at) where status = 'queued';
create index step_runs_lease_idx on public.step_runs (lease_until) where status = 'running';

-- Run events: the append-only progress log; seq is gapless per run.
create table public.run_events (
  run_id uuid not null,
  seq bigint not null,
  owner_id uuid not null references auth.users (id) on delete cascade,
  type text not null,
  step_id text,
  data jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  primary key (run_id, seq),
  constraint run_events_run_fkey foreign key (run_id, owner_id)
    references public.runs (id, owner_id) on delete cascade
);

-- Webhook deliveries: one row per notification, retried until it succeeds or gives up.
create table public.webhook_deliveries (
  id uuid primary key default gen_random_uuid(),  -- also the `webhook-id` header
  owner_id uuid not null references auth.users (id) on delete cascade,
  run_id uuid not null,
  event_type text not null,
  payload jsonb not null,
  url text not null,
  status text not null default 'pending'
    check (status in ('pending', 'delivering', 'succeeded', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz default now(),
  last_attempt_at timestamptz,
  last_status_code integer,
  last_error text,
  attempt_log jsonb not null default '[]'::jsonb,  -- one object per attempt, oldest first
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint webhook_deliveries_run_fkey foreign key (run_id, owner_id)
    references public.runs (id, owner_id) on delete cascade
);

create index webhook_deliveries_due_idx on public.webhook_deliveries (next_attempt_at)
  where status = 'pending';
create index webhook_deliveries_run_idx on public.webhook_deliveries (run_id, owner_id);

-- Each user's Standard Webhooks signing secret (whsec_...).
create table public.webhook_secrets (
  owner_id uuid primary key references auth.users (id) on delete cascade,
  secret text not null,
  created_at timestamptz not null default now(),
  rotated_at timestamptz
);

create trigger workflows_updated_at before update on public.workflows
  for each row execute function public.set_updated_at();
create trigger runs_updated_at before update on public.runs
  for each row execute function public.set_updated_at();
create trigger step_runs_updated_at before update on public.step_runs
  for each row execute function public.set_updated_at();
create trigger webhook_deliveries_updated_at before update on public.webhook_deliveries
  for each row execute function public.set_updated_at();

-- Privileges. Supabase no longer grants new public tables to the API roles, and older
-- projects grant everything to anon by default: state both explicitly.
revoke all on table public.workflows, public.runs, public.step_runs, public.run_events,
  public.webhook_deliveries, public.webhook_secrets from public, anon, authenticated;
-- A signed-in user manages their workflows and webhook secret, and reads their runs;
-- runs change only through the run protocol's functions (orchestrate schema), so a
-- user cannot, say, re-queue a step through the Data API. The service role does all.
grant select, insert, update, delete on table public.workflows, public.webhook_secrets
  to authenticated, service_role;
grant select on table public.runs, public.step_runs, public.run_events, public.webhook_deliveries
  to authenticated;
grant select, insert, update, delete on table public.runs, public.step_runs, public.run_events,
  public.webhook_deliveries to service_role;

revoke all on function public.set_updated_at() from public, anon;

-- Row Level Security: a signed-in user reaches only their own rows. anon has no policy
-- (and no grant); service_role has BYPASSRLS. `(select auth.uid())` is evaluated once
-- per statement instead of once per row.
alter table public.workflows enable row level security;
alter table public.runs enable row level security;
alter table public.step_runs enable row level security;
alter table public.run_events enable row level security;
alter table public.webhook_deliveries enable row level security;
alter table public.webhook_secrets enable row level security;

create policy workflows_select_own on public.workflows for select to authenticated
  using (owner_id = (select auth.uid()));
create policy workflows_insert_own on public.workflows for insert to authenticated
  with check (owner_id = (select auth.uid()));
create policy workflows_update_own on public.workflows for update to authenticated
  using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy workflows_delete_own on public.workflows for delete to authenticated
  using (owner_id = (select auth.uid()));

create policy runs_select_own on public.runs for select to authenticated
  using (owner_id = (select auth.uid()));

create policy step_runs_select_own on public.step_runs for select to authenticated
  using (owner_id = (select auth.uid()));

create policy run_events_select_own on public.run_events for select to authenticated
  using (owner_id = (select auth.uid()));

create policy webhook_deliveries_select_own on public.webhook_deliveries for select
  to authenticated using (owner_id = (select auth.uid()));

create policy webhook_secrets_select_own on public.webhook_secrets for select
  to authenticated using (owner_id = (select auth.uid()));
create policy webhook_secrets_insert_own on public.webhook_secrets for insert
  to authenticated with check (owner_id = (select auth.uid()));
create policy webhook_secrets_update_own on public.webhook_secrets for update
  to authenticated using (owner_id = (select auth.uid()))
  with check (owner_id = (select auth.uid()));
create policy webhook_secrets_delete_own on public.webhook_secrets for delete
  to authenticated using (owner_id = (select auth.uid()));

-- Realtime: clients subscribe to changes on these tables (RLS still applies).
-- `alter publication ... add table` fails if the table is already there: guard it.
do $$
declare
  t text;
begin
  foreach t in array array['runs', 'step_runs', 'run_events'] loop
    if not exists (
      select 1 from pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
    ) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end
$$;
