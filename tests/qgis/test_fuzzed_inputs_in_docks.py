"""Damaged files through the faces a person uses (the QGIS half of `make faults`' fuzzing, with
its mutators): model files typed into the Inference dock, GeoTIFFs added as layers and picked in
its combo, project GeoPackages typed into its project picker, each then run. Every one ends in a
line in the dock and in the message bar naming the file (or runs, when the mutation was
harmless): never a Python error, an "unexpected error", a crash, or a pickle's code run."""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections import Counter
from contextlib import suppress

import pytest
from qgis.core import Qgis, QgsProject, QgsRasterLayer

from reliability.fuzz import (
    BYTE_MUTATIONS,
    GPKG_FILE_MUTATIONS,
    MARKER,
    MODEL_BYTE_MUTATIONS,
    TIFF_MUTATIONS,
    model_pickle,
)
from rts_mapper_plugin.core.project.store import MappingProject
from rts_mapper_plugin.gui.inference_dock import InferenceDock
from rts_mapper_plugin.tasks.base import TaskRunner
from rts_mapper_plugin.toolbelt.preferences import PlgSettings
from tests import person
from tests.data.fixtures import trained_model
from tests.waiting import dock_progress, wait_until

MUTANTS = 12  # of each kind; `make faults` runs 500 through the command line


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    model = trained_model()
    folder = tmp_path_factory.mktemp("fuzz_docks")
    shutil.copy(model.parent / "2019.tif", folder / "2019.tif")
    return model, folder / "2019.tif"


@pytest.fixture
def dock(qgis_iface, qtbot, qgis_new_project, tmp_path, assets):
    model, image = assets
    project = MappingProject.create(tmp_path / "project.gpkg", "EPSG:32646")
    project.register_year(2019, image)
    QgsProject.instance().addMapLayer(QgsRasterLayer(str(image), "2019", "gdal"))
    PlgSettings.load().update(project_gpkg=str(project.path), model_path=str(model))
    dock = InferenceDock(qgis_iface, TaskRunner())
    qtbot.addWidget(dock)
    dock.show()
    person.choose(dock.image_combo, "2019", exact=True)
    yield dock
    dock.shutdown()


def one_line(text: str) -> None:
    assert text.strip() and "\n" not in text.strip(), text
    assert "unexpected error" not in text and "Traceback" not in text, text


def run_and_judge(dock, qtbot, qgis_iface, name: str) -> str:
    """Run the dock; a failure must be one line in the dock and in the message bar naming ``name``."""
    qgis_iface.messageBar().clear_messages()
    person.click(dock.run_button)
    wait_until(qtbot, lambda: dock.outcome is not None, progress=dock_progress(dock))
    if dock.outcome == "failed":
        one_line(dock.status.text())
        assert name in dock.status.text(), dock.status.text()
        said = qgis_iface.messageBar().get_messages(Qgis.Critical) + qgis_iface.messageBar().get_messages(
            Qgis.Warning
        )
        assert len(said) == 1 and name in said[0], said
        one_line(said[0])
    return dock.outcome


def test_damaged_model_files_typed_into_the_inference_dock(dock, qtbot, qgis_iface, assets, tmp_path):
    model, _ = assets
    rng, good, outcomes = random.Random(17), model.read_bytes(), Counter()
    for i in range(MUTANTS):
        path = tmp_path / f"model_{i:02d}" / "model.safetensors"
        path.parent.mkdir()
        if i == MUTANTS - 1:
            model_pickle(path, rng)
        else:
            path.write_bytes(MODEL_BYTE_MUTATIONS[i % len(MODEL_BYTE_MUTATIONS)](good, rng))
        person.type_path(dock.model_widget, str(path))
        one_line(dock.card_label.text())  # the card, or what is wrong with the file
        outcomes[run_and_judge(dock, qtbot, qgis_iface, f"model_{i:02d}")] += 1
        assert not (path.parent / MARKER).exists(), "a pickle's code ran"
    assert outcomes["failed"] >= MUTANTS // 2, outcomes  # most mutations break a model file


def test_damaged_geotiffs_added_and_picked_in_the_inference_dock(dock, qtbot, qgis_iface, assets, tmp_path):
    _, image = assets
    rng, good, outcomes = random.Random(18), image.read_bytes(), Counter()
    for i in range(MUTANTS):
        path = tmp_path / f"image_{i:02d}.tif"
        path.write_bytes(TIFF_MUTATIONS[i % len(TIFF_MUTATIONS)](good, rng))
        layer = QgsRasterLayer(str(path), f"damaged {i:02d}", "gdal")
        if not layer.isValid():
            outcomes["refused by QGIS itself"] += 1
            continue
        QgsProject.instance().addMapLayer(layer)
        person.choose(dock.image_combo, f"damaged {i:02d}", exact=True)
        outcomes[run_and_judge(dock, qtbot, qgis_iface, path.name)] += 1
        QgsProject.instance().removeMapLayer(layer.id())
    assert outcomes["failed"] >= 1 and sum(outcomes.values()) == MUTANTS, outcomes


def test_damaged_project_geopackages_typed_into_the_project_picker(dock, qtbot, qgis_iface, tmp_path):
    rng, seed, outcomes = random.Random(19), PlgSettings.load().project_gpkg, Counter()
    for i in range(MUTANTS):
        path = tmp_path / f"project_{i:02d}.gpkg"
        shutil.copy(seed, path)
        if i % 3 == 0:
            path.write_bytes(BYTE_MUTATIONS[(i // 3) % len(BYTE_MUTATIONS)](path.read_bytes(), rng))
        else:
            with suppress(sqlite3.Error):  # a mutation that fails leaves a valid project
                GPKG_FILE_MUTATIONS[i % len(GPKG_FILE_MUTATIONS)](path, rng)
        person.type_path(dock.project_picker.file_widget, str(path))
        one_line(dock.project_picker.summary.text())  # what it holds, or why it cannot be opened
        outcomes[run_and_judge(dock, qtbot, qgis_iface, path.name)] += 1
    assert outcomes["failed"] >= 1, outcomes
