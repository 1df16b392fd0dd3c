"""The field package's QGIS / QField project: it opens from wherever the folder was copied to
(relative paths), shows the year images, and its review layer carries the form (value map,
range, check boxes, read-only context) and edits like any layer."""

from __future__ import annotations

import shutil

from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

from rts_mapper_plugin.core.review.field_package import export_field_package
from rts_mapper_plugin.qgis_layers.field_project import write_field_project
from tests.data.fixtures import review_project


def test_the_field_project_opens_elsewhere_with_its_form(tmp_path, qgis_new_project):
    project, _, _ = review_project(tmp_path / "desk", size=300)
    ids = [a["fid"] for a in project.features("candidates").attributes][:4]
    export_field_package(project, tmp_path / "pkg", ids, "Field team")
    write_field_project(tmp_path / "pkg")
    moved = shutil.copytree(tmp_path / "pkg", tmp_path / "on_the_laptop" / "pkg")  # as it travels
    shutil.rmtree(tmp_path / "pkg")
    opened = QgsProject()
    assert opened.read(str(moved / "field.qgz"))
    layers = list(opened.mapLayers().values())
    review = next(layer for layer in layers if isinstance(layer, QgsVectorLayer))
    years = sorted(layer.name() for layer in layers if isinstance(layer, QgsRasterLayer))
    assert review.isValid() and review.featureCount() == 4
    assert review.source().startswith(str(moved)), "found beside the project file, not at the old path"
    assert years == [str(y.year) for y in project.years()] and all(layer.isValid() for layer in layers)
    fields = review.fields()
    widget = {f.name(): review.editorWidgetSetup(i) for i, f in enumerate(fields)}
    assert widget["decision"].type() == "ValueMap"
    assert [next(iter(m.values())) for m in widget["decision"].config()["map"]] == [
        "accepted",
        "rejected",
        "unsure",
    ]
    assert widget["probability"].type() == "Range" and widget["headwall_highest"].type() == "CheckBox"
    assert widget["note"].config()["IsMultiline"]
    form = review.editFormConfig()
    assert form.readOnly(fields.indexOf("candidate_id")) and form.readOnly(fields.indexOf("desk_decision"))
    assert not form.readOnly(fields.indexOf("decision"))
    assert review.attributeAlias(fields.indexOf("upslope_retreat")) == "Upslope retreat over the years"
    # an edit as a person makes it in the form, saved into the package's GeoPackage
    feature = next(review.getFeatures())
    assert review.startEditing()
    review.changeAttributeValue(feature.id(), fields.indexOf("decision"), "accepted")
    assert review.commitChanges()
    assert next(QgsVectorLayer(review.source(), "again", "ogr").getFeatures())["decision"] == "accepted"
