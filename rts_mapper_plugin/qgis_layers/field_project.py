"""The QGIS / QField project of a field package (core.review.field_package): ``field.qgz``
beside ``field.gpkg``, with relative paths (the folder travels as a whole), the year images,
and the review layer's form: a value map for the decision, a 0-100 range for the probability,
check boxes for the four criteria, a multi-line note, the candidate's context read-only."""

from __future__ import annotations

from pathlib import Path

from ..core.project.store import CRITERIA, DECISIONS
from ..core.review.field_package import CONTEXT, INFO, LAYER

FORM_WIDGETS = {
    "decision": ("ValueMap", {"map": [{d.capitalize(): d} for d in DECISIONS]}),
    "probability": ("Range", {"Min": 0, "Max": 100, "Step": 5, "Style": "SpinBox", "AllowNull": True}),
    "initiation_period": ("TextEdit", {"IsMultiline": False}),
    **{name: ("CheckBox", {"CheckedState": "1", "UncheckedState": "0"}) for name, _ in CRITERIA},
    "note": ("TextEdit", {"IsMultiline": True}),
}
ALIASES = {
    "candidate_id": "Candidate",
    "reviewer": "Reviewer",
    "mean_prob": "Model probability",
    "area_m2": "Area (m²)",
    "desk_decision": "Your desk decision",
    "decision": "Decision",
    "probability": "Your confidence (%)",
    "initiation_period": "Initiation period",
    **dict(CRITERIA),
    "note": "Note",
}


def write_field_project(folder: str | Path) -> Path:
    """Write ``folder/field.qgz`` for the field package in ``folder``; returns its path."""
    import json

    from qgis.core import (
        QgsEditorWidgetSetup,
        QgsFillSymbol,
        QgsProject,
        QgsRasterLayer,
        QgsReferencedRectangle,
        QgsVectorLayer,
    )

    from .project_file import started_qgis

    folder = Path(folder)
    info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    app = started_qgis()
    project = QgsProject()
    project.writeEntryBool("Paths", "/Absolute", False)  # relative: the folder travels whole
    review = QgsVectorLayer(f"{folder / 'field.gpkg'}|layername={LAYER}", "Review", "ogr")
    if not review.isValid():
        raise OSError(f"{folder / 'field.gpkg'}: QGIS cannot open the review layer")
    project.setCrs(review.crs())
    form = review.editFormConfig()
    for index, field in enumerate(review.fields()):
        name = field.name()
        if name in FORM_WIDGETS:
            kind, config = FORM_WIDGETS[name]
            review.setEditorWidgetSetup(index, QgsEditorWidgetSetup(kind, config))
        elif name in CONTEXT or name == "fid":
            form.setReadOnly(index, True)
        if name in ALIASES:
            review.setFieldAlias(index, ALIASES[name])
    review.setEditFormConfig(form)
    # outlines only: the reviewer judges the imagery inside them
    review.renderer().setSymbol(
        QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "255,215,0", "outline_width": "0.8"})
    )
    review.setDisplayExpression("'Candidate ' || \"candidate_id\"")
    years = []
    for year in sorted(info["years"], reverse=True):  # the latest year on top
        raster = QgsRasterLayer(str(folder / "imagery" / f"{year}.tif"), str(year), "gdal")
        if raster.isValid():
            years.append(raster)
    project.addMapLayer(review)
    group = project.layerTreeRoot().addGroup("Years")
    for index, raster in enumerate(years):
        project.addMapLayer(raster, False)
        group.addLayer(raster).setItemVisibilityChecked(index == 0)
    extent = review.extent()
    extent.grow(max(extent.width(), extent.height()) * 0.1)
    project.viewSettings().setDefaultViewExtent(QgsReferencedRectangle(extent, review.crs()))
    out = folder / "field.qgz"
    if not project.write(str(out)):
        raise OSError(f"{out}: QGIS could not write the project ({project.error()})")
    del project  # here, in the frame that made it: QGIS must not end while a project lives
    if app is not None:
        app.exitQgis()
    return out
