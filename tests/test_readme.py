"""Every code block of the README works as written.

```python blocks run, each in a fresh namespace in a temporary directory (so the files they write go there);
```bash and ```sh blocks are checked, not run (they install, build or take minutes): every command they use
must exist (an executable on PATH, a sub-command of the ``entrosum`` command line, an importable module for
``python -m``) and every path of this repository they name must exist. Blocks not meant to run use other
fences (```cpp, ```cmake, ```text).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import time
from pathlib import Path

import pytest

from entrosum.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Top-level folders of the repository: a path starting with one of them must exist.
REPO_DIRS = ("tests/", "bench/", "cpp/", "python/", "docs/", ".ci/")
# Tools a shell block may use that are not this project's (pip and python come with any environment).
TOOLS = ("pip", "python", "cmake", "bash", "find", "xargs", "clang-format", "ruff", "mypy", "cibuildwheel",
         "sphinx-build")


def blocks(language: str) -> list[str]:
    """The README's code blocks fenced as ``language``, in order."""
    return [body for fence, body in FENCE.findall(README.read_text(encoding="utf-8")) if fence == language]


def commands(block: str) -> list[list[str]]:
    """The commands of a shell block: comments dropped, lines split at ``&&``, each split like a shell."""
    out = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "|"):
                if command:
                    out.append(command)
                command = []
            else:
                command.append(word)
    return out


def subcommands() -> set[str]:
    """The sub-commands of the ``entrosum`` command line."""
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return set(action.choices)


def entrosum_options() -> set[str]:
    """The options of the ``entrosum`` command itself (``--version``, ``--help``)."""
    return {option for action in build_parser()._actions for option in action.option_strings}


PYTHON_BLOCKS = blocks("python")
SHELL_BLOCKS = blocks("bash") + blocks("sh")


def test_the_readme_has_runnable_blocks_for_every_model():
    text = "\n".join(PYTHON_BLOCKS)
    for model in ("PPCA", "FactorAnalysis", "GaussianMixture", "BernoulliMixture", "PoissonMixture", "SparseCoding"):
        assert f"entrosum.{model}(" in text, f"no runnable README example fits {model}"
    assert ".report()" in text and ".plot()" in text


def test_the_first_two_commands_are_the_install_and_test_commands():
    first = SHELL_BLOCKS[0].splitlines()
    assert first[0].startswith("pip install . && python -m entrosum demo")
    assert first[1].startswith('pip install ".[test]" && python -m pytest')


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = PYTHON_BLOCKS[index]
    started = time.perf_counter()
    exec(compile(source, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})
    # Examples stay small: all of them together run in well under 15 s.
    assert time.perf_counter() - started < 10, f"README python block {index + 1} is too slow for an example"
    if "matplotlib" in source or ".plot(" in source:
        import matplotlib.pyplot as plt

        plt.close("all")


def test_shell_blocks_use_commands_and_paths_that_exist():
    entrosum_commands = subcommands()
    checked = 0
    for block in SHELL_BLOCKS:
        for command in commands(block):
            program, arguments = command[0], command[1:]
            if program == "entrosum":
                assert arguments and (arguments[0] in entrosum_commands or arguments[0] in entrosum_options()), \
                    f"no such command: {' '.join(command)}"
            elif program == "python" and arguments[:1] == ["-m"]:
                module = arguments[1]
                if module == "entrosum":
                    assert arguments[2] in entrosum_commands, f"no such command: {' '.join(command)}"
                else:
                    assert importlib.util.find_spec(module) is not None or module in ("build",), module
            elif program == "python" and arguments and arguments[0].endswith(".py"):
                assert (REPO / arguments[0]).is_file(), f"{arguments[0]} is not in the repository"
            elif program == "./build-cpp/cpp/examples/gaussian_mixture_example":
                assert (REPO / "cpp/examples/gaussian_mixture.cpp").is_file()
            else:
                assert program in TOOLS, f"README uses an unknown command {program!r}: {' '.join(command)}"
            for word in arguments:
                if word.startswith(REPO_DIRS):
                    assert (REPO / word.split("=")[0]).exists(), f"README names {word}, not in the repository"
            checked += 1
    assert checked >= 10
