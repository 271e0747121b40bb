"""Approximate location of a client address, offline.

The country comes from `iptocc`, whose wheel embeds the five Regional
Internet Registries' allocation data (no file to download, no network
call; MIT or Apache-2.0). It names the country a block was *assigned* to,
which agrees with commercial databases for about 95% of IPv4 addresses:
good enough for "was that me?". Private, loopback and link-local addresses
read "Local network". With GEOIP_MMDB_PATH naming a MaxMind-format
database (GeoLite2-City, DB-IP City Lite...), `maxminddb` adds the city,
and that database's country wins. Country names come from `pycountry`
(ISO 3166), not from a list of our own.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
from dataclasses import dataclass
from typing import Any

import iptocc
import pycountry
from babel import Locale
from flask import current_app

from webapp.i18n import N_, _, language

logger = logging.getLogger("webapp.location")

# A user-assigned ISO 3166 code (XA-XZ are never given to a country):
# stored for private, loopback and link-local addresses.
LOCAL_NETWORK = "XL"
# Translated where shown; marked here for the catalog.
LOCAL_NETWORK_NAME = N_("Local network")
UNKNOWN = N_("Unknown")
CITY_MAX = 100

_readers: dict[str, Any] = {}
_readers_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Location:
    """Where an address is: an ISO 3166 alpha-2 code (or LOCAL_NETWORK) and maybe a city."""

    country: str | None = None
    city: str | None = None


def locate(ip: str | None) -> Location:
    """Return the approximate location of `ip`; never raises."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return Location()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_private or address.is_loopback or address.is_link_local:
        return Location(country=LOCAL_NETWORK)
    text = str(address)
    city = country = None
    path = current_app.config.get("GEOIP_MMDB_PATH")
    if path:
        country, city = _from_mmdb(path, text)
    if not country:
        try:
            country = iptocc.country_code(text)
        except Exception:  # a lookup problem must not break the action it describes
            logger.exception("country lookup failed")
            country = None
    if country is not None and (len(country) != 2 or not country.isalpha()):
        country = None
    return Location(country=country.upper() if country else None, city=city)


_UNREADABLE = object()


def _reader(path: str):
    """Open the MaxMind database once per process (memory-mapped, thread-safe reads).

    A file that cannot be opened is logged once and then skipped: the
    country still comes from the packaged data.
    """
    reader = _readers.get(path)
    if reader is None:
        with _readers_lock:
            reader = _readers.get(path)
            if reader is None:
                import maxminddb

                try:
                    reader = maxminddb.open_database(path)
                except Exception:  # missing, unreadable or not a MaxMind DB file
                    logger.exception("GEOIP_MMDB_PATH %s could not be opened", path)
                    reader = _UNREADABLE
                _readers[path] = reader
    return None if reader is _UNREADABLE else reader


def _from_mmdb(path: str, ip: str) -> tuple[str | None, str | None]:
    reader = _reader(path)
    if reader is None:
        return None, None
    try:
        record = reader.get(ip)
    except ValueError:  # an IPv6 address in an IPv4-only database
        return None, None
    except Exception:  # a broken file: fall back to the country alone
        logger.exception("GEOIP_MMDB_PATH could not be read")
        return None, None
    if not isinstance(record, dict):
        return None, None
    country = (record.get("country") or {}).get("iso_code")
    names = (record.get("city") or {}).get("names") or {}
    city = names.get("en")
    if isinstance(city, str):
        city = city.strip()[:CITY_MAX] or None
    else:
        city = None
    return (country if isinstance(country, str) else None), city


def country_name(code: str | None) -> str:
    """Return the name of an ISO 3166 alpha-2 code in the reader's language, or "Unknown"."""
    if not code:
        return _(UNKNOWN)
    if code == LOCAL_NETWORK:
        return _(LOCAL_NETWORK_NAME)
    return _country_name(code, language()) or _(UNKNOWN)


@functools.lru_cache(maxsize=1024)
def _country_name(code: str, language_code: str) -> str | None:
    """English names from pycountry (its common names), others from Babel's CLDR data."""
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return None
    if language_code != "en":
        translated = Locale.parse(language_code).territories.get(code)
        if translated:
            return translated
    return getattr(country, "common_name", None) or country.name


def describe(country: str | None, city: str | None = None) -> str:
    """Return the location as shown: "Germany", "Berlin, Germany", "Local network"."""
    name = country_name(country)
    if city and country != LOCAL_NETWORK:
        return _("%(city)s, %(country)s", city=city, country=name) if country else city
    return name
