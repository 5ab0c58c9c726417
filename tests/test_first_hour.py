"""The first hour's compiler side: `mlc init` (a contract read off the data, .gitignore, a starter
model, a lock), `mlc lock`, id columns in the contract, errors that list the choices."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import pytest

from mlc.compiler.cli.contract_inference import InferredFeature, infer_contract, yaml_key
from mlc.compiler.cli.requirements_pins import Installed, LockError, pin_requirements
from mlc.compiler.cli.scaffold import gitignore_text
from mlc.compiler.pipeline import resolve_spec_file
from mlc.compiler.validate.project_files import check_requirements_lock
from spec_fixtures import run_mlc
from test_validate import BASE

LINUX = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_version": "",
    "implementation_version": "3.11.7",
}

INSTALLED = {
    "pandas": Installed(
        "pandas", "2.2.3", ("numpy>=1.26", "python-dateutil>=2.8", 'pyarrow>=10; extra == "parquet"'), None
    ),
    "numpy": Installed("numpy", "2.1.3", (), None),
    "python-dateutil": Installed("python-dateutil", "2.9.0", ("six>=1.5",), None),
    "six": Installed("six", "1.16.0", (), None),
    "pyarrow": Installed("pyarrow", "18.0.0", ("numpy>=1.16",), None),
    "appnope": Installed("appnope", "0.1.4", (), None),
    "mylib": Installed("mylib", "0.1", (), "file:///home/me/mylib"),
    "torchvision": Installed("torchvision", "0.28.0", ("torch==2.13.0", "pillow"), None),
    "pillow": Installed("pillow", "11.0.0", (), None),
}


def find(name: str) -> Installed | None:
    return INSTALLED.get(name.lower().replace("_", "-"))


def test_lock_follows_dependencies_extras_and_markers_and_leaves_torch_and_mlc_out() -> None:
    text = "# mine\npandas[parquet]>=2\nappnope; sys_platform == 'darwin'\ntorchvision\nmlc\n"
    assert pin_requirements(text, find=find, environment=LINUX) == [
        "numpy==2.1.3",
        "pandas==2.2.3",
        "pillow==11.0.0",
        "pyarrow==18.0.0",
        "python-dateutil==2.9.0",
        "six==1.16.0",
        "torchvision==0.28.0",
    ]
    assert "pyarrow==18.0.0" not in pin_requirements("pandas\n", find=find, environment=LINUX)  # no extra asked


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nosuch\n", "nosuch (requirements.in needs it) is not installed here: install it (pip install 'nosuch')"),
        ("pandas<2\n", "pandas 2.2.3 is installed, but requirements.in asks for pandas<2"),
        ("mylib\n", "mylib is installed from file:///home/me/mylib, which an image cannot install"),
        ("-r other.txt\n", "requirements.in:1: options (-r) are not read by mlc lock"),
        ("pandas ==\n", "requirements.in:1: "),
    ],
)
def test_lock_errors_name_the_package_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(LockError) as raised:
        pin_requirements(text, find=find, environment=LINUX)
    assert str(raised.value).startswith(message)


def test_mlc_lock_pins_what_is_installed_into_a_lock_that_validates(project) -> None:
    spec = project(BASE)
    (spec.parent / "requirements.in").write_text("click\nPyYAML>=6\n")
    (spec.parent / "requirements.lock").unlink()
    assert not resolve_spec_file(spec).ok  # no lock yet: the spec does not validate
    code, out, err = run_mlc("lock", "-f", str(spec))
    assert code == 0, err
    lock = (spec.parent / "requirements.lock").read_text()
    pins = [line for line in lock.splitlines() if not line.startswith("#")]
    assert f"click=={metadata.version('click')}" in pins and f"PyYAML=={metadata.version('PyYAML')}" in pins
    assert check_requirements_lock(lock, "requirements.lock", "2.13.0") == []
    assert resolve_spec_file(spec).ok
    assert (
        out == f"wrote {spec.parent / 'requirements.lock'}: {len(pins)} pinned from {spec.parent / 'requirements.in'}\n"
    )
    (spec.parent / "requirements.in").write_text("no-such-distribution-here\n")
    code, _, err = run_mlc("lock", "-f", str(spec))
    assert code == 1 and err.startswith("error: no-such-distribution-here (")


def test_the_contract_is_read_off_the_data() -> None:
    header = ["customer_id", "tenure", "charges", "plan", "paperless", "calls", "churned"]
    rows = [
        ["c1", "1", "20.5", "basic", "true", "", "0"],
        ["c2", "30", "-3", "pro", "false", "2", "1"],
        ["c3", "12", "99", "basic", "true", "1", "0"],
    ]
    contract = infer_contract(header, rows, target="churned")
    assert (contract.target, contract.task, contract.ids, contract.rows) == ("churned", "binary", ("customer_id",), 3)
    assert contract.features == (
        InferredFeature("tenure", "int", False, 0.0, "seen 1 to 30"),
        InferredFeature("charges", "float", False, None, "seen -3 to 99"),
        InferredFeature("plan", "category", False, None, "seen basic, pro"),
        InferredFeature("paperless", "bool", False, None, "seen false, true"),
        InferredFeature("calls", "int", True, 0.0, "seen 1 to 2"),
    )
    # Without --target: a column named like one, else the last; its task from its values.
    assert infer_contract(["a", "label", "b"], [["1", "x", "2"], ["2", "y", "3"]]).target == "label"
    assert infer_contract(["a", "b"], [["1", "0"], ["2", "2"], ["3", "1"]]).task == "multiclass"
    assert infer_contract(["a", "b"], [["1", "0.5"], ["2", "2.25"]]).task == "regression"
    assert [yaml_key(name) for name in ("mean radius", "yes", "a:b", "x_1")] == ["mean radius", '"yes"', '"a:b"', "x_1"]


def test_gitignore_gets_mlc_lines_once_and_keeps_the_users() -> None:
    first = gitignore_text("node_modules/")
    assert first is not None and first.startswith("node_modules/\n# mlc:") and ".mlc/\n" in first
    assert gitignore_text(first) is None


def test_init_without_data_validates_and_says_what_to_do_next(tmp_path: Path) -> None:
    code, out, err = run_mlc("init", str(tmp_path), "--name", "starter")
    assert code == 0, err
    assert out.splitlines()[-1] == (
        "next: put the training data in data/train.csv (and evaluation data in data/eval.csv), then run "
        "`mlc init --force` to read the data contract off it"
    )
    assert (tmp_path / ".gitignore").read_text().count(".mlc/") == 1
    assert "  # contract:" in (tmp_path / "mlproject.yaml").read_text()
    result = resolve_spec_file(tmp_path / "mlproject.yaml")
    assert result.ok
    # The images install mlc from the wheel init wrote, hash-checked: nothing needs publishing first.
    wheel = tmp_path / result.resolved[0].runtime_requirement.wheel
    assert f"created {wheel}" in out.splitlines()
    assert result.resolved[0].runtime_requirement.wheel_sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    code, _, err = run_mlc("init", str(tmp_path), "--target", "y", "--force")
    assert code == 1 and err == "error: --target y: there is no data/train.csv to read it from yet\n"


def test_init_with_data_writes_a_contract_gates_and_drift_that_validate(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/train.csv").write_text("order_id,amount,country,kind\n1,3.5,fr,a\n2,,de,b\n3,7,fr,c\n")
    code, _, err = run_mlc("init", str(tmp_path), "--name", "orders", "--target", "kind")
    assert code == 0, err
    spec = (tmp_path / "mlproject.yaml").read_text()
    assert (
        "    target: kind\n"
        "    task: multiclass              # binary | multiclass | regression\n"
        "    ids: [order_id]   # passed through beside predictions, never fed to the model\n"
        "    features:\n"
        "      amount:  {type: float, min: 0, nullable: true}   # seen 3.5 to 7\n"
        "      country: {type: category}                        # seen de, fr\n"
    ) in spec
    assert "metrics: [accuracy, f1, log_loss, latency_p95_ms]" in spec
    result = resolve_spec_file(tmp_path / "mlproject.yaml")
    assert result.ok, [d.render() for d in result.diagnostics]
    contract = result.resolved[0].spec.data.contract
    assert contract is not None and contract.ids == ["order_id"] and "order_id" not in contract.features
    code, _, err = run_mlc("init", str(tmp_path), "--target", "nope", "--force")
    assert (
        code == 1
        and err == "error: data/train.csv: no column 'nope' to predict; columns: order_id, amount, country, kind\n"
    )


def test_an_id_column_is_never_a_feature_or_the_target(project) -> None:
    contract = (
        "  contract:\n    target: label\n    features: {x: {type: float}}\n    ids: [x, label, order_id, order_id]\n"
    )
    spec = project(BASE.replace("  eval: {uri: data/eval.csv}\n", "  eval: {uri: data/eval.csv}\n" + contract))
    found = [d.render().splitlines()[0] for d in resolve_spec_file(spec, "mlproject.yaml").diagnostics]
    assert [line.split(": error: ")[1] for line in found] == [
        "data.contract.ids.0: 'x' is a feature; an id column is never fed to the model nor predicted",
        "data.contract.ids.1: 'label' is the target; an id column is never fed to the model nor predicted",
        "data.contract.ids.3: 'order_id' is listed twice",
    ]


def test_plan_env_lists_the_environments(project) -> None:
    spec = project(BASE)
    code, _, err = run_mlc("plan", "-f", str(spec), "--env", "prod")
    assert code == 64 and "no spec defines environment 'prod'; environments: default" in err


def test_a_long_name_pushes_the_comments_right_and_still_validates(tmp_path: Path) -> None:
    # A package of 14+ characters once glued the comment to the entrypoint ('x.model:train# ...').
    (tmp_path / "data").mkdir()
    (tmp_path / "data/train.csv").write_text("reading,label\n1.5,0\n2.5,1\n")
    name = "customer-lifetime-value-prediction"
    code, _, err = run_mlc("init", str(tmp_path), "--name", name)
    assert code == 0, err
    text = (tmp_path / "mlproject.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=mlproject.schema.json\n")
    assert f"  name: {name} # DNS-1123 label" in text
    assert "  entrypoint: customer_lifetime_value_prediction.model:train # module:function" in text
    result = resolve_spec_file(tmp_path / "mlproject.yaml")
    assert result.ok, [d.render() for d in result.diagnostics]
