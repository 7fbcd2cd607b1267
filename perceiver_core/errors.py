"""Exceptions the framework raises on purpose.

`UserError` is anything the user can fix (a bad registry file, a missing plugin, a malformed tensor or
checkpoint). The CLI turns it into one line on stderr and exit code 2; a traceback is only ever shown for a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input the user controls; its message says what was wrong and how to fix it."""


class RegistryError(UserError):
    """A registry file (or a `--set` override) is invalid.

    The message starts with `file:line: key.path:` whenever the location is known.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, key: str | None = None):
        message = _one_line(message)  # a key or value of the file may hold a newline: the error stays one line
        self.file, self.line, self.key, self.reason = file, line, key, message
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(_one_line(where) + message)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n") if "\n" in text or "\r" in text else text


class RegistryErrors(RegistryError):
    """Several errors of one pipeline at once (`errors`); the message is the first, saying how many follow."""

    def __init__(self, errors: list[RegistryError]):
        self.errors = list(errors)
        first = self.errors[0]
        more = len(self.errors) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''}: `perceiver validate` lists them)" if more else ""
        super().__init__(first.reason + suffix, file=first.file, line=first.line, key=first.key)


class BuildError(UserError):
    """A component's factory rejected its config when the model was built (e.g. heads that do not divide the
    channels the data gives). `section` names the pipeline table (`preprocessor`, `task`, `inputs.image.position`,
    ...) and `detail` the factory's own message, so that the caller can point at the file:line:key of the value at
    fault."""

    def __init__(self, message: str, *, section: str | None = None, detail: str | None = None):
        self.section, self.detail = section, detail if detail is not None else message
        super().__init__(message)


class PluginError(UserError):
    """A plugin failed to load or register (raised only in strict mode; otherwise it is reported)."""


class MissingComponentError(UserError):
    """A pipeline names a component that no installed plugin registers."""


class CheckpointError(UserError):
    """A checkpoint file is missing, truncated, or not one of ours."""


class ByteArrayError(UserError, ValueError):
    """A tensor handed to the model does not satisfy the ByteArray contract."""


class BackendError(UserError):
    """A requested hardware backend is not installed or not usable on this machine."""


class DataError(UserError):
    """A dataset's files cannot be used: an empty folder, a class with no files, an unreadable file (the message
    names the path and the reason), a manifest without the named column.

    A data worker's exception reaches the main thread re-raised by torchdata with the worker's traceback as its
    message; this class keeps only the original line, so the CLI still prints one line.
    """

    def __init__(self, message: str = ""):
        message = str(message)
        if message.startswith("Caught ") and "Original Traceback" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)
class InputSizeError(UserError, ValueError):
    """An input's size does not fit a model built for one fixed size (e.g. learned positions without
    interpolation, a fixed pixel permutation); the message names both sizes and how to proceed."""
