"""Close iteration 1 of a mapping project, as the Iteration dock's *Close iteration* does (the
same core call), with the command line's contract: a one-line ``error:`` and exit 2 on failure.

Usage: python -m reliability.close PROJECT.gpkg
"""

from __future__ import annotations

import sys

from rts_mapper_plugin.core.errors import RtsMapperError
from rts_mapper_plugin.core.project.loop import close_iteration
from rts_mapper_plugin.core.project.store import MappingProject


def main(argv: list[str] | None = None) -> int:
    (path,) = sys.argv[1:] if argv is None else argv
    try:
        close_iteration(MappingProject.open(path), 1)
    except RtsMapperError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
