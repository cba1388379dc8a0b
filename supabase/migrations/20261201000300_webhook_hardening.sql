-- Webhook hardening: redeliveries, a fair due query, and secrets that can sign.

-- A redelivery is a new row that repeats the `webhook-id` of the delivery it repeats,
-- so receivers can deduplicate. NULL: the delivery's own id is its `webhook-id`.
alter table public.webhook_deliveries add column if not exists message_id uuid;

-- The sweeper takes due deliveries in turns across owners (each owner's oldest first).
create index if not exists webhook_deliveries_owner_due_idx
  on public.webhook_deliveries (owner_id, next_attempt_at)
  where status in ('pending', 'delivering');

-- Owners may write their secret through the Data API (RLS): it must stay a key that
-- signs, `whsec_` + canonical base64 of 24 to 64 bytes (Standard Webhooks). NOT VALID:
-- rows written before this are left alone (the sender reports them as a failed attempt
-- until the owner rotates); every new or changed row is checked.
alter table public.webhook_secrets drop constraint if exists webhook_secrets_secret_check;
alter table public.webhook_secrets add constraint webhook_secrets_secret_check check (
  case when secret ~ '^whsec_([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'
       then octet_length(decode(substr(secret, 7), 'base64')) between 24 and 64
       else false end
) not valid;

-- Redeliver a finished run's webhook: the caller names only the run; everything else
-- (owner, URL, event, payload, webhook-id) comes from the database. Fails closed: no
-- signed-in user, no delivery. Another user's run matches no row (and is not locked).
create or replace function orchestrate.redeliver_webhook(p_run uuid)
returns jsonb
  language plpgsql security definer set search_path to ''
as $$
declare
  v_owner uuid := auth.uid();
  v_run record;
  v_last record;
  v_id uuid;
begin
  if v_owner is null or auth.role() is distinct from 'authenticated' then
    raise exception 'redelivering a webhook needs a signed-in user' using errcode = 'insufficient_privilege';
  end if;
  -- The row lock serialises two redeliveries of one run (one may be under way at a time).
  select r.status, r.webhook_url into v_run
  from public.runs r where r.id = p_run and r.owner_id = v_owner for no key update;
  if not found then
    return jsonb_build_object('status', 'not-found');
  end if;
  if v_run.status not in ('succeeded', 'failed', 'cancelled') then
    return jsonb_build_object('status', 'not-finished');
  end if;
  if v_run.webhook_url is null then
    return jsonb_build_object('status', 'no-webhook');
  end if;
  if exists (select 1 from public.webhook_deliveries d
             where d.run_id = p_run and d.owner_id = v_owner and d.message_id is not null
               and d.status in ('pending', 'delivering')) then
    return jsonb_build_object('status', 'in-progress');
  end if;
  -- The latest delivery carries the run's final event (a retried run finishes again).
  select d.id, d.message_id, d.event_type, d.payload into v_last
  from public.webhook_deliveries d where d.run_id = p_run and d.owner_id = v_owner
  order by d.created_at desc, d.id desc limit 1;
  if not found then
    return jsonb_build_object('status', 'no-delivery');
  end if;
  insert into public.webhook_deliveries (owner_id, run_id, event_type, url, payload, message_id)
  values (v_owner, p_run, v_last.event_type, v_run.webhook_url, v_last.payload, coalesce(v_last.message_id, v_last.id))
  returning id into v_id;
  return jsonb_build_object('status', 'created', 'id', v_id);
end
$$;

revoke all on function orchestrate.redeliver_webhook(uuid) from public, anon;
grant execute on function orchestrate.redeliver_webhook(uuid) to authenticated;
