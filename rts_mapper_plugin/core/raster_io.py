"""Raster plumbing shared by the workflow: opening with clear errors, windows, atomic outputs."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from .errors import RtsMapperError, is_write_failure, on_read_only_volume, write_failure
from .host import gdal_cache_is_hosts

# what rasterio raises when GDAL fails to read (RasterioIOError is an OSError, not a RasterioError)
READ_ERRORS = (RasterioError, RasterioIOError, CPLE_BaseError)

# GDAL's block cache defaults to 5 % of RAM: cap it so that memory does not grow with the image.
# No GDAL_NUM_THREADS: with GDAL 3.6, multi-threaded TIFF decoding deadlocks while building
# overviews (seen in CPLJobQueue::WaitCompletion); compression threads (NUM_THREADS) are fine.
GDAL_ENV = {"GDAL_CACHEMAX": 128, "GDAL_TIFF_INTERNAL_MASK": "YES"}

GTIFF_PROFILE = {
    "driver": "GTiff",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "deflate",
    "predictor": 2,
    "zlevel": 6,
    "num_threads": "ALL_CPUS",
    "bigtiff": "IF_SAFER",
}


def gdal_env(**extra) -> rasterio.Env:
    """A rasterio/GDAL environment with the project's bounded cache (the host's inside QGIS)."""
    options = {**GDAL_ENV, **extra}
    if gdal_cache_is_hosts():  # inside QGIS: see core.host
        options.pop("GDAL_CACHEMAX", None)
    return rasterio.Env(**options)


def is_gdal_url(path) -> bool:
    """A GDAL virtual file system path (``/vsicurl/``, ``/vsis3/``, ...), not a local file."""
    return isinstance(path, str) and path.startswith("/vsi")


def open_raster(path: str | os.PathLike, crs: str | None = None):
    """Open a raster for reading, or raise a one-line error naming the file.

    ``crs`` (WKT, "EPSG:xxxx") is the CRS to assume when the file has none, e.g. the one set on
    its layer in QGIS: the raster is then read through an in-memory VRT that carries it, and the
    file itself is left untouched. A GDAL virtual path (``/vsicurl/https://...``, a cloud-optimised
    GeoTIFF a cluster's workers all read) is opened as it is named.
    """
    if not is_gdal_url(path):
        path = Path(path)
        if not path.exists():
            raise RtsMapperError("no such file", path)
        if path.is_dir():
            raise RtsMapperError("is a folder, not a raster", path)
    try:
        if is_gdal_url(path):  # a URL's folder is not listed (no sidecar files looked for)
            with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
                dataset = rasterio.open(path)
        else:
            dataset = rasterio.open(path)
        if crs is None or dataset.crs is not None:
            return dataset
        dataset.close()
        return rasterio.open(_vrt_with_crs(path, crs))
    except RasterioIOError as exc:
        raise RtsMapperError(f"is not a raster GDAL can read ({_first_line(exc)})", path) from exc


def _vrt_with_crs(path: Path | str, crs: str) -> str:
    """The XML of a VRT over ``path`` that says its CRS is ``crs`` (GDAL opens XML text as a file)."""
    from osgeo import gdal
    from rasterio.crs import CRS

    try:
        wkt = CRS.from_user_input(crs).to_wkt()
    except Exception as exc:
        raise RtsMapperError(f"cannot use {crs!r} as its coordinate reference system", path) from exc
    source = path if is_gdal_url(path) else str(Path(path).resolve())
    translated = gdal.Translate("", source, format="VRT", outputSRS=wkt)
    if translated is None:
        raise RtsMapperError("cannot be given a coordinate reference system (GDAL refused it)", path)
    xml = translated.GetMetadata("xml:VRT")[0]
    translated = None
    return xml


def require_crs(dataset, path: str | os.PathLike) -> None:
    if dataset.crs is None:
        raise RtsMapperError(
            "has no coordinate reference system: give it one (gdal_edit.py -a_srs EPSG:XXXX FILE), "
            "or in QGIS set the layer's CRS (Layer Properties › Source) and run from the docks",
            path,
        )


@contextlib.contextmanager
def reading(path: str | os.PathLike, writing: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn GDAL read failures inside the block into a one-line error naming ``path`` (and a
    failure to write, when the block also writes ``writing``, into one naming that)."""
    try:
        yield
    except READ_ERRORS as exc:
        # a failure to write, or to read back what was just written (a file cut short by a full disk)
        if writing is not None and (is_write_failure(exc) or str(Path(writing)) in str(exc)):
            raise RtsMapperError(write_failure(exc, writing), writing) from exc
        raise RtsMapperError(
            f"cannot be read completely: truncated or corrupt? ({_first_line(exc)})", path
        ) from exc


def check_readable(dataset, path: str | os.PathLike) -> None:
    """Read a pixel of the first and last block: most truncated files fail here, before any work."""
    with reading(path):
        height, width = dataset.height, dataset.width
        for row, col in ((0, 0), (max(0, height - 1), max(0, width - 1))):
            dataset.read(1, window=Window(col, row, 1, 1))


def block_windows(width: int, height: int, size: int = 1024) -> list[Window]:
    """Square windows of ``size`` (a multiple of the 256-pixel output blocks) covering an image."""
    return [
        Window(col, row, min(size, width - col), min(size, height - row))
        for row in range(0, height, size)
        for col in range(0, width, size)
    ]


def cloud_optimize(path: str | os.PathLike, resampling: str = "average", level: int = 6) -> None:
    """Rewrite a finished tiled GeoTIFF in place as a Cloud-Optimized GeoTIFF, with overviews.

    GDAL's COG driver streams the copy block by block and computes the overviews itself
    (``resampling``), so memory stays flat whatever the size; the result has the layout
    ``validate_cloud_optimized_geotiff.py`` checks (overviews before the full-resolution image,
    tiles in order), so the file can be served and read over HTTP range requests as it is. Tags,
    band descriptions, colour interpretation and nodata are kept. Single-threaded: with
    NUM_THREADS, GDAL 3.6's COG driver deadlocked while it built the overviews of a 16384²
    image (0 % CPU, seen in the imagery benchmark).
    """
    from rasterio.shutil import copy as copy_raster

    path = Path(path)
    staging = path.with_name(path.name + ".cog")
    remove_with_sidecars(staging)
    try:
        with gdal_env(GDAL_TIFF_OVR_BLOCKSIZE=256):
            copy_raster(
                path,
                staging,
                driver="COG",
                BLOCKSIZE=256,
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                LEVEL=level,
                OVERVIEWS="IGNORE_EXISTING",
                OVERVIEW_RESAMPLING=resampling.upper(),
                BIGTIFF="IF_SAFER",
            )
        os.replace(staging, path)
        with contextlib.suppress(FileNotFoundError):
            Path(str(path) + ".aux.xml").unlink()  # statistics of the copy before it: stale
    finally:
        remove_with_sidecars(staging)


def partial_path(out: Path) -> Path:
    """Where an output is written until complete (renamed to ``out`` only on success)."""
    return out.with_name(out.name + ".partial")


def check_writable(out: str | os.PathLike) -> Path:
    """Make sure ``out`` can be written (creating its folder): fail before any long work."""
    out = Path(out)
    if out.is_dir():
        raise RtsMapperError("is a folder; give a file name", out)
    if not out.parent.is_dir():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RtsMapperError(f"cannot create the output folder ({exc.strerror})", out.parent) from exc
    if on_read_only_volume(out):
        raise RtsMapperError("cannot be written: its folder is on a read-only drive", out)
    if not os.access(out.parent, os.W_OK):
        raise RtsMapperError("cannot be written: no permission to write in its folder", out)
    return out


@contextlib.contextmanager
def atomic_output(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``out``; rename it to ``out`` only if the block succeeds.

    On error or cancel the partial file (and its GDAL side files) are removed, so nothing that
    looks finished is left behind. An unwritable destination fails before any work starts.
    """
    out = check_writable(out)
    partial = partial_path(out)
    remove_with_sidecars(partial)
    try:
        yield partial
        remove_with_sidecars(out)
        os.replace(partial, out)
        for suffix in (".ovr", ".aux.xml", ".msk"):
            side = Path(str(partial) + suffix)
            if side.exists():
                os.replace(side, Path(str(out) + suffix))
    except (OSError, *READ_ERRORS) as exc:
        remove_with_sidecars(partial)
        if isinstance(exc, RtsMapperError) or not is_write_failure(exc):
            raise
        raise RtsMapperError(write_failure(exc, out), out) from exc
    except BaseException:
        remove_with_sidecars(partial)
        raise


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Like ``atomic_output`` for an output that is a folder (training chips): yield an empty
    ``out.partial`` folder; it replaces ``out`` only if the block succeeds, and is removed on
    error or cancel. A full disk or a read-only drive becomes one line naming ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RtsMapperError("is a file; give a folder name", out)
    staging = partial_path(out)
    try:
        if on_read_only_volume(out):
            raise RtsMapperError("cannot be written: its folder is on a read-only drive", out)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        yield staging
        previous = out.with_name(out.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        if out.exists():
            os.replace(out, previous)
        os.replace(staging, out)
        shutil.rmtree(previous, ignore_errors=True)
    except (OSError, *READ_ERRORS) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, RtsMapperError) or not is_write_failure(exc):
            raise
        raise RtsMapperError(write_failure(exc, out), out) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_with_sidecars(path: Path) -> None:
    for candidate in (path, *(Path(str(path) + s) for s in (".ovr", ".aux.xml", ".msk"))):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()


def pixel_area_m2(dataset) -> float:
    """Area of one pixel in square metres (projected CRS) or at the image centre (geographic)."""
    xres, yres = abs(dataset.transform.a), abs(dataset.transform.e)
    if dataset.crs is not None and dataset.crs.is_geographic:
        latitude = math.radians((dataset.bounds.top + dataset.bounds.bottom) / 2)
        metres_per_degree = 111_320.0
        return xres * metres_per_degree * math.cos(latitude) * yres * metres_per_degree
    return xres * yres


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
