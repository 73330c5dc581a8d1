"""The two commands: pins agree, CI runs the README's command, and `make lab` really serves the course."""

import re
import signal
import socket
import subprocess
import time
import tomllib
import urllib.request
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def constraint_pins():
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_environment_yml_has_exactly_the_constraints_pins():
    text = (ROOT / "environment.yml").read_text()
    yml_pins = dict(re.findall(r"^\s*-\s*([A-Za-z0-9_.-]+)==(\S+)\s*$", text, flags=re.M))
    assert yml_pins == constraint_pins()


def test_every_direct_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + [n for extra in ("dev", "trl", "docs") for n in project["optional-dependencies"][extra]]
    bare = {re.split(r"[<>=!~\[ ]", n)[0].lower().replace("_", "-") for n in names}
    pinned = {k.lower().replace("_", "-") for k in constraint_pins()}
    assert bare <= pinned, f"not pinned in constraints.txt: {sorted(bare - pinned)}"
    assert constraint_pins()["torch"] == "2.13.0"


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import version

    for name, pin in constraint_pins().items():
        assert version(name).split("+")[0] == pin, f"{name} {version(name)} installed, {pin} pinned"


def test_ci_runs_exactly_the_readme_test_commands():
    """CI runs the README's test command, then the portability run the README and CONTRIBUTING describe."""
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make lab" in readme and "make test-portable" in readme
    assert "make test-portable" in (ROOT / "CONTRIBUTING.md").read_text()
    ci = [l for l in (ROOT / ".ci/run").read_text().splitlines() if l.strip() and not l.startswith(("#", "set ", "cd "))]
    assert ci == ["make test", "make test-portable"]
    assert "test-portable:" in (ROOT / "Makefile").read_text()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_notebooks_over_http():
    port, token = free_port(), "rlcourse-test-token"
    args = f"LAB_ARGS=--no-browser --IdentityProvider.token={token} --ServerApp.ip=127.0.0.1"
    proc = subprocess.Popen(["make", "--no-print-directory", "lab", f"PORT={port}", args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/contents/notebooks?token={token}"
        deadline, listing = time.time() + 90, None
        while time.time() < deadline and listing is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    listing = json.load(response)
            except OSError:
                assert proc.poll() is None, "make lab exited before serving"
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 90 s"
        names = {item["name"] for item in listing["content"]}
        assert "01_llm_as_policy.ipynb" in names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as response:
            assert "JupyterLab" in response.read().decode()
    finally:
        import os

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
