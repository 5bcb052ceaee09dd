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


def test_train_help_is_one_page_and_loads_no_torch_the_second_time(tmp_path):
    import os

    code = ("import sys; from genlab.cli import main\n"
            "try: main(sys.argv[1:])\nexcept SystemExit: pass\nprint('torch' in sys.modules)")
    env = {**os.environ, "GENLAB_CACHE": str(tmp_path), "COLUMNS": "100"}

    def page(*argv):
        done = subprocess.run([sys.executable, "-c", code, "train", *argv, "--help"], capture_output=True,
                              text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.rsplit("\n", 2)[0], done.stdout.split()[-1]

    first, torch_loaded = page()
    assert torch_loaded == "True" and "training settings:" in first and "--lr X" in first
    assert "--likelihood" not in first and len(first.splitlines()) < 80   # no model's settings: one page
    again, torch_loaded = page()
    assert (again, torch_loaded) == (first, "False")
    vae, _ = page("vae")
    assert "settings of vae:" in vae and "--likelihood {auto,bernoulli,gaussian}" in vae and vae != first
