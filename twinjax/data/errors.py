"""Errors raised by the cohort data layer."""


class CohortError(ValueError):
    """Malformed cohort input. The message names the file, row(s), column and the fix."""

    def __init__(
        self, message: str, *, source: str | None = None, rows=None, column: str | None = None
    ):
        self.source = source
        self.rows = list(rows) if rows is not None else None
        self.column = column
        parts = []
        if source is not None:
            parts.append(f"{source}")
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:10])
            more = f" (+{len(self.rows) - 10} more)" if len(self.rows) > 10 else ""
            parts.append(f"row(s) {shown}{more}")
        if column is not None:
            parts.append(f"column {column!r}")
        prefix = ", ".join(parts) + ": " if parts else ""
        super().__init__(prefix + message)
