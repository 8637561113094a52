"""Files a dataset skipped as unreadable: how they are tracked, and the ``bad_files.csv`` a run leaves behind.

``VideoDataset`` appends one line ``path<TAB>reason`` to its bad-file log each time it skips a file, from whichever
process decoded it (DataLoader workers included: each line is one ``O_APPEND`` write, so workers do not interleave).
Without an explicit ``bad_file_log`` the log is a private temp file, created on the first skip only and removed when
the process that built the dataset exits.

At the end of a run, ``report_bad_files(dataset, run_dir)`` writes ``run_dir/bad_files.csv`` (columns ``path,
reason, count``: how many times the file was skipped, its most frequent reason) and returns the one-line summary
``"N files were skipped as unreadable; see RUN/bad_files.csv"``; nothing is written when no file was skipped.
"""
from __future__ import annotations

import atexit
import csv
import io
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from videossl.files import write_text  # atomic; a full or read-only disk is one line naming the path

CSV_NAME = "bad_files.csv"
CSV_COLUMNS = ("path", "reason", "count")

_PRIVATE_LOGS: dict[str, int] = {}  # private log path -> pid of the process that owns (and removes) it


class BadFile(NamedTuple):
    """One skipped file: its path, why it was skipped (most frequent reason) and how many times."""

    path: str
    reason: str
    count: int


def private_log_path() -> str:
    """A fresh temp path for a dataset's bad-file log (the file appears on the first skip); removed at exit."""
    name = f"videossl-bad-files-{os.getpid()}-{os.urandom(4).hex()}.tsv"
    path = os.path.join(tempfile.gettempdir(), name)
    if not _PRIVATE_LOGS:
        atexit.register(_remove_private_logs)
    _PRIVATE_LOGS[path] = os.getpid()
    return path


def _remove_private_logs() -> None:
    for path, owner in list(_PRIVATE_LOGS.items()):
        if owner == os.getpid():  # a forked worker never removes its parent's log
            try:
                os.unlink(path)
            except OSError:
                pass
            _PRIVATE_LOGS.pop(path, None)


def append_bad_file(log_path: str | Path, path: str, reason: str) -> None:
    """Append ``path<TAB>reason`` to ``log_path`` in one write (safe from several processes at once)."""
    line = f"{_clean(path)}\t{_clean(reason)}\n".encode("utf-8", "replace")
    try:
        fd = os.open(str(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        pass  # the log is a report: a full or read-only temp disk must not stop the training


def _clean(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").split())


def _log_of(source: Any) -> str | None:
    if isinstance(source, (str, Path)):
        return str(source)
    log = getattr(source, "bad_file_log", None)
    if log:
        return str(log)
    inner = getattr(source, "dataset", None)  # a DataLoader or a Subset
    return _log_of(inner) if inner is not None and inner is not source else None


def bad_files(sources: Any) -> list[BadFile]:
    """The files skipped by ``sources`` (a dataset, a DataLoader, a bad-file log path, ``BadFile`` rows, or a
    list of those), merged by path, most often skipped first."""
    reasons: dict[str, Counter] = {}
    for item in _flatten(sources):
        if isinstance(item, BadFile):
            reasons.setdefault(item.path, Counter())[item.reason] += int(item.count)
            continue
        log = _log_of(item)
        if not log:
            continue
        try:
            text = Path(log).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # no file was skipped (the log is created on the first skip)
        for line in text.splitlines():
            path, sep, reason = line.partition("\t")
            if sep and path:
                reasons.setdefault(path, Counter())[reason or "unreadable"] += 1
    rows = [BadFile(path, counts.most_common(1)[0][0], sum(counts.values())) for path, counts in reasons.items()]
    return sorted(rows, key=lambda r: (-r.count, r.path))


def _flatten(sources: Any) -> Iterable[Any]:
    if isinstance(sources, (list, tuple)) and not isinstance(sources, BadFile):
        for item in sources:
            yield from _flatten(item)
    elif sources is not None:
        yield sources


def read_bad_files_csv(path: str | Path) -> list[BadFile]:
    """The rows of a ``bad_files.csv`` (``[]`` when it does not exist)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [BadFile(r["path"], r["reason"], int(r["count"])) for r in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return []


def write_bad_files_csv(sources: Any, path: str | Path, merge: bool = False) -> Path | None:
    """Write ``path`` (columns ``path, reason, count``) when ``sources`` skipped any file; None (nothing written)
    otherwise. ``merge``: add the rows already in ``path`` (the earlier part of a resumed run)."""
    rows = bad_files([*(read_bad_files_csv(path) if merge else []), sources])
    if not rows:
        return None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def bad_files_summary(count: int, csv_path: str | Path) -> str:
    """``"3 files were skipped as unreadable; see RUN/bad_files.csv"``."""
    return f"{count} file{'' if count == 1 else 's'} {'was' if count == 1 else 'were'} skipped as unreadable; see {csv_path}"


def report_bad_files(sources: Any, directory: str | Path, merge: bool = False) -> str | None:
    """Write ``directory/bad_files.csv`` when ``sources`` skipped any file and return the one-line summary
    (None when nothing was skipped). The end of a pretraining run and of an evaluation call this."""
    path = write_bad_files_csv(sources, Path(directory) / CSV_NAME, merge=merge)
    if path is None:
        return None
    return bad_files_summary(len(read_bad_files_csv(path)), path)
