"""`.github/workflows/mlc-pr.yaml`: a pull request's checks, one job per `ci.pull_request` entry.

Atlantis-style: `validate` and `plan` show what merging would change (step summary, and a plan
comment updated in place); the bot job commits the compiled artifacts back to the PR branch;
`data_tests`, `smoke_train` and `gate` test data, code and model, so a worse model fails a check
that branch protection turns into a blocked merge.

The model check compares like with like. The checkout is GitHub's merge commit, whose first
parent is the base branch's tip: `smoke_train` trains the PR's code and the base's code (a git
worktree of that parent, imported through `MLC_CODE_SOURCE`) the same way, with the PR's runtime
config, on the same sample and seed, as `@pr-N` and `@pr-N-base`, each in its own branch's
environment (a PR that changes the requirements lock gets a second venv with the base's lock for
the base; the report says which side used what); `gate` compares them: the
relative gates (max_drop, max_rise) decide, the absolute ones (min, max) are reported as
advisory, since a smoke model is not the production model. With `ci.model_check.training: full`
both are trained as the cluster trains (all the data, the spec's parameters), on
`ci.model_check.runner` (a runner that can afford it), and every gate decides. When nothing the model depends on
changed (mlproject.yaml, `code.source`, the requirements lock: `git diff` against the parent)
neither trains and the gate passes saying so.

Jobs share no disk. `smoke_train` uploads `.mlc/` (runtime config, local MLflow store and the smoke
model) as an artifact of the run, and `gate` fetches it with `gh run download` (no third action to
pin), so both stores work: the real tracking server when the spec names its secret, else local.

For a spec in a subfolder (`_location`), each project of the repository has its own workflow,
triggered by changes to its folder, with its own plan comment (a marker per project).
"""

from __future__ import annotations

from mlc.compiler.backends.ci._location import ProjectLocation
from mlc.compiler.backends.ci._main_branch import KIND as MAIN_KIND
from mlc.compiler.backends.ci._pins import pinned_action
from mlc.compiler.backends.ci._steps import (
    BOT_IDENTITY,
    RUNTIME_CONFIG_PATH,
    SPEC_FILE,
    Job,
    Step,
    build_job,
    checkout_step,
    documented,
    guard_expression,
    install_mlc_step,
    install_project_requirements_step,
    setup_python_step,
    write_runtime_config_step,
)
from mlc.compiler.errors import ExitCode
from mlc.compiler.resolve.resolved import ResolvedSpec
from mlc.runtime.contract import duration_seconds

KIND = "pr"
PATH = ".github/workflows/mlc-pr.yaml"  # at the top; in a folder: ProjectLocation.workflow_path
WORKFLOW_NAME = "mlc pull request"

SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"
COMMENT_FILE = "mlc-plan-comment.md"  # written by `mlc bot`, or by the plan job
GATE_REPORT = "gate.md"
SMOKE_ARTIFACT = "mlc-smoke-model"
SMOKE_STORE = ".mlc/"
COMPARISON_NOTES = f"{SMOKE_STORE}pr-comparison.md"  # how each side was trained: smoke_train writes, gate reports
DATA_SAMPLE_ROWS = 1000
# Without the tracking server's secret the smoke run logs here; assumes the runtime keeps its
# MLflow artifacts under `.mlc/` too, as it does locally.
BOT_TOKEN_SECRET = "MLC_BOT_TOKEN"  # the spec's secret the bot pushes with, when given

PLAN_SCRIPT = """\
mlc plan --format markdown > "$MLC_PLAN_FILE"
cat "$MLC_PLAN_FILE" >> "$GITHUB_STEP_SUMMARY"
"""
DOWNLOAD_SMOKE_MODEL_SCRIPT = """\
gh run download "$GITHUB_RUN_ID" --name "$MLC_SMOKE_ARTIFACT" --dir "$MLC_SMOKE_STORE"
"""
# `mlc bot`'s exit code (errors.ExitCode) as a job result: pushed or up to date pass; a change
# it could not push fails the check (the PR's generated files are stale), and so does an error
# (a usage error too: it has a code of its own, never read as a push). The comment step after
# it runs either way.
BOT_SCRIPT = f"""\
status=0
mlc bot || status=$?
case "$status" in
  {ExitCode.OK:d}) echo "Generated files are up to date." ;;
  {ExitCode.PUSHED:d}) echo "::notice::mlc committed the compiled artifacts to this branch." ;;
  {ExitCode.REPORTED:d})
    echo "::error::Generated files are out of date and were not pushed: run mlc apply and commit."
    exit 1 ;;
  *) exit "$status" ;;
esac
"""
# The smoke model of pull request N is registered as @pr-N: never the shared @challenger that a
# cluster's gate promotes from, whatever tracking server CI talks to.
PR_CHALLENGER_ALIAS = "pr-${{ github.event.pull_request.number }}"
BASELINE_ALIAS = "pr-${{ github.event.pull_request.number }}-base"  # the base branch's code, trained alike
# Whether the PR touches what the model is trained from; read by the later steps of the job.
# The merge commit's first parent is the base branch's tip (`fetch-depth: 2` brings it).
MODEL_INPUTS_SCRIPT = """\
if git diff --quiet HEAD^1 HEAD -- "$MLC_SPEC" "$MLC_SOURCE" "$MLC_PROJECT_REQUIREMENTS"; then
  echo "::notice::Nothing the model depends on changed (mlproject.yaml, code.source, the lock): no model to compare."
  echo "MLC_MODEL_UNCHANGED=1" >> "$GITHUB_ENV"
fi
"""
UNCHANGED_GUARD = 'if [ -n "${MLC_MODEL_UNCHANGED:-}" ]; then exit 0; fi\n'
# `ci.model_check.training`: smoke (a sample on the CPU) or full (the spec's training).
TRAINING_FLAGS = 'flags=()\nif [ "$MLC_TRAINING" = smoke ]; then flags=(--smoke); fi\n'
TRAINING_DESCRIPTIONS = {
    "smoke": "a smoke training (a small sample, on the CPU): the relative gates decide, the absolute ones are advisory",
    "full": "the spec's full training, as the cluster trains: every gate decides",
}
SMOKE_TRAIN_SCRIPT = (
    UNCHANGED_GUARD
    + TRAINING_FLAGS
    + 'mlc-runtime train --config "$MLC_RUNTIME_CONFIG" "${flags[@]}" --challenger-alias "$MLC_CHALLENGER_ALIAS"\n'
)
# The base branch's code, trained with the PR's runtime config (params, sample, seed), in the
# base's environment: when the PR changes the requirements lock (a torch or numpy upgrade), the
# base trains in a second virtual environment with the base's lock installed, so the comparison
# shows the dependency change instead of hiding it. The runner's site-packages (mlc and its
# dependencies) stay importable beneath it: the venv's own packages come first, and `site`
# processes the runner's .pth files too (an editable install). What each side used is written
# beside the smoke model (`COMPARISON_NOTES`); the gate's report ends with it. A base without the
# project's code (a new project) has nothing to compare with.
BASELINE_TRAIN_SCRIPT = (
    UNCHANGED_GUARD
    + TRAINING_FLAGS
    + """\
base="$(mktemp -d "$RUNNER_TEMP/mlc-base.XXXXXX")"
git worktree add --detach "$base" HEAD^1
prefix="$(git rev-parse --show-prefix)"
code="$base/$prefix$MLC_SOURCE"
if [ ! -d "$code" ]; then
  echo "::notice::The base branch has no $MLC_SOURCE: nothing to compare the model with."
  exit 0
fi
mkdir -p "$(dirname "$MLC_COMPARISON_NOTES")"
{
  echo "### How the two models were trained"
  echo
  echo "- Both with this pull request's runtime config: its training parameters, sample and seed;" \\
    "$MLC_TRAINING_DESCRIPTION."
  if ! git diff --quiet HEAD^1 HEAD -- "$MLC_SPEC"; then
    echo "- $MLC_SPEC differs on the base branch: @$MLC_BASELINE_ALIAS (the base branch's code) was trained" \\
      "with this pull request's parameters, not the base branch's."
  fi
} > "$MLC_COMPARISON_NOTES"
runtime=(mlc-runtime)
lock="$base/$prefix$MLC_PROJECT_REQUIREMENTS"
if git diff --quiet HEAD^1 HEAD -- "$MLC_PROJECT_REQUIREMENTS"; then
  echo "- Both in this runner's environment: $MLC_PROJECT_REQUIREMENTS is the same on both branches." \\
    >> "$MLC_COMPARISON_NOTES"
elif [ -f "$lock" ]; then
  venv="$RUNNER_TEMP/mlc-base-venv"
  python -m venv "$venv"
  packages="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  python -c 'import sys
for path in sys.path:
    if path.endswith("-packages"):
        print(f"import site; site.addsitedir({path!r})")' > "$packages/mlc-runner.pth"
  "$venv/bin/python" -m pip install -r "$lock"
  runtime=("$venv/bin/python" -m mlc.runtime)
  echo "::notice::$MLC_PROJECT_REQUIREMENTS changed: the base branch's code trains in $venv, with the base's lock."
  echo "- $MLC_PROJECT_REQUIREMENTS differs: @$MLC_BASELINE_ALIAS was trained in a virtual environment with the" \\
    "base branch's lock installed, @$MLC_CHALLENGER_ALIAS with this pull request's." >> "$MLC_COMPARISON_NOTES"
else
  echo "- The base branch has no $MLC_PROJECT_REQUIREMENTS: both were trained with this pull request's." \\
    >> "$MLC_COMPARISON_NOTES"
fi
MLC_CODE_SOURCE="$code" "${runtime[@]}" train --config "$MLC_RUNTIME_CONFIG" "${flags[@]}" \\
  --challenger-alias "$MLC_BASELINE_ALIAS"
"""
)
GATE_SCRIPT = """\
if [ -n "${MLC_MODEL_UNCHANGED:-}" ]; then
  printf '## Gate passed: nothing the model depends on changed\\n\\n%s, %s and %s are as on the base branch.\\n' \\
    "$MLC_SPEC" "$MLC_SOURCE" "$MLC_PROJECT_REQUIREMENTS" > "$MLC_GATE_REPORT"
  cat "$MLC_GATE_REPORT"
  exit 0
fi
baseline=()
if git cat-file -e "HEAD^1:$(git rev-parse --show-prefix)${MLC_SOURCE%/}" 2>/dev/null; then
  baseline=(--baseline-alias "$MLC_BASELINE_ALIAS")
else
  echo "::notice::The base branch has no $MLC_SOURCE: the absolute gates alone are reported."
fi
status=0
mlc-runtime gate --config "$MLC_RUNTIME_CONFIG" --report "$MLC_GATE_REPORT" \\
  --challenger-alias "$MLC_CHALLENGER_ALIAS" --absolute "$MLC_ABSOLUTE_GATES" "${baseline[@]}" || status=$?
if [ -f "$MLC_GATE_REPORT" ] && [ -f "$MLC_COMPARISON_NOTES" ]; then
  notes="$(cat "$MLC_COMPARISON_NOTES")"
  printf '\\n%s\\n' "$notes" >> "$MLC_GATE_REPORT"
  printf '%s\\n' "$notes"
fi
exit "$status"
"""
DOWNLOAD_SMOKE_MODEL_SCRIPT = UNCHANGED_GUARD + DOWNLOAD_SMOKE_MODEL_SCRIPT
REPORT_GATE_SCRIPT = """\
if [ -f "$MLC_GATE_REPORT" ]; then
  cat "$MLC_GATE_REPORT" >> "$GITHUB_STEP_SUMMARY"
fi
"""

# Finds the bot's previous plan comment by its hidden marker, its first line, and updates it,
# else creates one. The first line, not anywhere: every project of a monorepo comments on the
# pull request, and `mlc bot` starts each body with the generic `<!-- mlc-plan -->` too.
# The body is read from a file: no expression or PR-controlled text is spliced into the script.
UPSERT_COMMENT_SCRIPT = """\
const fs = require('fs');
const marker = process.env.MLC_COMMENT_MARKER;
const limit = 65000; // GitHub rejects comment bodies over 65536 characters
const firstLine = (text) => text.split(/\\r?\\n/, 1)[0];
let body = fs.readFileSync(process.env.MLC_COMMENT_FILE, 'utf8');
if (firstLine(body) !== marker) {
  body = `${marker}\\n${body}`;
}
if (body.length > limit) {
  body = `${body.slice(0, limit)}\\n\\n(truncated: the full plan is in the job summary)`;
}
const { owner, repo } = context.repo;
const issue_number = context.issue.number;
const comments = await github.paginate(github.rest.issues.listComments, {
  owner, repo, issue_number, per_page: 100,
});
const previous = comments.find(
  (comment) => comment.user && comment.user.type === 'Bot' && firstLine(comment.body || '') === marker,
);
if (previous) {
  await github.rest.issues.updateComment({ owner, repo, comment_id: previous.id, body });
} else {
  await github.rest.issues.createComment({ owner, repo, issue_number, body });
}
"""


def emit_pull_request_workflow(resolved: ResolvedSpec) -> dict[str, object]:
    """The PR workflow as data: the jobs listed in `ci.pull_request`, plus the bot job."""
    spec = resolved.spec
    location = ProjectLocation.of(resolved)
    listed = spec.ci.pull_request
    jobs: dict[str, Job] = {}
    for name in listed:
        needs = _needs(name, listed)
        if name == "validate":
            jobs[name] = _validate_job(resolved)
        elif name == "plan":
            jobs[name] = _plan_job(resolved, needs, comment=spec.ci.bot.comment and not spec.ci.bot.commit)
        elif name == "data_tests":
            jobs[name] = _data_tests_job(resolved, needs)
        elif name == "smoke_train":
            jobs[name] = _smoke_train_job(resolved, needs)
        elif name == "gate":
            jobs[name] = _gate_job(resolved, needs)
    if spec.ci.bot.commit:
        jobs["bot"] = _bot_job(resolved, ["validate"] if "validate" in listed else [])
    # A pull request that edits the project's generated workflows by hand is planned too.
    own_workflows = [location.workflow_path(KIND), location.workflow_path(MAIN_KIND)]
    return {
        "name": location.title(WORKFLOW_NAME),
        "on": location.trigger("pull_request", {}, own_workflows),
        "permissions": {},
        "concurrency": {"group": location.concurrency_group(KIND), "cancel-in-progress": True},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {job_id: location.place_job(job) for job_id, job in jobs.items()},
    }


def _needs(job: str, listed: list[str]) -> list[str]:
    """Each job waits for the one whose failure makes it pointless."""
    chain = {
        "plan": ["validate"],
        "data_tests": ["validate"],
        "smoke_train": ["data_tests", "validate"],
        "gate": ["smoke_train"],
    }
    return next(([dep] for dep in chain.get(job, []) if dep in listed), [])


def github_secrets_env(resolved: ResolvedSpec) -> dict[str, str]:
    """Secrets named in the spec's `secrets.*.github`, under the variable names the spec gives."""
    return {
        name: f"${{{{ secrets.{ref.github} }}}}"
        for name, ref in resolved.spec.secrets.items()
        if ref.github is not None
    }


def tracking_env(resolved: ResolvedSpec) -> dict[str, str]:
    """The real tracking server when the spec gives CI its secret, else a local store."""
    return {"MLFLOW_TRACKING_URI": guard_expression(resolved.ci_tracking_uri)}


def _compiler_steps(resolved: ResolvedSpec, *, runtime: bool = False, fetch_depth: int = 1) -> list[Step]:
    steps = [
        checkout_step(fetch_depth=fetch_depth),
        setup_python_step(resolved.spec.code.python),
        install_mlc_step(resolved.runtime_requirement if runtime else resolved.compiler_requirement),
    ]
    if runtime:
        steps.append(install_project_requirements_step(resolved.spec.code.requirements))
    return steps


def _validate_job(resolved: ResolvedSpec) -> Job:
    validate: Step = {
        "name": "Validate mlproject.yaml",
        "env": {"MLC_SPEC": SPEC_FILE},
        "run": 'mlc validate -f "$MLC_SPEC"\n',
    }
    return build_job(
        "validate",
        {"contents": "read"},
        [*_compiler_steps(resolved), validate],
        timeout_minutes=10,
        runs_on=resolved.ci_runs_on,
    )


def _plan_job(resolved: ResolvedSpec, needs: list[str], *, comment: bool) -> Job:
    plan: Step = {
        "name": "Plan",
        "env": {"MLC_PLAN_FILE": COMMENT_FILE},
        "run": PLAN_SCRIPT,
    }
    permissions: dict[str, object] = {"contents": "read"}
    steps = [*_compiler_steps(resolved), plan]
    if comment:
        permissions["pull-requests"] = documented("write", "post the plan as a comment, updated in place")
        # Forks get a read-only token: their plan stays in the step summary.
        steps.append({**upsert_plan_comment_step(ProjectLocation.of(resolved)), "if": SAME_REPOSITORY})
    return build_job("plan", permissions, steps, needs=needs, timeout_minutes=10, runs_on=resolved.ci_runs_on)  # type: ignore[arg-type]


def upsert_plan_comment_step(location: ProjectLocation) -> Step:
    """Post the project's plan comment, or update the one a previous push posted. The file is
    written by a `run:` step in the spec's folder and read here at the top."""
    return {
        "name": "Comment the plan",
        "uses": pinned_action("actions/github-script"),
        "env": {"MLC_COMMENT_FILE": location.file(COMMENT_FILE), "MLC_COMMENT_MARKER": location.comment_marker()},
        "with": {"script": UPSERT_COMMENT_SCRIPT},
    }


def _bot_job(resolved: ResolvedSpec, needs: list[str]) -> Job:
    permissions: dict[str, object] = {
        "contents": documented("write", "commit the compiled artifacts to the PR branch"),
    }
    steps: list[Step] = [
        # The PR head, not the merge commit: the bot pushes onto the branch. A push that raced
        # ahead of this run makes the push fail instead of overwriting it.
        checkout_step(
            persist_credentials=True, ref="${{ github.event.pull_request.head.sha }}", token=_bot_token(resolved)
        ),
        setup_python_step(resolved.spec.code.python),
        install_mlc_step(resolved.compiler_requirement),
        {
            "name": "Compile and commit to the PR branch",
            "env": dict(BOT_IDENTITY),
            "run": BOT_SCRIPT,
        },
    ]
    if resolved.spec.ci.bot.comment:
        permissions["pull-requests"] = documented("write", "post the plan as a comment, updated in place")
        # Also when the bot failed: its comment says why (a conflict, an invalid spec).
        steps.append({**upsert_plan_comment_step(ProjectLocation.of(resolved)), "if": "${{ !cancelled() }}"})
    # Only branches of this repository: a fork's code never runs with a token that can push.
    return build_job("bot", permissions, steps, needs=needs, condition=SAME_REPOSITORY, runs_on=resolved.ci_runs_on)  # type: ignore[arg-type]


def _bot_token(resolved: ResolvedSpec) -> str | None:
    """`secrets.MLC_BOT_TOKEN` (a PAT or GitHub App token): GitHub starts no workflow run for a
    push made with the workflow's own token, so without it the bot's commit gets no checks."""
    ref = resolved.spec.secrets.get(BOT_TOKEN_SECRET)
    return f"${{{{ secrets.{ref.github} }}}}" if ref is not None and ref.github is not None else None


def _runtime_env(resolved: ResolvedSpec) -> dict[str, str]:
    return {**tracking_env(resolved), **github_secrets_env(resolved)}


def _data_tests_job(resolved: ResolvedSpec, needs: list[str]) -> Job:
    steps = [*_compiler_steps(resolved, runtime=True), write_runtime_config_step()]
    for dataset in resolved.spec.data.datasets():
        steps.append(
            {
                "name": guard_expression(f"Validate a sample of {dataset} against the contract"),
                "env": {
                    "MLC_RUNTIME_CONFIG": RUNTIME_CONFIG_PATH,
                    "MLC_DATASET": guard_expression(dataset),
                    "MLC_SAMPLE_ROWS": str(DATA_SAMPLE_ROWS),
                    **github_secrets_env(resolved),
                },
                "run": (
                    'mlc-runtime validate-data --config "$MLC_RUNTIME_CONFIG" '
                    '--dataset "$MLC_DATASET" --sample "$MLC_SAMPLE_ROWS"\n'
                ),
            }
        )
    return build_job(
        "data_tests", {"contents": "read"}, steps, needs=needs, timeout_minutes=20, runs_on=resolved.ci_runs_on
    )


def model_inputs_step(resolved: ResolvedSpec) -> Step:
    """Sets MLC_MODEL_UNCHANGED for the job's later steps when the PR changes nothing the model
    is trained from."""
    return {
        "name": "Does the pull request change what the model is trained from?",
        "env": {
            "MLC_SPEC": SPEC_FILE,
            "MLC_SOURCE": guard_expression(resolved.spec.code.source),
            "MLC_PROJECT_REQUIREMENTS": guard_expression(resolved.spec.code.requirements),
        },
        "run": MODEL_INPUTS_SCRIPT,
    }


def _training(resolved: ResolvedSpec) -> str:
    """`ci.model_check.training`: smoke or full."""
    return resolved.spec.ci.model_check.training


def _model_check_minutes(resolved: ResolvedSpec) -> int:
    """The training job's limit: 30 minutes for two smoke trainings; two full ones take `train.timeout` each."""
    train = resolved.spec.train
    if _training(resolved) == "smoke" or train is None:
        return 30
    return 2 * duration_seconds(train.timeout) // 60 + 30


def _smoke_train_job(resolved: ResolvedSpec, needs: list[str]) -> Job:
    full = _training(resolved) == "full"
    training_env = {"MLC_TRAINING": _training(resolved)}
    train: Step = {
        "name": "Train the pull request's code as the cluster trains it"
        if full
        else "Train the pull request's code on a small sample on the CPU",
        "env": {
            "MLC_RUNTIME_CONFIG": RUNTIME_CONFIG_PATH,
            "MLC_CHALLENGER_ALIAS": PR_CHALLENGER_ALIAS,
            **training_env,
            **_runtime_env(resolved),
        },
        "run": SMOKE_TRAIN_SCRIPT,
    }
    baseline: Step = {
        "name": "Train the base branch's code the same way, in the base branch's environment",
        "env": {
            "MLC_RUNTIME_CONFIG": RUNTIME_CONFIG_PATH,
            "MLC_BASELINE_ALIAS": BASELINE_ALIAS,
            "MLC_CHALLENGER_ALIAS": PR_CHALLENGER_ALIAS,
            "MLC_SPEC": SPEC_FILE,
            "MLC_SOURCE": guard_expression(resolved.spec.code.source),
            "MLC_PROJECT_REQUIREMENTS": guard_expression(resolved.spec.code.requirements),
            "MLC_COMPARISON_NOTES": COMPARISON_NOTES,
            **training_env,
            "MLC_TRAINING_DESCRIPTION": TRAINING_DESCRIPTIONS[_training(resolved)],
            **_runtime_env(resolved),
        },
        "run": BASELINE_TRAIN_SCRIPT,
    }
    upload: Step = {
        "name": "Keep the smoke model for the gate",
        "uses": pinned_action("actions/upload-artifact"),
        "with": {
            "name": SMOKE_ARTIFACT,
            "path": ProjectLocation.of(resolved).file(SMOKE_STORE),
            "include-hidden-files": True,
            "if-no-files-found": "error",
            "retention-days": 1,
        },
    }
    steps = [
        *_compiler_steps(resolved, runtime=True, fetch_depth=2),
        model_inputs_step(resolved),
        write_runtime_config_step(),
        train,
    ]
    if "gate" in resolved.spec.ci.pull_request:
        steps += [baseline, upload]
    return build_job(
        "smoke_train",
        {"contents": "read"},
        steps,
        needs=needs,
        timeout_minutes=_model_check_minutes(resolved),
        runs_on=resolved.ci_model_runs_on,
    )


def _gate_job(resolved: ResolvedSpec, needs: list[str]) -> Job:
    download: Step = {
        "name": "Fetch the smoke model",
        "env": {
            "GH_TOKEN": "${{ github.token }}",
            "GH_REPO": "${{ github.repository }}",
            "MLC_SMOKE_ARTIFACT": SMOKE_ARTIFACT,
            "MLC_SMOKE_STORE": SMOKE_STORE,
        },
        "run": DOWNLOAD_SMOKE_MODEL_SCRIPT,
    }
    gate: Step = {
        "name": "Gate the pull request's model against the base branch's",
        "env": {
            "MLC_RUNTIME_CONFIG": RUNTIME_CONFIG_PATH,
            "MLC_GATE_REPORT": GATE_REPORT,
            "MLC_CHALLENGER_ALIAS": PR_CHALLENGER_ALIAS,
            "MLC_BASELINE_ALIAS": BASELINE_ALIAS,
            "MLC_SPEC": SPEC_FILE,
            "MLC_SOURCE": guard_expression(resolved.spec.code.source),
            "MLC_PROJECT_REQUIREMENTS": guard_expression(resolved.spec.code.requirements),
            "MLC_COMPARISON_NOTES": COMPARISON_NOTES,
            # A smoke model is not held to production bounds; a fully trained one is.
            "MLC_ABSOLUTE_GATES": "enforce" if _training(resolved) == "full" else "advisory",
            **_runtime_env(resolved),
        },
        "run": GATE_SCRIPT,
    }
    report: Step = {
        "name": "Report the gate",
        # Also after a failing gate: the report says which metric failed.
        "if": "${{ !cancelled() }}",
        "env": {"MLC_GATE_REPORT": GATE_REPORT},
        "run": REPORT_GATE_SCRIPT,
    }
    permissions = {
        "contents": "read",
        "actions": documented("read", "download the smoke model artifact of this run"),
    }
    steps = [
        *_compiler_steps(resolved, runtime=True, fetch_depth=2),
        model_inputs_step(resolved),
        download,
        gate,
        report,
    ]
    # The gate scores the eval set with both models: on the model check's runner.
    return build_job("gate", permissions, steps, needs=needs, timeout_minutes=30, runs_on=resolved.ci_model_runs_on)  # type: ignore[arg-type]
