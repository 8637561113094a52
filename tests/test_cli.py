"""The ``videossl`` command table: every command loads, each help text is written once, ``--help`` stays light."""
import argparse
import subprocess
import sys

from videossl import cli


def test_every_command_loads_its_arguments_and_runner():
    for group, commands in cli.COMMANDS.items():
        for command in commands:
            add_arguments, run = command.load()
            assert callable(add_arguments) and callable(run), f"{group} {command.name}"
            add_arguments(argparse.ArgumentParser())  # the owner's arguments build


def test_names_are_unique_and_every_command_has_one_help_text():
    for group, commands in cli.COMMANDS.items():
        names = [c.name for c in commands]
        assert len(names) == len(set(names)), group
        assert all(c.help and c.help == c.help.strip() for c in commands), group
    assert not set(cli.COMMANDS) - {None} & {c.name for c in cli.COMMANDS[None]}  # a group is not also a command


def test_group_help_lists_the_table_help():
    proc = subprocess.run([sys.executable, "-m", "videossl.cli", "eval", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    for command in cli.COMMANDS["eval"]:
        assert command.name in proc.stdout
    knn = next(c for c in cli.COMMANDS["eval"] if c.name == "knn")
    assert " ".join(knn.help.split()[:3]) in " ".join(proc.stdout.split())


def test_help_imports_no_command_module_and_no_torch():
    code = ("import sys, contextlib, io\nfrom videossl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n    except SystemExit: pass\n"
            "heavy = sorted(m for m in sys.modules if m in ('torch', 'omegaconf', 'numpy') or m.startswith("
            "('videossl.eval', 'videossl.data', 'videossl.methods', 'videossl.bench', 'videossl.viz')))\n"
            "print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_list_methods_runs():
    proc = subprocess.run([sys.executable, "-m", "videossl.cli", "list", "methods"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "simclr" in proc.stdout and "byol" in proc.stdout
