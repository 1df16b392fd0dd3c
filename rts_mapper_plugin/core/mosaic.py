"""Yearly mosaics: several scenes of one summer into one virtual raster, in priority order.

Scenes may overlap and have different extents; a scene in another CRS is reprojected (on the
fly, as a warped VRT) to the CRS of the first scene. The first scene in the list is drawn on top.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from osgeo import gdal

from .errors import RtsMapperError
from .raster_io import check_readable, open_raster, require_crs

gdal.UseExceptions()


def build_mosaic_vrt(scenes: Sequence[str | os.PathLike], out_vrt: str | os.PathLike) -> Path:
    """Mosaic ``scenes`` (first = highest priority) into ``out_vrt``; returns its path.

    Raises:
        RtsMapperError: a scene is unreadable, has no CRS, or differs in band count or type.
    """
    out_vrt = Path(out_vrt)
    scenes = [Path(s) for s in scenes]
    if not scenes:
        raise RtsMapperError("no scenes given for the mosaic")
    reference = None
    inputs: list[str] = []
    for index, scene in enumerate(scenes):
        with open_raster(scene) as dataset:
            require_crs(dataset, scene)
            check_readable(dataset, scene)
            facts = (dataset.count, dataset.dtypes[0])
            if reference is None:
                reference = {
                    "path": scene,
                    "facts": facts,
                    "crs": dataset.crs,
                    "res": dataset.res,
                    "nodata": dataset.nodata,
                }
            elif facts[0] != reference["facts"][0]:
                raise RtsMapperError(
                    f"has {facts[0]} bands but {reference['path'].name} has {reference['facts'][0]}: "
                    "the scenes of one mosaic must have the same bands",
                    scene,
                )
            elif facts[1] != reference["facts"][1]:
                raise RtsMapperError(
                    f"is {facts[1]} but {reference['path'].name} is {reference['facts'][1]}: "
                    "the scenes of one mosaic must have the same data type",
                    scene,
                )
            same_crs = dataset.crs == reference["crs"]
        if same_crs:
            inputs.append(str(scene.resolve()))
        else:
            warped = out_vrt.with_name(f"{out_vrt.stem}.warped{index:02d}.vrt")
            gdal.Warp(
                str(warped),
                str(scene),
                options=gdal.WarpOptions(
                    format="VRT",
                    dstSRS=reference["crs"].to_wkt(),
                    xRes=reference["res"][0],
                    yRes=reference["res"][1],
                    resampleAlg="bilinear",
                    dstNodata=reference["nodata"] if reference["nodata"] is not None else 0,
                ),
            )
            inputs.append(str(warped))
    # gdalbuildvrt draws later sources on top: reverse so that the first scene wins overlaps
    nodata = reference["nodata"] if reference["nodata"] is not None else 0
    options = gdal.BuildVRTOptions(
        resolution="user",
        xRes=reference["res"][0],
        yRes=reference["res"][1],
        VRTNodata=nodata,
    )
    vrt = gdal.BuildVRT(str(out_vrt), list(reversed(inputs)), options=options)
    if vrt is None:
        raise RtsMapperError("GDAL could not build the mosaic", out_vrt)
    vrt.FlushCache()
    vrt = None
    return out_vrt
