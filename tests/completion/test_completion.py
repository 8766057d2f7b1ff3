"""Shell completion, as the shells ask for it: the installed `sweepctl` in a fresh
process per <TAB>, driven by typer's completion environment variables (what the
scripts of `--show-completion` set), and once through a real interactive bash.
Namespace sweeps come from the API-only control plane, listed as the README
Role's user."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from readme_role import readme_role

BIN = Path(sys.executable).parent
SWEEPCTL = str(BIN / "sweepctl")
HEAVY = ("tensorflow", "kubernetes", "optuna", "jsonschema", "deepdiff", "rich", "PIL", "pydantic")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_SWEEPCTL", "_TYPER", "COMP_"))}
    return {**env, **extra}


def bash(line: str, *, cwd: Path, timeout: float = 60, **env: str) -> list[str]:
    """What bash's completion function gets for `line` with the cursor at its end, as the script passes it."""
    words = _bash_words(line)
    res = subprocess.run([SWEEPCTL], env=_env(COMP_WORDS=" ".join(words), COMP_CWORD=str(len(words) - 1),
                                              _SWEEPCTL_COMPLETE="complete_bash", **env),
                         capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return [line for line in res.stdout.splitlines() if line]  # as bash's COMPREPLY=( $(...) ) reads it


def _bash_words(line: str) -> list[str]:
    """bash's COMP_WORDS: split at blanks, and `=` is a word of its own (it is in COMP_WORDBREAKS)."""
    words: list[str] = []
    for blank_word in line.split(" "):
        parts = blank_word.split("=")
        for i, part in enumerate(parts):
            if i:
                words.append("=")
            if part or (i == 0 and not blank_word):
                words.append(part)
    return words


def zsh(line: str, *, cwd: Path) -> str:
    res = subprocess.run([SWEEPCTL], env=_env(_TYPER_COMPLETE_ARGS=line, _SWEEPCTL_COMPLETE="complete_zsh"),
                         capture_output=True, text=True, cwd=cwd, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def fish(line: str, *, cwd: Path) -> list[str]:
    res = subprocess.run([SWEEPCTL], env=_env(_TYPER_COMPLETE_ARGS=line, _SWEEPCTL_COMPLETE="complete_fish",
                                              _TYPER_COMPLETE_FISH_ACTION="get-args"),
                         capture_output=True, text=True, cwd=cwd, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def local_sweep(state_dir: Path, name: str) -> None:
    """A sweep's state as the local backend leaves it (only its existence matters to completion)."""
    (state_dir / "sweeps" / name).mkdir(parents=True)
    (state_dir / "sweeps" / name / "state.json").write_text("{}")


def test_commands_and_flags(tmp_path: Path) -> None:
    assert bash("sweepctl ", cwd=tmp_path) == ["plan", "apply", "destroy", "tensorboard", "status", "prune", "report",
                                               "runtime", "unlock", "schema"]
    assert bash("sweepctl pr", cwd=tmp_path) == ["prune"]
    assert "--auto-approve" in bash("sweepctl apply --a", cwd=tmp_path)
    assert bash("sweepctl status --st", cwd=tmp_path) == ["--strategy", "--state-dir"]
    assert bash("sweepctl status --strategy ", cwd=tmp_path) == ["min", "max", "latest"]


def test_spec_files_are_yaml_files_and_folders(tmp_path: Path) -> None:
    for name in ("lab.yaml", "lr.yml", "notes.txt", ".hidden.yaml", "specs/deep.yaml", "specs/plan.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    assert bash("sweepctl plan ", cwd=tmp_path) == ["lab.yaml", "lr.yml", "specs/"]
    assert bash("sweepctl plan l", cwd=tmp_path) == ["lab.yaml", "lr.yml"]
    assert bash("sweepctl destroy sp", cwd=tmp_path) == ["specs/"]
    assert bash("sweepctl status specs/", cwd=tmp_path) == ["specs/deep.yaml"]
    assert bash(f"sweepctl plan {tmp_path}/specs/d", cwd=Path("/")) == [f"{tmp_path}/specs/deep.yaml"]
    # apply also takes a saved plan
    assert bash("sweepctl apply specs/", cwd=tmp_path) == ["specs/deep.yaml", "specs/plan.json"]
    assert bash("sweepctl plan .h", cwd=tmp_path) == [".hidden.yaml"]


def test_other_paths_are_left_to_the_shells_file_completion(tmp_path: Path) -> None:
    """--out and --state-dir: nothing offered, so bash's `-o default` completes any file."""
    (tmp_path / "out.png").write_text("")
    assert bash("sweepctl report --out ou", cwd=tmp_path) == []


def test_keep_best_in_bash_which_splits_words_at_the_equals_sign(tmp_path: Path) -> None:
    assert bash("sweepctl status --keep ", cwd=tmp_path) == ["best=1", "best=3", "best=5", "best=10"]
    assert bash("sweepctl prune --keep b", cwd=tmp_path) == ["best=1", "best=3", "best=5", "best=10"]
    # bash replaces only its own current word: `=` right after one, the count after it
    assert bash("sweepctl prune --keep best=", cwd=tmp_path) == ["1", "3", "5", "10"]
    assert bash("sweepctl report --keep best=1", cwd=tmp_path) == ["1", "10"]
    # and the words after it are parsed as typed: --keep took best=1, so the next word is the spec
    (tmp_path / "lab.yaml").write_text("")
    assert bash("sweepctl status --keep best=1 la", cwd=tmp_path) == ["lab.yaml"]
    assert bash("sweepctl status --keep=best=", cwd=tmp_path) == ["1", "3", "5", "10"]


def test_zsh_and_fish_get_commands_with_their_help(tmp_path: Path) -> None:
    out = zsh("sweepctl sta", cwd=tmp_path)
    assert out.startswith("_arguments '*: :((") and '"status":"Every trial with its hyperparameters' in out
    assert fish("sweepctl prune --keep ", cwd=tmp_path) == ["best=1", "best=3", "best=5", "best=10"]
    lines = fish("sweepctl sch", cwd=tmp_path)
    assert len(lines) == 1 and lines[0].startswith("schema\tPrint the spec's JSON Schema")


def test_local_sweeps_from_the_state_folder(tmp_path: Path) -> None:
    local_sweep(tmp_path / ".sweepctl", "starry-night")
    local_sweep(tmp_path / ".sweepctl", "starry-tpe")
    local_sweep(tmp_path / "elsewhere", "other")
    (tmp_path / ".sweepctl" / "sweeps" / "Not_A_Sweep").mkdir()
    env = {"KUBECONFIG": str(tmp_path / "none")}
    assert bash("sweepctl status --sweep ", cwd=tmp_path, **env) == ["starry-night", "starry-tpe"]
    assert bash("sweepctl prune --sweep starry-t", cwd=tmp_path, **env) == ["starry-tpe"]
    assert bash("sweepctl report --state-dir elsewhere --sweep ", cwd=tmp_path, **env) == ["other"]


def test_show_completion_prints_each_shells_script() -> None:
    for shell, expected in (("bash", "complete -o default -F _sweepctl_completion sweepctl"),
                            ("zsh", "compdef _sweepctl_completion sweepctl"),
                            ("fish", "complete --command sweepctl --no-files")):
        # typer's switch to take the shell from the command line instead of detecting this test's own
        res = subprocess.run([SWEEPCTL, "--show-completion", shell], capture_output=True, text=True, timeout=60,
                             env=_env(_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"))
        assert res.returncode == 0 and expected in res.stdout, res.stdout + res.stderr
    assert "--install-completion" in subprocess.run([SWEEPCTL, "--help"], capture_output=True, text=True).stdout


def test_install_completion_writes_the_script_and_sources_it_from_bashrc(tmp_path: Path) -> None:
    subprocess.run([SWEEPCTL, "--install-completion", "bash"], capture_output=True, text=True, check=True,
                   env=_env(HOME=str(tmp_path), _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"))
    script = tmp_path / ".bash_completions" / "sweepctl.sh"
    assert "compopt -o nospace" in script.read_text()  # sweepctl's script, not typer's plain one
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def _interactive_bash(tmp_path: Path, keys: list[bytes]) -> str:
    """Type into a real interactive bash with the script of --show-completion loaded; its screen, as text."""
    script = subprocess.run([SWEEPCTL, "--show-completion", "bash"], capture_output=True, text=True, check=True,
                            env=_env(_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")).stdout
    (tmp_path / "completion.bash").write_text(script)
    env = _env(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PS1="$ ", HOME=str(tmp_path), TERM="dumb",
               KUBECONFIG=str(tmp_path / "none"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: bash reading from the terminal
        os.chdir(tmp_path)
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
    screen = b""

    def read(until: float, quiet: float = 0.0) -> None:
        """Until `until`, or once nothing came for `quiet` seconds after something did."""
        nonlocal screen
        last = None
        while time.monotonic() < until and not (quiet and last and time.monotonic() - last > quiet):
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    return
                last = time.monotonic()

    try:
        os.write(fd, b"source completion.bash\n")
        read(time.monotonic() + 1)
        for key in keys:
            os.write(fd, key)
            read(time.monotonic() + 20, quiet=1.0) if b"\t" in key else read(time.monotonic() + 0.3)
    finally:
        os.write(fd, b"\x03")
        read(time.monotonic() + 0.3)
        os.write(fd, b"exit\n")
        read(time.monotonic() + 0.5)
        os.close(fd)
        os.waitpid(pid, 0)
    return screen.decode(errors="replace").replace("\r", "")


def test_a_real_bash_completes_a_sweep_name_and_best_k(tmp_path: Path) -> None:
    local_sweep(tmp_path / ".sweepctl", "starry-night")
    # <TAB> completes the only sweep, then the line is echoed back instead of run
    screen = _interactive_bash(tmp_path, [b"sweepctl status --sweep sta\t", b"--keep b\t", b"7\x01echo \n"])
    assert "\nsweepctl status --sweep starry-night --keep best=7\n" in screen, screen  # echo's own line
    # right after `best=`, two <TAB>s list the counts
    screen = _interactive_bash(tmp_path, [b"sweepctl status --keep best=\t\t", b"\x01echo \x055\n"])
    assert re.search(r"\n1\s+10\s+3\s+5\s*\n", screen), screen  # bash's list, sorted as text
    assert "\nsweepctl status --keep best=5\n" in screen, screen


def _completion_imports(env: dict[str, str], cwd: Path) -> tuple[list[str], list[str]]:
    """What a completion printed, and the heavy modules it imported (sweepctl's entry point, run in a fresh
    interpreter named `sweepctl`: the completion variable's name comes from the program's)."""
    probe = (
        "import sys\nsys.argv = ['sweepctl']\nfrom sweepctl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('IMPORTED', *[m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, cwd=cwd)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("IMPORTED"), proc.stderr
    return proc.stdout.splitlines(), last.split()[1:]


def test_completion_imports_nothing_heavy_even_when_it_lists_the_cluster(control_plane, namespace: str,
                                                                         tmp_path: Path) -> None:
    spec = tmp_path / "lab.yaml"
    spec.write_text(f"name: lab\nbackend: kubernetes\nnamespace: {namespace}\nhyperParamValues: {{lr: [0.1]}}\n")
    subprocess.run([SWEEPCTL, "apply", str(spec), "--auto-approve"], cwd=tmp_path, check=True, capture_output=True,
                   env=_env(KUBECONFIG=str(control_plane.kubeconfig)))
    env = _env(COMP_WORDS=f"sweepctl status -n {namespace} --sweep ", COMP_CWORD="5",
               _SWEEPCTL_COMPLETE="complete_bash", KUBECONFIG=str(control_plane.kubeconfig))
    assert _completion_imports(env, tmp_path) == (["lab"], [])  # listed from the cluster, with nothing heavy
    # zsh and fish show each command's help: as written, not rendered by rich
    for shell in ("zsh", "fish"):
        env = _env(_TYPER_COMPLETE_ARGS="sweepctl ", _SWEEPCTL_COMPLETE=f"complete_{shell}",
                   _TYPER_COMPLETE_FISH_ACTION="get-args")
        printed, heavy = _completion_imports(env, tmp_path)
        assert any("status" in line for line in printed) and heavy == [], printed


def test_namespace_sweeps_as_the_readme_role_user(sweepctl, control_plane, namespace: str, kube_env,
                                                  tmp_path: Path) -> None:
    """The sweeps of the namespace given (-n), else of the context's, listed with the README Role only."""
    for name in ("starry-night", "starry-tpe"):
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(f"name: {name}\nbackend: kubernetes\nnamespace: {namespace}\n"
                        "hyperParamValues: {learningRate: [0.1]}\n")
        assert sweepctl("apply", spec, "--auto-approve").exit_code == 0
    control_plane.kubectl("create", "namespace", f"{namespace}-b")
    try:
        other = tmp_path / "other.yaml"
        other.write_text(f"name: other\nbackend: kubernetes\nnamespace: {namespace}-b\n"
                         "hyperParamValues: {learningRate: [0.1]}\n")
        assert sweepctl("apply", other, "--auto-approve").exit_code == 0
        control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=readme_role())
        control_plane.kubectl("create", "rolebinding", "sweepctl", "-n", namespace, "--role", "sweepctl",
                              "--user", "restricted")
        local_sweep(tmp_path / ".sweepctl", "local-one")
        as_user = {"KUBECONFIG": str(control_plane.kubeconfig)}
        line = f"sweepctl status --context restricted@testbed -n {namespace} --sweep "
        assert bash(line, cwd=tmp_path, **as_user) == ["local-one", "starry-night", "starry-tpe"]
        assert bash(line + "starry-t", cwd=tmp_path, **as_user) == ["starry-tpe"]
        assert bash(line.replace("status", "status --backend kubernetes"), cwd=tmp_path, **as_user) == [
            "starry-night", "starry-tpe"]
        assert bash(line.replace("status", "status --backend local"), cwd=tmp_path, **as_user) == ["local-one"]
        # the Role is only in the first namespace: the second lists nothing, and completion says no error
        assert bash(line.replace(namespace, f"{namespace}-b"), cwd=tmp_path, **as_user) == ["local-one"]
        # without -n: the context's namespace, as every command takes it
        kubeconfig = tmp_path / "kubeconfig"
        config = control_plane.kubectl("config", "view", "--raw", "-o", "yaml").stdout
        kubeconfig.write_text(config)
        subprocess.run([str(control_plane.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), "config",
                        "set-context", "restricted@testbed", f"--namespace={namespace}"], check=True,
                       capture_output=True)
        subprocess.run([str(control_plane.bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig), "config",
                        "use-context", "restricted@testbed"], check=True, capture_output=True)
        assert bash("sweepctl prune --backend kubernetes --sweep ", cwd=tmp_path, KUBECONFIG=str(kubeconfig)) == [
            "starry-night", "starry-tpe"]
    finally:
        control_plane.kubectl("delete", "namespace", f"{namespace}-b", "--wait=false", check=False)


def test_an_unreachable_cluster_costs_at_most_the_timeout(tmp_path: Path) -> None:
    """A kubeconfig whose server never answers: the local sweeps still come (after the 1 s timeout; without
    one the <TAB> would hang, and the 20 s limit here fail it, whatever the machine's load)."""
    import socket

    with socket.socket() as listener:  # accepts nothing: connections wait in its backlog
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        (tmp_path / "kubeconfig").write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: k, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n")
        local_sweep(tmp_path / ".sweepctl", "starry-night")
        assert bash("sweepctl status --sweep ", cwd=tmp_path, timeout=20,
                    KUBECONFIG=str(tmp_path / "kubeconfig")) == ["starry-night"]


def test_client_certificates_and_token_files_as_kubectl_reads_them(control_plane, namespace: str,
                                                                  tmp_path: Path) -> None:
    """Credentials in files next to the kubeconfig (relative paths), and a certificate the cluster's CA signed."""
    import yaml

    spec = tmp_path / "lab.yaml"
    spec.write_text(f"name: lab\nbackend: kubernetes\nnamespace: {namespace}\nhyperParamValues: {{lr: [0.1]}}\n")
    subprocess.run([SWEEPCTL, "apply", str(spec), "--auto-approve"], cwd=tmp_path, check=True, capture_output=True,
                   env=_env(KUBECONFIG=str(control_plane.kubeconfig)))
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", input=readme_role())
    control_plane.kubectl("create", "rolebinding", "sweepctl", "-n", namespace, "--role", "sweepctl",
                          "--user", "restricted", "--user", "cert-user")
    pki = control_plane.kubeconfig.parent / "pki"
    creds = tmp_path / "creds"
    creds.mkdir()
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(creds / "user.key"), "-out", str(creds / "user.csr"),
                    "-subj", "/CN=cert-user"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(creds / "user.csr"), "-CA", str(pki / "ca.crt"),
                    "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-out", str(creds / "user.crt"),
                    "-days", "1"], check=True, capture_output=True)
    config = yaml.safe_load(control_plane.kubectl("config", "view", "--raw", "-o", "yaml").stdout)
    token = next(u["user"]["token"] for u in config["users"] if u["name"] == "restricted")
    (creds / "token").write_text(token + "\n")
    config["users"] = [{"name": "by-cert", "user": {"client-certificate": "creds/user.crt",
                                                    "client-key": "creds/user.key"}},
                       {"name": "by-file", "user": {"tokenFile": "creds/token"}}]
    cluster = config["clusters"][0]["name"]
    config["contexts"] = [{"name": n, "context": {"cluster": cluster, "user": n, "namespace": namespace}}
                          for n in ("by-cert", "by-file")]
    config["current-context"] = "by-cert"
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    env = {"KUBECONFIG": str(tmp_path / "kubeconfig")}
    assert bash("sweepctl status --sweep ", cwd=Path("/"), **env) == ["lab"]
    assert bash("sweepctl status --context by-file --sweep ", cwd=Path("/"), **env) == ["lab"]
    # another certificate of that CA, an identity without the Role: nothing listed, and nothing said
    (creds / "user.crt").write_text((pki / "apiserver.crt").read_text())
    (creds / "user.key").write_text((pki / "apiserver.key").read_text())
    assert bash("sweepctl status --sweep ", cwd=Path("/"), **env) == []
