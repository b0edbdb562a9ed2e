"""``letsbot doctor``: one line per check, OK, WARN or FAIL with what to do about it.

The checks themselves live where the knowledge is: the configuration and the
database in the composition root (app/doctor.py, storage/doctor.py), each chat
platform in its adapter (``diagnose``). This module is only their common shape.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """The outcome of one check. ``remedy`` tells a volunteer what to do when it failed."""

    name: str
    ok: bool
    detail: str
    remedy: str = ""
    warning: bool = False  # ok, but worth a look: shown as WARN, doctor still succeeds

    @classmethod
    def passed(cls, name: str, detail: str) -> Check:
        return cls(name, True, detail)

    @classmethod
    def warned(cls, name: str, detail: str, remedy: str) -> Check:
        return cls(name, True, detail, remedy, warning=True)

    @classmethod
    def failed(cls, name: str, detail: str, remedy: str) -> Check:
        return cls(name, False, detail, remedy)

    def line(self) -> str:
        if self.warning:
            return f"WARN  {self.name}: {self.detail}; fix: {self.remedy}"
        if self.ok:
            return f"OK    {self.name}: {self.detail}"
        return f"FAIL  {self.name}: {self.detail}; fix: {self.remedy}"
