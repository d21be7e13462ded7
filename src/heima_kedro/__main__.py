"""The ``heima-kedro`` command (also ``python -m heima_kedro``): ``kedro run`` with its options;
``heima-kedro demo``, the Heima demo on one image and question; ``heima-kedro sweep``, the study
once per thinking setting and their comparison (see ``--help`` of each)."""

import sys
from pathlib import Path
from typing import Any

from heima_kedro.cli.commands import demo_command, sweep_command

_COMMANDS = {"demo": demo_command, "sweep": sweep_command}


def main(*args: Any, **kwargs: Any) -> Any:
    kwargs["standalone_mode"] = not hasattr(sys, "ps1")
    argv = list(args[0]) if args else sys.argv[1:]
    if argv[:1] and argv[0] in _COMMANDS:  # they start Kedro themselves, in the project they name
        return _COMMANDS[argv[0]].main(argv[1:], prog_name=f"heima-kedro {argv[0]}", **kwargs)
    # Imported here: importing Kedro's project module logs its logging set-up, which the demo hides.
    from kedro.framework.cli.utils import find_run_command
    from kedro.framework.project import configure_project

    package_name = Path(__file__).parent.name
    configure_project(package_name)
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
