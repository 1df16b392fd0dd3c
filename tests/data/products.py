"""Small delivered products written the way their vendors deliver them (for the imagery tests).

Each builder follows the product's published layout (the same references as
``rts_mapper_plugin/core/imagery/products.py``): Planet PSScene analytic scenes with their
``<id>_metadata.json``, ``<id>_3B_AnalyticMS[_8b]_metadata.xml`` and ``<id>_3B_udm2.tif``;
Planet basemap quads in a mosaic folder; Sentinel-2 L2A SAFE folders with separate 10 m band
files, a 20 m SCL and ``MTD_MSIL2A.xml``. Rasters are tiny (64 x 64) and seeded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from rts_mapper_plugin.core.imagery.products import PLANET_LAYOUTS, UDM2_BANDS

UTM46 = "EPSG:32646"
ORIGIN = (491_001.0, 3_861_003.0)
SIZE = 64
# typical surface reflectance (x 10000) per Planet band name, so each band is recognisable
REFLECTANCE = {
    "coastal_blue": 400,
    "blue": 600,
    "green_i": 750,
    "green": 850,
    "yellow": 900,
    "red": 950,
    "rededge": 1800,
    "nir": 2400,
}


@dataclass
class Delivery:
    """What a builder wrote: the scene to give to prepare and its sidecars."""

    scene: Path
    pixels: np.ndarray  # the scene's bands, (bands, rows, cols)
    sidecars: dict[str, Path] = field(default_factory=dict)
    unusable: np.ndarray | None = None  # (rows, cols) True where the mask says not clear


def analytic_bands(names, rows=SIZE, cols=SIZE, seed=0) -> np.ndarray:
    """UInt16 reflectance x 10000, one band per Planet band name, varied, never 0."""
    rng = np.random.default_rng(seed)
    base = np.array([REFLECTANCE[n] for n in names], dtype=np.float64)[:, None, None]
    return np.clip(base * (1 + 0.25 * rng.standard_normal((len(names), rows, cols))), 1, 10000).astype(
        np.uint16
    )


def write_tif(path: Path, array, crs=UTM46, origin=ORIGIN, pixel=3.0, nodata=0, descriptions=None, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": extra.pop("driver", "GTiff"),
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": from_origin(origin[0], origin[1], pixel, pixel),
        "nodata": nodata,
        **extra,
    }
    colorinterp = profile.pop("colorinterp", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for band, name in enumerate(descriptions or (), start=1):
            dst.set_band_description(band, name)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path


# -- Planet PSScene --


def planet_metadata_json(
    scene_id: str, acquired: str | None, instrument: str, item_type: str = "PSScene"
) -> dict:
    """Planet's ``<id>_metadata.json``: a GeoJSON Feature of the Data API."""
    properties = {
        "acquired": acquired,
        "clear_percent": 81,
        "cloud_cover": 0.12,
        "instrument": instrument,
        "item_type": item_type,
        "pixel_resolution": 3,
        "provider": "planetscope",
        "publishing_stage": "finalized",
        "quality_category": "standard",
        "satellite_id": scene_id.rsplit("_", 1)[-1],
        "strip_id": "5772345",
    }
    if acquired is None:
        del properties["acquired"]
    return {
        "id": scene_id,
        "type": "Feature",
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[91.0, 34.9], [91.1, 34.9], [91.1, 35.0], [91.0, 34.9]]],
        },
        "properties": properties,
    }


def planet_metadata_xml(scene_id: str, file_name: str, bands: int, instrument: str, acquired: str) -> str:
    """Planet's ``*_AnalyticMS[_8b]_metadata.xml``, trimmed to the elements that matter, in the
    namespaces and nesting of a delivered file."""
    band_entries = "".join(
        f"""
      <ps:bandSpecificMetadata>
        <ps:bandNumber>{n}</ps:bandNumber>
        <ps:radiometricScaleFactor>0.01</ps:radiometricScaleFactor>
        <ps:reflectanceCoefficient>2.9e-05</ps:reflectanceCoefficient>
      </ps:bandSpecificMetadata>"""
        for n in range(1, bands + 1)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ps:EarthObservation xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:opt="http://earth.esa.int/opt"
 xmlns:gml="http://www.opengis.net/gml" xmlns:eop="http://earth.esa.int/eop" version="1.2.1"
 planet_standard_product_version="1.0" xmlns:ps="http://schemas.planet.com/ps/v1/planet_product_metadata_geocorrected_level">
  <gml:metaDataProperty>
    <ps:EarthObservationMetaData>
      <eop:identifier>{scene_id}_3B_AnalyticMS{"_8b" if bands == 8 else ""}</eop:identifier>
      <eop:productType>L3B</eop:productType>
    </ps:EarthObservationMetaData>
  </gml:metaDataProperty>
  <gml:using>
    <eop:EarthObservationEquipment>
      <eop:platform><eop:Platform><eop:shortName>PlanetScope</eop:shortName>
        <eop:serialIdentifier>{scene_id.rsplit("_", 1)[-1]}</eop:serialIdentifier></eop:Platform></eop:platform>
      <eop:instrument><eop:Instrument><eop:shortName>{instrument}</eop:shortName></eop:Instrument></eop:instrument>
      <eop:acquisitionParameters>
        <ps:Acquisition>
          <ps:acquisitionDateTime>{acquired}</ps:acquisitionDateTime>
        </ps:Acquisition>
      </eop:acquisitionParameters>
    </eop:EarthObservationEquipment>
  </gml:using>
  <gml:resultOf>
    <ps:EarthObservationResult>
      <eop:product>
        <ps:ProductInformation>
          <eop:fileName>{file_name}</eop:fileName>
          <ps:numRows>{SIZE}</ps:numRows>
          <ps:numColumns>{SIZE}</ps:numColumns>
          <ps:numBands>{bands}</ps:numBands>
        </ps:ProductInformation>
      </eop:product>{band_entries}
    </ps:EarthObservationResult>
  </gml:resultOf>
</ps:EarthObservation>
"""


def udm2_array(rows=SIZE, cols=SIZE, regions: dict[str, tuple[slice, slice]] | None = None) -> np.ndarray:
    """An 8-band UDM2: clear everywhere except the given regions (name -> (rows, cols) slices);
    "blackfill" sets bit 0 of band 8 (udm1) instead of a class."""
    udm = np.zeros((8, rows, cols), dtype=np.uint8)
    udm[UDM2_BANDS.index("clear")] = 1
    udm[UDM2_BANDS.index("confidence")] = 90
    for name, (rs, cs) in (regions or {}).items():
        udm[UDM2_BANDS.index("clear"), rs, cs] = 0
        if name == "blackfill":
            udm[UDM2_BANDS.index("udm1"), rs, cs] |= 1
        else:
            udm[UDM2_BANDS.index(name), rs, cs] = 1
    return udm


# the unusable regions of the standard UDM2 below, one per class the mask must remove
UDM2_REGIONS = {
    "cloud": (slice(0, 16), slice(0, 16)),
    "shadow": (slice(0, 16), slice(20, 32)),
    "haze_light": (slice(20, 28), slice(0, 16)),
    "haze_heavy": (slice(20, 28), slice(20, 32)),
    "snow": (slice(40, 48), slice(40, 64)),
    "blackfill": (slice(56, 64), slice(0, 8)),
}


def planetscope_scene(
    folder: Path,
    scene_id: str = "20220705_183526_48_2416",
    bands: int = 8,
    instrument: str | None = None,
    acquired: str | None = "2022-07-05T18:35:26.48Z",
    with_json: bool = True,
    with_xml: bool = True,
    udm2_regions: dict | None = None,
    with_udm2: bool = True,
    descriptions: bool = False,
    clip: bool = False,
    origin=ORIGIN,
    seed: int = 0,
    crs: str = UTM46,
) -> Delivery:
    """A PSScene ortho analytic SR scene as Planet delivers it (``..._3B_AnalyticMS_SR[_8b].tif``)
    with its metadata JSON, XML and UDM2 next to it. Cloud pixels are bright, as clouds are."""
    instrument = instrument or ("PSB.SD" if bands == 8 else "PS2")
    names = PLANET_LAYOUTS[bands]
    suffix = "_clip" if clip else ""
    asset = "AnalyticMS_SR_8b" if bands == 8 else "AnalyticMS_SR"
    scene = folder / f"{scene_id}_3B_{asset}{suffix}.tif"
    pixels = analytic_bands(names, seed=seed)
    regions = UDM2_REGIONS if udm2_regions is None else udm2_regions
    udm = udm2_array(regions=regions)
    unusable = np.zeros((SIZE, SIZE), dtype=bool)
    for name, (rs, cs) in regions.items():
        unusable[rs, cs] = True
        if name == "cloud":
            pixels[:, rs, cs] = 9000  # bright: would lift the stretch if it were not masked
        elif name == "blackfill":
            pixels[:, rs, cs] = 0
    write_tif(scene, pixels, crs=crs, origin=origin, descriptions=names if descriptions else None)
    sidecars = {}
    if with_json:
        sidecars["json"] = folder / f"{scene_id}_metadata.json"
        sidecars["json"].write_text(
            json.dumps(planet_metadata_json(scene_id, acquired, instrument), indent=2)
        )
    if with_xml:
        xml_name = f"{scene_id}_3B_AnalyticMS{'_8b' if bands == 8 else ''}_metadata{suffix}.xml"
        sidecars["xml"] = folder / xml_name
        sidecars["xml"].write_text(
            planet_metadata_xml(
                scene_id, scene.name, bands, instrument, (acquired or "2022-07-05T18:35:26+00:00")
            )
        )
    if with_udm2:
        sidecars["udm2"] = write_tif(
            folder / f"{scene_id}_3B_udm2{suffix}.tif",
            udm,
            crs=crs,
            origin=origin,
            nodata=None,
            descriptions=UDM2_BANDS,
        )
    return Delivery(scene, pixels, sidecars, unusable if with_udm2 else None)


# -- Planet basemap quads --


def basemap_quad(
    mosaic_folder: Path, name: str = "L15-0123E-1234N.tif", origin=(10_018_754.0, 4_163_881.0), seed: int = 0
) -> Delivery:
    """A visual basemap quad: 8-bit RGB + alpha (0 outside the data), Web Mercator, 4.77 m."""
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (4, SIZE, SIZE)).astype(np.uint8)
    rgba[3] = 255
    rgba[3, :10, :] = 0  # outside the mosaic's coverage
    rgba[:3, :10, :] = 0
    path = write_tif(
        mosaic_folder / name,
        rgba,
        crs="EPSG:3857",
        origin=origin,
        pixel=4.777314267823516,
        nodata=None,
        photometric="RGB",
        colorinterp=(ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha),
    )
    return Delivery(path, rgba)


# -- Sentinel-2 L2A --

S2_PRODUCT = "S2B_MSIL2A_20210821T210019_N0301_R071_T08WMA_20210821T232417.SAFE"
S2_ORIGIN = (499_980.0, 7_300_020.0)

SCL_CLASSES = {  # (rows, cols) in 20 m pixels -> class
    3: (slice(0, 4), slice(0, 4)),  # cloud shadows
    8: (slice(0, 4), slice(8, 12)),  # cloud medium probability
    9: (slice(8, 12), slice(0, 4)),  # cloud high probability
    10: (slice(8, 12), slice(8, 12)),  # thin cirrus
    11: (slice(20, 24), slice(20, 32)),  # snow
    1: (slice(28, 30), slice(0, 2)),  # saturated or defective
    0: (slice(30, 32), slice(30, 32)),  # no data
}


def sentinel2_safe(
    folder: Path,
    product: str = S2_PRODUCT,
    extension: str = "jp2",
    with_mtd: bool = True,
    scl_origin=S2_ORIGIN,
    scl_crs: str = "EPSG:32608",
    seed: int = 0,
) -> Delivery:
    """An L2A SAFE folder: MTD_MSIL2A.xml, B02/B03/B04 at 10 m (64 x 64) in R10m and the SCL at
    20 m (32 x 32) in R20m, file names ``<tile>_<sensing time>_<band>_<res>.jp2``."""
    safe = folder / product
    parts = product.split("_")
    tile, sensing = parts[5], parts[2]
    granule = safe / "GRANULE" / f"L2A_{tile}_A023098_{sensing}" / "IMG_DATA"
    rng = np.random.default_rng(seed)
    pixels = np.clip(
        np.array([950, 850, 600], dtype=np.float64)[:, None, None]
        * (1 + 0.25 * rng.standard_normal((3, SIZE, SIZE))),
        1,
        10000,
    ).astype(np.uint16)  # B04, B03, B02
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)  # vegetation
    for value, (rs, cs) in SCL_CLASSES.items():
        scl[rs, cs] = value
    unusable = np.kron(np.isin(scl, [0, 1, 3, 8, 9, 10, 11]), np.ones((2, 2), dtype=bool))
    pixels[:, np.kron(scl == 9, np.ones((2, 2), dtype=bool))] = 9500  # bright clouds
    options = {"driver": "JP2OpenJPEG", "QUALITY": 100, "REVERSIBLE": "YES"} if extension == "jp2" else {}
    for band, index in (("B04", 0), ("B03", 1), ("B02", 2)):
        write_tif(
            granule / "R10m" / f"{tile}_{sensing}_{band}_10m.{extension}",
            pixels[index : index + 1],
            crs="EPSG:32608",
            origin=S2_ORIGIN,
            pixel=10.0,
            nodata=None,
            **options,
        )
    scl_path = write_tif(
        granule / "R20m" / f"{tile}_{sensing}_SCL_20m.{extension}",
        scl[None],
        crs=scl_crs,
        origin=scl_origin,
        pixel=20.0,
        nodata=None,
        **options,
    )
    if with_mtd:
        (safe / "MTD_MSIL2A.xml").write_text(
            f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>2021-08-21T21:00:19.024Z</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>2021-08-21T21:00:19.024Z</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{product}</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>03.01</PROCESSING_BASELINE>
      <Datatake datatakeIdentifier="GS2B_20210821T210019_023098_N03.01">
        <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>
      </Datatake>
    </Product_Info>
  </n1:General_Info>
</n1:Level-2A_User_Product>
"""
        )
    return Delivery(
        safe,
        pixels,
        {"scl": scl_path, "b04": granule / "R10m" / f"{tile}_{sensing}_B04_10m.{extension}"},
        unusable,
    )
