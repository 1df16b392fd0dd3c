"""Fuzzed inputs through the command line: mutated GeoTIFFs, GeoPackages, model files and vector
files, each run through the commands that read them.

Every case must end in one of: a result (rc 0: the mutation did not matter, e.g. flipped pixel
values), or one clear line (rc 2, ``error: FILE: what is wrong``). Anything else is counted: a
message of several lines or from a library, an exception out of ``main`` (a traceback), the
process dying (a crash), a case running past the stall limit (a hang), or memory growing past the
limit (a header that claims 10^6 x 10^6 pixels must not be allocated).

Mutations are seeded: the same seed gives the same files.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
STALL_S = float(os.environ.get("RTS_FUZZ_STALL_S", "180"))
MEMORY_JUMP_MB = 1024  # a case that raises the process's peak memory by more: "memory"
FRESH_WORKER_EVERY = 100  # cases per worker process (inference keeps some memory per run)
MARKER = "PICKLE_WAS_LOADED"  # a pickle that runs code writes this file: it must never appear


# -- generic byte mutations ------------------------------------------------------------------


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(1, len(data)))]


def flip_bits(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        position = rng.randrange(len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def flip_head(data: bytes, rng: random.Random) -> bytes:
    """Bit flips in the first 4 KiB: the headers and directories where parsers trip."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(min(4096, len(out)))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def overwrite(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    start = rng.randrange(len(out))
    length = rng.randint(1, 512)
    out[start : start + length] = bytes(rng.randrange(256) for _ in range(min(length, len(out) - start)))
    return bytes(out)


BYTE_MUTATIONS = (truncate, flip_bits, flip_head, overwrite)


# -- GeoTIFF -----------------------------------------------------------------------------------


def tiff_dimensions(data: bytes, rng: random.Random) -> bytes:
    """Classic little-endian TIFF: set ImageWidth/ImageLength (tags 256/257) to absurd values."""
    out = bytearray(data)
    if out[:2] != b"II" or struct.unpack_from("<H", out, 2)[0] != 42:
        return flip_head(data, rng)
    offset = struct.unpack_from("<I", out, 4)[0]
    count = struct.unpack_from("<H", out, offset)[0]
    huge = rng.choice([1_000_000, 2**31 - 1, 0, 65_535 * 3])
    for i in range(count):
        entry = offset + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", out, entry)
        if tag in (256, 257) and rng.random() < 0.8:
            if kind == 3:  # SHORT
                struct.pack_into("<HH", out, entry + 8, min(huge, 65535), 0)
            else:
                struct.pack_into("<I", out, entry + 8, huge)
    return bytes(out)


def tiff_band_count(data: bytes, rng: random.Random) -> bytes:
    """SamplesPerPixel (277) and BitsPerSample (258) that lie."""
    out = bytearray(data)
    if out[:2] != b"II":
        return flip_head(data, rng)
    offset = struct.unpack_from("<I", out, 4)[0]
    count = struct.unpack_from("<H", out, offset)[0]
    for i in range(count):
        entry = offset + 2 + 12 * i
        tag = struct.unpack_from("<H", out, entry)[0]
        if tag == 277:
            struct.pack_into("<H", out, entry + 8, rng.choice([1, 2, 4, 200, 0]))
        if tag == 258 and rng.random() < 0.5:
            struct.pack_into("<H", out, entry + 8, rng.choice([1, 7, 64, 0]))
    return bytes(out)


TIFF_MUTATIONS = (*BYTE_MUTATIONS, tiff_dimensions, tiff_band_count)


# -- GeoPackage --------------------------------------------------------------------------------


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(str(path)) as conn:
        for statement in statements:
            conn.execute(statement)


def gpkg_application_id(path: Path, rng: random.Random) -> None:
    _sql(path, f"PRAGMA application_id = {rng.choice([0, 1, 0x47503130 + 1, -5])}")


def gpkg_drop_table(path: Path, rng: random.Random) -> None:
    with sqlite3.connect(str(path)) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'rtree_%'"
            )
        ]
    table = rng.choice(sorted(names))
    _sql(path, "PRAGMA foreign_keys = OFF", f'DROP TABLE "{table}"')  # a name from the file itself, quoted


def gpkg_other_geometry(path: Path, rng: random.Random) -> None:
    """Every polygon layer's geometry type said to be POINT, with one point written in."""
    with sqlite3.connect(str(path)) as conn:
        conn.execute(
            "UPDATE gpkg_geometry_columns SET geometry_type_name = ?",
            (rng.choice(["POINT", "LINESTRING", "GEOMETRY"]),),
        )


def gpkg_user_version(path: Path, rng: random.Random) -> None:
    _sql(path, f"PRAGMA user_version = {rng.choice([0, 99, 10_300, -1])}")


def gpkg_garbage_rows(path: Path, rng: random.Random) -> None:
    """Blobs that are not GeoPackage geometries in a geometry column."""
    with sqlite3.connect(str(path)) as conn:
        rows = conn.execute("SELECT table_name, column_name FROM gpkg_geometry_columns").fetchall()
        for table, column in rows:
            garbage = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            # the fuzzer corrupts its own copy on purpose: names read from that file, quoted
            conn.execute(f'UPDATE "{table}" SET "{column}" = ? WHERE rowid % 2 = 0', (garbage,))  # noqa: S608


GPKG_FILE_MUTATIONS = (
    gpkg_application_id,
    gpkg_drop_table,
    gpkg_other_geometry,
    gpkg_user_version,
    gpkg_garbage_rows,
)


# -- model files -----------------------------------------------------------------------------


def _split_safetensors(data: bytes) -> tuple[dict, bytes]:
    length = struct.unpack_from("<Q", data, 0)[0]
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _join_safetensors(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def model_header_length(data: bytes, rng: random.Random) -> bytes:
    length = struct.unpack_from("<Q", data, 0)[0]
    lie = rng.choice([0, 1, length - 1, length + 7, len(data), 2**63, 2**40, 100_000_001])
    return struct.pack("<Q", lie % 2**64) + data[8:]


CARD_CHANGES = (
    ("in_channels", 4),
    ("tile_size", -512),
    ("tile_size", 0),
    ("tile_size", "big"),
    ("architecture", "UNet"),
    ("encoder", "no-such-encoder"),
    ("bands", []),
    ("threshold", "high"),
    ("threshold", 7.5),
    ("overlap", 100_000),
    ("normalisation", {"scale": 0}),
    ("normalisation", None),
    ("classes", []),
    ("pixel_size_m", -3),
    ("min_area_m2", "x"),
)


def model_card(data: bytes, rng: random.Random) -> bytes:
    header, body = _split_safetensors(data)
    meta = header.setdefault("__metadata__", {})
    if rng.random() < 0.2:
        meta["rts_mapper_card"] = meta.get("rts_mapper_card", "{}")[: rng.randrange(1, 200)]  # not JSON
    else:
        card = json.loads(meta["rts_mapper_card"])
        key, value = rng.choice(CARD_CHANGES)
        card[key] = value
        meta["rts_mapper_card"] = json.dumps(card)
    return _join_safetensors(header, body)


def model_shapes(data: bytes, rng: random.Random) -> bytes:
    header, body = _split_safetensors(data)
    names = [k for k in header if k != "__metadata__"]
    for name in rng.sample(names, k=min(len(names), rng.randint(1, 3))):
        entry = header[name]
        change = rng.choice(["shape", "offsets", "dtype"])
        if change == "shape" and entry["shape"]:
            entry["shape"] = [max(1, entry["shape"][0] + rng.choice([-1, 1, 7])), *entry["shape"][1:]]
        elif change == "offsets":
            entry["data_offsets"] = [
                entry["data_offsets"][0],
                entry["data_offsets"][1] + rng.choice([-4, 4, 10**9]),
            ]
        else:
            entry["dtype"] = rng.choice(["F16", "I64", "XX"])
    return _join_safetensors(header, body)


class _RunsCode:
    """Unpickling this writes MARKER beside the file: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "unpickled"))


def model_pickle(path: Path, _rng: random.Random) -> None:
    """A pickle (what torch.save writes) renamed .safetensors, with code inside it."""
    path.write_bytes(pickle.dumps({"state_dict": _RunsCode(str(path.parent / MARKER))}))


MODEL_BYTE_MUTATIONS = (truncate, flip_head, model_header_length, model_card, model_card, model_shapes)


# -- vector files ----------------------------------------------------------------------------


BAD_COORDINATES = ("NaN", '"abc"', "1e400", "[]", "null", "[1]", "[[1, 2]]", "true", "-1e308")


def geojson_coordinates(data: bytes, rng: random.Random) -> bytes:
    text = data.decode()
    pieces = text.split("[")
    index = rng.randrange(2, len(pieces))
    value = rng.choice(BAD_COORDINATES)
    pieces[index] = (
        f"{value}, " + pieces[index] if rng.random() < 0.5 else pieces[index].replace(",", f", {value},", 1)
    )
    return "[".join(pieces).encode()


def geojson_structure(data: bytes, rng: random.Random) -> bytes:
    doc = json.loads(data)
    choice = rng.randrange(5)
    if choice == 0:
        doc["features"][0]["geometry"]["type"] = rng.choice(["Point", "Nonsense", None])
    elif choice == 1:
        doc["features"][0]["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}
    elif choice == 2:
        doc["type"] = "Feature"
    elif choice == 3:
        doc["features"] = {"not": "a list"}
    else:
        doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}}
    return json.dumps(doc).encode()


GEOJSON_MUTATIONS = (
    truncate,
    flip_bits,
    overwrite,
    geojson_coordinates,
    geojson_coordinates,
    geojson_structure,
)


# -- seeds: valid files of each kind --------------------------------------------------------------


def make_seeds(folder: Path) -> dict:
    """Valid inputs of every kind, made once (a small synthetic project, a random model)."""
    sys.path.insert(0, str(ROOT))
    from rts_mapper_plugin.core.model.model_file import ModelCard, create_model, save_model
    from rts_mapper_plugin.core.vectors import read_features, write_features
    from tests.data.fixtures import planetscope_like, review_project, write_raster

    folder.mkdir(parents=True, exist_ok=True)
    project, region, _run = review_project(folder / "project", size=300, seed=4)
    truth = read_features(region.truth_uri("rts"))
    write_features(folder / "truth.gpkg", truth, "truth")
    write_features(folder / "pred.geojson", truth, "pred")
    write_features(folder / "pred.shp", truth, "pred")
    raw = write_raster(folder / "scene.tif", planetscope_like(rows=200, cols=220, seed=3), nodata=0)
    rgb = np.random.default_rng(5).integers(1, 256, (3, 96, 96), dtype=np.uint8)
    image = write_raster(folder / "rgb.tif", rgb)
    model = create_model("mobilenet_v2")  # the smallest encoder: 500 mutated copies stay cheap
    save_model(
        model, ModelCard(encoder="mobilenet_v2", tile_size=64, overlap=8), folder / "model.safetensors"
    )
    return {
        "project": project.path,
        "truth": folder / "truth.gpkg",
        "geojson": folder / "pred.geojson",
        "shapefile": folder / "pred.shp",
        "scene": raw,
        "image": image,
        "model": folder / "model.safetensors",
    }


# -- cases -----------------------------------------------------------------------------------------


def make_cases(seeds: dict, work: Path, per_kind: int, seed: int) -> list[dict]:
    """``per_kind`` mutated files of each kind, each with the command line that reads it."""
    rng = random.Random(seed)
    cases = []
    kinds = ("GeoTIFF", "GeoPackage", "model file", "vector file")
    for kind in kinds:
        for i in range(per_kind):
            folder = work / kind.replace(" ", "_") / f"{i:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            case = {"kind": kind, "folder": str(folder)}
            case.update(_mutant(kind, i, seeds, folder, rng))
            cases.append(case)
    for number, case in enumerate(cases):
        case["case"] = number
    return cases


def _mutant(kind: str, i: int, seeds: dict, folder: Path, rng: random.Random) -> dict:
    if kind == "GeoTIFF":
        source = seeds["scene"] if i % 2 == 0 else seeds["image"]
        mutation = TIFF_MUTATIONS[i % len(TIFF_MUTATIONS)]
        path = folder / "input.tif"
        path.write_bytes(mutation(source.read_bytes(), rng))
        if i % 2 == 0:
            argv = ["prepare", str(path), "--out", str(folder / "out.tif")]
        else:
            argv = [
                "infer",
                "--model",
                str(seeds["model"]),
                "--image",
                str(path),
                "--out",
                str(folder / "c.gpkg"),
                "--device",
                "cpu",
            ]
        return {"mutation": mutation.__name__, "file": str(path), "argv": argv}
    if kind == "GeoPackage":
        path = folder / "project.gpkg"
        shutil.copy(seeds["project"], path)
        if i % 3 == 0:
            mutation = BYTE_MUTATIONS[(i // 3) % len(BYTE_MUTATIONS)]
            path.write_bytes(mutation(path.read_bytes(), rng))
        else:
            mutation = GPKG_FILE_MUTATIONS[i % len(GPKG_FILE_MUTATIONS)]
            with contextlib.suppress(sqlite3.Error):  # a mutation that fails leaves a valid input
                mutation(path, rng)
        commands = [
            ["review-agreement", "--project", str(path)],
            ["arts", str(path), str(folder / "arts.geojson"), "--region", "Fuzz", "--creator", "Fuzzer"],
            ["evaluate", "--pred", f"{path}|layername=candidates", "--truth", str(seeds["truth"])],
        ]
        return {"mutation": mutation.__name__, "file": str(path), "argv": commands[i % len(commands)]}
    if kind == "model file":
        path = folder / "model.safetensors"
        if i % 10 == 9:
            mutation = model_pickle
            model_pickle(path, rng)
        else:
            mutation = MODEL_BYTE_MUTATIONS[i % len(MODEL_BYTE_MUTATIONS)]
            path.write_bytes(mutation(seeds["model"].read_bytes(), rng))
        if i % 4 == 0:
            argv = [
                "infer",
                "--model",
                str(path),
                "--image",
                str(seeds["image"]),
                "--out",
                str(folder / "c.gpkg"),
                "--device",
                "cpu",
            ]
        else:
            argv = ["model-info", str(path)]
        return {"mutation": mutation.__name__, "file": str(path), "argv": argv}
    # vector files: GeoJSON, and shapefiles with parts missing or broken
    if i % 3 == 2:
        for part in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            source = seeds["shapefile"].with_suffix(part)
            if source.exists():
                shutil.copy(source, folder / f"pred{part}")
        path = folder / "pred.shp"
        choice = (i // 3) % 4
        if choice == 0:
            (folder / "pred.prj").unlink(missing_ok=True)
            mutation_name = "shapefile without .prj"
        elif choice == 1:
            target = folder / rng.choice(["pred.shx", "pred.dbf"])
            target.write_bytes(truncate(target.read_bytes(), rng))
            mutation_name = "shapefile part truncated"
        else:
            target = folder / rng.choice(["pred.shp", "pred.shx", "pred.dbf"])
            target.write_bytes(flip_head(target.read_bytes(), rng))
            mutation_name = "shapefile part bit flips"
    else:
        path = folder / "pred.geojson"
        mutation = GEOJSON_MUTATIONS[i % len(GEOJSON_MUTATIONS)]
        path.write_bytes(mutation(seeds["geojson"].read_bytes(), rng))
        mutation_name = mutation.__name__
    return {
        "mutation": mutation_name,
        "file": str(path),
        "argv": ["evaluate", "--pred", str(path), "--truth", str(seeds["truth"])],
    }


# -- running ---------------------------------------------------------------------------------------


class Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reliability.fuzz_worker"],
            cwd=ROOT,
            env=ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        assert json.loads(self.process.stdout.readline())["ready"]

    def run(self, case: dict) -> dict:
        import selectors

        self.process.stdin.write(json.dumps({"case": case["case"], "argv": case["argv"]}) + "\n")
        self.process.stdin.flush()
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=STALL_S):
            self.process.kill()
            self.process.wait()
            return {"outcome": "hang"}
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            return {"outcome": "crash", "signal": -self.process.returncode}
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def judge(case: dict, result: dict, previous_rss_mb: int) -> str:
    if "outcome" in result:
        return result["outcome"]
    if result["escaped"]:
        return "traceback"
    if result["rss_mb"] - previous_rss_mb > MEMORY_JUMP_MB:  # this case raised the peak that much
        return "memory"
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    if result["rc"] == 0:
        return "ran (mutation harmless)"
    if result["rc"] == 2 and len(lines) == 1 and lines[0].startswith("error: "):
        return "clear error"
    if "Traceback" in result["stderr"]:
        return "traceback"
    return "unclear message"


def run_cases(cases: list[dict], progress=print) -> tuple[dict, list[dict]]:
    worker = Worker()
    figures: dict[str, dict[str, int]] = {}
    problems = []
    previous_rss = None
    started = time.monotonic()
    for number, case in enumerate(cases):
        if number and number % FRESH_WORKER_EVERY == 0:
            worker.close()
            worker, previous_rss = Worker(), None
        result = worker.run(case)
        verdict = judge(case, result, previous_rss if previous_rss is not None else result.get("rss_mb", 0))
        previous_rss = result.get("rss_mb")
        kind = figures.setdefault(case["kind"], {})
        kind[verdict] = kind.get(verdict, 0) + 1
        if verdict not in ("clear error", "ran (mutation harmless)"):
            problems.append({**case, "verdict": verdict, "result": result})
        if "outcome" in result:  # the worker died or was killed: a fresh one for the next case
            worker, previous_rss = Worker(), None
        if (Path(case["folder"]) / MARKER).exists():
            problems.append({**case, "verdict": "PICKLE LOADED", "result": result})
            kind["pickle loaded"] = kind.get("pickle loaded", 0) + 1
        if number % 100 == 99:
            progress(f"fuzz: {number + 1}/{len(cases)} cases, {time.monotonic() - started:.0f} s")
        shutil.rmtree(case["folder"], ignore_errors=True)
    worker.close()
    return figures, problems
