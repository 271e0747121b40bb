"""Fail when a catalog is behind the code: `make lint` runs this, `make translations` too.

Three checks, each naming what to fix:
- every text the code marks (`_`, `_l`, `N_`, `ngettext`, in Python and the
  templates) is in every language's catalog;
- no entry is untranslated or fuzzy;
- each translation keeps its `%(name)s` placeholders (a missing one would
  raise when the text is shown, an extra one too).
The texts are extracted afresh (pybabel, with babel.cfg) into a temporary
file, so nobody has to remember to re-extract before the check.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "webapp" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extract(target: Path) -> None:
    """Extract every marked text into `target`, as `make translations` does."""
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(  # noqa: S603 - our own tool, fixed arguments
        [str(pybabel), "-q", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "N_"]
        + ["--no-location", "-o", str(target), "."],
        cwd=ROOT,
        check=True,
    )


def problems_of(catalog: polib.POFile, wanted: set[tuple[str, str]]) -> list[str]:
    """Return what is wrong with one language's catalog."""
    found = []
    present = {(entry.msgctxt or "", entry.msgid) for entry in catalog if not entry.obsolete}
    for _context, msgid in sorted(wanted - present):
        found.append(f"missing from the catalog: {msgid!r}")
    for entry in catalog:
        if entry.obsolete:
            continue
        if "fuzzy" in entry.flags:
            found.append(f"fuzzy: {entry.msgid!r}")
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not all(translations):
            found.append(f"untranslated: {entry.msgid!r}")
            continue
        expected = set(PLACEHOLDER.findall(entry.msgid))
        if entry.msgid_plural:
            expected |= set(PLACEHOLDER.findall(entry.msgid_plural))
        for text in translations:
            # A plural form may leave out %(num)d ("einen Tag"); no other name.
            have = set(PLACEHOLDER.findall(text))
            if have - expected or (expected - have) - ({"num"} if entry.msgid_plural else set()):
                found.append(f"placeholders differ: {entry.msgid!r} -> {text!r}")
    return found


def main() -> int:
    with tempfile.TemporaryDirectory() as work:
        template = Path(work) / "messages.pot"
        extract(template)
        wanted = {(entry.msgctxt or "", entry.msgid) for entry in polib.pofile(str(template))}
    failures = 0
    for path in sorted(CATALOGS.glob("*/LC_MESSAGES/messages.po")):
        language = path.parent.parent.name
        for problem in problems_of(polib.pofile(str(path)), wanted):
            print(f"{path.relative_to(ROOT)} ({language}): {problem}")
            failures += 1
    if failures:
        print(f"{failures} catalog problem(s): run `make translations`, then translate.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
