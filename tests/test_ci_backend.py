"""The CI backend: GitHub Actions workflows that are secure by construction.

Each compiled workflow (reference spec, every example, a spec full of hostile strings, at the
top of its repository or in a subfolder, the latter also one with a hostile name) must pass
actionlint, zizmor (pedantic) and GitHub's workflow schema with zero findings; the structure
tests pin down the security rules; the shell test runs every `run:` script with hostile values,
in the folder GitHub would run it in. Monorepos end to end: `test_ci_monorepo.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlc.compiler.backends import ci
from mlc.compiler.backends.ci._pins import ActionPins
from mlc.compiler.errors import ExitCode
from mlc.compiler.pipeline import compile_spec_file

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SHARED_DESIGN = REPO.parent / "shared" / "design"

# A string that does something if any shell or GitHub expression ever evaluates it.
HOSTILE = 'x"; touch PWNED; echo "$(touch PWNED)`touch PWNED`\'${{ toJSON(secrets) }}\nnext line $HOME'
# A folder of a monorepo named with everything a path filter, a shell or an expression reads.
HOSTILE_FOLDER = "!neg/*st?r+[ab]]\\back {x}/${{ toJSON(secrets) }} $(touch PWNED) `touch PWNED` \"q\" 'q'"
GUARDED = "${{ '${{' }}"  # how a literal `${{` is written where GitHub evaluates expressions


@dataclass(frozen=True)
class CompiledWorkflows:
    """The two workflows of one project, as text and as data, and where its spec sits."""

    name: str
    spec: Path
    text: dict[str, str]
    folder: str  # in its git repository
    pr: str  # the workflows' paths
    main: str

    def data(self, path: str) -> dict[str, Any]:
        return yaml.safe_load(self.text[path])

    @property
    def workflows(self) -> tuple[str, str]:
        return self.pr, self.main


def compile_workflows(spec: Path, name: str) -> CompiledWorkflows:
    compiled = compile_spec_file(spec)
    assert compiled.ok, [d.message for d in compiled.result.diagnostics]
    text = {a.path: a.content.decode() for a in compiled.artifacts if a.backend == "ci"}
    first = compiled.result.resolved[0]
    pr, main = ci.workflow_paths(first)
    assert sorted(text) == sorted([pr, main])
    return CompiledWorkflows(name, spec, text, first.repository_folder, pr, main)


def new_repository(top: Path) -> Path:
    top.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    return top


def copy_example(name: str, top: Path, folder: str = ".") -> Path:
    """An example copied to `folder` of a new git repository at `top`; its spec."""
    destination = new_repository(top) / folder
    shutil.copytree(EXAMPLES / name, destination, dirs_exist_ok=True)
    return destination / "mlproject.yaml"


def copy_churn_project(destination: Path, spec_text: str) -> Path:
    """A project folder with churn's files (the file checks of validation need them)."""
    destination.mkdir(parents=True, exist_ok=True)
    for item in ("requirements.lock", "src", "data"):
        source = EXAMPLES / "churn" / item
        if source.is_dir():
            shutil.copytree(source, destination / item)
        else:
            shutil.copy(source, destination / item)
    spec = destination / "mlproject.yaml"
    spec.write_text(spec_text, encoding="utf-8")
    return spec


def hostile_spec_text() -> str:
    """churn, with untrusted strings in every spec field that reaches a workflow."""
    text = (EXAMPLES / "churn" / "mlproject.yaml").read_text(encoding="utf-8")
    quoted = json.dumps(HOSTILE)  # a JSON string is a YAML double-quoted scalar
    text = text.replace(
        "  eval:\n    uri: data/eval.csv\n",
        f"  {quoted}:\n    uri: s3://acme-ml/churn/live.csv\n  eval:\n    uri: data/eval.csv\n",
    )
    text = text.replace("  model: churn-classifier\n", f"  model: churn-classifier\n  tracking_uri: {quoted}\n")
    path = json.dumps("deploy/${{ secrets.STOLEN }}/$(touch PWNED)")
    text = text.replace("secrets:\n", "secrets:\n  MLC_BOT_TOKEN: {k8s: unused, key: token, github: ACME_BOT_PAT}\n")
    return text.replace("  path: deploy\n", f"  path: {path}\n")


def full_model_check_spec_text() -> str:
    """churn, its pull requests' model check a full training on a GPU runner of its own."""
    text = (EXAMPLES / "churn" / "mlproject.yaml").read_text(encoding="utf-8")
    ci = "  pull_request: [validate, plan, data_tests, smoke_train, gate]\n"
    assert ci in text
    return text.replace(ci, ci + "  model_check: {training: full, runner: {self_hosted: [gpu, big]}}\n")


def project_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The projects compiled here: in a subfolder of a monorepo, or at the top of a repository
    or of a folder outside git (both the single-project layout)."""
    specs = {
        "churn": copy_example("churn", tmp_path_factory.mktemp("mono"), "models/churn"),
        "llm-chat": copy_example("llm-chat", tmp_path_factory.mktemp("single")),
    }
    reference = SHARED_DESIGN / "mlproject.reference.yaml"
    if reference.exists():
        folder = tmp_path_factory.mktemp("reference")
        specs["reference"] = copy_churn_project(folder, reference.read_text(encoding="utf-8"))
    specs["churn-full"] = copy_churn_project(tmp_path_factory.mktemp("full"), full_model_check_spec_text())
    specs["hostile"] = copy_churn_project(tmp_path_factory.mktemp("hostile"), hostile_spec_text())
    repository = new_repository(tmp_path_factory.mktemp("hostile-mono"))
    specs["hostile-folder"] = copy_churn_project(repository / HOSTILE_FOLDER, hostile_spec_text())
    return specs


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CompiledWorkflows]:
    return {name: compile_workflows(spec, name) for name, spec in project_specs(tmp_path_factory).items()}


PROJECTS = ["churn", "llm-chat", "reference", "hostile", "hostile-folder"]


@pytest.fixture(params=PROJECTS)
def project(request: pytest.FixtureRequest, projects: dict[str, CompiledWorkflows]) -> CompiledWorkflows:
    if request.param not in projects:
        pytest.skip(f"{SHARED_DESIGN} is absent: no reference spec to compile")
    return projects[request.param]


def test_reference_and_examples_are_all_compiled(projects: dict[str, CompiledWorkflows]) -> None:
    assert {"churn", "llm-chat", "hostile", "hostile-folder"} <= set(projects)
    assert projects["churn"].folder == "models/churn"
    assert projects["hostile-folder"].folder == HOSTILE_FOLDER
    assert projects["llm-chat"].folder == projects["hostile"].folder == "."


# --- the ecosystem's validators ------------------------------------------------------------


def validator(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return on_path


@pytest.fixture
def workflow_dir(project: CompiledWorkflows, tmp_path: Path) -> Path:
    """The project's workflows written where GitHub and the validators look for them."""
    for path, text in project.text.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return tmp_path / ".github" / "workflows"


def run_validator(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(arguments, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_actionlint_finds_nothing(workflow_dir: Path) -> None:
    files = sorted(str(p) for p in workflow_dir.glob("*.yaml"))
    result = run_validator([validator("actionlint"), "-no-color", *files], workflow_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_zizmor_pedantic_finds_nothing(workflow_dir: Path) -> None:
    arguments = [
        validator("zizmor"),
        "--offline",
        "--persona=pedantic",
        "--no-progress",
        str(workflow_dir),
    ]
    result = run_validator(arguments, workflow_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


def test_github_workflow_schema_accepts_both(workflow_dir: Path) -> None:
    files = sorted(str(p) for p in workflow_dir.glob("*.yaml"))
    arguments = [
        validator("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *files,
    ]
    result = run_validator(arguments, workflow_dir)
    assert result.returncode == 0, result.stdout + result.stderr


# --- security rules, by construction -------------------------------------------------------


def all_steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in workflow["jobs"].items() for step in job["steps"]]


def test_every_file_starts_with_the_generated_notice(project: CompiledWorkflows) -> None:
    for text in project.text.values():
        assert re.match(r"# Generated by mlc \S+ from mlproject.yaml \(content sha256:[0-9a-f]{16}\)", text)


def test_no_permissions_at_the_top_and_writes_are_explained(project: CompiledWorkflows) -> None:
    for path, text in project.text.items():
        workflow = project.data(path)
        assert workflow["permissions"] == {}
        for job in workflow["jobs"].values():
            assert set(job["permissions"].values()) <= {"read", "write"}
        for line in text.splitlines():
            if re.fullmatch(r"\s+[a-z-]+: write\b.*", line):
                assert re.search(r": write  # \w.+", line), f"write permission without a reason: {line}"


def test_only_safe_triggers(project: CompiledWorkflows) -> None:
    assert set(project.data(project.pr)["on"]) == {"pull_request"}
    assert set(project.data(project.main)["on"]) == {"push"}
    for text in project.text.values():
        assert "pull_request_target" not in text and "workflow_run" not in text


def test_concurrency_per_ref(project: CompiledWorkflows) -> None:
    for path in project.workflows:
        assert "${{ github.ref }}" in project.data(path)["concurrency"]["group"]


def test_every_action_is_pinned_to_a_recorded_sha_with_its_tag(project: CompiledWorkflows) -> None:
    pins = ci.action_pins()
    for path, text in project.text.items():
        uses_lines = [line.strip() for line in text.splitlines() if re.match(r"\s*(- )?uses: ", line)]
        assert uses_lines
        for line in uses_lines:
            match = re.fullmatch(r"(?:- )?uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40})  # (\S+)", line)
            assert match, f"{path}: not pinned with a tag comment: {line}"
            action, sha, tag = match.groups()
            assert action in pins, f"{action} is not in action-pins.json"
            assert (sha, tag) == (pins[action].sha, pins[action].tag)


def test_credentials_persist_only_in_jobs_that_push(project: CompiledWorkflows) -> None:
    for path in project.workflows:
        workflow = project.data(path)
        for job_id, step in all_steps(workflow):
            if not str(step.get("uses", "")).startswith("actions/checkout@"):
                continue
            pushes = workflow["jobs"][job_id]["permissions"].get("contents") == "write"
            assert step["with"]["persist-credentials"] is pushes, f"{path}:{job_id}"


def test_no_expression_in_any_run_script(project: CompiledWorkflows) -> None:
    for path in project.workflows:
        for job_id, step in all_steps(project.data(path)):
            assert "${{" not in step.get("run", ""), f"{path}:{job_id}: {step['run']}"
            assert "${{" not in step.get("with", {}).get("script", "")


# What an expression in a generated workflow may say; anything else is spec text gone wrong.
ALLOWED_EXPRESSION = re.compile(
    r"""\$\{\{\ (
        '\$\{\{'                                   # a literal `${{` from spec text, neutralised
      | secrets\.[A-Za-z_][A-Za-z0-9_]*
      | github\.(ref|token|repository|actor|event\.pull_request\.head\.sha|event\.pull_request\.number)
      | steps\.(meta|build)-(train|serve)\.outputs\.(tags|labels|digest)
      | !cancelled\(\)
    )\ \}\}""",
    re.VERBOSE,
)


def strings(data: object) -> list[str]:
    """Every string of a workflow's data, keys included (as GitHub reads them, unquoted)."""
    if isinstance(data, dict):
        return [text for key, value in data.items() for text in (*strings(key), *strings(value))]
    if isinstance(data, list):
        return [text for item in data for text in strings(item)]
    return [data] if isinstance(data, str) else []


def test_expressions_are_only_the_compilers_own(project: CompiledWorkflows) -> None:
    for path in project.workflows:
        for value in strings(project.data(path)):
            leftover = ALLOWED_EXPRESSION.sub("", value)
            assert "${{" not in leftover, f"{path}: {value}"


def test_secrets_are_only_those_the_spec_names_for_github(project: CompiledWorkflows) -> None:
    spec = yaml.safe_load(project.spec.read_text(encoding="utf-8"))
    named = {ref["github"] for ref in spec.get("secrets", {}).values() if "github" in ref}
    for text in project.text.values():
        used = set(re.findall(r"\$\{\{ secrets\.(\w+) \}\}", text))
        assert used <= named | {"GITHUB_TOKEN"}


def test_spec_strings_reach_scripts_only_through_env(
    projects: dict[str, CompiledWorkflows],
) -> None:
    workflow = projects["hostile"].data(projects["hostile"].pr)
    neutralised = HOSTILE.replace("${{", GUARDED)
    env_values = [value for _, step in all_steps(workflow) for value in step.get("env", {}).values()]
    assert neutralised in env_values
    for _, step in all_steps(workflow):
        assert "PWNED" not in step.get("run", "")


# --- the pull request workflow -------------------------------------------------------------


def test_pull_request_jobs_are_the_listed_ones_plus_the_bot(
    projects: dict[str, CompiledWorkflows],
) -> None:
    churn = projects["churn"].data(projects["churn"].pr)["jobs"]
    assert list(churn) == ["validate", "plan", "data_tests", "smoke_train", "gate", "bot"]
    assert churn["gate"]["needs"] == ["smoke_train"]
    assert churn["smoke_train"]["needs"] == ["data_tests"]
    # Without a ci section: validate and plan, no bot, no comment.
    chat = projects["llm-chat"].data(projects["llm-chat"].pr)["jobs"]
    assert list(chat) == ["validate", "plan"]
    assert "pull-requests" not in chat["plan"]["permissions"]


def test_only_the_bot_writes_contents_and_never_for_forks(
    projects: dict[str, CompiledWorkflows],
) -> None:
    jobs = projects["churn"].data(projects["churn"].pr)["jobs"]
    writers = [job_id for job_id, job in jobs.items() if job["permissions"].get("contents") == "write"]
    assert writers == ["bot"]
    assert jobs["bot"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    bot_run = [step["run"] for step in jobs["bot"]["steps"] if "run" in step]
    assert any("mlc bot || status=$?" in run for run in bot_run)


def test_plan_comment_is_updated_in_place_from_a_file(
    projects: dict[str, CompiledWorkflows],
) -> None:
    def comment_step(name: str) -> dict[str, Any]:
        jobs = projects[name].data(projects[name].pr)["jobs"]
        return next(step for step in jobs["bot"]["steps"] if "github-script" in step.get("uses", ""))

    top = comment_step("hostile")
    script = top["with"]["script"]
    assert top["env"]["MLC_COMMENT_MARKER"] == "<!-- mlc-plan -->"
    assert top["env"]["MLC_COMMENT_FILE"] == "mlc-plan-comment.md"
    assert "readFileSync(process.env.MLC_COMMENT_FILE" in script
    assert "updateComment" in script and "createComment" in script
    # Each project of a monorepo has its comment, found by its own first line; the file
    # `mlc bot` writes in the spec's folder is read from the top.
    folder = comment_step("churn")
    assert folder["env"]["MLC_COMMENT_MARKER"] == "<!-- mlc-plan:churn -->"
    assert folder["env"]["MLC_COMMENT_FILE"] == "models/churn/mlc-plan-comment.md"
    assert "firstLine(comment.body || '') === marker" in folder["with"]["script"]


def test_the_model_check_trains_as_the_spec_says(projects: dict[str, CompiledWorkflows]) -> None:
    """smoke (the default): a sample, the relative gates decide, on ci.runner. full: the spec's
    training on ci.model_check.runner, every gate deciding; the other jobs stay where they were."""

    def model_check(project: CompiledWorkflows) -> dict[str, Any]:
        jobs = project.data(project.pr)["jobs"]
        steps = {step["name"]: step for step in jobs["smoke_train"]["steps"] + jobs["gate"]["steps"]}
        return {
            "runs-on": {job: jobs[job]["runs-on"] for job in ("validate", "smoke_train", "gate")},
            "timeout": jobs["smoke_train"]["timeout-minutes"],
            "training": {
                step["env"]["MLC_TRAINING"] for step in steps.values() if "MLC_TRAINING" in step.get("env", {})
            },
            "absolute": steps["Gate the pull request's model against the base branch's"]["env"]["MLC_ABSOLUTE_GATES"],
        }

    assert model_check(projects["churn"]) == {
        "runs-on": {"validate": "ubuntu-24.04", "smoke_train": "ubuntu-24.04", "gate": "ubuntu-24.04"},
        "timeout": 30,
        "training": {"smoke"},
        "absolute": "advisory",
    }
    runner = ["self-hosted", "gpu", "big"]
    assert model_check(projects["churn-full"]) == {
        "runs-on": {"validate": "ubuntu-24.04", "smoke_train": runner, "gate": runner},
        "timeout": 2 * 120 + 30,  # two trainings of train.timeout (2h)
        "training": {"full"},
        "absolute": "enforce",
    }
    # The scripts pass --smoke only for a smoke training.
    flags = ci._pull_request.TRAINING_FLAGS
    for training, expected in (("smoke", "--smoke"), ("full", "")):
        done = subprocess.run(
            ["bash", "-c", flags + 'echo "${flags[@]}"'], env={"MLC_TRAINING": training}, capture_output=True, text=True
        )
        assert done.stdout.strip() == expected


def test_a_model_check_setting_without_the_model_check_is_refused(tmp_path: Path) -> None:
    spec = full_model_check_spec_text().replace(
        "  pull_request: [validate, plan, data_tests, smoke_train, gate]\n", "  pull_request: [validate, plan]\n"
    )
    compiled = compile_spec_file(copy_churn_project(tmp_path / "project", spec))
    assert not compiled.ok
    (message,) = [d.render() for d in compiled.result.diagnostics]
    assert "ci.model_check" in message and "does not list" in message and "smoke_train" in message
    assert re.search(r"mlproject\.yaml:\d+:\d+", message), message


def test_smoke_training_uses_the_tracking_server_only_with_its_secret(
    projects: dict[str, CompiledWorkflows],
) -> None:
    def tracking_uris(project: CompiledWorkflows) -> set[str]:
        steps = all_steps(project.data(project.pr))
        return {step["env"]["MLFLOW_TRACKING_URI"] for _, step in steps if "MLFLOW_TRACKING_URI" in step.get("env", {})}

    assert tracking_uris(projects["churn"]) == {"sqlite:///.mlc/mlflow.db"}  # no secret for CI
    assert "secrets." not in projects["churn"].text[projects["churn"].pr]

    spec = projects["churn"].spec.read_text(encoding="utf-8")
    with_secret = spec.replace(
        "  MLFLOW_TRACKING_TOKEN: {k8s: mlflow-token, key: token}",
        "  MLFLOW_TRACKING_TOKEN: {k8s: mlflow-token, key: token, github: MLFLOW_TRACKING_TOKEN}",
    ).replace(
        "  model: churn-classifier\n", "  model: churn-classifier\n  tracking_uri: https://mlflow.acme.example.com\n"
    )
    assert with_secret.count("github: MLFLOW_TRACKING_TOKEN") == 1 and "acme.example.com" in with_secret
    folder = projects["hostile"].spec.parent.parent / "with-secret"
    folder.mkdir(exist_ok=True)
    remote = compile_workflows(copy_churn_project(folder, with_secret), "with-secret")
    assert tracking_uris(remote) == {"https://mlflow.acme.example.com"}
    assert "secrets.MLFLOW_TRACKING_TOKEN" in remote.text[remote.pr]


@pytest.mark.parametrize(
    ("tracking", "runner", "valid"),
    [
        (None, None, False),  # the default, http://mlflow.mlflow.svc:5000
        ("http://mlflow.mlops.svc.cluster.local:5000", None, False),
        ("http://mlflow:5000", None, False),
        ("https://mlflow.acme.example.com", None, True),
        (None, "{self_hosted: [ml-cluster]}", True),  # runners inside the cluster resolve it
    ],
)
def test_a_hosted_runner_never_gets_a_cluster_internal_tracking_server(
    projects: dict[str, CompiledWorkflows], tmp_path: Path, tracking: str | None, runner: str | None, valid: bool
) -> None:
    spec = (
        projects["churn"]
        .spec.read_text(encoding="utf-8")
        .replace(
            "  MLFLOW_TRACKING_TOKEN: {k8s: mlflow-token, key: token}",
            "  MLFLOW_TRACKING_TOKEN: {k8s: mlflow-token, key: token, github: MLFLOW_TRACKING_TOKEN}",
        )
    )
    if tracking is not None:
        spec = spec.replace("  model: churn-classifier\n", f"  model: churn-classifier\n  tracking_uri: {tracking}\n")
    if runner is not None:
        spec = spec.replace(
            "  bot: {commit: true, comment: true}\n", f"  bot: {{commit: true, comment: true}}\n  runner: {runner}\n"
        )
    compiled = compile_spec_file(copy_churn_project(tmp_path / "p", spec), "mlproject.yaml")
    errors = [d.render() for d in compiled.result.diagnostics]
    if valid:
        assert compiled.ok, errors
        pull_request = yaml.safe_load(next(a.content for a in compiled.artifacts if a.path.endswith("-pr.yaml")))
        runs_on = {str(job["runs-on"]) for job in pull_request["jobs"].values()}
        assert runs_on == ({"['self-hosted', 'ml-cluster']"} if runner else {"ubuntu-24.04"})
    else:
        (error,) = errors
        assert "cluster-internal: GitHub's hosted runners cannot resolve it" in error
        assert error.startswith("mlproject.yaml:") and ("registry.tracking_uri" in error or "ci.pull_request" in error)


def test_data_tests_check_every_data_set(projects: dict[str, CompiledWorkflows]) -> None:
    jobs = projects["churn"].data(projects["churn"].pr)["jobs"]
    datasets = [
        step["env"]["MLC_DATASET"] for step in jobs["data_tests"]["steps"] if "MLC_DATASET" in step.get("env", {})
    ]
    assert datasets == ["train", "eval"]


def test_runtime_jobs_install_the_runtime_pinned_to_the_compiler(
    projects: dict[str, CompiledWorkflows],
) -> None:
    from mlc.compiler import __version__

    jobs = projects["churn"].data(projects["churn"].pr)["jobs"]
    for job_id, job in jobs.items():
        install = next(step for step in job["steps"] if step.get("name") == "Install mlc")
        runtime = job_id in {"data_tests", "smoke_train", "gate"}
        # The compiler's own wheel, in the spec's folder (churn has not vendored it: no sha256).
        wheel = f"file://$PWD/wheels/mlc-{__version__}-py3-none-any.whl"
        expected = f"mlc[runtime] @ {wheel}" if runtime else f"mlc @ {wheel}"
        assert install["env"]["MLC_REQUIREMENT"] == expected
        python = next(step for step in job["steps"] if "setup-python" in step.get("uses", ""))
        assert python["with"]["python-version"] == "3.11"


# --- the main workflow ---------------------------------------------------------------------


def test_main_builds_both_images_and_pins_their_digests(
    projects: dict[str, CompiledWorkflows],
) -> None:
    workflow = projects["churn"].data(projects["churn"].main)
    assert workflow["on"]["push"]["branches"] == ["main"]
    job = workflow["jobs"]["release"]
    assert job["permissions"] == {"contents": "write", "packages": "write"}
    builds = {step["id"]: step["with"] for step in job["steps"] if step.get("id", "").startswith("build-")}
    # `uses:` steps run at the top: the build context is the spec's folder.
    assert builds["build-train"]["file"] == "models/churn/deploy/docker/train.Dockerfile"
    assert builds["build-serve"]["cache-from"] == "type=registry,ref=ghcr.io/acme/churn-serve:buildcache"
    assert builds["build-train"]["context"] == "models/churn"
    top = projects["hostile"].data(projects["hostile"].main)["jobs"]["release"]["steps"]
    top_builds = {step["id"]: step["with"] for step in top if step.get("id", "").startswith("build-")}
    assert top_builds["build-train"]["context"] == "."
    apply = next(step for step in job["steps"] if "mlc apply" in step.get("run", ""))
    assert apply is job["steps"][-1]
    assert apply["env"]["MLC_TRAIN_DIGEST"] == "${{ steps.build-train.outputs.digest }}"
    assert apply["env"]["MLC_SERVE_IMAGE"] == "ghcr.io/acme/churn-serve"
    command = next(line.strip() for line in apply["run"].splitlines() if "mlc apply" in line)
    assert command.startswith('mlc apply --image "train=$MLC_TRAIN_IMAGE@$MLC_TRAIN_DIGEST"')
    assert command.endswith("--commit")
    assert 'git push origin "HEAD:$GITHUB_REF"' in apply["run"]


def test_main_without_images_only_applies(projects: dict[str, CompiledWorkflows]) -> None:
    job = projects["llm-chat"].data(projects["llm-chat"].main)["jobs"]["release"]
    assert job["permissions"] == {"contents": "write"}
    assert not any("docker/" in step.get("uses", "") for step in job["steps"])


# --- determinism and pins ------------------------------------------------------------------


def test_compiling_twice_gives_the_same_bytes(project: CompiledWorkflows) -> None:
    assert compile_workflows(project.spec, project.name).text == project.text


def test_pins_are_the_design_copy() -> None:
    shared = SHARED_DESIGN / "action-pins.json"
    if not shared.exists():
        pytest.skip(f"{shared} is absent")
    expected = ActionPins.model_validate(json.loads(shared.read_text(encoding="utf-8"))).pins()
    assert ci.action_pins() == expected


@pytest.mark.parametrize(
    "pin",
    [
        {"tag": "v1", "sha": "abc"},
        {"tag": "main", "sha": "0" * 40},
        {"tag": "v1", "sha": "0" * 40, "x": 1},
    ],
)
def test_pins_reject_what_is_not_a_release_pinned_to_a_commit(pin: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ActionPins.model_validate({"actions/checkout": pin})


# --- the run scripts, executed with hostile values -----------------------------------------

STUBBED_COMMANDS = ("mlc", "mlc-runtime", "python", "gh", "git")
# Each stub records its arguments, and the directory it ran in.
STUB = """#!/bin/sh
for argument in "$@"; do printf '%s\\0' "$argument"; done >> "$STUB_LOG.$(basename "$0")"
printf '%s\\0' "$(pwd -P)" >> "$STUB_LOG.cwd"
"""


def stub_commands(folder: Path) -> None:
    folder.mkdir()
    for command in STUBBED_COMMANDS:
        stub = folder / command
        stub.write_text(STUB, encoding="utf-8")
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR)


def recorded_arguments(log_prefix: Path, command: str) -> list[str]:
    log = Path(f"{log_prefix}.{command}")
    return log.read_text(encoding="utf-8").split("\0")[:-1] if log.exists() else []


def github_value(text: str) -> str:
    """A value as GitHub evaluates it, for values whose only expression is a guarded `${{`."""
    return text.replace(GUARDED, "${{")


def run_directory(workspace: Path, job: dict[str, Any]) -> Path:
    """Where GitHub runs a job's `run:` steps: the workspace, or its `working-directory`."""
    folder = job.get("defaults", {}).get("run", {}).get("working-directory")
    return workspace / github_value(folder) if folder is not None else workspace


def run_step(script: str, cwd: Path | None, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    """Run a `run:` script as GitHub runs `shell: bash` steps: `bash --noprofile --norc -eo pipefail {0}`."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("kind", ["pr", "main"])
@pytest.mark.parametrize("name", ["hostile", "hostile-folder"])
def test_run_scripts_execute_nothing_from_their_values(
    projects: dict[str, CompiledWorkflows], name: str, kind: str, tmp_path: Path
) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    project = projects[name]
    stubs = tmp_path / "bin"
    stub_commands(stubs)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    summary = tmp_path / 'step summary $(touch PWNED) "quoted"'
    workflow = project.data(project.pr if kind == "pr" else project.main)
    ran = whole = 0
    for job_id, step in all_steps(workflow):
        if "run" not in step:
            continue
        # In a monorepo, in the spec's folder (hostile-folder: a name full of syntax).
        cwd = run_directory(workspace, workflow["jobs"][job_id])
        cwd.mkdir(parents=True, exist_ok=True)
        assert cwd == workspace / project.folder
        log = tmp_path / f"log-{ran}"
        # Every value is hostile, also those GitHub fills in (secrets, digests, refs).
        env = {name: HOSTILE for name in step.get("env", {})}
        env |= {"GITHUB_REF": HOSTILE, "GITHUB_RUN_ID": HOSTILE, "GITHUB_HEAD_REF": HOSTILE}
        env |= {"PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "STUB_LOG": str(log)}
        env |= {"GITHUB_STEP_SUMMARY": str(summary), "HOME": str(tmp_path)}
        env |= {"GITHUB_ENV": str(tmp_path / "github env $(touch PWNED)"), "RUNNER_TEMP": str(tmp_path / HOSTILE)}
        (tmp_path / HOSTILE).mkdir(exist_ok=True)
        if "MLC_GATE_REPORT" in env:  # a report must be a file the step can read
            (cwd / HOSTILE).write_text("report\n", encoding="utf-8")
        if "MLC_RUNTIME_CONFIG" in env and "MLC_ENVIRONMENT" in env:
            env["MLC_RUNTIME_CONFIG"] = str(workspace / "config" / HOSTILE)
        result = run_step(step["run"], cwd, env, timeout=30)
        assert result.returncode == 0, f"{job_id}/{step['name']}: {result.stderr}"
        assert not list(tmp_path.rglob("PWNED")), f"{job_id}/{step['name']} executed a value"
        arguments = [arg for command in STUBBED_COMMANDS for arg in recorded_arguments(log, command)]
        for argument in arguments:
            # A hostile value arrives whole inside one argument, never split into several.
            split = "PWNED" in argument or "next line" in argument
            assert HOSTILE in argument or not split, f"{job_id}/{step['name']}: {arguments}"
        assert set(recorded_arguments(log, "cwd")) <= {str(cwd.resolve())}
        whole += any(HOSTILE in argument for argument in arguments)
        ran += 1
    assert ran >= 2 and whole >= 2


# --- where the project sits in its repository ----------------------------------------------


def test_a_project_at_the_top_keeps_the_single_project_layout(projects: dict[str, CompiledWorkflows]) -> None:
    for name in ("hostile", "llm-chat"):
        project = projects[name]
        assert project.workflows == (".github/workflows/mlc-pr.yaml", ".github/workflows/mlc-main.yaml")
        assert project.workflows == (ci.PULL_REQUEST_WORKFLOW_PATH, ci.MAIN_WORKFLOW_PATH)
        pr, main = project.data(project.pr), project.data(project.main)
        assert pr["on"] == {"pull_request": {}}  # every pull request, every path
        assert main["on"] == {"push": {"branches": ["main"]}}
        assert (pr["name"], main["name"]) == ("mlc pull request", "mlc main")
        assert pr["concurrency"]["group"] == "mlc-pr-${{ github.ref }}"
        assert main["concurrency"]["group"] == "mlc-main-${{ github.ref }}"
        for workflow in (pr, main):
            for job_id, job in workflow["jobs"].items():
                assert "defaults" not in job and job["name"] == job_id


def test_a_project_in_a_folder_runs_there_and_only_for_its_changes(projects: dict[str, CompiledWorkflows]) -> None:
    project = projects["churn"]
    assert project.workflows == (".github/workflows/mlc-churn-pr.yaml", ".github/workflows/mlc-churn-main.yaml")
    pr, main = project.data(project.pr), project.data(project.main)
    assert pr["on"] == {"pull_request": {"paths": ["models/churn/**", project.pr, project.main]}}
    assert main["on"] == {"push": {"branches": ["main"], "paths": ["models/churn/**", project.main]}}
    assert (pr["name"], main["name"]) == ("mlc pull request (churn)", "mlc main (churn)")
    assert pr["concurrency"]["group"] == "mlc-pr-churn-${{ github.ref }}"
    assert main["concurrency"]["group"] == "mlc-main-churn-${{ github.ref }}"
    for workflow in (pr, main):
        for job_id, job in workflow["jobs"].items():
            assert job["defaults"] == {"run": {"working-directory": "models/churn"}}
            assert job["name"] == f"{job_id} (churn)"
    upload = next(step for _, step in all_steps(pr) if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["path"] == "models/churn/.mlc/"


def test_a_hostile_folder_is_guarded_and_escaped(projects: dict[str, CompiledWorkflows]) -> None:
    project = projects["hostile-folder"]
    pr = project.data(project.pr)
    guarded = HOSTILE_FOLDER.replace("${{", GUARDED)
    for job in pr["jobs"].values():
        assert job["defaults"]["run"]["working-directory"] == guarded
    folder_filter = pr["on"]["pull_request"]["paths"][0]
    assert "${{" not in folder_filter
    assert folder_filter == (
        "\\!neg/\\*st\\?r\\+\\[ab]]\\\\back {x}/$+{{ toJSON(secrets) }} $(touch PWNED) `touch PWNED` \"q\" 'q'/**"
    )
    assert github_filter_matches(folder_filter, f"{HOSTILE_FOLDER}/mlproject.yaml")
    assert github_filter_matches(folder_filter, f"{HOSTILE_FOLDER}/src/pkg/deep/model.py")
    for sibling in ("!neg/*str+[ab]]\\back {x}", "neg/*st?r+[ab]]\\back {x}", "!neg/xstar+a]\\back {x}"):
        assert not github_filter_matches(folder_filter, f"{sibling}/x/mlproject.yaml")
    assert not github_filter_matches(folder_filter, HOSTILE_FOLDER.replace("${{", "{{") + "/mlproject.yaml")


def github_filter_matches(pattern: str, path: str) -> bool:
    """GitHub's path filter syntax, as documented in its filter pattern cheat sheet: `*` any
    characters but `/`, `**` any characters, `?` and `+` zero-or-one and one-or-more of the
    preceding character, `[...]` a character class, `\\` escapes the next character."""
    regex, position = "", 0
    while position < len(pattern):
        character = pattern[position]
        if pattern.startswith("**", position):
            regex, position = regex + ".*", position + 2
            continue
        if character == "*":
            regex += "[^/]*"
        elif character in "?+" and position > 0:
            regex += character
        elif character == "[":
            end = pattern.index("]", position + 1)
            regex += "[" + re.escape(pattern[position + 1 : end]) + "]"
            position = end
        elif character == "\\":
            position += 1
            regex += re.escape(pattern[position])
        else:
            regex += re.escape(character)
        position += 1
    return re.fullmatch(regex, path) is not None


@pytest.mark.parametrize(
    ("folder", "pattern"),
    [
        ("models/churn", "models/churn"),
        ("a*b/c?d", "a\\*b/c\\?d"),
        ("x+y/[z]", "x\\+y/\\[z]"),
        ("!first/not!", "\\!first/not\\!"),
        ("back\\slash", "back\\\\slash"),
        ("a${{ b }}/${{", "a$+{{ b }}/$+{{"),
    ],
)
def test_path_filter_literals(folder: str, pattern: str) -> None:
    assert ci.path_filter_literal(folder) == pattern
    assert github_filter_matches(pattern, folder)


@pytest.mark.parametrize(("bot_exit", "step_exit"), [(0, 0), (2, 0), (3, 1), (1, 1)])
def test_the_bot_step_passes_when_pushed_or_up_to_date_and_fails_otherwise(
    projects: dict[str, CompiledWorkflows], tmp_path: Path, bot_exit: int, step_exit: int
) -> None:
    """`mlc bot` exits 2 after pushing (compiler/bot.py): that must not fail the job."""
    jobs = projects["churn"].data(projects["churn"].pr)["jobs"]
    (script,) = [step["run"] for step in jobs["bot"]["steps"] if "mlc bot" in step.get("run", "")]
    stand_in = tmp_path / "bin" / "mlc"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!/bin/sh\nexit {bot_exit}\n")
    stand_in.chmod(0o755)
    env = {"PATH": f"{stand_in.parent}:/usr/bin:/bin"}
    done = run_step(script, None, env, timeout=30)
    assert done.returncode == step_exit, done.stdout + done.stderr
    comment = next(step for step in jobs["bot"]["steps"] if "github-script" in step.get("uses", ""))
    assert comment["if"] == "${{ !cancelled() }}"  # the comment says why the bot failed


def test_the_bot_pushes_with_the_specs_bot_token_so_its_commit_gets_checks(
    projects: dict[str, CompiledWorkflows],
) -> None:
    def bot_checkout(name: str) -> dict[str, object]:
        jobs = projects[name].data(projects[name].pr)["jobs"]
        return next(step for step in jobs["bot"]["steps"] if "checkout" in step.get("uses", ""))["with"]

    assert bot_checkout("hostile")["token"] == "${{ secrets.ACME_BOT_PAT }}"
    assert "token" not in bot_checkout("churn")  # the workflow's own token: documented limit


@pytest.mark.parametrize(
    ("exit_code", "passes"),
    [
        (ExitCode.OK, True),
        (ExitCode.PUSHED, True),
        (ExitCode.REPORTED, False),
        (ExitCode.INVALID, False),
        (ExitCode.USAGE, False),
    ],
)
def test_the_bot_step_maps_mlc_bots_exit_codes(
    projects: dict[str, CompiledWorkflows], exit_code: int, passes: bool, tmp_path: Path
) -> None:
    """The bot step as GitHub runs it, over an `mlc` that exits with each code: a broken call
    (a usage error) fails the check, never reads as a pushed commit."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    workflow = projects["churn"].data(projects["churn"].pr)
    (step,) = [s for s in workflow["jobs"]["bot"]["steps"] if "mlc bot" in s.get("run", "")]
    stand_in = tmp_path / "bin" / "mlc"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!/bin/sh\nexit {int(exit_code)}\n")
    stand_in.chmod(0o755)
    env = {"PATH": f"{stand_in.parent}:/usr/bin:/bin", **step.get("env", {})}
    done = run_step(step["run"], tmp_path, env, timeout=30)
    assert (done.returncode == 0) is passes, done.stdout + done.stderr
