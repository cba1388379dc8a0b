"""The deploy check, offline: `osls package` turns serverless.yml into CloudFormation
without AWS credentials or network, cfn-lint passes on the template, and the template
holds what the run protocol relies on (partial batch failures, visibility timeouts,
dead-letter queues, the sweeper's schedule, one least-privilege role per function).

osls (the maintained open-source Serverless Framework v3 line) is installed once with npm
into .cache/deploy/ (in the background from the moment this module is collected); later
runs reuse it. Skipped only where node or npm is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "deploy"
OSLS_VERSION = "4.3.1"  # the Makefile's OSLS_VERSION too
STAGE, REGION = "ci", "us-east-1"
# An address where nothing listens: any AWS call osls tried would fail at once.
NOWHERE = "http://127.0.0.1:9"
SQS_DEFAULT_RETENTION = 4 * 24 * 3600

Template = dict[str, Any]


def _install() -> None:
    """The pinned osls CLI into the project's cache, unless it is there."""
    CACHE.mkdir(parents=True, exist_ok=True)
    manifest = CACHE / "node_modules" / "osls" / "package.json"
    with (CACHE / ".lock").open("w") as lock:  # concurrent test runs share the cache
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest.is_file() or json.loads(manifest.read_text())["version"] != OSLS_VERSION:
            _run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                 "--prefix", str(CACHE), f"osls@{OSLS_VERSION}"],
                timeout=240,
            )


def _install_quietly() -> None:
    try:
        _install()
    except BaseException:  # noqa: BLE001 - _osls installs again in the test and reports it
        pass


# A fresh clone downloads osls: start when this module is collected, so the download
# overlaps the tests that run before this module's instead of adding to the suite's time.
_NPM = shutil.which("node") is not None and shutil.which("npm") is not None
_BACKGROUND = threading.Thread(target=_install_quietly, name="osls-install", daemon=True)
if _NPM:
    _BACKGROUND.start()


def _osls() -> Path:
    """The pinned osls CLI, installed into the project's cache on first use."""
    if not _NPM:
        pytest.skip("node and npm are needed to package serverless.yml with osls")
    _BACKGROUND.join()
    _install()  # done already, unless the background install failed: then it reports why
    return CACHE / "node_modules" / ".bin" / "osls"


def _run(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args[:3])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`osls package` of the real service directory, its output kept out of the tree."""
    osls = _osls()
    out = tmp_path_factory.mktemp("serverless")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLS_", "SERVERLESS_"))}
    env.update(
        HOME=str(CACHE / "home"),  # osls keeps its schema cache under ~/.serverless
        AWS_ACCESS_KEY_ID="test",  # never real credentials, in case anything looked
        AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_ENDPOINT_URL=NOWHERE,
        HTTPS_PROXY=NOWHERE,
        HTTP_PROXY=NOWHERE,
        NO_PROXY="",
    )
    _run([str(osls), "package", "--stage", STAGE, "--region", REGION, "--package", str(out)], env=env, timeout=120)
    return out


@pytest.fixture(scope="module")
def template(packaged: Path) -> Template:
    return json.loads((packaged / "cloudformation-template-update-stack.json").read_text())


def _resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _ref(value: Any) -> str:
    """The logical id behind {"Ref": X} or {"Fn::GetAtt": [X, ...]}."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"expected a Ref or GetAtt, got {value!r}")


def _function_id(template: Template, name: str) -> str:
    """Logical id of the function deployed as orchestrate-<stage>-<name>."""
    for logical_id, fn in _resources(template, "AWS::Lambda::Function").items():
        if fn["Properties"]["FunctionName"] == f"orchestrate-{STAGE}-{name}":
            return logical_id
    raise AssertionError(f"no function {name}")


def _statements(template: Template, role_id: str) -> Iterator[dict[str, Any]]:
    """Every statement granted to a role: inline policies and the template's managed ones."""
    role = template["Resources"][role_id]["Properties"]
    for policy in role.get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]
    for arn in role.get("ManagedPolicyArns", []):
        managed = template["Resources"][_ref(arn)]  # an AWS-managed policy would not be a Ref
        assert managed["Type"] == "AWS::IAM::ManagedPolicy"
        yield from managed["Properties"]["PolicyDocument"]["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target(resource: Any) -> str:
    """A logical id for Ref/GetAtt, the pattern of an Fn::Sub, or a literal ARN."""
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    return resource if isinstance(resource, str) else _ref(resource)


def _grants(template: Template, role_id: str) -> dict[str, set[str]]:
    """action -> what the role may do it to."""
    grants: dict[str, set[str]] = {}
    for st in _statements(template, role_id):
        assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st
        for action in _as_list(st["Action"]):
            grants.setdefault(action, set()).update(_target(r) for r in _as_list(st["Resource"]))
    return grants


def test_cfn_lint_passes(packaged: Path) -> None:
    from cfnlint.api import ManualArgs, lint_file

    # W3005 (a DependsOn also implied by a GetAtt) is how osls writes every function
    # with its own role and the HTTP API stage; it is redundant, not wrong.
    matches = lint_file(
        packaged / "cloudformation-template-update-stack.json",
        ManualArgs(regions=[REGION], ignore_checks=["W3005"]),
    )
    assert not matches, "\n".join(str(m) for m in matches)


def test_package_holds_the_functions_and_the_library(template: Template, packaged: Path) -> None:
    names = zipfile.ZipFile(packaged / "orchestrate.zip").namelist()
    assert all(n.startswith(("functions/", "shared/orchestrate/", ".build/deps/")) for n in names), names
    assert not [n for n in names if "__pycache__" in n and not n.startswith(".build/deps/")]
    assert "shared/orchestrate/__init__.py" in names
    # The API serves the template gallery (examples/, linked into the package) and the Studio's build when there is one.
    assert "shared/orchestrate/examples/launch_kit.yaml" in names
    if (ROOT / "shared" / "orchestrate" / "studio_dist" / "index.html").is_file():
        assert "shared/orchestrate/studio_dist/index.html" in names
    for fn in _resources(template, "AWS::Lambda::Function").values():
        props = fn["Properties"]
        module = props["Handler"].rsplit(".", 1)[0]
        assert f"{module}.py" in names, f"{props['FunctionName']}: {module}.py is not in the package"
        # The package keeps the repository's layout, so the library is found under shared/.
        assert props["Environment"]["Variables"]["PYTHONPATH"].split(":")[0] == "/var/task/shared"


def test_functions_runtime_handlers_and_settings(template: Template) -> None:
    expected = {
        "api": "functions/api.handler",
        "stepRunner": "functions/step_runner.handler",
        "webhookDelivery": "functions/webhook_delivery.handler",
        "sweeper": "functions/sweeper.handler",
    }
    for name, handler in expected.items():
        props = template["Resources"][_function_id(template, name)]["Properties"]
        assert props["Handler"] == handler
        assert props["Runtime"] in {"python3.12", "python3.13"}
        env = props["Environment"]["Variables"]
        assert env["ORCHESTRATE_SSM_PREFIX"] == f"/orchestrate/{STAGE}/"
        assert _ref(env["ORCHESTRATE_STEP_QUEUE_URL"]) == "StepQueue"
        assert _ref(env["ORCHESTRATE_WEBHOOK_QUEUE_URL"]) == "WebhookQueue"
    assert template["Resources"][_function_id(template, "stepRunner")]["Properties"]["Timeout"] == 900
    # Steps chain through the step runner's own queue: loop detection must not cut a run.
    assert template["Resources"][_function_id(template, "stepRunner")]["Properties"].get("RecursiveLoop") == "Allow"
    routes = {r["Properties"]["RouteKey"] for r in _resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert routes == {"ANY /", "ANY /{proxy+}"}
    for log_group in _resources(template, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] > 0


def test_queue_consumers_report_partial_batch_failures(template: Template) -> None:
    mappings = _resources(template, "AWS::Lambda::EventSourceMapping").values()
    consumers = {_ref(m["Properties"]["EventSourceArn"]): _ref(m["Properties"]["FunctionName"]) for m in mappings}
    assert consumers == {
        "StepQueue": _function_id(template, "stepRunner"),
        "WebhookQueue": _function_id(template, "webhookDelivery"),
    }
    for m in mappings:
        # Without it a successful return deletes every message of the batch.
        assert m["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
        assert 1 <= m["Properties"]["BatchSize"] <= 10
        assert "MaximumBatchingWindowInSeconds" in m["Properties"]


def test_visibility_timeout_is_at_least_six_times_the_consumer_timeout(template: Template) -> None:
    for m in _resources(template, "AWS::Lambda::EventSourceMapping").values():
        queue = template["Resources"][_ref(m["Properties"]["EventSourceArn"])]["Properties"]
        function = template["Resources"][_ref(m["Properties"]["FunctionName"])]["Properties"]
        needed = 6 * function["Timeout"] + m["Properties"]["MaximumBatchingWindowInSeconds"]
        assert queue["VisibilityTimeout"] >= needed, (queue["QueueName"], queue["VisibilityTimeout"], needed)


def test_each_queue_redrives_to_a_dead_letter_queue(template: Template) -> None:
    queues = _resources(template, "AWS::SQS::Queue")
    for m in _resources(template, "AWS::Lambda::EventSourceMapping").values():
        source = queues[_ref(m["Properties"]["EventSourceArn"])]["Properties"]
        redrive = source["RedrivePolicy"]
        assert 3 <= redrive["maxReceiveCount"] <= 10
        dlq = queues[_ref(redrive["deadLetterTargetArn"])]["Properties"]
        assert "RedrivePolicy" not in dlq
        # A message keeps its first enqueue time in the DLQ: it must outlive the source's retention.
        retention = [q.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION) for q in (dlq, source)]
        assert retention[0] >= retention[1], retention


def test_sweeper_runs_every_minute(template: Template) -> None:
    sweeper = _function_id(template, "sweeper")
    schedules = [
        rule["Properties"]
        for rule in _resources(template, "AWS::Events::Rule").values()
        if any(_ref(t["Arn"]) == sweeper for t in rule["Properties"]["Targets"])
    ]
    assert [(s["ScheduleExpression"], s["State"]) for s in schedules] == [("rate(1 minute)", "ENABLED")]
    permissions = _resources(template, "AWS::Lambda::Permission").values()
    assert any(_ref(p["Properties"]["FunctionName"]) == sweeper and p["Properties"]["Principal"] == "events.amazonaws.com"
               for p in permissions)


def test_each_function_has_its_own_least_privilege_role(template: Template) -> None:
    def arn(service: str, resource: str) -> str:
        return f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"

    params = arn("ssm", f"parameter/orchestrate/{STAGE}")
    read_settings = {
        **{a: {params, f"{params}/*"} for a in ("ssm:GetParametersByPath", "ssm:GetParameters", "ssm:GetParameter")},
        "kms:Decrypt": {arn("kms", "key/*")},
    }

    def send(*queues: str) -> dict[str, set[str]]:
        return {"sqs:SendMessage": set(queues)}

    def consume(queue: str) -> dict[str, set[str]]:
        return {a: {queue} for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")}

    queues = {
        "api": send("StepQueue"),
        "stepRunner": send("StepQueue", "WebhookQueue") | consume("StepQueue"),
        "webhookDelivery": consume("WebhookQueue"),
        "sweeper": send("StepQueue", "WebhookQueue"),
    }
    roles = set()
    for name, queue_grants in queues.items():
        function_id = _function_id(template, name)
        role_id = _ref(template["Resources"][function_id]["Properties"]["Role"])
        roles.add(role_id)
        log_group = f"{function_id.removesuffix('LambdaFunction')}LogGroup"
        logs = {a: {log_group} for a in ("logs:CreateLogStream", "logs:PutLogEvents")}
        assert _grants(template, role_id) == queue_grants | read_settings | logs, name
        # SecureString values are decrypted only through SSM, for this stage's parameters.
        (kms,) = [s for s in _statements(template, role_id) if s["Action"] == "kms:Decrypt"]
        assert kms["Condition"]["StringEquals"] == {"kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}}
        assert kms["Condition"]["StringLike"] == {"kms:EncryptionContext:PARAMETER_ARN": {"Fn::Sub": f"{params}/*"}}
    assert len(roles) == 4
    assert "IamRoleLambdaExecution" not in template["Resources"]  # no shared default role


def test_outputs_name_the_api_and_the_queues(template: Template) -> None:
    outputs = template["Outputs"]
    assert _ref(outputs["HttpApiUrl"]["Value"]["Fn::Join"][1][1]) == "HttpApi"
    assert _ref(outputs["StepQueueUrl"]["Value"]) == "StepQueue"
    assert _ref(outputs["WebhookQueueUrl"]["Value"]) == "WebhookQueue"
