"""A user's own trainer command: placeholders, their errors with positions, and what trials get."""

from __future__ import annotations

import pytest

from sweepctl.core.command import render, with_log_dir
from sweepctl.core.diagnostics import SpecError
from sweepctl.core.manifests import local_trial, tfjob, trainjob
from sweepctl.core.spec import load_spec
from sweepctl.core.trials import expand

SPEC = """\
name: digits
image: registry.example/me/digits:1
command: [python, train.py, "--learning_rate=${learningRate}", "--units", "${units}", --log_dir, "${logDir}"]
hyperParamValues:
  learningRate: [0.010, 1.0e-3]
  units: [32, 64]
"""


def errors(text: str) -> list[tuple[int | None, int | None, str, str | None]]:
    with pytest.raises(SpecError) as caught:
        load_spec(text, filename="s.yaml")
    return [(d.line, d.column, d.message, d.hint) for d in caught.value.diagnostics]


def test_named_placeholders_are_replaced_inside_tokens() -> None:
    spec = load_spec(SPEC)
    trial = next(t for t in expand(spec) if t.params == {"learningRate": 0.01, "units": 64})
    argv = render(spec.command, trial.params, log_dir="/logs/t")
    assert argv == ["python", "train.py", "--learning_rate=0.01", "--units", "64", "--log_dir", "/logs/t"]


def test_args_is_every_hyperparameter_as_written_and_flag_text() -> None:
    spec = load_spec("name: s\ncommand: [python, t.py, '${args}', --seed=1]\n"
                     "hyperParamValues: {learning_rate: [1.0e-2], useBias: [true], opt: [SGD]}\n")
    (trial,) = expand(spec)
    assert render(spec.command, trial.params, log_dir="/l") == [
        "python", "t.py", "--learning_rate=0.01", "--useBias=true", "--opt=SGD", "--seed=1"]
    assert render(spec.command, trial.params, log_dir="/l", unpassed={"opt"})[2:5] == [
        "--learning_rate=0.01", "--useBias=true", "--seed=1"]


def test_escape_and_args_are_rendered_too() -> None:
    spec = load_spec("name: s\ncommand: [sh-free, 'a$${b}c', 'x${lr}$${lr}']\nargs: ['--out=${logDir}/m${lr}']\n"
                     "hyperParamValues: {lr: [0.5, 1]}\n")
    trial = next(t for t in expand(spec) if t.params == {"lr": 0.5})
    assert render([*spec.command, *spec.args], trial.params, log_dir="/L") == [
        "sh-free", "a${b}c", "x0.5${lr}", "--out=/L/m0.5"]


def test_a_command_rendered_without_its_log_folder_gets_it_later() -> None:
    tokens = ["run", "--log=${logDir}", "${logDir}", "${logDir}/a:${logDir}", "$${logDir}", "${v}"]
    params = {"v": "${logDir}"}  # a value is never read as a placeholder
    later = with_log_dir(render(tokens, params, log_dir=None), "/state/logs/t")
    assert later == render(tokens, params, log_dir="/state/logs/t") == [
        "run", "--log=/state/logs/t", "/state/logs/t", "/state/logs/t/a:/state/logs/t", "${logDir}", "${logDir}"]


def test_an_unknown_placeholder_is_refused_with_its_position_and_the_closest_name() -> None:
    text = SPEC.replace("${learningRate}", "${learningRat}")
    assert errors(text) == [(3, 29, "command[2]: '--learning_rate=${learningRat}': unknown placeholder ${learningRat}",
                             "did you mean 'learningRate'?")]


def test_a_swept_hyperparameter_that_reaches_no_placeholder_is_refused() -> None:
    text = SPEC.replace('"--units", "${units}", ', "")
    ((line, column, message, hint),) = errors(text)
    assert (line, column) == (6, 3)  # the hyperparameter's key
    assert "units reaches no placeholder" in message and "every trial would run the same thing" in message
    assert "${args}" in hint and "${units}" in hint


def test_args_must_be_a_whole_token() -> None:
    ((line, column, message, _),) = errors("name: s\ncommand: [python, t.py, '--all ${args}']\n"
                                           "hyperParamValues: {lr: [1, 2]}\n")
    assert (line, column) == (2, 25) and "${args} must be a token of its own" in message


def test_placeholders_in_args_are_checked_at_their_position() -> None:
    errs = errors("name: s\ncommand: [python, t.py, '${args}']\nargs:\n  - --x=${nope\n  - --y=${lr2}\n"
                  "hyperParamValues: {lr: [1, 2]}\n")
    assert [(line, column) for line, column, _, _ in errs] == [(4, 5), (5, 5)]
    assert "never closes it" in errs[0][2] and errs[1][2].startswith("args[1]: '--y=${lr2}': unknown placeholder")


def test_a_hyperparameter_cannot_take_a_placeholders_name() -> None:
    errs = errors("name: s\ncommand: [t, '${args}']\nhyperParamValues: {logDir: [a, b]}\n")
    assert [(line, message) for line, _, message, _ in errs] == [
        (3, "hyperParamValues.logDir: hyperparameter logDir has the name of the placeholder ${logDir}")]


def test_with_a_command_nothing_is_reserved_for_tf_paint() -> None:
    spec = load_spec("name: s\ncommand: [t, '${args}']\nargs: [--log-dir, x, --threads=2]\n"
                     "hyperParamValues: {threads: [1, 2], lr: [1], LR: [2]}\n")
    assert len(expand(spec)) == 2
    assert errors("name: s\nargs: [--log-dir, x]\nhyperParamValues: {threads: [1, 2]}\n")  # tf-paint: still refused


def test_trial_names_do_not_depend_on_the_command() -> None:
    plain = load_spec("name: digits\nhyperParamValues: {learningRate: [0.01, 0.001], units: [32, 64]}\n")
    own = load_spec(SPEC)
    other = load_spec(SPEC.replace("train.py", "train2.py"))
    assert [t.name for t in expand(plain)] == [t.name for t in expand(own)] == [t.name for t in expand(other)]


@pytest.mark.parametrize("kind", ["TFJob", "TrainJob"])
def test_kubernetes_runs_the_command_with_empty_args_and_the_sweepctl_environment(kind: str) -> None:
    spec = load_spec(SPEC + f"kubernetes: {{kind: {kind}}}\n")
    trial = next(t for t in expand(spec) if t.params == {"learningRate": 0.001, "units": 32})
    folder = f"/tmp/tensorflow/digits/{trial.name}"
    if kind == "TFJob":
        run = tfjob(spec, trial, namespace="ns")["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]
    else:
        run = trainjob(spec, trial, namespace="ns")["spec"]["trainer"]
    assert run["image"] == "registry.example/me/digits:1"
    assert run["command"] == ["python", "train.py", "--learning_rate=0.001", "--units", "32", "--log_dir", folder]
    assert run["args"] == []
    assert run["env"] == [{"name": "SWEEPCTL_LOG_DIR", "value": folder},
                          {"name": "SWEEPCTL_TRIAL", "value": trial.name},
                          {"name": "SWEEPCTL_SWEEP", "value": "digits"}]


def test_a_changed_command_changes_the_template_not_the_trial() -> None:
    a, b = load_spec(SPEC), load_spec(SPEC.replace("train.py", "train2.py"))
    ta, tb = expand(a)[0], expand(b)[0]
    ma, mb = tfjob(a, ta, namespace="n"), tfjob(b, tb, namespace="n")
    assert ma["metadata"]["name"] == mb["metadata"]["name"]
    assert ma["metadata"]["annotations"] != mb["metadata"]["annotations"]  # both template hashes differ
    local = local_trial(a, ta)["spec"]
    assert local == {"command": ["python", "train.py", "--learning_rate=0.01", "--units", "32", "--log_dir", ["", ""]]}


def test_snake_case_names_are_for_a_command_only() -> None:
    own = load_spec("name: s\ncommand: [t, '${args}']\nhyperParamValues: {learning_rate: [0.1, 0.01]}\n")
    assert sorted(t.name.rsplit("-", 1)[0] for t in expand(own)) == ["s-lr0p01", "s-lr0p1"]  # DNS-safe
    ((line, column, message, hint),) = errors("name: s\nhyperParamValues: {learning_rate: [0.1, 0.01]}\n")
    assert (line, column) == (2, 20) and "must be camelCase" in message and "'learningRate'" in hint


def _own(command: str = "[python, train.py, '--lr=${learningRate}', '--hl=${hiddenLayers}']", extra: str = ""):
    lrs = ", ".join(f"0.{i + 1:03d}" for i in range(25))
    return load_spec(f"name: s\nbackend: kubernetes\ncommand: {command}\n{extra}"
                     f"hyperParamValues:\n  learningRate: [{lrs}]\n  hiddenLayers: [1, 2, 3, 4]\n")


def test_a_command_sweeps_changed_image_fetches_one_object_and_every_trial_shows_the_change() -> None:
    from test_shared_drift import plan_for

    plan, server, each = plan_for(_own(), _own(extra="image: me/digits:2\n"))
    assert len(server.fetched) == 1 and len(plan.drifted) == 100
    for change in plan.drifted:
        assert change.drift == each[change.name] == (
            "spec.tfReplicaSpecs.Chief.template.spec.containers[0].image: "
            "spec 'me/digits:2', cluster 'sweepctl/tf-paint:0.1.0'",)


def test_a_changed_command_is_diffed_once_as_its_template() -> None:
    from test_shared_drift import plan_for

    plan, server, each = plan_for(_own(), _own("[python, train2.py, '--lr=${learningRate}', '--hl=${hiddenLayers}']"))
    assert len(server.fetched) == 1 and len(plan.drifted) == 100
    for change in plan.drifted:
        assert change.drift == each[change.name] == (
            "spec.tfReplicaSpecs.Chief.template.spec.containers[0].command[1]: spec 'train2.py', cluster 'train.py'",)
    plan, server, _ = plan_for(_own(), _own("[python, train.py, '--learning_rate=${learningRate}', "
                                            "'--hl=${hiddenLayers}']"))
    assert len(server.fetched) == 1
    assert {c.drift for c in plan.drifted} == {("spec.tfReplicaSpecs.Chief.template.spec.containers[0].command[2]: "
                                               "spec '--learning_rate=${learningRate}', cluster '--lr=${learningRate}'",)}


def test_a_command_object_whose_command_was_edited_is_diffed_on_its_own() -> None:
    from test_shared_drift import plan_for

    edited = expand(_own())[3].name

    def set_command(body: dict) -> None:
        body["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["command"][2] = "--lr=9"

    plan, server, each = plan_for(_own(), _own(extra="image: me/digits:2\n"), edit={edited: set_command})
    assert edited in server.fetched and len(server.fetched) == 2
    by_name = {c.name: c for c in plan.drifted}
    assert by_name[edited].drift == each[edited] and len(each[edited]) == 2  # the image and its own command


def test_every_trial_of_a_command_spec_has_the_same_template() -> None:
    from sweepctl.core.manifests import COMMAND, trial_template

    s = _own(extra="args: ['${args}', '--out=${logDir}/m']\n")
    templates = set()
    for t in expand(s):
        for m in (tfjob(s, t, namespace="ns"), trainjob(s, t, namespace="ns")):
            template = trial_template(m["spec"], name=t.name, trial_id=t.id, flags=t.flags(), params=t.params,
                                      command=m["metadata"]["annotations"][COMMAND])
            assert template is not None
            templates.add(repr(template))
    assert len(templates) == 2  # one per kind
