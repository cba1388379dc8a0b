-- Demo data for local development: `supabase db reset` loads it after the migrations,
-- and it also applies to the embedded PostgreSQL. Re-running it changes nothing.
--
-- The demo user has no password: mint a development token for its id
-- (00000000-0000-4000-8000-00000000de00) or set a password in Supabase Studio.
-- Text columns Supabase Auth reads as strings are '' rather than NULL on purpose.

insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  confirmation_token, recovery_token, email_change_token_new, email_change,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at
) values (
  '00000000-0000-0000-0000-000000000000',
  '00000000-0000-4000-8000-00000000de00',
  'authenticated', 'authenticated', 'demo@orchestrate.local', '', now(),
  '', '', '', '',
  '{"provider": "email", "providers": ["email"]}', '{"name": "Demo"}', now(), now()
) on conflict (id) do nothing;

insert into public.workflows (id, owner_id, name, description, source, spec)
values (
  '00000000-0000-4000-8000-00000000de01',
  '00000000-0000-4000-8000-00000000de00',
  'Hello',
  'A two-step demo, an idea, then a slogan for it',
  $yaml$name: Hello
description: A two-step demo, an idea, then a slogan for it
inputs:
  product: {type: string, description: What we launch, default: a reusable coffee cup}
steps:
  - id: idea
    prompt: "Describe {{ inputs.product }} in one sentence."
  - id: slogan
    prompt: "Write a short slogan for: {{ steps.idea.output }}"
$yaml$,
  '{"name": "Hello", "description": "A two-step demo, an idea, then a slogan for it", "inputs": {"product": {"type": "string", "description": "What we launch", "default": "a reusable coffee cup"}}, "steps": [{"id": "idea", "prompt": "Describe {{ inputs.product }} in one sentence."}, {"id": "slogan", "prompt": "Write a short slogan for: {{ steps.idea.output }}"}]}'
) on conflict (id) do nothing;
