"""The Review dock's completeness check: a stratified sample of the places a run did not flag,
stepped through with the same year views and keys (core.review.completeness).

In a plot: **E** draws an unmapped slump (QGIS's add-polygon tool on the *Completeness finds*
layer; as many as there are), **A** saves the plot with what was drawn, **R** says there is none;
each answer is saved at once and the estimate of what is still unmapped follows.
"""

from __future__ import annotations

from qgis.core import QgsEditFormConfig, QgsProject
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
)

from ..core.review import completeness
from ..core.review.decisions import QueueItem

FINDS_LAYER = "Completeness finds"
SAMPLE_SIZE = 30  # plots per stratum offered in the dialog


class SampleDialog(QDialog):
    """How large a sample, how large a plot, which landscape classes; or go on with the run's
    sample if it has one."""

    def __init__(self, run_label: str, existing: list, parent=None) -> None:
        from qgis.core import QgsMapLayerProxyModel
        from qgis.gui import QgsMapLayerComboBox

        super().__init__(parent)
        self.setWindowTitle("Completeness check: what is still unmapped?")
        layout = QVBoxLayout(self)
        answered = sum(p.found is not None for p in existing)
        text = (
            f"<b>{run_label}</b>: a stratified random sample of the places this run did not flag, "
            "to look at in the year views. From your answers, the number and area of slumps still "
            "unmapped, with a 95 % interval."
        )
        if existing:
            text += f"<br>This run has a sample of {len(existing)} plots, {answered} answered: OK goes on with it."
        intro = QLabel(text, self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.size = QSpinBox(self)
        self.size.setRange(2, 1000)
        self.size.setValue(SAMPLE_SIZE)
        form.addRow("Plots per stratum", self.size)
        self.plot_m = QDoubleSpinBox(self)
        self.plot_m.setRange(30, 2000)
        self.plot_m.setSuffix(" m")
        self.plot_m.setValue(completeness.PLOT_M)
        form.addRow("Plot side", self.plot_m)
        self.landscape = QgsMapLayerComboBox(self)
        self.landscape.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.landscape.setAllowEmptyLayer(True)
        self.landscape.setLayer(None)
        form.addRow("Landscape classes (optional)", self.landscape)
        layout.addLayout(form)
        self.replace = existing != []
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        if existing:
            new = buttons.addButton("Draw a new sample", QDialogButtonBox.ButtonRole.ActionRole)
            new.clicked.connect(self._new)
        self.draw_new = not existing
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _new(self) -> None:
        self.draw_new = True
        self.accept()


class PlotsMode:
    """The dock stepping through a run's completeness plots instead of its candidates."""

    def __init__(self, dock, project, run_id: str) -> None:
        self.dock = dock
        self.project = project
        self.run_id = run_id
        self.finds = self._finds_layer()

    def _finds_layer(self):
        from ..qgis_layers.layers import project_layer
        from ..qgis_layers.sources import shows_table

        for layer in QgsProject.instance().mapLayers().values():
            if shows_table(layer, self.project.path, "completeness_finds"):
                return layer
        layer = project_layer(self.project.path, "completeness_finds", FINDS_LAYER)
        config = layer.editFormConfig()
        config.setSuppress(QgsEditFormConfig.FeatureFormSuppress.SuppressOn)  # draw, no form
        layer.setEditFormConfig(config)
        layer.renderer().symbol().setColor(layer.renderer().symbol().color().fromRgb(255, 80, 0, 90))
        QgsProject.instance().addMapLayer(layer)
        return layer

    def queue(self) -> tuple[list[QueueItem], int]:
        plots = completeness.plots_of(self.project, self.run_id)
        items = [
            QueueItem(
                fid=p.fid,
                status="to look at" if p.found is None else f"looked at: {p.found} found",
                area_m2=p.geometry.area,
                mean_prob=0.0,
                geometry=p.geometry,
                why=f"stratum {p.stratum}",
            )
            for p in plots
        ]
        start = next((i for i, p in enumerate(plots) if p.found is None), 0)
        return items, start

    def draw(self) -> None:
        """QGIS's add-polygon tool on the finds layer: outline an unmapped slump."""
        iface = self.dock.iface
        iface.setActiveLayer(self.finds)
        if not self.finds.isEditable():
            self.finds.startEditing()
        iface.actionAddFeature().trigger()
        iface.mapCanvas().setFocus()

    def answer(self, item: QueueItem, reviewer: str, nothing: bool) -> int:
        """Save the plot: the outlines drawn in it (or none); the drawing is then the project's."""
        from shapely import wkb

        drawn = []
        if self.finds.isEditable():
            if not nothing and self.finds.editBuffer() is not None:
                drawn = [
                    wkb.loads(bytes(f.geometry().asWkb()))
                    for f in self.finds.editBuffer().addedFeatures().values()
                    if f.hasGeometry()
                ]
            self.finds.rollBack()
        found = completeness.answer_plot(self.project, item.fid, reviewer, drawn)
        item.status = f"looked at: {found} found"
        self.finds.dataProvider().reloadData()
        self.finds.triggerRepaint()
        return found

    def estimate_text(self) -> str:
        result = completeness.estimate(self.project, self.run_id)
        plots = completeness.plots_of(self.project, self.run_id)
        answered = sum(p.found is not None for p in plots)
        if result is None:
            return (
                f"{answered} of {len(plots)} plots looked at; the estimate comes once every stratum "
                f"has {completeness.MIN_ANSWERED} answers."
            )
        return "Still unmapped: " + result.text()

    def leave(self) -> None:
        if self.finds.isEditable():
            self.finds.rollBack()
