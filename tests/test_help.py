"""`genlab --help` answers at once: the commands grouped by what a user does, without torch, and
the same commands, with the same lines of help, as the full parser has."""
import argparse
import subprocess
import sys

from genlab.help import COMMANDS, HELP, family_commands, top_help


def test_help_loads_no_torch():
    code = "import sys; from genlab.cli import main; main([]); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().endswith("False"), done.stderr
    assert "look at a trained run:" in done.stdout and "  sample " in done.stdout


def test_the_help_lists_every_command_of_the_parser_with_its_line():
    from genlab.cli import build_parser
    from genlab.registry import FAMILIES

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c.dest: c.help for c in sub._choices_actions}
    own = {c.name: c.help for f in FAMILIES for c in f.commands}
    assert dict(family_commands()) == own
    assert listed == {**HELP, **own}
    text = top_help()
    for group in COMMANDS:
        assert f"\n{group}:\n" in text
    assert all(f"  {name} " in text for name in listed)


def test_help_flag_exits_as_argparse_does(capsys):
    import pytest

    from genlab.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "use a trained run:" in capsys.readouterr().out
