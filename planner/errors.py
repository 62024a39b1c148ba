"""Exit codes and the error hierarchy.

Every error a user can cause is a :class:`PlannerError` subclass carrying its exit code, a one-line
message that names the file, field or line at fault, and an optional hint. The CLI prints
``error: <message>`` (and ``hint: <hint>``) on stderr and exits with the code; no traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (see the README's table)."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INFEASIBLE = 3
    SOLVER_ERROR = 4
    INTERNAL = 70
    INTERRUPTED = 130


class PlannerError(Exception):
    """Base class of every error a user can cause."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(PlannerError):
    """Invalid input: a malformed file, an out-of-range value, a bad flag combination."""


class CatalogError(InputError):
    """A catalog file is malformed, or a catalog id is unknown."""


class UnknownIdError(CatalogError):
    """A GPU, model or link id that no catalog defines."""


class DoesNotFitError(InputError):
    """A model does not fit in the memory of the requested GPU group."""


class UnsupportedPrecisionError(InputError):
    """The GPU has no tensor-core support for the requested precision (e.g. fp8 on A100)."""


class InfeasibleError(PlannerError):
    """No deployment meets the targets; the message carries the diagnosis."""

    exit_code = ExitCode.INFEASIBLE

    def __init__(self, message: str, *, hint: str | None = None, diagnosis: dict[str, object] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.diagnosis = diagnosis or {}


class SolverError(PlannerError):
    """The MIP solver failed or found no incumbent within its time limit."""

    exit_code = ExitCode.SOLVER_ERROR


class StudyInterrupted(PlannerError):
    """A study stopped by Ctrl-C (or SIGTERM) whose finished points are kept in a run directory: the message says
    how many, the hint how to resume."""

    exit_code = ExitCode.INTERRUPTED
