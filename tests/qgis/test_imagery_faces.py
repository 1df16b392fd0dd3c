"""Imagery preparation from QGIS: the dialog (a real task in the task manager) and Processing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from qgis.core import Qgis, QgsApplication, QgsProject
from qgis.PyQt.QtCore import Qt

from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.gui.imagery_dialog import ImageryDialog
from rts_mapper_plugin.qgis_layers.timelapse import year_layers
from rts_mapper_plugin.tasks.base import TaskRunner
from tests import person
from tests.data.fixtures import planetscope_like, write_raster
from tests.waiting import dock_progress, wait_until


@pytest.fixture
def dialog(qgis_iface, qgis_new_project, qtbot, tmp_path):
    project = MappingProject.create(tmp_path / "project.gpkg", "EPSG:32646")
    qgis_iface.messageBar().clear_messages()
    widget = ImageryDialog(qgis_iface, TaskRunner())
    widget.project_picker.set_path(str(project.path))
    qtbot.addWidget(widget)
    return widget


def run_and_wait(dialog, qtbot):
    qtbot.mouseClick(dialog.run_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dialog.outcome is not None, progress=dock_progress(dialog))
    return dialog.outcome


def test_dialog_mosaics_registers_and_loads_the_year(dialog, qtbot, tmp_path, qgis_iface):
    a = write_raster(
        tmp_path / "a.tif", planetscope_like(rows=80, cols=100, seed=1), origin=(490_000, 3_860_000)
    )
    b = write_raster(
        tmp_path / "b.tif", planetscope_like(rows=80, cols=100, seed=2), origin=(490_150, 3_860_000)
    )
    dialog.add_files([a, b])
    dialog.year_spin.clear()
    qtbot.keyClicks(dialog.year_spin, "2018")
    assert dialog.output_widget.filePath().endswith("imagery/2018.tif"), (
        "output suggested from the project and year"
    )
    assert run_and_wait(dialog, qtbot) == "succeeded", dialog.status.text()
    (year,) = MappingProject.open(dialog.project_picker.path()).years()
    assert year.year == 2018 and year.sensor == "PlanetScope"
    with rasterio.open(year.raster_path) as dataset:
        assert dataset.width == 150 and dataset.count == 3
    assert list(year_layers()) == [2018]
    assert any("registered as 2018" in m for m in qgis_iface.messageBar().get_messages(Qgis.Success))


def test_dialog_prepares_on_a_local_cluster_picked_by_a_person(dialog, qtbot, tmp_path):
    """Cluster › Local cluster: 2 worker processes: the dialog shows the dashboard link while it
    runs and the live line (blocks done, km²/min), and writes the image a single run writes."""
    from qgis.PyQt.QtCore import QTimer

    from rts_mapper_plugin.core.imagery.prepare import prepare_image
    from rts_mapper_plugin.toolbelt.preferences import PlgSettings

    a = write_raster(
        tmp_path / "a.tif", planetscope_like(rows=80, cols=100, seed=1), origin=(490_000, 3_860_000)
    )
    b = write_raster(
        tmp_path / "b.tif", planetscope_like(rows=80, cols=100, seed=2), origin=(490_150, 3_860_000)
    )
    dialog.add_files([a, b])
    dialog.show()
    person.choose(dialog.cluster_choice.combo, "Local cluster: 2 worker processes")
    shown = []
    timer = QTimer()
    timer.timeout.connect(lambda: shown.append(dialog.cluster_progress.text()))
    timer.start(100)
    assert run_and_wait(dialog, qtbot) == "succeeded", dialog.status.text()
    timer.stop()
    assert any('Running on the cluster: <a href="http://' in t for t in shown), "dashboard while it ran"
    last = dialog.cluster_progress.text()
    assert "1 of 1 blocks done" in last and "km²/min on the cluster" in last, "the live line's last figures"
    assert "dashboard" not in last, "a local cluster's dashboard goes with it"
    single = prepare_image([a, b], tmp_path / "single.tif")
    with rasterio.open(dialog.output_widget.filePath()) as cluster, rasterio.open(single.path) as alone:
        assert np.array_equal(cluster.read(), alone.read()), "pixel for pixel"
    assert PlgSettings.load().cluster == "local:2", "remembered"


def test_dialog_reports_a_one_band_image(dialog, qtbot, tmp_path, qgis_iface):
    single = write_raster(tmp_path / "single.tif", np.ones((1, 20, 20), np.uint16))
    dialog.add_files([single])
    assert run_and_wait(dialog, qtbot) == "failed"
    assert "single.tif: has 1 band" in dialog.status.text()
    assert any("has 1 band" in m for m in qgis_iface.messageBar().get_messages(Qgis.Critical))
    assert not list((tmp_path / "imagery").glob("*")) if (tmp_path / "imagery").exists() else True
    assert MappingProject.open(dialog.project_picker.path()).years() == []


def test_dialog_cancel_writes_nothing(dialog, qtbot, tmp_path):
    big = write_raster(
        tmp_path / "big.tif", planetscope_like(rows=2600, cols=2600, nodata_corner=False), tiled=True
    )
    dialog.add_files([big])
    qtbot.mouseClick(dialog.run_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dialog.task is not None and dialog.task.progress() > 6)
    qtbot.mouseClick(dialog.cancel_button, Qt.LeftButton)
    wait_until(qtbot, lambda: dialog.outcome is not None, progress=dock_progress(dialog))
    assert dialog.outcome == "cancelled"
    assert not list((tmp_path / "imagery").glob("2019.tif*"))
    assert QgsApplication.taskManager().countActiveTasks() == 0


def test_dialog_needs_scenes(dialog, qtbot):
    assert run_and_wait(dialog, qtbot) == "failed"
    assert "add at least one scene" in dialog.status.text()


def test_processing_prepare_and_mosaic(plugin, tmp_path):
    from qgis import processing

    scene = write_raster(tmp_path / "scene.tif", planetscope_like())
    result = processing.run(
        "rts_mapper:prepare_imagery", {"INPUT": str(scene), "OUTPUT": str(tmp_path / "p.tif")}
    )
    with rasterio.open(result["OUTPUT"]) as dataset:
        assert dataset.count == 3 and dataset.dtypes[0] == "uint8"

    a = write_raster(tmp_path / "a.tif", planetscope_like(seed=1), origin=(490_000, 3_860_000))
    b = write_raster(tmp_path / "b.tif", planetscope_like(seed=2), origin=(490_300, 3_860_000))
    project = tmp_path / "project.gpkg"
    result = processing.run(
        "rts_mapper:build_yearly_mosaic",
        {
            "SCENES": [str(a), str(b)],
            "YEAR": 2017,
            "PROJECT": str(project),
            "OUTPUT": str(tmp_path / "2017.tif"),
        },
    )
    with rasterio.open(result["OUTPUT"]) as dataset:
        assert dataset.width == 260
    assert [y.year for y in MappingProject.open(project).years()] == [2017]


def test_processing_bad_input_raises_processing_exception(plugin, tmp_path):
    from qgis import processing
    from qgis.core import QgsProcessingException

    single = write_raster(tmp_path / "single.tif", np.ones((1, 20, 20), np.uint16))
    with pytest.raises(QgsProcessingException):
        processing.run(
            "rts_mapper:prepare_imagery", {"INPUT": str(single), "OUTPUT": str(tmp_path / "o.tif")}
        )
    assert not (tmp_path / "o.tif").exists()
    QgsProject.instance().clear()


def test_processing_takes_a_planet_delivery_as_is(plugin, tmp_path):
    """Sidecars found by name (RGB from the metadata, UDM2 applied, dates into the year); MASK
    names a mask kept elsewhere."""
    import shutil

    from qgis import processing

    from tests.data.products import planetscope_scene

    delivery = planetscope_scene(tmp_path / "order", bands=8)
    project = tmp_path / "project.gpkg"
    result = processing.run(
        "rts_mapper:prepare_imagery",
        {
            "INPUT": str(delivery.scene),
            "YEAR": 2022,
            "PROJECT": str(project),
            "OUTPUT": str(tmp_path / "2022.tif"),
        },
    )
    with rasterio.open(result["OUTPUT"]) as dataset:
        assert (dataset.read()[:, delivery.unusable] == 0).all()
    (year,) = MappingProject.open(project).years()
    assert (year.date_start, year.sensor) == ("2022-07-05", "PlanetScope SuperDove (PSB.SD)")

    kept = tmp_path / "kept_udm2.tif"
    shutil.move(delivery.sidecars["udm2"], kept)
    result = processing.run(
        "rts_mapper:prepare_imagery",
        {"INPUT": str(delivery.scene), "MASK": str(kept), "OUTPUT": str(tmp_path / "masked.tif")},
    )
    with rasterio.open(result["OUTPUT"]) as dataset:
        assert (dataset.read()[:, delivery.unusable] == 0).all()
