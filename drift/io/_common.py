"""Helpers shared by the recording importers: session times, dataset attributes, labels."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

__all__ = ["RecordingWarning", "session_days", "format_attrs", "describe_session"]


class RecordingWarning(UserWarning):
    """Something in a recording was dropped or left undefined (e.g. a stimulus never shown)."""


def describe_session(index: int, sources: Sequence[str] | None) -> str:
    """``"session 2 (day03.nwb)"`` when a source is known, else ``"session 2"``."""
    if sources is not None and index < len(sources) and sources[index]:
        return f"session {index} ({sources[index]})"
    return f"session {index}"


def _to_datetime64(value: Any) -> np.datetime64 | None:
    """A datetime-like value as UTC ``datetime64[us]``; ``None`` for plain numbers."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("a boolean is not a session time")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return None
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[us]")
    if isinstance(value, str):
        text = value.strip()
        try:
            return _to_datetime64(float(text))
        except ValueError:
            pass
        return _to_datetime64(_dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return np.datetime64(value, "us")
    if isinstance(value, _dt.date):
        return np.datetime64(value, "D").astype("datetime64[us]")
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        return _to_datetime64(value.to_pydatetime())
    raise TypeError(f"cannot read {value!r} as a session time")


def session_days(
    times: Sequence[Any] | np.ndarray,
    sources: Sequence[str] | None = None,
) -> tuple[np.ndarray, str | None]:
    """Session times as days since the first session.

    Parameters
    ----------
    times : sequence, shape (sessions,)
        Either numbers (days) or datetime-likes (``datetime``, ``date``,
        ``numpy.datetime64``, ``pandas.Timestamp``, ISO-8601 text). Time-zone aware
        datetimes are compared in UTC. Numbers and datetimes cannot be mixed.
    sources : sequence of str, optional
        Names of the sessions' files, used in error messages.

    Returns
    -------
    days : ndarray, shape (sessions,)
        Float days since the first session (``days[0] == 0``), strictly increasing.
    origin : str or None
        ISO-8601 UTC time of the first session when datetimes were given.

    Raises
    ------
    ValueError
        When a time cannot be read, numbers and datetimes are mixed, a time is not
        finite, or the times are not strictly increasing.
    """
    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        values = list(times.astype("datetime64[us]").ravel())  # keeps them datetime64
    elif isinstance(times, list):
        values = times
    else:
        values = list(np.asarray(times, dtype=object).ravel())
    if len(values) == 0:
        raise ValueError("no session times were given")
    stamps: list[np.datetime64 | None] = []
    for i, value in enumerate(values):
        try:
            stamps.append(_to_datetime64(value))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{describe_session(i, sources)}: bad session time: {err}") from None
    is_date = [s is not None for s in stamps]
    if any(is_date) and not all(is_date):
        raise ValueError("session times mix numbers (days) and dates; give one kind")
    origin: str | None = None
    if all(is_date):
        first = stamps[0]
        micro = np.array([(s - first) / np.timedelta64(1, "us") for s in stamps], dtype=float)
        days = micro / 86_400e6
        origin = str(np.datetime_as_string(first, unit="s")) + "Z"
    else:
        days = np.array([float(v) for v in values], dtype=float)
        for i, d in enumerate(days):
            if not np.isfinite(d):
                raise ValueError(f"{describe_session(i, sources)}: session time {d} is not finite")
        days = days - days[0]
    for i in range(1, len(days)):
        if not days[i] > days[i - 1]:
            raise ValueError(
                "session times are not strictly increasing: "
                f"{describe_session(i, sources)} at {values[i]!s} does not come after "
                f"{describe_session(i - 1, sources)} at {values[i - 1]!s}"
            )
    return days, origin


def package_version() -> str:
    try:
        return metadata.version("ndk-drift")
    except metadata.PackageNotFoundError:
        return "unknown"


def format_attrs(origin: str | None, sources: Sequence[str] | None) -> dict[str, Any]:
    """Dataset attributes every imported recording carries."""
    attrs: dict[str, Any] = {
        "format": "ndk-drift",
        "format_version": 1,
        "kind": "recording",
        "time_units": "days",
        "package_version": package_version(),
    }
    if origin is not None:
        attrs["time_origin"] = origin
    if sources is not None and any(sources):
        attrs["sources"] = "\n".join(str(s) for s in sources)
    return attrs
