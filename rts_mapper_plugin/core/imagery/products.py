"""Delivered imagery products: what a file is, which of its bands are red, green and blue, which
usable-data mask goes with it, and when it was acquired.

Users bring products as their vendor delivers them. Each is recognised by its published naming
and sidecar metadata, never by guessing a band position when names exist:

* **Planet PSScene** (docs.planet.com/data/imagery/planetscope/psscene/, "PSScene Assets", band
  metadata tables): the 4-band analytic assets are blue, green, red, nir; the 8-band (SuperDove)
  assets are coastal_blue, blue, green_i, green, yellow, red, rededge, nir; the 3-band analytic
  asset is red, green, blue; UInt16 (surface reflectance x 10000), 0 = no data. Files are named
  ``<id>_3B_AnalyticMS_SR_8b[_harmonized][_clip].tif`` where ``<id>`` is
  ``YYYYMMDD_HHMMSS[_cc]_<satellite>`` (e.g. ``20220705_183526_48_2416``); the sidecars are
  ``<id>_metadata.json`` (a GeoJSON Feature whose ``properties`` hold ``acquired`` and
  ``instrument``: PS2 Dove Classic, PS2.SD Dove-R, PSB.SD SuperDove), ``<id>_3B_AnalyticMS[_8b]
  _metadata[_clip].xml`` (``ps:numBands``, one ``ps:bandSpecificMetadata`` with its
  ``ps:bandNumber`` per band, ``ps:acquisitionDateTime``, ``eop:Instrument/eop:shortName``;
  followed from a delivered ``..._3B_AnalyticMS_8b_metadata_clip.xml``) and ``<id>_3B_udm2
  [_clip].tif``.
* **Planet UDM2** (docs.planet.com/data/imagery/udm/ and the PSScene ``ortho_udm2`` band table):
  8 bands, 1 clear, 2 snow, 3 shadow, 4 haze_light, 5 haze_heavy, 6 cloud (1 = the pixel is of
  that class), 7 confidence (percent), 8 udm1, the legacy unusable-data bitmask (bit 0 = blackfill,
  not imaged; bit 1 = the legacy coarse cloud flag; bits 2-7 = missing or suspect data in a band).
  Since UDM2.1 (November 2023) haze is in band 4 only and band 5 is always 0.
* **Planet basemap quads** (developers.planet.com/docs/data/visual-basemaps/): visual basemaps are
  8-bit RGB, delivered as quads (``<x>-<y>_quad.tif`` from the Basemaps API, ``L15-0123E-1234N.tif``
  from the viewer) in a folder named after the mosaic (``global_monthly_2020_08_mosaic``); a
  fourth band is the alpha band (0 = no data).
* **Sentinel-2 L2A** (ESA Sen2Cor scene classification, SCL): 0 no data, 1 saturated or
  defective, 2 dark area pixels, 3 cloud shadows, 4 vegetation, 5 not vegetated, 6 water,
  7 unclassified, 8 cloud medium probability, 9 cloud high probability, 10 thin cirrus, 11 snow.
  SAFE layout: ``<name>.SAFE/MTD_MSIL2A.xml`` (``PRODUCT_START_TIME``) and
  ``GRANULE/<granule>/IMG_DATA/R10m/<tile>_<YYYYMMDDTHHMMSS>_B0[234]_10m.jp2``,
  ``R20m/<tile>_<time>_SCL_20m.jp2``. Reflectance offsets (processing baseline 04.00 and later)
  do not matter here: the stretch is linear between percentiles.
"""

from __future__ import annotations

import calendar
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from rasterio.enums import ColorInterp

from ..errors import RtsMapperError
from ..raster_io import open_raster

# Band descriptions that name a colour. Bare "B2/B3/B4" follow Sentinel-2 and Landsat 8-9 (blue,
# green, red); older Landsat numbering differs, so such files need an explicit --bands. Planet's
# own names (green_i, coastal_blue) deliberately do not match.
BAND_NAMES = {
    "red": re.compile(r"^(red|r|sr_b4|b0?4|band ?4 ?\(?red\)?)$", re.IGNORECASE),
    "green": re.compile(r"^(green|g|sr_b3|b0?3|band ?3 ?\(?green\)?)$", re.IGNORECASE),
    "blue": re.compile(r"^(blue|b|sr_b2|b0?2|band ?2 ?\(?blue\)?)$", re.IGNORECASE),
}

# Planet's published band order of the PSScene analytic assets, by band count.
PLANET_LAYOUTS = {
    3: ("red", "green", "blue"),
    4: ("blue", "green", "red", "nir"),
    8: ("coastal_blue", "blue", "green_i", "green", "yellow", "red", "rededge", "nir"),
}
PLANET_INSTRUMENTS = {"PS2": "Dove Classic", "PS2.SD": "Dove-R", "PSB.SD": "SuperDove"}
EIGHT_BAND_INSTRUMENTS = ("PSB.SD",)

UDM2_BANDS = ("clear", "snow", "shadow", "haze_light", "haze_heavy", "cloud", "confidence", "udm1")
UDM2_UNUSABLE = ("snow", "shadow", "haze_light", "haze_heavy", "cloud")
UDM1_UNUSABLE_BITS = 0b1111_1101  # blackfill and missing/suspect band data; not the coarse cloud bit
SCL_UNUSABLE = {
    0: "no data",
    1: "saturated or defective",
    3: "cloud shadows",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow",
}

PLANET_SCENE_NAME = re.compile(
    r"^(?P<id>(?P<date>\d{8})_\d{6}(?:_\d{2})?_[0-9a-f]{4})_(?P<level>[13]B)_(?P<asset>\w+?)\.tiff?$",
    re.IGNORECASE,
)
QUAD_NAME = re.compile(r"^(L\d{2}-\d{4}E-\d{4}N|\d+-\d+_quad)\.tiff?$", re.IGNORECASE)
S2_BAND_FILE = re.compile(
    r"^(?P<prefix>T\d{2}[A-Z]{3}_(?P<date>\d{8})T\d{6})_(?P<band>B0[234]|SCL)_(?P<res>\d{2})m\.(jp2|tiff?)$",
    re.IGNORECASE,
)
S2_NAME = re.compile(r"^(S2[ABC]?)_|MSIL2A", re.IGNORECASE)
S2_DATE = re.compile(r"(?<!\d)(\d{8})T\d{6}")
IMAGE_SUFFIXES = (".tif", ".tiff", ".jp2")
_MAX_SIDECAR_BYTES = 20_000_000  # Planet's and ESA's metadata files are a few hundred kB at most


@dataclass(frozen=True)
class BandChoice:
    """Which 1-based bands give red, green and blue, and how that was decided.

    ``positional`` is True when the choice rests on band numbers (assumed from the band count, or
    given as numbers) rather than on band names or the product's metadata.
    """

    red: int
    green: int
    blue: int
    reason: str
    positional: bool = False

    @property
    def indexes(self) -> tuple[int, int, int]:
        return (self.red, self.green, self.blue)


@dataclass(frozen=True)
class UsableMask:
    """The usable-data mask that goes with a scene: a Planet UDM2 or a Sentinel-2 SCL band."""

    path: Path
    kind: str  # "udm2" or "scl"
    band: int = 1  # SCL: its band in ``path`` (a stacked file may carry SCL as one of its bands)
    found: str = "given"

    def describe(self) -> str:
        if self.kind == "udm2":
            what = "snow, shadow, haze and cloud become nodata"
        else:
            what = "SCL " + ", ".join(f"{k} {v}" for k, v in SCL_UNUSABLE.items()) + " become nodata"
        return f"mask {self.path.name} ({'UDM2' if self.kind == 'udm2' else 'SCL'}, {self.found}): {what}"


@dataclass(frozen=True)
class Scene:
    """One delivered scene: what to read, which bands, which mask, and when it was taken."""

    source: Path  # what the user gave (a file, a .SAFE folder, its MTD_MSIL2A.xml)
    raster: Path  # the raster whose bands are read (the file, or a VRT of separate band files)
    bands: BandChoice
    product: str = ""  # "PlanetScope", "Planet basemap quad", "Sentinel-2 L2A"; "" = not recognised
    sensor: str = ""
    mask: UsableMask | None = None
    acquired: tuple[date, date] | None = None  # a scene: one day; a basemap quad: its period
    visual_8bit: bool = False  # display-ready 8-bit (basemap quads): never stretched again
    alpha_band: int | None = None
    notes: tuple[str, ...] = ()


def rgb_from_descriptions(descriptions: Sequence[str | None]) -> dict[str, int]:
    """{colour: 1-based band} for the band descriptions that name red, green and blue."""
    found: dict[str, int] = {}
    for index, description in enumerate(descriptions, start=1):
        for colour, pattern in BAND_NAMES.items():
            if description and colour not in found and pattern.match(description.strip()):
                found[colour] = index
    return found


def choose_rgb_bands(
    dataset, path: str | os.PathLike, override: tuple[int, int, int] | None = None
) -> BandChoice:
    """Red, green, blue band numbers: explicit override, else the file's own band descriptions
    or colour interpretation, else by band count (3 = RGB, 4 = PlanetScope BGRN)."""
    count = dataset.count
    if count < 3:
        raise RtsMapperError(
            f"has {count} band{'s' if count > 1 else ''}; RTS Mapper needs at least 3 (RGB) "
            "or 4 (PlanetScope blue, green, red, NIR)",
            path,
        )
    if override is not None:
        bad = [b for b in override if b > count]
        if bad:
            raise RtsMapperError(f"has {count} bands, so band {bad[0]} in --bands does not exist", path)
        return BandChoice(*override, reason="given explicitly", positional=True)

    found = rgb_from_descriptions(dataset.descriptions)
    if len(found) == 3:
        return BandChoice(found["red"], found["green"], found["blue"], reason="band descriptions")

    wanted = {ColorInterp.red: "red", ColorInterp.green: "green", ColorInterp.blue: "blue"}
    found = {}
    for index, interp in enumerate(dataset.colorinterp, start=1):
        if interp in wanted and wanted[interp] not in found:
            found[wanted[interp]] = index
    if len(found) == 3:
        return BandChoice(found["red"], found["green"], found["blue"], reason="colour interpretation")

    if count == 3:
        return BandChoice(1, 2, 3, reason="3 bands: assumed red, green, blue", positional=True)
    if count == 4:
        return BandChoice(
            3, 2, 1, reason="4 bands: assumed PlanetScope blue, green, red, NIR", positional=True
        )
    raise RtsMapperError(
        f"has {count} bands without red/green/blue descriptions: say which with --bands R,G,B "
        "(e.g. 3,2,1 when bands 1-3 are blue, green, red as in Sentinel-2 B2,B3,B4)",
        path,
    )


# -- masks as arrays --


def udm2_unusable(udm2: np.ndarray) -> np.ndarray:
    """(8, h, w) UDM2 -> (h, w) True where the pixel is snow, shadow, haze or cloud, or where the
    legacy bitmask says blackfill or missing data."""
    unusable = np.zeros(udm2.shape[1:], dtype=bool)
    for name in UDM2_UNUSABLE:
        unusable |= udm2[UDM2_BANDS.index(name)] == 1
    unusable |= (udm2[UDM2_BANDS.index("udm1")].astype(np.uint8) & UDM1_UNUSABLE_BITS) != 0
    return unusable


def scl_unusable(scl: np.ndarray) -> np.ndarray:
    """(h, w) SCL classes -> True where cloud, cloud shadow, cirrus, snow, defective or no data."""
    return np.isin(scl, list(SCL_UNUSABLE))


# -- recognising a product --


def expand_sources(sources: Iterable[str | os.PathLike]) -> list[Path]:
    """The inputs as files: a Planet basemap mosaic folder becomes its quads (sorted); a
    Sentinel-2 .SAFE folder stays whole; anything else is passed on as given."""
    expanded: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir() and not _is_safe(path):
            quads = sorted(p for p in path.iterdir() if p.is_file() and QUAD_NAME.match(p.name))
            if not quads:
                raise RtsMapperError(
                    "is a folder, not a raster (folders are read only as a Sentinel-2 .SAFE product "
                    "or a Planet basemap mosaic of *_quad.tif / L15-...E-...N.tif quads)",
                    path,
                )
            expanded.extend(quads)
        else:
            expanded.append(path)
    return expanded


def describe_scene(
    path: str | os.PathLike,
    mask: str | os.PathLike | None = None,
    override: tuple[int, int, int] | None = None,
    scratch: str | os.PathLike | None = None,
) -> Scene:
    """Recognise one delivered scene: its product, RGB bands, usable-data mask and date.

    Args:
        path: a raster, a Sentinel-2 ``.SAFE`` folder or its ``MTD_MSIL2A.xml``.
        mask: the usable-data mask to use; None = find it by the product's naming; "none" = none.
        override: R, G, B band numbers given by the user (wins over names and metadata).
        scratch: a folder for the small VRT that stacks separate Sentinel-2 band files.

    Raises:
        RtsMapperError: the file is not readable or its product's rules are broken (no band names
            and no metadata for a Planet scene, a sidecar without a date, ...).
    """
    path = Path(path)
    if path.name.upper().startswith("MTD_MSIL2A") and path.suffix.lower() == ".xml":
        path = path.parent
    if path.is_dir() and _is_safe(path):
        return _sentinel2_safe(path, mask, override, scratch)
    match = S2_BAND_FILE.match(path.name)
    if match and path.is_file():
        return _sentinel2_band_file(path, match, mask, override, scratch)
    with open_raster(path) as dataset:
        planet = PLANET_SCENE_NAME.match(path.name)
        if planet:
            return _planetscope(path, planet, dataset, mask, override)
        if QUAD_NAME.match(path.name) and dataset.dtypes[0] == "uint8" and dataset.count in (3, 4):
            return _basemap_quad(path, dataset, mask, override)
        return _generic(path, dataset, mask, override)


def _mask_option(mask) -> tuple[bool, Path | None]:
    """(auto, path): None -> find by name; "none" -> no mask; a path -> that file."""
    if mask is None or (isinstance(mask, str) and mask.strip().lower() in ("", "auto")):
        return True, None
    if isinstance(mask, str) and mask.strip().lower() == "none":
        return False, None
    return False, Path(mask)


# -- Planet PSScene --


@dataclass(frozen=True)
class _PlanetMetadata:
    source: Path
    acquired: date | None
    instrument: str
    band_count: int | None


def planet_sidecars(path: Path) -> dict[str, Path]:
    """A Planet scene's sidecars found by Planet's naming: "json", "xml", "udm2" (those present)."""
    match = PLANET_SCENE_NAME.match(path.name)
    if not match:
        return {}
    scene_id, level, asset = match["id"], match["level"], match["asset"]
    clipped = "clip" in asset.lower()
    eight = "8b" in asset.lower()
    found: dict[str, Path] = {}
    metadata_json = path.with_name(f"{scene_id}_metadata.json")
    if metadata_json.is_file():
        found["json"] = metadata_json

    def best(candidates: list[Path], wants_8b: bool | None) -> Path | None:
        def score(p: Path) -> tuple[int, int, str]:
            name = p.name.lower()
            return (
                ("clip" in name) != clipped,
                wants_8b is not None and ("8b" in name) != wants_8b,
                p.name,
            )

        return min(candidates, key=score) if candidates else None

    xmls = [p for p in path.parent.glob(f"{scene_id}_{level}_*metadata*.xml") if p.is_file()]
    chosen = best(xmls, eight)
    if chosen is not None:
        found["xml"] = chosen
    udms = [p for p in path.parent.glob(f"{scene_id}_{level}_udm2*.tif") if p.is_file()]
    chosen = best(udms, None)
    if chosen is not None:
        found["udm2"] = chosen
    return found


def _read_sidecar(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_SIDECAR_BYTES:
            raise RtsMapperError("is too large to be a metadata file", path)
        return path.read_bytes()
    except OSError as exc:
        raise RtsMapperError(f"cannot be read ({exc.strerror})", path) from exc


def _iso_date(text: str, path: Path, field: str) -> date:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise RtsMapperError(f"{field} is {text!r}, not an ISO date", path) from exc


def read_planet_json(path: Path, scene_id: str | None = None) -> _PlanetMetadata:
    """Planet's ``<id>_metadata.json``: a GeoJSON Feature with ``properties.acquired``."""
    try:
        feature = json.loads(_read_sidecar(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RtsMapperError(f"is not valid JSON ({exc})", path) from exc
    properties = feature.get("properties") if isinstance(feature, dict) else None
    if not isinstance(properties, dict):
        raise RtsMapperError("has no 'properties': not a Planet scene metadata file", path)
    if scene_id and feature.get("id") and str(feature["id"]) != scene_id:
        raise RtsMapperError(f"describes scene {feature['id']}, not {scene_id}", path)
    acquired = properties.get("acquired")
    if not acquired:
        raise RtsMapperError(
            "has no properties.acquired: cannot tell when the scene was taken (give --dates START,END)",
            path,
        )
    return _PlanetMetadata(
        path,
        _iso_date(str(acquired), path, "properties.acquired"),
        str(properties.get("instrument") or ""),
        None,
    )


def _xml_root(path: Path):
    # Expat >= 2.4 (Python's) refuses entity-expansion attacks and ElementTree resolves no
    # external entities; the file is a local, size-capped sidecar the user was delivered.
    try:
        return ElementTree.fromstring(_read_sidecar(path))  # noqa: S314
    except ElementTree.ParseError as exc:
        raise RtsMapperError(f"is not valid XML ({exc})", path) from exc


def read_planet_xml(path: Path) -> _PlanetMetadata:
    """Planet's ``*_AnalyticMS[_8b]_metadata.xml``: band count, instrument, acquisition time."""
    root = _xml_root(path)
    band_numbers = [
        e.text.strip() for e in root.iterfind(".//{*}bandSpecificMetadata/{*}bandNumber") if e.text
    ]
    num_bands = root.find(".//{*}numBands")
    count = (
        int(num_bands.text) if num_bands is not None and (num_bands.text or "").strip().isdigit() else None
    )
    if count is None and band_numbers:
        count = len(band_numbers)
    if count is None:
        raise RtsMapperError(
            "has neither ps:numBands nor ps:bandSpecificMetadata: not a Planet analytic metadata file", path
        )
    instrument = root.find(".//{*}Instrument/{*}shortName")
    when = root.find(".//{*}acquisitionDateTime")
    acquired = (
        _iso_date(when.text, path, "ps:acquisitionDateTime") if when is not None and when.text else None
    )
    return _PlanetMetadata(
        path, acquired, (instrument.text or "").strip() if instrument is not None else "", count
    )


def _evidence(metadata: _PlanetMetadata) -> str:
    facts = [f"{metadata.band_count} bands"] if metadata.band_count else []
    facts += [f"instrument {metadata.instrument}"] if metadata.instrument else []
    return metadata.source.name + (f" ({', '.join(facts)})" if facts else "")


def _planetscope(path: Path, match: re.Match, dataset, mask, override) -> Scene:
    if "udm" in match["asset"].lower():
        raise RtsMapperError(
            "is a Planet usable data mask, not a scene: give the scene (…_AnalyticMS…tif); its UDM2 is "
            "found beside it by name",
            path,
        )
    scene_id = match["id"]
    sidecars = planet_sidecars(path)
    from_json = read_planet_json(sidecars["json"], scene_id) if "json" in sidecars else None
    from_xml = read_planet_xml(sidecars["xml"]) if "xml" in sidecars else None
    metadata = [m for m in (from_json, from_xml) if m is not None]
    instrument = next((m.instrument for m in metadata if m.instrument), "")
    count = dataset.count
    visual = "visual" in match["asset"].lower() and dataset.dtypes[0] == "uint8"
    notes: list[str] = []

    if from_xml is not None and from_xml.band_count not in (None, count):
        raise RtsMapperError(
            f"has {count} bands but its metadata {from_xml.source.name} describes {from_xml.band_count}", path
        )
    named = rgb_from_descriptions(dataset.descriptions)
    if override is not None:
        bands = choose_rgb_bands(dataset, path, override)
    elif len(named) == 3:
        names = ", ".join(d or "?" for d in dataset.descriptions)
        bands = BandChoice(
            named["red"], named["green"], named["blue"], reason=f"GeoTIFF band descriptions ({names})"
        )
    elif visual and count in (3, 4):
        bands = BandChoice(1, 2, 3, reason="Planet visual product: red, green, blue (alpha 4th)")
    elif metadata:
        layout = PLANET_LAYOUTS.get(count)
        if layout is None:
            raise RtsMapperError(
                f"has {count} bands; Planet's PSScene analytic products have 3, 4 or 8 "
                f"({metadata[0].source.name}): say which bands are red, green, blue with --bands R,G,B",
                path,
            )
        if count == 8 and instrument and instrument not in EIGHT_BAND_INSTRUMENTS:
            raise RtsMapperError(
                f"has 8 bands but {metadata[0].source.name} says instrument {instrument}, which makes no "
                "8-band product (only SuperDove, PSB.SD, does)",
                path,
            )
        evidence = " and ".join(_evidence(m) for m in metadata)
        kind = "8-band SuperDove" if count == 8 else f"{count}-band"
        bands = BandChoice(
            layout.index("red") + 1,
            layout.index("green") + 1,
            layout.index("blue") + 1,
            reason=f"Planet PSScene {kind} band order ({', '.join(layout)}) from {evidence}",
        )
    else:
        raise RtsMapperError(
            f"is a PlanetScope {count}-band scene whose bands are not named, and no Planet metadata lies "
            f"beside it ({scene_id}_metadata.json or {scene_id}_{match['level']}_AnalyticMS…_metadata.xml): "
            "put the metadata file next to it, or give --bands R,G,B",
            path,
        )

    acquired_day = next((m.acquired for m in metadata if m.acquired), None)
    if acquired_day is not None:
        source = next(m.source.name for m in metadata if m.acquired)
        notes.append(f"{path.name}: acquired {acquired_day.isoformat()} ({source})")
    else:
        acquired_day = _iso_date(
            f"{match['date'][:4]}-{match['date'][4:6]}-{match['date'][6:]}", path, "the file name's date"
        )
        notes.append(
            f"{path.name}: acquired {acquired_day.isoformat()} (from the file name: no date in its metadata)"
        )

    auto, given = _mask_option(mask)
    usable = None
    if given is not None:
        usable = UsableMask(given, "udm2", found="given")
    elif auto and "udm2" in sidecars:
        usable = UsableMask(sidecars["udm2"], "udm2", found="found by Planet's naming")
    elif auto:
        notes.append(
            f"{path.name}: no UDM2 beside it ({scene_id}_{match['level']}_udm2.tif): clouds are not masked"
        )
    if usable is not None:
        notes.append(f"{path.name}: {usable.describe()}")
    label = PLANET_INSTRUMENTS.get(instrument)
    sensor = f"PlanetScope {label} ({instrument})" if label else ("PlanetScope " + instrument).strip()
    return Scene(
        source=path,
        raster=path,
        bands=bands,
        product="PlanetScope",
        sensor=sensor,
        mask=usable,
        acquired=(acquired_day, acquired_day),
        visual_8bit=visual,
        alpha_band=4 if visual and count == 4 else None,
        notes=tuple(notes),
    )


# -- Planet basemap quads --


def mosaic_period(name: str) -> tuple[date, date] | None:
    """The acquisition period in a Planet mosaic's name: ``global_monthly_2020_08_mosaic`` ->
    August 2020; ``..._2020-06_2020-08_mosaic`` -> June-August; ``..._2022q3_mosaic`` -> Q3."""
    starts: list[date] = []
    ends: list[date] = []
    for year, quarter in re.findall(r"(?<!\d)(\d{4})q([1-4])(?![0-9])", name, flags=re.IGNORECASE):
        first, last = 3 * int(quarter) - 2, 3 * int(quarter)
        starts.append(date(int(year), first, 1))
        ends.append(date(int(year), last, calendar.monthrange(int(year), last)[1]))
    for year, month in re.findall(r"(?<!\d)(\d{4})[-_](\d{2})(?!\d)", name):
        if 1 <= int(month) <= 12:
            starts.append(date(int(year), int(month), 1))
            ends.append(date(int(year), int(month), calendar.monthrange(int(year), int(month))[1]))
    return (min(starts), max(ends)) if starts else None


def _basemap_quad(path: Path, dataset, mask, override) -> Scene:
    _, given = _mask_option(mask)
    if given is not None:
        raise RtsMapperError(
            "is a Planet basemap quad: it carries its own alpha band, no mask applies to it", path
        )
    interps = list(dataset.colorinterp)
    alpha = (
        interps.index(ColorInterp.alpha) + 1
        if ColorInterp.alpha in interps
        else (4 if dataset.count == 4 else None)
    )
    bands = (
        choose_rgb_bands(dataset, path, override)
        if override is not None
        else BandChoice(1, 2, 3, reason="Planet basemap quad: visual red, green, blue, used as delivered")
    )
    period = mosaic_period(path.parent.name)
    notes = [
        f"{path.name}: Planet visual basemap quad (8-bit), not stretched again"
        + (", alpha 0 = nodata" if alpha else "")
    ]
    if period:
        notes.append(
            f"{path.name}: mosaic period {period[0].isoformat()}..{period[1].isoformat()} (from {path.parent.name})"
        )
    return Scene(
        source=path,
        raster=path,
        bands=bands,
        product="Planet basemap quad",
        sensor="PlanetScope basemap",
        acquired=period,
        visual_8bit=True,
        alpha_band=alpha,
        notes=tuple(notes),
    )


# -- Sentinel-2 L2A --


def _is_safe(folder: Path) -> bool:
    return folder.suffix.upper() == ".SAFE" or (folder / "MTD_MSIL2A.xml").is_file()


def _one_file(folder: Path, pattern: str, what: str, required: bool = True) -> Path | None:
    found = (
        sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.is_dir()
        else []
    )
    if len(found) > 1:
        raise RtsMapperError(
            f"holds {len(found)} {what} files ({', '.join(p.name for p in found)}): expected one", folder
        )
    if not found and required:
        raise RtsMapperError(f"has no {what} file ({pattern})", folder)
    return found[0] if found else None


def _sentinel2_safe(folder: Path, mask, override, scratch) -> Scene:
    granules = sorted(p for p in (folder / "GRANULE").glob("*/IMG_DATA") if p.is_dir())
    if len(granules) != 1:
        raise RtsMapperError(
            f"is a Sentinel-2 SAFE folder with {len(granules)} granules (GRANULE/*/IMG_DATA); expected one",
            folder,
        )
    r10 = granules[0] / "R10m"
    files = [_one_file(r10, f"*_{band}_10m.*", f"{band} 10 m") for band in ("B04", "B03", "B02")]
    scl = _one_file(granules[0] / "R20m", "*_SCL_20m.*", "SCL 20 m", required=False)
    return _sentinel2_from_files(folder, folder, files, scl, mask, override, scratch)


def _sentinel2_band_file(path: Path, match: re.Match, mask, override, scratch) -> Scene:
    if match["band"].upper() == "SCL":
        raise RtsMapperError(
            "is a Sentinel-2 scene classification (SCL), not a scene: give B04 or the .SAFE folder", path
        )
    prefix = match["prefix"]
    files = [
        _one_file(path.parent, f"{prefix}_{band}_10m.*", f"{band} 10 m") for band in ("B04", "B03", "B02")
    ]
    scl = _one_file(
        path.parent.parent / "R20m", f"{prefix}_SCL_20m.*", "SCL 20 m", required=False
    ) or _one_file(path.parent, f"{prefix}_SCL_*m.*", "SCL", required=False)
    safe = next((p for p in path.parents if _is_safe(p)), None)
    return _sentinel2_from_files(path, safe, files, scl, mask, override, scratch)


def _sentinel2_date(safe: Path | None, names: Iterable[str]) -> tuple[date | None, str]:
    if safe is not None and (safe / "MTD_MSIL2A.xml").is_file():
        mtd = safe / "MTD_MSIL2A.xml"
        start = _xml_root(mtd).find(".//PRODUCT_START_TIME")
        if start is not None and start.text:
            return _iso_date(start.text, mtd, "PRODUCT_START_TIME"), "MTD_MSIL2A.xml PRODUCT_START_TIME"
    for name in names:
        found = S2_DATE.search(name)
        if found:
            text = found.group(1)
            return _iso_date(
                f"{text[:4]}-{text[4:6]}-{text[6:]}", Path(name), "the file name's date"
            ), f"the name {name}"
    return None, ""


def _sentinel2_from_files(source, safe, files, scl, mask, override, scratch) -> Scene:
    from osgeo import gdal

    gdal.UseExceptions()
    reference = None
    for file in files:
        with open_raster(file) as dataset:
            grid = (dataset.crs, dataset.transform, dataset.width, dataset.height)
        if reference is None:
            reference = grid
        elif grid != reference:
            raise RtsMapperError(
                f"is not on the grid of {files[0].name}: B04, B03 and B02 must share the 10 m grid", file
            )
    if scratch is None:
        raise RtsMapperError("needs a scratch folder to stack its band files", source)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", files[0].stem)
    vrt = Path(scratch) / f"{stem}_B04_B03_B02.vrt"
    stacked = gdal.BuildVRT(
        str(vrt), [str(f.resolve()) for f in files], options=gdal.BuildVRTOptions(separate=True)
    )
    if stacked is None:
        raise RtsMapperError("GDAL could not stack B04, B03, B02", source)
    for band, name in zip(range(1, 4), ("B04", "B03", "B02")):
        stacked.GetRasterBand(band).SetDescription(name)
    stacked = None
    bands = (
        BandChoice(1, 2, 3, reason="given explicitly", positional=True)
        if override is not None
        else BandChoice(1, 2, 3, reason="Sentinel-2 L2A B04, B03, B02 (separate 10 m files)")
    )
    if override is not None and override != (1, 2, 3):
        raise RtsMapperError(
            "is read as B04, B03, B02 from its band files; --bands does not apply to it", source
        )
    day, where = _sentinel2_date(safe, [safe.name if safe else "", files[0].name])
    notes = [f"{Path(source).name}: Sentinel-2 L2A, B04/B03/B02 from {', '.join(f.name for f in files)}"]
    if day:
        notes.append(f"{Path(source).name}: acquired {day.isoformat()} ({where})")
    auto, given = _mask_option(mask)
    usable = None
    if given is not None:
        usable = UsableMask(given, "scl", found="given")
    elif auto and scl is not None:
        usable = UsableMask(scl, "scl", found="found in the SAFE layout")
    elif auto:
        notes.append(f"{Path(source).name}: no SCL found (R20m/*_SCL_20m.jp2): clouds are not masked")
    if usable is not None:
        notes.append(f"{Path(source).name}: {usable.describe()}")
    satellite = S2_NAME.match(safe.name) if safe is not None else None
    sensor = f"Sentinel-2{satellite.group(1)[2:]}" if satellite and satellite.group(1) else "Sentinel-2"
    return Scene(
        source=Path(source),
        raster=vrt,
        bands=bands,
        product="Sentinel-2 L2A",
        sensor=sensor,
        mask=usable,
        acquired=(day, day) if day else None,
        notes=tuple(notes),
    )


# -- anything else --


def _generic(path: Path, dataset, mask, override) -> Scene:
    bands = choose_rgb_bands(dataset, path, override)
    auto, given = _mask_option(mask)
    notes: list[str] = []
    descriptions = [(d or "").strip().upper() for d in dataset.descriptions]
    sentinel2 = bool(S2_NAME.search(path.name)) or "SCL" in descriptions
    usable = None
    if given is not None:
        usable = UsableMask(given, _mask_kind(given), found="given")
    elif auto and "SCL" in descriptions:
        usable = UsableMask(path, "scl", band=descriptions.index("SCL") + 1, found="the file's SCL band")
    if usable is not None:
        notes.append(f"{path.name}: {usable.describe()}")
    acquired = None
    if sentinel2:
        day, where = _sentinel2_date(None, [path.name])
        if day:
            acquired = (day, day)
            notes.append(f"{path.name}: acquired {day.isoformat()} ({where})")
    return Scene(
        source=path,
        raster=path,
        bands=bands,
        product="Sentinel-2 L2A" if sentinel2 else "",
        sensor="Sentinel-2" if sentinel2 else "",
        mask=usable,
        acquired=acquired,
        notes=tuple(notes),
    )


def _mask_kind(path: Path) -> str:
    """A mask given for a scene that is not a recognised product: UDM2 (8 bands) or SCL (1 band)."""
    with open_raster(path) as dataset:
        count = dataset.count
    name = path.name.lower()
    if "udm2" in name or count == len(UDM2_BANDS):
        return "udm2"
    if "scl" in name or count == 1:
        return "scl"
    raise RtsMapperError(
        f"has {count} bands: neither a Planet UDM2 (8 bands) nor a Sentinel-2 SCL (1 band)", path
    )
