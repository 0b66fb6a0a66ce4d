"""The mistakes a person makes at the command line, as typed errors.

Each carries the problem and its fix; `license-sync` prints them as one line
(`license-sync: <problem>; <fix>`) and exits 2. Anything else (a bug) is not caught here.
"""

from __future__ import annotations

from pathlib import Path

from license_sync.errors import LicenseSyncError


class UsageProblem(LicenseSyncError):
    """Something the person running the command can fix; `fix` says how."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix


def read_text_file(path: Path, *, what: str, fix: str) -> str:
    """The text of `path`, or a UsageProblem naming `what` it is and how to fix it."""
    return read_bytes_file(path, what=what, fix=fix).decode("utf-8", "replace")


def read_bytes_file(path: Path, *, what: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageProblem(f"{what} {path} does not exist", fix) from None
    except IsADirectoryError:
        raise UsageProblem(f"{what} {path} is a folder, not a file", fix) from None
    except OSError as exc:
        raise UsageProblem(f"cannot read {what} {path} ({exc.strerror})", fix) from None


def output_folder(path: Path, *, option: str = "--out") -> Path:
    """`path` as a folder to write into (created if missing), or a UsageProblem."""
    if path.exists() and not path.is_dir():
        raise UsageProblem(
            f"{option} {path} is a file; {option} names a folder for the outputs",
            f"pass a folder (it is created when missing), e.g. {option} {path.parent / 'out'}",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(
            f"cannot create the folder {path} ({exc.strerror})",
            f"pass {option} a folder you can write to",
        ) from None
    return path
