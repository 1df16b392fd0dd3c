"""The mapping project: one GeoPackage that holds a whole mapping effort, and its schema.

Every face (GUI, Processing, CLI) reads and writes the project through this module, so the
schema lives here and only here: the workflow's modules (review decisions, the loop) write
through :meth:`MappingProject.writing`, one transaction holding a :class:`ProjectWriter`, and
never write SQL of their own (a layout test holds them to it). Rasters stay outside (GeoTIFF / VRT); the ``years`` table says
which prepared raster is which year. Paths are stored relative to the GeoPackage when they sit
beside or below it, so a project folder can be copied to a field laptop and still open.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rasterio.crs import CRS

from .. import gpkg
from ..errors import RtsMapperError, almost_full

SCHEMA_VERSION = (
    3  # 2: DATE, DATETIME and BOOLEAN columns (were TEXT and INTEGER); 3: review_log's undo columns
)

DECISIONS = ("accepted", "rejected", "unsure")
CANDIDATE_STATUSES = ("pending", *DECISIONS, "conflict")
CRITERIA = (
    ("headwall_highest", "Headwall at the highest elevation"),
    ("colour_contrast", "Colour contrast with the surroundings"),
    ("arcuate_shaded_headwall", "Arcuate, shaded headwall"),
    ("upslope_retreat", "Upslope retreat over the years"),
)

_status_check = ", ".join(f"'{s}'" for s in CANDIDATE_STATUSES)
_decision_check = ", ".join(f"'{d}'" for d in DECISIONS)

# table -> (geometry type or None, [(column, SQL type and constraints)], description)
SCHEMA: dict[str, tuple[str | None, list[tuple[str, str]], str]] = {
    "rts_mapper_meta": (
        None,
        [("key", "TEXT NOT NULL UNIQUE"), ("value", "TEXT")],
        "RTS Mapper project metadata",
    ),
    "years": (
        None,
        [
            ("year", "INTEGER NOT NULL UNIQUE"),
            ("raster_path", "TEXT NOT NULL"),
            ("sensor", "TEXT"),
            ("date_start", "DATE"),
            ("date_end", "DATE"),
            ("registered_at", "DATETIME NOT NULL"),
        ],
        "Prepared 8-bit RGB layer of each year (the time-lapse)",
    ),
    "runs": (
        None,
        [
            ("run_id", "TEXT NOT NULL UNIQUE"),
            ("iteration", "INTEGER"),
            ("year", "INTEGER"),
            ("image_path", "TEXT"),
            ("model_path", "TEXT"),
            ("prob_path", "TEXT"),
            ("threshold", "REAL"),
            ("min_area_m2", "REAL"),
            ("candidates", "INTEGER"),
            ("set_aside_known", "INTEGER"),
            ("area_km2", "REAL"),
            ("seconds", "REAL"),
            ("device", "TEXT"),
            ("started_at", "DATETIME"),
            ("finished_at", "DATETIME"),
        ],
        "Inference runs; a run's candidates appear only once the run is complete",
    ),
    "candidates": (
        "MULTIPOLYGON",
        [
            ("run_id", "TEXT NOT NULL"),
            ("iteration", "INTEGER"),
            ("year", "INTEGER"),
            ("area_m2", "REAL"),
            ("perimeter_m", "REAL"),
            ("mean_prob", "REAL"),
            ("max_prob", "REAL"),
            ("status", f"TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({_status_check}))"),
            ("created_at", "DATETIME"),
        ],
        "Candidate RTS polygons proposed by the model",
    ),
    "reviews": (
        "MULTIPOLYGON",
        [
            ("candidate_id", "INTEGER NOT NULL REFERENCES candidates(fid)"),
            ("reviewer", "TEXT NOT NULL"),
            ("decision", f"TEXT NOT NULL CHECK (decision IN ({_decision_check}))"),
            ("probability", "INTEGER CHECK (probability BETWEEN 0 AND 100)"),
            ("initiation_period", "TEXT"),
            *[(name, "BOOLEAN NOT NULL DEFAULT 0 CHECK (" + name + " IN (0, 1))") for name, _ in CRITERIA],
            ("note", "TEXT"),
            ("decided_at", "DATETIME NOT NULL"),
            ("seconds_spent", "REAL"),
            ("is_final", "BOOLEAN NOT NULL DEFAULT 0 CHECK (is_final IN (0, 1))"),
            ("edited", "BOOLEAN NOT NULL DEFAULT 0 CHECK (edited IN (0, 1))"),
        ],
        "One decision per reviewer and candidate; geometry is the reviewed boundary",
    ),
    "review_log": (
        None,
        [
            ("candidate_id", "INTEGER NOT NULL"),
            ("reviewer", "TEXT NOT NULL"),
            ("decision", "TEXT"),
            ("probability", "INTEGER"),
            ("initiation_period", "TEXT"),
            ("criteria", "TEXT"),
            ("note", "TEXT"),
            ("edited", "BOOLEAN"),
            ("is_final", "BOOLEAN"),
            ("logged_at", "DATETIME NOT NULL"),
            ("action", "TEXT"),  # decision, note or undo (empty in lines older than undo: decision)
            ("undoes", "INTEGER"),  # the line an undo took back
            ("seconds_spent", "REAL"),
            ("boundary", "BLOB"),  # the reviewed boundary after the line (GeoPackage geometry)
            ("outline_before", "BLOB"),  # the candidate's outline before an edit changed it
        ],
        "Append-only history of every decision, note, boundary edit and undo, for audit",
    ),
    "review_sessions": (
        None,
        [
            ("reviewer", "TEXT NOT NULL UNIQUE"),
            ("run_id", "TEXT"),
            ("show", "TEXT"),
            ("order_by", "TEXT"),
            ("updated_at", "DATETIME NOT NULL"),
        ],
        "Where each reviewer was: candidate set, filter and order, restored by the Review dock",
    ),
    "completeness_plots": (
        "MULTIPOLYGON",
        [
            ("run_id", "TEXT NOT NULL"),
            ("stratum", "TEXT NOT NULL"),
            ("stratum_cells", "INTEGER NOT NULL"),
            ("stratum_sampled", "INTEGER NOT NULL"),
            ("found", "INTEGER"),  # empty until a reviewer has looked
            ("found_area_m2", "REAL"),
            ("reviewer", "TEXT"),
            ("answered_at", "DATETIME"),
            ("sampled_at", "DATETIME NOT NULL"),
        ],
        "A stratified random sample of the places a run did not flag, to estimate what is still unmapped",
    ),
    "completeness_finds": (
        "MULTIPOLYGON",
        [
            ("plot_id", "INTEGER NOT NULL REFERENCES completeness_plots(fid)"),
            ("reviewer", "TEXT NOT NULL"),
            ("found_at", "DATETIME NOT NULL"),
        ],
        "Unmapped slumps a reviewer outlined in a completeness plot",
    ),
    "training_positives": (
        "MULTIPOLYGON",
        [
            ("iteration_added", "INTEGER NOT NULL"),
            ("source", "TEXT"),
            ("candidate_id", "INTEGER"),
            ("initiation_period", "TEXT"),
            ("added_at", "DATETIME"),
        ],
        "Confirmed RTS polygons used for training",
    ),
    "training_negatives": (
        "MULTIPOLYGON",
        [
            ("iteration_added", "INTEGER NOT NULL"),
            ("source", "TEXT"),
            ("candidate_id", "INTEGER"),
            ("added_at", "DATETIME"),
        ],
        "Representative false positives used as background in training",
    ),
    "iterations": (
        None,
        [
            ("iteration", "INTEGER NOT NULL UNIQUE"),
            ("model_path", "TEXT"),
            ("positives", "INTEGER"),
            ("negatives", "INTEGER"),
            ("inferred", "INTEGER"),
            ("set_aside_known", "INTEGER"),
            ("newly_found", "INTEGER"),
            ("total_rts", "INTEGER"),
            ("reviewers", "TEXT"),
            ("review_hours", "REAL"),
            ("train_seconds", "REAL"),
            ("infer_seconds", "REAL"),
            ("started_at", "DATETIME"),
            ("finished_at", "DATETIME"),
            ("simulated", "BOOLEAN NOT NULL DEFAULT 0"),
            ("notes", "TEXT"),
        ],
        "The paper's Table 1, one row per iteration",
    ),
}


def _store_styles(conn: sqlite3.Connection, tables) -> None:
    from ...__about__ import style_qml

    for table in tables:
        gpkg.save_default_style(
            conn, table, style_qml(LAYER_STYLES[table]), f"RTS Mapper {table}", SCHEMA[table][2]
        )


def record_values(row: sqlite3.Row) -> dict:
    """A row as a record's fields: a time not (yet) known, NULL in the file, is the record's ""."""
    return {k: "" if row[k] is None and k.endswith("_at") else row[k] for k in row.keys()}  # noqa: SIM118


def _type_of(declaration: str) -> str:
    """The type of a column declaration: "DATETIME NOT NULL" -> "DATETIME"."""
    return declaration.split()[0].upper()


def _bound(table: str, values: dict) -> dict:
    """Values as the table stores them: a time as a GeoPackage DATETIME (UTC, milliseconds), and
    an empty day or time as NULL (a DATE or DATETIME column holds a valid one or nothing)."""
    kinds = {name: _type_of(kind) for name, kind in SCHEMA[table][1]}

    def stored(name, value):
        if kinds.get(name) == "DATETIME":
            return gpkg.as_datetime(value)
        if kinds.get(name) == "DATE" and value == "":
            return None
        return value

    return {k: stored(k, v) for k, v in values.items()}


# spatial table -> its bundled QML style, stored in the GeoPackage as the table's default
LAYER_STYLES = {
    "candidates": "candidates",
    "reviews": "reviews",
    "training_positives": "training_positives",
    "training_negatives": "training_negatives",
}


RUN_FIELDS = (
    "run_id",
    "iteration",
    "year",
    "image_path",
    "model_path",
    "prob_path",
    "threshold",
    "min_area_m2",
    "candidates",
    "set_aside_known",
    "area_km2",
    "seconds",
    "device",
    "started_at",
    "finished_at",
)
CANDIDATE_FIELDS = ("area_m2", "perimeter_m", "mean_prob", "max_prob", "status", "year", "iteration")


@dataclass
class RunRecord:
    """One inference run: what was run on what, and what it found."""

    run_id: str
    iteration: int | None = None
    year: int | None = None
    image_path: str = ""
    model_path: str = ""
    prob_path: str = ""
    threshold: float | None = None
    min_area_m2: float | None = None
    candidates: int = 0
    set_aside_known: int = 0
    area_km2: float = 0.0
    seconds: float = 0.0
    device: str = ""
    started_at: str = ""
    finished_at: str = ""


def new_run_id(iteration: int | None = None) -> str:
    """A unique, sortable, readable run id, e.g. ``it02-20261124T101530-3f2a``."""
    import uuid
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    prefix = f"it{iteration:02d}-" if iteration is not None else ""
    return f"{prefix}{stamp}-{uuid.uuid4().hex[:4]}"


@dataclass(frozen=True)
class YearLayer:
    """A registered year: which prepared raster shows the region in that year."""

    year: int
    raster_path: Path
    sensor: str = ""
    date_start: str = ""
    date_end: str = ""


class MappingProject:
    """A mapping project GeoPackage. Cheap to construct; each operation opens its own connection.

    Args:
        path: the GeoPackage. Use :meth:`create` for a new one, :meth:`open` for an existing one.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # -- life cycle --
    @classmethod
    def create(cls, path: str | os.PathLike, crs: CRS | str) -> MappingProject:
        """Create (or complete) a project GeoPackage whose layers use ``crs``."""
        crs = CRS.from_user_input(crs)
        path = Path(path)
        if path.exists():
            project = cls.open(path)
            if project.crs != crs:
                raise RtsMapperError(f"the project already exists in {project.crs}, not {crs}", path)
            return project
        path.parent.mkdir(parents=True, exist_ok=True)
        project = cls(path)
        with project.connection() as conn:
            gpkg.use_wal(conn)  # before the transaction: SQLite refuses it inside one
            with gpkg.transaction(conn):
                gpkg.initialise(conn)
                srs_id = gpkg.ensure_srs(
                    conn, crs.to_string(), crs.to_epsg(), crs.to_wkt(version="WKT1_GDAL")
                )
                project._create_tables(conn, srs_id)
                _store_styles(conn, LAYER_STYLES)
                conn.executemany(
                    "INSERT INTO rts_mapper_meta (key, value) VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("crs", crs.to_wkt()), ("srs_id", str(srs_id))],
                )
        return project

    @classmethod
    def open(cls, path: str | os.PathLike) -> MappingProject:
        """Open an existing project, adding any table a newer version of the plugin needs."""
        path = Path(path)
        if not path.is_file():
            raise RtsMapperError("no such mapping project (GeoPackage)", path)
        project = cls(path)
        try:
            with project.connection() as conn:
                if not gpkg.is_geopackage(conn) or not gpkg.table_exists(conn, "rts_mapper_meta"):
                    raise RtsMapperError("not an RTS Mapper project GeoPackage", path)
                missing = [t for t in SCHEMA if not gpkg.table_exists(conn, t)]
                if missing:
                    with gpkg.transaction(conn):
                        project._create_tables(conn, project.srs_id)
                if project._schema_version(conn) < SCHEMA_VERSION:
                    project._migrate(conn)
                unstyled = [t for t in LAYER_STYLES if not gpkg.has_default_style(conn, t)]
                if unstyled:  # a project made before styles were stored, or one a user cleared
                    try:
                        with gpkg.transaction(conn):
                            _store_styles(conn, unstyled)
                    except sqlite3.OperationalError:
                        pass  # a read-only copy (a DVD, a shared folder) opens all the same, unstyled
        except sqlite3.DatabaseError as exc:
            if almost_full(path):  # SQLite says only "disk I/O error" when its -shm file cannot grow
                raise RtsMapperError(
                    "cannot be opened: its drive is full and SQLite needs a little room beside the "
                    "project for its journal (free some space, then open it again); nothing was changed",
                    path,
                ) from exc
            raise RtsMapperError(f"cannot be read as a GeoPackage ({exc})", path) from exc
        return project

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, crs: CRS | str) -> MappingProject:
        """Open the project at ``path``, creating it in ``crs`` when it does not exist yet."""
        return cls.open(path) if Path(path).exists() else cls.create(path, crs)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = gpkg.connect(self.path)
        except UnicodeDecodeError as exc:  # SQLite's schema text damaged (a flipped byte)
            raise RtsMapperError(
                "is damaged: its table definitions are not readable text", self.path
            ) from exc
        try:
            yield conn
        except UnicodeDecodeError as exc:
            raise RtsMapperError("is damaged: it holds text that is not UTF-8", self.path) from exc
        finally:
            conn.close()

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM rts_mapper_meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row and row[0] else 1

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring a project written by an earlier version to :data:`SCHEMA_VERSION`, keeping every row.

        Version 2 declares times DATETIME, days DATE and flags BOOLEAN (QGIS then offers a date
        picker and a checkbox) and writes every time as a GeoPackage DATETIME in UTC: each table
        whose declared types differ is rebuilt (:func:`~..gpkg.retype_table`), all in one
        transaction, so a failure leaves the project as it was.
        """
        conn.execute("PRAGMA foreign_keys = OFF")  # SQLite's rule for rebuilding a table
        try:
            self._upgrade(conn)
        except sqlite3.Error as exc:
            raise RtsMapperError(
                f"could not be brought to this version's project format; nothing was changed ({exc})",
                self.path,
            ) from exc
        finally:
            conn.execute("PRAGMA foreign_keys = ON")

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        with gpkg.transaction(conn):
            for table, (geometry_type, columns, _description) in SCHEMA.items():
                declared = gpkg.declared_types(conn, table)
                if any(declared.get(name) != _type_of(kind) for name, kind in columns):
                    gpkg.retype_table(conn, table, geometry_type, columns)
                for name, kind in columns:
                    if _type_of(kind) in ("DATE", "DATETIME"):
                        self._normalise_times(conn, table, name, _type_of(kind))
            self._create_tables(conn, self.srs_id)  # the indexes dropped with rebuilt tables
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RtsMapperError(
                    f"the upgrade would break {len(broken)} references; nothing changed", self.path
                )
            conn.execute(
                "INSERT INTO rts_mapper_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )

    @staticmethod
    def _normalise_times(conn: sqlite3.Connection, table: str, column: str, kind: str) -> None:
        t, c = gpkg.quoted(table), gpkg.quoted(column)
        for fid, value in conn.execute(f"SELECT fid, {c} FROM {t} WHERE {c} IS NOT NULL").fetchall():
            try:
                new = (
                    gpkg.as_datetime(value)
                    if kind == "DATETIME"
                    else date.fromisoformat(value.strip()[:10]).isoformat()
                )
            except (TypeError, ValueError):
                new = None  # not a time at all: an empty cell rather than one no reader accepts
            if new != value:
                conn.execute(f"UPDATE {t} SET {c} = ? WHERE fid = ?", (new, fid))

    def _create_tables(self, conn: sqlite3.Connection, srs_id: int) -> None:
        for table, (geometry_type, columns, description) in SCHEMA.items():
            if geometry_type is None:
                gpkg.create_attribute_table(conn, table, columns, description)
            else:
                gpkg.create_feature_table(conn, table, geometry_type, srs_id, columns, description)
        conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS reviews_one_per_reviewer ON reviews (candidate_id, reviewer, is_final)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS candidates_run ON candidates (run_id)")
        conn.execute("CREATE INDEX IF NOT EXISTS reviews_candidate ON reviews (candidate_id)")
        # a candidate's history under the form, and a reviewer's undo, read the log by these
        conn.execute("CREATE INDEX IF NOT EXISTS review_log_candidate ON review_log (candidate_id)")
        conn.execute("CREATE INDEX IF NOT EXISTS review_log_reviewer ON review_log (reviewer)")
        conn.execute("CREATE INDEX IF NOT EXISTS completeness_plots_run ON completeness_plots (run_id)")

    @contextmanager
    def writing(self) -> Iterator[ProjectWriter]:
        """One transaction in which the workflow writes the project: everything or nothing. A
        write that fails (disk full, read-only drive, busy) is one clear error; nothing is kept."""
        try:
            with self.connection() as conn, gpkg.transaction(conn):
                yield ProjectWriter(self, conn)
        except sqlite3.OperationalError as exc:
            raise RtsMapperError(gpkg.write_failure(exc), self.path) from exc

    # -- metadata --
    def meta(self, key: str) -> str | None:
        with self.connection() as conn:
            row = conn.execute("SELECT value FROM rts_mapper_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.meta("crs"))

    @property
    def srs_id(self) -> int:
        return int(self.meta("srs_id"))

    # -- paths --
    def store_path(self, path: str | os.PathLike) -> str:
        """How a file path is stored: relative to the project folder when inside it."""
        path = Path(path).resolve()
        base = self.path.resolve().parent
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return str(path)

    def resolve_path(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else (self.path.resolve().parent / path)

    # -- the year registry --
    def register_year(
        self,
        year: int,
        raster_path: str | os.PathLike,
        sensor: str = "",
        date_start: str = "",
        date_end: str = "",
    ) -> YearLayer:
        """Record that ``raster_path`` shows the region in ``year`` (replaces an earlier one)."""
        if not Path(raster_path).is_file():
            raise RtsMapperError("no such raster to register", raster_path)
        with self.connection() as conn, gpkg.transaction(conn):
            conn.execute(
                "INSERT INTO years (year, raster_path, sensor, date_start, date_end, registered_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (year) DO UPDATE SET raster_path = excluded.raster_path, "
                "sensor = excluded.sensor, date_start = excluded.date_start, date_end = excluded.date_end, "
                "registered_at = excluded.registered_at",
                (
                    int(year),
                    self.store_path(raster_path),
                    sensor,
                    date_start or None,
                    date_end or None,
                    gpkg.utc_now(),
                ),
            )
            gpkg.touch(conn, "years")
        return YearLayer(int(year), Path(raster_path).resolve(), sensor, date_start, date_end)

    def unregister_year(self, year: int) -> None:
        with self.connection() as conn, gpkg.transaction(conn):
            conn.execute("DELETE FROM years WHERE year = ?", (int(year),))

    def years(self) -> list[YearLayer]:
        """The registered years, oldest first, with absolute raster paths."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT year, raster_path, sensor, date_start, date_end FROM years ORDER BY year"
            ).fetchall()
        return [
            YearLayer(
                r["year"],
                self.resolve_path(r["raster_path"]),
                r["sensor"] or "",
                r["date_start"] or "",
                r["date_end"] or "",
            )
            for r in rows
        ]

    # -- reading features --
    def features(self, table: str, where: str = "", parameters: tuple = ()):
        """A table's rows as a :class:`~.vectors.FeatureSet` (geometry + attributes, project CRS).

        ``where`` is a fixed SQL condition written by this plugin, never user text; values go in
        ``parameters``.
        """
        from ..vectors import FeatureSet

        if table not in SCHEMA or SCHEMA[table][0] is None:
            raise ValueError(f"{table} is not a spatial table of the project")
        sql = f"SELECT * FROM {gpkg.quoted(table)}" + (f" WHERE {where}" if where else "") + " ORDER BY fid"
        with self.connection() as conn:
            rows = conn.execute(sql, parameters).fetchall()
        geometries = [gpkg.decode_geometry(row["geom"]) for row in rows]
        attributes = [{k: row[k] for k in row.keys() if k != "geom"} for row in rows]  # noqa: SIM118
        return FeatureSet(geometries, attributes, self.crs)

    # -- inference runs and their candidates --
    def add_run(self, run: RunRecord, candidates) -> list[int]:
        """Record a run and its candidates in one transaction: a run is there whole or not at all.

        ``candidates`` are objects with ``geometry`` (polygon) and ``attributes()`` (a dict of
        :data:`CANDIDATE_FIELDS`); geometries must be in the project's CRS.
        """
        from ..vectors import as_multipolygon

        srs_id = self.srs_id
        created = gpkg.utc_now()
        rows = []
        for candidate in candidates:
            attributes = candidate.attributes()
            values = [attributes.get(name) for name in CANDIDATE_FIELDS]
            rows.append(
                (
                    gpkg.encode_geometry(as_multipolygon(candidate.geometry), srs_id),
                    run.run_id,
                    created,
                    *values,
                )
            )
        run.candidates = len(rows)
        with self.connection() as conn, gpkg.transaction(conn):
            conn.execute(
                f"INSERT INTO runs ({', '.join(RUN_FIELDS)}) VALUES ({', '.join('?' for _ in RUN_FIELDS)})",
                list(_bound("runs", {name: getattr(run, name) for name in RUN_FIELDS}).values()),
            )
            fids = gpkg.insert_rows(
                conn, "candidates", ("geom", "run_id", "created_at", *CANDIDATE_FIELDS), rows
            )
            if rows:
                gpkg.refresh_extent(conn, "candidates")
            gpkg.touch(conn, "runs")
        return fids

    def runs(self) -> list[RunRecord]:
        with self.connection() as conn:
            rows = conn.execute(f"SELECT {', '.join(RUN_FIELDS)} FROM runs ORDER BY fid").fetchall()
        return [RunRecord(**record_values(row)) for row in rows]

    def next_iteration(self) -> int:
        """The iteration a new run belongs to: one more than the last recorded, or 1."""
        with self.connection() as conn:
            last = conn.execute(
                "SELECT MAX(m) FROM (SELECT MAX(iteration) AS m FROM runs UNION SELECT MAX(iteration) FROM iterations)"
            ).fetchone()[0]
        return 1 if last is None else int(last) + 1


class ProjectWriter:
    """The project's tables as the workflow writes them, inside one transaction
    (:meth:`MappingProject.writing`). Column names are checked against :data:`SCHEMA`, every
    value is bound; the rules (what a status is, what gets promoted) stay with the callers."""

    TRAINING_TABLES = ("training_positives", "training_negatives")

    def __init__(self, project: MappingProject, conn: sqlite3.Connection) -> None:
        self.project = project
        self._conn = conn

    def read(self, sql: str, parameters: tuple = ()) -> list[sqlite3.Row]:
        """Rows of a query inside the same transaction (what the writes depend on)."""
        return self._conn.execute(sql, parameters).fetchall()

    def _columns(self, table: str, names) -> str:
        known = {"fid", "geom", *(c for c, _ in SCHEMA[table][1])}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{table} has no column {', '.join(unknown)}")
        return ", ".join(gpkg.quoted(n) for n in names)

    def _insert(self, table: str, values: dict) -> int:
        values = _bound(table, values)
        sql = (
            # sql-safe: _columns accepts only the schema's column names, each gpkg.quoted
            f"INSERT INTO {gpkg.quoted(table)} ({self._columns(table, values)}) "
            f"VALUES ({', '.join('?' for _ in values)})"
        )
        return self._conn.execute(sql, tuple(values.values())).lastrowid

    def _update(self, table: str, fid: int, values: dict) -> None:
        values = _bound(table, values)
        assignments = ", ".join(f"{c} = ?" for c in self._columns(table, values).split(", "))
        self._conn.execute(
            # sql-safe: assignments are the schema's quoted column names (from _columns) with "= ?"
            f"UPDATE {gpkg.quoted(table)} SET {assignments} WHERE fid = ?",
            (*values.values(), fid),
        )

    # -- reviews --
    def put_review(self, values: dict) -> None:
        """A reviewer's decision: replaces the same reviewer's earlier one (same candidate, same
        final flag), sits beside everyone else's."""
        # Not an UPSERT: an outer ON CONFLICT would override the R-tree triggers' INSERT OR REPLACE.
        existing = self._conn.execute(
            "SELECT fid FROM reviews WHERE candidate_id = ? AND reviewer = ? AND is_final = ?",
            (values["candidate_id"], values["reviewer"], values["is_final"]),
        ).fetchone()
        if existing is None:
            self._insert("reviews", values)
        else:
            self._update("reviews", existing["fid"], values)
        gpkg.refresh_extent(self._conn, "reviews")
        gpkg.touch(self._conn, "reviews")

    def delete_review(self, review_fid: int) -> None:
        """A decision taken back by an undo (its history stays in review_log)."""
        self._conn.execute("DELETE FROM reviews WHERE fid = ?", (review_fid,))
        gpkg.touch(self._conn, "reviews")

    def set_candidate_outline(self, candidate_id: int, blob: bytes) -> None:
        """A candidate's outline put back (an undone boundary edit)."""
        self._update("candidates", candidate_id, {"geom": blob})
        gpkg.refresh_extent(self._conn, "candidates")
        gpkg.touch(self._conn, "candidates")

    # -- the completeness sample --
    def add_plots(self, rows: list[dict]) -> None:
        for values in rows:
            self._insert("completeness_plots", values)
        if rows:
            gpkg.refresh_extent(self._conn, "completeness_plots")
        gpkg.touch(self._conn, "completeness_plots")

    def drop_plots(self, run_id: str) -> None:
        """A run's sample and its finds (a new sample replaces it)."""
        self._conn.execute(
            "DELETE FROM completeness_finds WHERE plot_id IN (SELECT fid FROM completeness_plots WHERE run_id = ?)",
            (run_id,),
        )
        self._conn.execute("DELETE FROM completeness_plots WHERE run_id = ?", (run_id,))

    def answer_plot(self, plot_id: int, values: dict, finds: list[dict]) -> None:
        self._conn.execute("DELETE FROM completeness_finds WHERE plot_id = ?", (plot_id,))
        self._update("completeness_plots", plot_id, values)
        for find in finds:
            self._insert("completeness_finds", find)
        if finds:
            gpkg.refresh_extent(self._conn, "completeness_finds")
        gpkg.touch(self._conn, "completeness_plots")

    def set_review_note(self, review_fid: int, note: str | None) -> None:
        self._update("reviews", review_fid, {"note": note})
        gpkg.touch(self._conn, "reviews")

    def log_review(self, values: dict) -> int:
        """A line in the append-only review history; its fid."""
        return self._insert("review_log", values)

    def set_status(self, candidate_id: int, status: str) -> None:
        self._update("candidates", candidate_id, {"status": status})

    def save_review_session(self, reviewer: str, run_id: str | None, show: str, order_by: str) -> None:
        self._conn.execute(
            "INSERT INTO review_sessions (reviewer, run_id, show, order_by, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (reviewer) DO UPDATE SET run_id = excluded.run_id, show = excluded.show, "
            "order_by = excluded.order_by, updated_at = excluded.updated_at",
            (reviewer, run_id, show, order_by, gpkg.utc_now()),
        )

    # -- the loop --
    def add_training(self, table: str, rows: list[dict]) -> int:
        """Training polygons (``training_positives`` or ``training_negatives``); returns how many."""
        if table not in self.TRAINING_TABLES:
            raise ValueError(f"training polygons go to {' or '.join(self.TRAINING_TABLES)}, not {table}")
        for values in rows:
            self._insert(table, values)
        if rows:
            gpkg.refresh_extent(self._conn, table)
            gpkg.touch(self._conn, table)
        return len(rows)

    def put_iteration(self, values: dict) -> None:
        """An iteration's Table 1 row, replacing the one it had."""
        self._conn.execute("DELETE FROM iterations WHERE iteration = ?", (values["iteration"],))
        self._insert("iterations", values)


def initiation_periods(years: list[int]) -> list[str]:
    """The paper's initiation periods for registered ``years``: before the first, then between
    two consecutive years, e.g. [2016, 2017, 2018] -> ['before 2016', '2016-2017', '2017-2018']."""
    years = sorted(set(years))
    if not years:
        return []
    return [f"before {years[0]}"] + [f"{a}-{b}" for a, b in zip(years, years[1:])]
