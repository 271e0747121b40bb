"""The preferences on /account: the language and the time zone a user reads in."""

from __future__ import annotations

from functools import cache

from markupsafe import Markup, escape

from webapp.i18n import DEFAULT_ZONE, ZONE_REGIONS, _, language, zone_names

# Each region's name as shown above its zones, translated when shown.
REGION_NAMES = {
    "Africa": lambda: _("Africa"),
    "America": lambda: _("America"),
    "Antarctica": lambda: _("Antarctica"),
    "Arctic": lambda: _("Arctic"),
    "Asia": lambda: _("Asia"),
    "Atlantic": lambda: _("Atlantic Ocean"),
    "Australia": lambda: _("Australia"),
    "Europe": lambda: _("Europe"),
    "Indian": lambda: _("Indian Ocean"),
    "Pacific": lambda: _("Pacific Ocean"),
}


@cache
def _zone_options(code: str) -> str:
    """Return the `<option>`s of every zone, grouped by region, for one language.

    Some 600 options: written once per process and language, not per page.
    """
    del code  # the cache key: the group labels below are in this language
    by_region: dict[str, list[str]] = {region: [] for region in ZONE_REGIONS}
    for name in sorted(zone_names()):
        region = name.split("/", 1)[0]
        if region in by_region:
            by_region[region].append(name)
    # No value attributes: an option's value is its text, the IANA name.
    parts = [f"<option>{DEFAULT_ZONE}</option>"]
    for region, names in by_region.items():
        parts.append(f'<optgroup label="{escape(REGION_NAMES[region]())}">')
        parts += [f"<option>{name}</option>" for name in names]
        parts.append("</optgroup>")
    return "".join(parts)


def zone_options(selected: str) -> Markup:
    """Return the time zone `<option>`s with `selected` chosen."""
    options = _zone_options(language())
    if selected in zone_names():
        chosen = f"<option>{selected}</option>"
        options = options.replace(chosen, f"<option selected>{selected}</option>", 1)
    # Zone names come from tzdata (letters, digits, "/_-+"), group labels are escaped above.
    return Markup(options)  # nosec B704
