"""The `orchestrate` command."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from ..errors import InputError, OrchestrateError, SpecError
from ..settings import Settings

if TYPE_CHECKING:
    from ..engine.library import FileLibrary
    from ..spec import Plan

app = typer.Typer(
    name="orchestrate",
    help="Run multi-step LLM workflows written in YAML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED = 1  # the run failed
EXIT_INVALID = 2  # bad file, inputs or configuration


def _die(message: str, code: int = EXIT_INVALID) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@contextmanager
def guard() -> Iterator[None]:
    """Turn our errors into a clear message and an exit code; never a traceback."""
    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            err.print(f"[red]{escape(problem.format(exc.file))}[/]", highlight=False)
        n = len(exc.problems)
        _die(f"{exc.file or 'workflow'} is invalid ({n} problem{'s' if n != 1 else ''})")
    except InputError as exc:
        for message in exc.problems:
            err.print(f"[red]{escape(message)}[/]", highlight=False)
        _die("invalid inputs")
    except OrchestrateError as exc:
        _die(exc.message)
    except KeyboardInterrupt:
        _die("interrupted", 130)
    except Exception as exc:
        if type(exc).__module__.startswith("psycopg"):  # a database error we did not foresee
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _die(f"database error: {first}")
        raise


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Workflow files to check.")]) -> None:
    """Check workflow files without running them; report every problem with its line."""
    from ..spec import load_workflow

    bad = 0
    for file in files:
        try:
            plan = load_workflow(file)
        except SpecError as exc:
            bad += 1
            for problem in exc.problems:
                err.print(f"[red]{escape(problem.format(exc.file))}[/]", highlight=False)
            continue
        kind = "conversation" if plan.conversation else "graph"
        out.print(f"[green]✓[/] {escape(str(file))}: {escape(plan.workflow.name)} ({len(plan.steps)} steps, {kind})", highlight=False)
    if bad:
        _die(f"{bad} of {len(files)} file{'s' if len(files) != 1 else ''} invalid")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The workflow file.")],
    input: Annotated[list[str], typer.Option("--input", "-i", help="An input as name=value (repeatable).")] = [],  # noqa: B006
    inputs_file: Annotated[Path | None, typer.Option("--inputs", help="A JSON file of inputs.")] = None,
    mock: Annotated[bool, typer.Option("--mock", help="Use the built-in mock model (no API key needed).")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the result as JSON to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    approve: Annotated[list[str], typer.Option("--approve", help="Approve this approval step when it waits (repeatable).")] = [],  # noqa: B006
    reject: Annotated[list[str], typer.Option("--reject", help="Reject this approval step when it waits (repeatable).")] = [],  # noqa: B006
    reason: Annotated[str, typer.Option("--reason", help="Why, for --reject.")] = "",
    field: Annotated[list[str], typer.Option("--field", help="An approval's field as STEP.name=value (repeatable).")] = [],  # noqa: B006
    rerun: Annotated[Path | None, typer.Option("--rerun", help="Rerun this earlier result (a --output file) instead of starting afresh.")] = None,
    from_step: Annotated[str | None, typer.Option("--from", help="With --rerun: the step to rerun from; the steps before it reuse their answers.")] = None,
    output_of: Annotated[list[str], typer.Option("--output-of", help="With --rerun: edit an earlier step's answer, STEP=VALUE or STEP=@file.")] = [],  # noqa: B006
    workflows: Annotated[list[Path], typer.Option("--workflows", help="A folder of workflow files `workflow` steps may run (besides the file's own folder).")] = [],  # noqa: B006
) -> None:
    """Run a workflow here, with live progress; exit 1 if the run fails. An approval step
    is answered by --approve/--reject, else asked on a terminal, else (with --mock)
    approved with its default or mock values."""
    from ..engine.local import rerun_local, run_local
    from ..llm import make_provider
    from .answers import local_answers
    from ..spec import load_workflow, parse_pairs, resolve_inputs
    from .progress import Progress, ProgressView
    from ..engine.library import FileLibrary
    from .rerun import parse_outputs, read_result

    with guard():
        if (rerun is None) != (from_step is None) or (output_of and rerun is None):
            raise InputError(["--rerun RESULT and --from STEP go together (and --output-of needs them)"])
        settings = Settings.from_env()
        plan = load_workflow(file)
        library = FileLibrary([file.parent, *workflows])
        asyncio.run(_check_children(plan, library, str(file)))
        given: dict[str, Any] = _read_inputs_file(inputs_file) if inputs_file else {}
        given.update(parse_pairs(plan.workflow, input))
        source = read_result(rerun) if rerun is not None else None
        if source is None:
            values = resolve_inputs(plan.workflow, _ask_missing(plan.workflow, given))
        outputs = parse_outputs(output_of)
        answers = local_answers(plan, approve, reject, reason, field, mock=mock or settings.use_mock, console=err)
        provider = make_provider(settings, mock=mock)
        view = ProgressView(f"{plan.workflow.name}" + (" (mock model)" if mock or settings.use_mock else ""), plan.order)
        started = time.monotonic()
        with Progress(err, view, quiet=False) as progress:
            if source is not None and from_step is not None:
                coro = rerun_local(
                    source, from_step, provider, plan=plan, inputs=given, outputs=outputs, on_event=progress,
                    default_model=settings.default_model, library=library, answer=answers,
                )
            else:
                coro = run_local(
                    plan, values, provider, on_event=progress, default_model=settings.default_model,
                    library=library, max_workflow_depth=settings.max_workflow_depth, answer=answers,
                )
            result = asyncio.run(coro)
        elapsed = time.monotonic() - started
    data = result.to_dict()
    if output is not None:
        try:
            output.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as exc:
            _die(f"cannot write {output}: {exc.strerror}")
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_result(result.to_dict())
    tokens = data["usage"]["total_tokens"]
    colour = "green" if data["status"] == "succeeded" else "red"
    err.print(
        f"[bold {colour}]{data['status']}[/] in {elapsed:.2f}s · {len(plan.steps)} steps · {tokens} tokens"
        + (f" · result written to {escape(str(output))}" if output else ""),
        highlight=False,
    )
    if data["status"] != "succeeded":
        if data["error"]:
            err.print(f"[red]{escape(data['error'].get('step_id') or 'run')}: {escape(data['error']['message'])}[/]", highlight=False)
        raise typer.Exit(EXIT_FAILED)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the workflow language (for editor completion)."""
    from ..spec import json_schema

    print(json.dumps(json_schema(), indent=2))


async def _check_children(plan: Plan, library: FileLibrary, file: str) -> None:
    """Refuse, before anything runs, a `workflow` step whose workflow is not there."""
    from ..errors import Problem

    problems = []
    for sp in plan.steps.values():
        call = sp.step.workflow
        if call is None:
            continue
        if call.id is not None:
            problems.append(Problem(f"steps[{sp.index}].workflow.id", "an id names a saved workflow of a service (`orchestrate submit`); locally, use `name`"))
        elif await library.find(None, name=call.name) is None:
            where = ", ".join(str(f) for f in library.folders)
            problems.append(Problem(f"steps[{sp.index}].workflow.name", f"no workflow named '{call.name}' in {where} (add a folder with --workflows)"))
    if problems:
        raise SpecError(problems, file)


def _read_inputs_file(path: Path) -> dict[str, Any]:
    from .. import jsondata

    try:
        data = jsondata.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError([f"--inputs {path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([f"--inputs {path}: cannot read: {exc}"]) from None
    except json.JSONDecodeError as exc:
        raise InputError([f"--inputs {path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"]) from None
    except jsondata.DataError as exc:
        raise InputError([f"--inputs {path}: {exc}"]) from None
    if not isinstance(data, dict):
        raise InputError([f"--inputs {path}: must hold a JSON object of name: value"])
    return data


def _ask_missing(workflow: Any, given: dict[str, Any]) -> dict[str, Any]:
    """On a terminal, ask for required inputs that were not given (as the prototype did)."""
    if not sys.stdin.isatty():
        return given
    from rich.prompt import Prompt

    from ..spec.inputs import coerce

    for name, spec in workflow.inputs.items():
        if name in given or not spec.required:
            continue
        label = f"{name}" + (f" ({spec.description})" if spec.description else "")
        while True:
            raw = Prompt.ask(label, console=err)
            try:
                given[name] = coerce(spec.type, raw)
                break
            except ValueError as exc:
                err.print(f"[red]{escape(str(exc))}[/]")
    return given


def _print_result(data: dict[str, Any]) -> None:
    for step in data["steps"]:
        if step["status"] != "succeeded":
            continue
        body = json.dumps(step["outputs"], indent=2, ensure_ascii=False) if step["outputs"] is not None else step["output"]
        out.print(Panel(escape(body or ""), title=escape(step["id"]), title_align="left", border_style="dim"))


def _mount() -> None:
    """The commands that live in their own modules (each imports its needs lazily)."""
    from .db import db_app
    from .export import export
    from .service import register
    from .worker import worker

    app.add_typer(db_app, name="db")
    app.command()(worker)
    app.command()(export)
    register(app)  # serve, token, submit, watch


_mount()
