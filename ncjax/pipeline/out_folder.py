"""The output folder of a scan: created and checked to take files before any scanning, and never a mix of two
scans' files (a second scan into a folder that holds one is refused unless it resumes or replaces it)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ncjax.core.printable import quoted
from ncjax.errors import UsageError

# The files a scan writes: its checkpoints, report.json, summary.png, triggers.npz and the trigger pictures
# (<prefix>_visualize_<kind>_label_<k>.png, <prefix>_pair_<s>_to_<t>_<kind>.png) whatever the prefix.
SCAN_FILE_NAMES = frozenset({"scan_state.npz", "source_check_state.npz", "pair_scan_state.npz",
                             "margin_scan_state.npz", "report.json", "summary.png", "triggers.npz"})
_PICTURE = re.compile(r".+_(visualize_(mask|pattern|fusion)_label_\d+|pair_\d+_to_\d+_(mask|pattern|fusion))\.png")


def prepare_out(out: str | os.PathLike, *, what: str = "the output folder") -> Path:
    """The output folder, created if missing and checked to take files before any scanning; `what` names it in
    errors (the command line says --out)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{what} {quoted(str(out), limit=200)} is a file; give a folder (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".ncjax_write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write to {what} {quoted(str(out), limit=200)}: {e.strerror or e}.") from None
    return out


def scan_files(folder: Path) -> list[Path]:
    """The files in `folder` that a scan wrote (none of anything else)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and (p.name in SCAN_FILE_NAMES or _PICTURE.fullmatch(p.name)))


def claim_out(folder: Path, *, resume: bool, overwrite: bool, what: str = "the output folder",
              options: tuple[str, str] = ("resume=True", "overwrite=True")) -> None:
    """Make `folder` this scan's: an earlier scan's files there are kept to resume (`resume`), removed
    (`overwrite`), or refused, so that a folder never mixes two scans' pictures and reports. `options` name the
    two settings in the refusal as the caller spells them (the command line: --resume, --overwrite)."""
    if resume:
        return
    found = scan_files(folder)
    if not found:
        return
    if not overwrite:
        names = ", ".join(p.name for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise UsageError(f"{what} {quoted(str(folder), limit=200)} holds another scan's files ({names}); resume it "
                         f"({options[0]}), replace it ({options[1]} removes those files first), or choose another "
                         "folder.")
    for path in found:
        path.unlink()
