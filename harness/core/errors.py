"""User-facing errors: the CLI prints these as one line, never as a traceback."""


class SparError(Exception):
    """A mistake in the user's input (file, field, flag, model, server) with a one-line explanation."""


class DataError(SparError):
    """A data file is malformed; the message names the file, line and field."""

    def __init__(self, path: object, message: str, line: int | None = None, field: str | None = None):
        where = f"{path}" + (f":{line}" if line is not None else "")
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")
        self.path, self.line, self.field = path, line, field
