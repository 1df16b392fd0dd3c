"""A small GeoPackage (OGC 12-128r17, version 1.2) writer and reader on the standard sqlite3.

Why not OGR: the mapping project writes each review decision in its own short transaction, with
constraints (one decision per reviewer and candidate) and parameterised SQL only; plain sqlite3
gives that control and needs nothing beyond the standard library and shapely. QGIS and GDAL open
the result natively: spatial tables carry the spec's R-tree index and its triggers, for which
this module registers the ``ST_*`` functions the triggers call.

Identifiers (table and column names) never come from users: they are constants of
:mod:`.project`, checked by :func:`_identifier` before use; every value is a bound parameter.
"""

from __future__ import annotations

import re
import sqlite3
import struct
import urllib.parse
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import shapely
from shapely.geometry.base import BaseGeometry

from . import errors

GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GPKG_USER_VERSION = 10200  # 1.2.0
RTREE_EXTENSION = ("gpkg_rtree_index", "http://www.geopackage.org/spec120/#extension_rtree", "write-only")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COLUMN_TYPE = re.compile(r"^(?:[A-Za-z0-9_ ,()]|'[a-z_]+')+$")  # words, numbers, ( ), 'words': no ; -- /* "

_CORE_TABLES = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
  scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
"""

_DEFAULT_SRS = (
    (
        "Undefined cartesian SRS",
        -1,
        "NONE",
        -1,
        "undefined",
        "undefined cartesian coordinate reference system",
    ),
    (
        "Undefined geographic SRS",
        0,
        "NONE",
        0,
        "undefined",
        "undefined geographic coordinate reference system",
    ),
    (
        "WGS 84 geodetic",
        4326,
        "EPSG",
        4326,
        'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
        'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,'
        'AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],'
        'AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]',
        "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid",
    ),
)


def _identifier(name: str) -> str:
    """Return ``name`` quoted for SQL after checking it is a plain identifier (never user text)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid table or column name: {name!r}")
    return f'"{name}"'


def _column_type(kind: str) -> str:
    """A column declaration (type and constraints, e.g. "TEXT NOT NULL CHECK (d IN ('a', 'b'))"),
    checked like identifiers: words, numbers, brackets and quoted words only."""
    if not _COLUMN_TYPE.match(kind):
        raise ValueError(f"not a column type: {kind!r}")
    return kind


def utc_now() -> str:
    """Now as a GeoPackage DATETIME: ISO 8601 in UTC to the millisecond, "YYYY-MM-DDTHH:MM:SS.SSSZ"."""
    return as_datetime(datetime.now(timezone.utc))


def as_datetime(value: datetime | str | None) -> str | None:
    """A time as a GeoPackage DATETIME (see :func:`utc_now`); None or "" stays None.

    Text is read as ISO 8601; a time without a zone is taken as this computer's local time (how
    earlier versions wrote the loop's start and end times).
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.astimezone()  # local time
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# -- geometry encoding (GeoPackage binary: header, envelope, ISO WKB) --

_FLAG_LITTLE_ENDIAN = 0x01
_FLAG_ENVELOPE_XY = 0x02  # envelope indicator 1: [minx, maxx, miny, maxy]
_FLAG_EMPTY = 0x10


def _wkb(geometry: BaseGeometry) -> bytes:
    # The output dimension is explicit: shapely's default depends on the GEOS it was built with,
    # which is not always the GEOS that answers inside the QGIS desktop.
    return shapely.to_wkb(geometry, byte_order=1, flavor="iso", output_dimension=2)


def encode_geometry(geometry: BaseGeometry | None, srs_id: int) -> bytes | None:
    """shapely geometry -> GeoPackage geometry blob (little-endian, XY envelope), always 2-D:
    the geometry columns declare z = 0 and m = 0, and a Z a digitiser or a DEM-draped outline
    brings along is dropped (GeoPackage requirement 19)."""
    if geometry is None:
        return None
    geometry = shapely.force_2d(geometry)
    if geometry.is_empty:
        header = struct.pack("<2sBBi", b"GP", 0, _FLAG_LITTLE_ENDIAN | _FLAG_EMPTY, srs_id)
        return header + _wkb(geometry)
    minx, miny, maxx, maxy = geometry.bounds
    header = struct.pack(
        "<2sBBi4d", b"GP", 0, _FLAG_LITTLE_ENDIAN | _FLAG_ENVELOPE_XY, srs_id, minx, maxx, miny, maxy
    )
    return header + _wkb(geometry)


_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}


def _split_blob(blob: bytes) -> tuple[int, tuple[float, ...], bytes]:
    """(flags, envelope, wkb) of a GeoPackage geometry blob."""
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob")
    flags = blob[3]
    order = "<" if flags & _FLAG_LITTLE_ENDIAN else ">"
    n_doubles = _ENVELOPE_DOUBLES.get((flags >> 1) & 0x07)
    if n_doubles is None:
        raise ValueError("invalid GeoPackage envelope indicator")
    envelope = struct.unpack_from(f"{order}{n_doubles}d", blob, 8) if n_doubles else ()
    return flags, envelope, blob[8 + 8 * n_doubles :]


def decode_geometry(blob: bytes | None) -> BaseGeometry | None:
    """GeoPackage geometry blob -> shapely geometry (None stays None)."""
    if blob is None:
        return None
    _, _, wkb = _split_blob(bytes(blob))
    return shapely.from_wkb(wkb)


def _envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) of a blob, or None when null or empty."""
    if blob is None:
        return None
    flags, envelope, wkb = _split_blob(bytes(blob))
    if flags & _FLAG_EMPTY:
        return None
    if len(envelope) >= 4:
        return envelope[0], envelope[1], envelope[2], envelope[3]
    geometry = shapely.from_wkb(wkb)
    if geometry.is_empty:
        return None
    minx, miny, maxx, maxy = geometry.bounds
    return minx, maxx, miny, maxy


def _st_is_empty(blob):
    return None if blob is None else int(_envelope(blob) is None)


def _st_coordinate(index: int):
    def function(blob):
        envelope = _envelope(blob)
        return None if envelope is None else envelope[index]

    return function


# -- connections --


def connect(path: str | Path, timeout_s: float = 10.0) -> sqlite3.Connection:
    """Open a GeoPackage with the functions its R-tree triggers need.

    Transactions are explicit (``isolation_level=None`` plus :func:`transaction`), foreign keys
    are enforced and a writer waits up to ``timeout_s`` for another (QGIS) to finish.
    """
    if errors.on_read_only_volume(path):
        # a DVD, a write-protected stick, a read-only share: nobody can write it, so SQLite may
        # read it without locks or a WAL index (which it would have to create beside the file)
        uri = f"file:{urllib.parse.quote(str(Path(path).resolve()))}?immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None)
    else:
        conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")  # a decision survives a power cut, not just a crash
    conn.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for index, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, _st_coordinate(index), deterministic=True)
    return conn


def write_failure(exc: sqlite3.Error) -> str:
    """What a person reads when a write to a GeoPackage failed (nothing of it was stored)."""
    said = str(exc).lower()
    if "locked" in said or "busy" in said:
        return (
            "is busy: another program holds it (QGIS editing it, a colleague); nothing was stored, try again"
        )
    return errors.write_failure(exc).replace("nothing was kept", "nothing was stored")


@contextmanager
def transaction(conn: sqlite3.Connection):
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error: all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def use_wal(conn: sqlite3.Connection) -> None:
    """Write-ahead logging for a new GeoPackage, the mode QGIS itself uses while it edits one.

    Only at creation, when nobody else has the file open: QGIS 3.22 switches the mode of files it
    opens (WAL while open, back to DELETE when it closes them), and a switch made while several of
    its layers hold the file leaves the later ones unreadable ("unable to open database file",
    a layer without CRS). Never switch a file QGIS may hold: that broke its read-only connection.
    """
    conn.execute("PRAGMA journal_mode = WAL")


def initialise(conn: sqlite3.Connection) -> None:
    """Make an empty SQLite database a GeoPackage (idempotent)."""
    conn.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
    for statement in _CORE_TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.executemany(
        "INSERT OR IGNORE INTO gpkg_spatial_ref_sys "
        "(srs_name, srs_id, organization, organization_coordsys_id, definition, description) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        _DEFAULT_SRS,
    )


def is_geopackage(conn: sqlite3.Connection) -> bool:
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    return application_id == GPKG_APPLICATION_ID


def ensure_srs(conn: sqlite3.Connection, name: str, epsg: int | None, wkt: str) -> int:
    """The srs_id for a CRS, inserting it when missing (EPSG code as srs_id when there is one)."""
    if epsg is not None:
        row = conn.execute(
            "SELECT srs_id FROM gpkg_spatial_ref_sys WHERE organization = 'EPSG' AND organization_coordsys_id = ?",
            (epsg,),
        ).fetchone()
        if row:
            return int(row[0])
        conn.execute(
            "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, 'EPSG', ?, ?, NULL)", (name, epsg, epsg, wkt)
        )
        return epsg
    row = conn.execute("SELECT srs_id FROM gpkg_spatial_ref_sys WHERE definition = ?", (wkt,)).fetchone()
    if row:
        return int(row[0])
    srs_id = max(
        100000, conn.execute("SELECT COALESCE(MAX(srs_id), 0) + 1 FROM gpkg_spatial_ref_sys").fetchone()[0]
    )
    conn.execute(
        "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, 'NONE', ?, ?, NULL)", (name, srs_id, srs_id, wkt)
    )
    return srs_id


def table_exists(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None


def create_attribute_table(
    conn: sqlite3.Connection, table: str, columns: Sequence[tuple[str, str]], description: str = ""
) -> None:
    """A non-spatial table registered in gpkg_contents (``attributes``); ``fid`` is added."""
    if table_exists(conn, table):
        return
    column_sql = ", ".join(f"{_identifier(name)} {_column_type(kind)}" for name, kind in columns)
    conn.execute(f"CREATE TABLE {_identifier(table)} (fid INTEGER PRIMARY KEY AUTOINCREMENT, {column_sql})")
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
        "VALUES (?, 'attributes', ?, ?, ?)",
        (table, table, description, utc_now()),
    )


def create_feature_table(
    conn: sqlite3.Connection,
    table: str,
    geometry_type: str,
    srs_id: int,
    columns: Sequence[tuple[str, str]],
    description: str = "",
    geometry_column: str = "geom",
) -> None:
    """A spatial table with ``fid``, a geometry column, the R-tree index and its triggers."""
    if table_exists(conn, table):
        return
    t, c = _identifier(table), _identifier(geometry_column)
    column_sql = "".join(f", {_identifier(name)} {_column_type(kind)}" for name, kind in columns)
    conn.execute(
        f"CREATE TABLE {t} (fid INTEGER PRIMARY KEY AUTOINCREMENT, {c} {_column_type(geometry_type)}{column_sql})"
    )
    conn.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change, srs_id) "
        "VALUES (?, 'features', ?, ?, ?, ?)",
        (table, table, description, utc_now(), srs_id),
    )
    conn.execute(
        "INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, 0, 0)",
        (table, geometry_column, geometry_type, srs_id),
    )
    _create_rtree(conn, table, geometry_column)


def declared_types(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """column -> declared type (``INTEGER``, ``DATETIME``...) of a table as it is in the file."""
    return {
        row["name"]: row["type"].upper() for row in conn.execute(f"PRAGMA table_info({_identifier(table)})")
    }


def retype_table(
    conn: sqlite3.Connection,
    table: str,
    geometry_type: str | None,
    columns: Sequence[tuple[str, str]],
    geometry_column: str = "geom",
) -> None:
    """Rebuild ``table`` with the column declarations ``columns``, keeping every row and its fid.

    SQLite cannot change a column's type in place; this is its documented way (a new table, the
    rows copied, the old one dropped, the new one renamed), then the indexes' and R-tree's
    triggers made again (the R-tree's entries stay valid: the fids do not change). Columns the
    file lacks are added empty. Run it inside a transaction with foreign keys off
    (``PRAGMA foreign_keys = OFF`` before BEGIN), as SQLite asks, and check them afterwards.
    """
    t, staging = _identifier(table), _identifier(f"{table}__retyped")
    kept = [name for name, _ in columns if name in declared_types(conn, table)]
    geometry = [] if geometry_type is None else [geometry_column]
    column_sql = "".join(f", {_identifier(name)} {_column_type(kind)}" for name, kind in columns)
    geometry_sql = (
        "" if geometry_type is None else f", {_identifier(geometry_column)} {_column_type(geometry_type)}"
    )
    sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    conn.execute(f"CREATE TABLE {staging} (fid INTEGER PRIMARY KEY AUTOINCREMENT{geometry_sql}{column_sql})")
    copied = ", ".join(_identifier(n) for n in ["fid", *geometry, *kept])
    conn.execute(f"INSERT INTO {staging} ({copied}) SELECT {copied} FROM {t}")
    conn.execute(f"DROP TABLE {t}")
    conn.execute(f"ALTER TABLE {staging} RENAME TO {t}")
    if sequence is not None:
        conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (sequence[0], table))
    if geometry_type is not None:
        _create_rtree(conn, table, geometry_column)


def _create_rtree(conn: sqlite3.Connection, table: str, column: str) -> None:
    t, c = _identifier(table), _identifier(column)
    rtree = _identifier(f"rtree_{table}_{column}")
    bounds = f"NEW.{c}"
    values = f"(NEW.fid, ST_MinX({bounds}), ST_MaxX({bounds}), ST_MinY({bounds}), ST_MaxY({bounds}))"
    non_empty = f"(NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c}))"
    empty = f"(NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c}))"
    trigger = lambda suffix: _identifier(f"rtree_{table}_{column}_{suffix}")  # noqa: E731
    # one statement per execute(): executescript() would COMMIT the caller's transaction
    statements = [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {rtree} USING rtree(id, minx, maxx, miny, maxy)",
        f"CREATE TRIGGER {trigger('insert')} AFTER INSERT ON {t} WHEN {non_empty} "
        f"BEGIN INSERT OR REPLACE INTO {rtree} VALUES {values}; END",
        f"CREATE TRIGGER {trigger('update1')} AFTER UPDATE OF {c} ON {t} WHEN OLD.fid = NEW.fid AND {non_empty} "
        f"BEGIN INSERT OR REPLACE INTO {rtree} VALUES {values}; END",
        f"CREATE TRIGGER {trigger('update2')} AFTER UPDATE OF {c} ON {t} WHEN OLD.fid = NEW.fid AND {empty} "
        f"BEGIN DELETE FROM {rtree} WHERE id = OLD.fid; END",
        f"CREATE TRIGGER {trigger('update3')} AFTER UPDATE ON {t} WHEN OLD.fid != NEW.fid AND {non_empty} "
        f"BEGIN DELETE FROM {rtree} WHERE id = OLD.fid; INSERT OR REPLACE INTO {rtree} VALUES {values}; END",
        f"CREATE TRIGGER {trigger('update4')} AFTER UPDATE ON {t} WHEN OLD.fid != NEW.fid AND {empty} "
        f"BEGIN DELETE FROM {rtree} WHERE id IN (OLD.fid, NEW.fid); END",
        f"CREATE TRIGGER {trigger('delete')} AFTER DELETE ON {t} WHEN OLD.{c} NOT NULL "
        f"BEGIN DELETE FROM {rtree} WHERE id = OLD.fid; END",
    ]
    for statement in statements:
        conn.execute(statement)
    conn.execute(
        "INSERT OR IGNORE INTO gpkg_extensions VALUES (?, ?, ?, ?, ?)", (table, column, *RTREE_EXTENSION)
    )


# QGIS's table of layer styles, as QGIS 3.22 itself creates it in a GeoPackage
_LAYER_STYLES = (
    ("f_table_catalog", "TEXT(256)"),
    ("f_table_schema", "TEXT(256)"),
    ("f_table_name", "TEXT(256)"),
    ("f_geometry_column", "TEXT(256)"),
    ("styleName", "TEXT(30)"),
    ("styleQML", "TEXT"),
    ("styleSLD", "TEXT"),
    ("useAsDefault", "BOOLEAN"),
    ("description", "TEXT"),
    ("owner", "TEXT(30)"),
    ("ui", "TEXT(30)"),
    ("update_time", "DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))"),
)


def has_default_style(conn: sqlite3.Connection, table: str) -> bool:
    if not table_exists(conn, "layer_styles"):
        return False
    row = conn.execute(
        "SELECT 1 FROM layer_styles WHERE f_table_name = ? AND useAsDefault = 1", (table,)
    ).fetchone()
    return row is not None


def save_default_style(
    conn: sqlite3.Connection,
    table: str,
    qml: str,
    name: str,
    description: str = "",
    geometry_column: str = "geom",
) -> None:
    """Store ``qml`` as the default style of ``table`` in ``layer_styles``, where QGIS looks
    first when it opens a GeoPackage layer: the file shows its styles anywhere, with or without
    the plugin. It replaces the table's earlier default style."""
    if not table_exists(conn, "layer_styles"):
        conn.execute(
            "CREATE TABLE layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
            + ", ".join(f"{_identifier(n)} {k}" for n, k in _LAYER_STYLES)
            + ")"
        )
        conn.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
            "VALUES ('layer_styles', 'attributes', 'layer_styles', '', ?)",
            (utc_now(),),
        )
    conn.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (table,))
    conn.execute(
        "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
        "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, update_time) "
        "VALUES ('', '', ?, ?, ?, ?, NULL, 1, ?, '', NULL, ?)",
        (table, geometry_column, name, qml, description, utc_now()),
    )
    touch(conn, "layer_styles")


def refresh_extent(conn: sqlite3.Connection, table: str, geometry_column: str = "geom") -> None:
    """Store the table's bounding box in gpkg_contents (QGIS and GDAL read it as the layer extent)."""
    rtree = _identifier(f"rtree_{table}_{geometry_column}")
    row = conn.execute(f"SELECT MIN(minx), MIN(miny), MAX(maxx), MAX(maxy) FROM {rtree}").fetchone()
    conn.execute(
        "UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?, last_change = ? WHERE table_name = ?",
        (*tuple(row), utc_now(), table),
    )


def touch(conn: sqlite3.Connection, table: str) -> None:
    """Record a change of ``table`` in gpkg_contents.last_change."""
    conn.execute("UPDATE gpkg_contents SET last_change = ? WHERE table_name = ?", (utc_now(), table))


def insert_rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]
) -> list[int]:
    """Insert rows (values in ``columns`` order) and return their fids."""
    sql = (
        f"INSERT INTO {_identifier(table)} ({', '.join(_identifier(c) for c in columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    fids = []
    for row in rows:
        fids.append(conn.execute(sql, tuple(row)).lastrowid)
    return fids


def quoted(name: str) -> str:
    """A checked, quoted identifier for building SQL from the project's own constants."""
    return _identifier(name)
