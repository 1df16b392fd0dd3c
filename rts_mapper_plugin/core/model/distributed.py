"""Inference over a region too large for one machine: the blocks of :mod:`.blocks` run on a Dask
distributed cluster (see :mod:`..cluster`: a LocalCluster of N worker processes on this machine,
GPU workers one GPU each, or an existing scheduler), and the client assembles the same outputs as
a single run. Each worker process loads the model once; the image is read by the workers from a
path they all see. A rerun after a crash computes only the blocks its manifest lacks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..cluster import LOCAL, Manifest, run_blocks, session
from ..progress import Feedback
from .blocks import BLOCK_STRIPS, BlockRequest, plan_blocks, read_block, run_block, run_key
from .inference import InferConfig, InferenceResult, load_engine


def predict_on_cluster(
    model_path: str | os.PathLike,
    image_path: str | os.PathLike,
    prob_out: str | os.PathLike,
    config: InferConfig | None = None,
    cluster: str = LOCAL,
    known=None,
    feedback: Feedback | None = None,
    extent: tuple[float, float, float, float] | None = None,
    image_crs: str | None = None,
    strips_per_block: int = BLOCK_STRIPS,
    client=None,
    announce=None,
    blocks_folder: str | os.PathLike | None = None,
) -> InferenceResult:
    """What :func:`~.inference.predict_raster` returns, computed block by block on ``cluster``
    (or on ``client``, an open Dask client). The result's ``notes`` say how many blocks ran now
    and how many a previous run had finished; ``announce`` is called with the cluster's dashboard
    link once it is connected. The finished blocks are kept in ``blocks_folder`` (default: beside
    ``prob_out``, ``PROB.blocks``) until the run is whole: a rerun with the same folder goes on
    from them."""
    from ..raster_io import check_writable, gdal_env, is_gdal_url, open_raster, pixel_area_m2
    from .inference import _check_image, _window_for

    feedback = feedback or Feedback()
    started = time.perf_counter()
    config = config or InferConfig()
    # workers have working folders of their own: every path they get is absolute
    model_path, image_path, prob_out = (
        p if is_gdal_url(p) else Path(p).resolve() for p in (model_path, image_path, prob_out)
    )
    check_writable(prob_out)  # an unwritable output fails now, not after the cluster has run
    # the card and the configuration checked here first; the workers load the weights
    engine = load_engine(model_path, config, weights=False)
    with gdal_env(), open_raster(image_path, image_crs) as dataset:
        _check_image(dataset, image_path)
        window = _window_for(dataset, extent, image_path)
        pixel_km2 = pixel_area_m2(dataset) / 1e6
    spec = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))
    blocks = plan_blocks(spec[3], engine.tile, engine.overlap, strips_per_block)
    # made once a block is to run
    folder = Path(blocks_folder) if blocks_folder is not None else Path(str(prob_out) + ".blocks")
    base = {"model_path": str(model_path), "image_path": str(image_path), "window": spec, "config": config}
    manifest = Manifest(folder, run_key(base, blocks))
    requests = [
        BlockRequest(
            str(model_path),
            str(image_path),
            image_crs,
            spec,
            config,
            b,
            str(folder / f"block_{b.index:05d}.npz"),
        )
        for b in blocks
    ]
    missing = [r for r in requests if not manifest.finished(r.block.index, Path(r.out))]
    before = len(blocks) - len(missing)
    with session(cluster, client, bool(missing), announce) as client:
        dashboard = getattr(client, "dashboard_link", None) if client is not None else None
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
            run_blocks(
                client,
                run_block,
                missing,
                lambda r: r.block.index,
                manifest,
                len(blocks),
                feedback,
                km2_of=lambda figures: figures["valid_pixels"] * pixel_km2,
            )
    result = assemble(
        folder, blocks, manifest, prob_out, engine, image_path, image_crs, window, known, feedback
    )
    shutil.rmtree(folder, ignore_errors=True)  # the run is whole: its blocks are no longer needed
    return replace(
        result,
        seconds=time.perf_counter() - started,
        notes=result.notes
        + [f"{len(missing)} of {len(blocks)} blocks computed on the cluster now ({before} finished before)"]
        + ([f"dashboard: {dashboard}"] if dashboard and missing else []),
    )


def on_cluster(cluster: str, announce=None):
    """:func:`~.inference.predict_raster`'s call, computed on ``cluster`` (for
    :func:`~.inference.infer_to_file`; ``announce`` gets the dashboard link). Without a
    probability raster to keep, the blocks assemble into a scratch one, removed afterwards (and a
    rerun cannot reuse them: keep the raster for that)."""

    def predict(model_path, image_path, prob_out, config=None, extent=None, known=None, feedback=None):
        if prob_out is not None:
            return predict_on_cluster(
                model_path, image_path, prob_out, config, cluster, known, feedback, extent, announce=announce
            )
        with tempfile.TemporaryDirectory(prefix="rts_cluster_") as scratch:
            result = predict_on_cluster(
                model_path,
                image_path,
                Path(scratch) / "probability.tif",
                config,
                cluster,
                known,
                feedback,
                extent,
                announce=announce,
            )
        return replace(result, prob_path=None)

    return predict


def assemble(
    folder, blocks, manifest, prob_out, engine, image_path, image_crs, window, known, feedback
) -> InferenceResult:
    """The blocks' files, in order, into one probability GeoTIFF (written atomically) and the
    candidates, fed to the builder in the chunks a single run feeds it."""
    from ..raster_io import atomic_output, gdal_env, open_raster, pixel_area_m2
    from ..vectors import read_features
    from .candidates import CandidateBuilder, set_aside_known
    from .inference import _ProbabilityWriter

    with gdal_env(), open_raster(image_path, image_crs) as dataset:
        transform, crs = dataset.window_transform(window), dataset.crs
        pixel_area = pixel_area_m2(dataset)
    width, height = int(window.width), int(window.height)
    builder = CandidateBuilder(transform, crs, engine.threshold)
    with atomic_output(prob_out) as partial:
        writer = _ProbabilityWriter(partial, width, height, crs, transform)
        for block in blocks:
            feedback.check()
            data = read_block(folder / f"block_{block.index:05d}.npz")
            writer.add_percent(data["percent"])
            starts = data["chunk_starts"] + [block.own_end]
            for low, high in zip(starts, starts[1:]):
                part = slice(low - block.own_start, high - block.own_start)
                builder.add_rows(low, data["probability"][part], data["mask"][part])
        writer.close()
    candidates = builder.finish(engine.min_area_m2)
    known_features = (
        read_features(known, polygons_only=True) if isinstance(known, (str, os.PathLike)) else known
    )
    candidates, set_aside = set_aside_known(candidates, known_features, crs)
    figures = list(manifest.done.values())
    feedback.step(1.0)
    return InferenceResult(
        candidates=candidates,
        set_aside_known=set_aside,
        prob_path=Path(prob_out),
        tiles=sum(f["tiles"] for f in figures),
        skipped_tiles=sum(f["skipped"] for f in figures),
        megapixels=width * height / 1e6,
        area_km2=sum(f["valid_pixels"] for f in figures) * pixel_area / 1e6,
        seconds=0.0,
        forward_seconds=sum(f["forward_seconds"] for f in figures),
        device=f"{figures[0]['device'] if figures else '?'} on {len({f['worker_pid'] for f in figures})} worker(s)",
        batch_size=0,
        card=engine.card,
        crs=crs.to_string(),
        threshold=engine.threshold,
        min_area_m2=engine.min_area_m2,
        notes=list(dict.fromkeys(note for f in figures for note in f.get("notes", []))),
    )
