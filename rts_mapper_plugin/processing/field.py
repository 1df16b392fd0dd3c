"""The field package in Processing: export the candidates a person picked (a selection on the
map, those near a road, those not yet decided) for QField, and merge the field's decisions back
with every conflict listed in the log and as a table."""

from __future__ import annotations

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.defaults import NEAR_ROAD_M
from ..qgis_layers.sources import layer_file, layer_table
from ..toolbelt.i18n import QT_TR_NOOP
from .base import RtsAlgorithm

FIELD_SECTION = "7. Field teams: reviewing near-road slumps on a laptop, offline"
STATUS_CHOICES = ("not yet decided", "not yet decided or unsure", "every status")
STATUS_VALUES = (("pending",), ("pending", "unsure"), None)
CONFLICT_FIELDS = (("candidate_id", QVariant.Type.Int), ("reviewer", QVariant.Type.String))
CONFLICT_FIELDS += (("desk", QVariant.Type.String), ("field", QVariant.Type.String))


def project_of_candidates(layer) -> str:
    """The mapping project (GeoPackage) whose ``candidates`` table ``layer`` shows."""
    from ..core.errors import RtsMapperError
    from ..core.project.store import MappingProject

    if layer is None or layer_table(layer) != "candidates":
        name = layer.name() if layer is not None else "the layer"
        raise QgsProcessingException(
            f"{name}: not a mapping project's candidates layer (pick one from the RTS Mapper runs group)"
        )
    path = layer_file(layer)
    try:
        MappingProject.open(path)
    except RtsMapperError as exc:
        raise QgsProcessingException(str(exc)) from exc
    return path


class ExportFieldPackageAlgorithm(RtsAlgorithm):
    algorithm_id = "export_field_package"
    display_name = QT_TR_NOOP("Export field package (QField)")
    group_name = "Review"
    help_section = FIELD_SECTION
    keywords = ("qfield", "field", "offline", "laptop", "road")
    help_text = (
        "Candidates to review away from the desk: a folder with field.qgz (open it in QGIS or QField), "
        "field.gpkg (the candidates and the review form: decision, confidence, initiation period, the "
        "four criteria, note) and the year images clipped around the candidates. Pick the candidates "
        "layer of a mapping project; tick 'Selected features only' to take the candidates selected on "
        "the map. Give a road layer to keep only those near a road. Bring the decisions back with "
        "'Merge field package'."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "CANDIDATES",
                "Candidates (a mapping project's layer)",
                [QgsProcessing.SourceType.TypeVectorPolygon],
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum("STATUS", "Candidates that are", list(STATUS_CHOICES), defaultValue=0)
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                "ROADS",
                "Only near these roads / railways",
                [QgsProcessing.SourceType.TypeVectorLine],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterDistance(
                "WITHIN",
                "Near: within",
                defaultValue=NEAR_ROAD_M,
                parentParameterName="CANDIDATES",
                minValue=0,
            )
        )
        self.addParameter(QgsProcessingParameterString("REVIEWER", "Reviewer in the field"))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Field package folder"))
        self.addOutput(QgsProcessingOutputFile("QGZ", "QGIS / QField project"))
        self.addOutput(QgsProcessingOutputNumber("COUNT", "Candidates in the package"))

    def run_core(self, parameters, context, feedback):
        from ..core.project.store import MappingProject
        from ..core.review.decisions import review_queue
        from ..core.review.field_package import export_field_package
        from ..qgis_layers.layers import layer_features

        given = parameters["CANDIDATES"]  # a layer, or the layer and "selected only"
        if isinstance(given, QgsProcessingFeatureSourceDefinition):
            given = given.source.staticValue()
        project = MappingProject.open(
            project_of_candidates(self.parameterAsVectorLayer({"CANDIDATES": given}, "CANDIDATES", context))
        )
        source = self.parameterAsSource(parameters, "CANDIDATES", context)  # held: its iterator needs it
        picked = {feature.id() for feature in source.getFeatures()}
        roads_source = self.parameterAsSource(parameters, "ROADS", context)
        roads = layer_features(roads_source) if roads_source is not None else None
        queue = review_queue(
            project,
            order="road" if roads is not None else "id",
            roads=roads,
            statuses=STATUS_VALUES[self.parameterAsEnum(parameters, "STATUS", context)],
            near_road_m=self.parameterAsDouble(parameters, "WITHIN", context) if roads is not None else None,
        )
        ids = [item.fid for item in queue if item.fid in picked]
        if not ids:
            raise QgsProcessingException(
                f"none of the {len(picked)} candidates picked is {STATUS_CHOICES[self.parameterAsEnum(parameters, 'STATUS', context)]}"
                + (" and near a road" if roads is not None else "")
                + ": nothing to export"
            )
        out = self.parameterAsString(parameters, "OUTPUT", context)
        package = export_field_package(
            project, out, ids, self.parameterAsString(parameters, "REVIEWER", context)
        )
        feedback.pushInfo(
            f"{package.candidates} candidates, years {', '.join(map(str, package.years))}, in {out}"
        )
        self._results = {"OUTPUT": out, "COUNT": package.candidates}
        return self._results

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        """The .qgz on the main thread: a QgsProject and its layers belong there."""
        from ..qgis_layers.field_project import write_field_project

        try:
            qgz = write_field_project(self._results["OUTPUT"])
        except OSError as exc:
            raise QgsProcessingException(f"{exc}; the package's GeoPackage and images are written") from exc
        feedback.pushInfo(f"{qgz}: open it in QGIS or copy the folder to QField")
        return {**self._results, "QGZ": str(qgz)}  # what postProcess returns replaces the results


class MergeFieldPackageAlgorithm(RtsAlgorithm):
    algorithm_id = "merge_field_package"
    display_name = QT_TR_NOOP("Merge field package")
    group_name = "Review"
    help_section = FIELD_SECTION
    keywords = ("qfield", "field", "offline", "laptop", "conflict")
    help_text = (
        "Bring the decisions made in a field package back into its mapping project. A decision the "
        "desk does not have yet is recorded (with the boundary if it was redrawn in the field); one "
        "the desk already has is left; one that differs from the same reviewer's desk decision is a "
        "conflict: listed here and in the Conflicts table, never written over."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile("PROJECT", "Mapping project (GeoPackage)", extension="gpkg")
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "PACKAGE", "Field package folder", behavior=QgsProcessingParameterFile.Behavior.Folder
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                "CONFLICTS",
                "Conflicts",
                QgsProcessing.SourceType.TypeVector,
                optional=True,
                createByDefault=True,
            )
        )
        for key, label in (("RECORDED", "Decisions recorded"), ("UNCHANGED", "Already at the desk")):
            self.addOutput(QgsProcessingOutputNumber(key, label))
        self.addOutput(QgsProcessingOutputNumber("CONFLICT_COUNT", "Conflicts"))

    def run_core(self, parameters, context, feedback):
        from ..core.project.store import MappingProject
        from ..core.review.field_package import merge_field_package

        result = merge_field_package(
            MappingProject.open(self.parameterAsFile(parameters, "PROJECT", context)),
            self.parameterAsFile(parameters, "PACKAGE", context),
        )
        feedback.pushInfo(result.summary())
        fields = QgsFields()
        for name, kind in CONFLICT_FIELDS:
            fields.append(QgsField(name, kind))
        sink, sink_id = self.parameterAsSink(
            parameters, "CONFLICTS", context, fields, QgsWkbTypes.Type.NoGeometry
        )
        for conflict in result.conflicts:
            feedback.pushWarning(
                f"conflict: candidate {conflict['candidate_id']}, {conflict['reviewer']}: "
                f"{conflict['desk']} at the desk, {conflict['field']} in the field (the desk's kept)"
            )
            if sink is not None:
                feature = QgsFeature(fields)
                feature.setAttributes([conflict[name] for name, _ in CONFLICT_FIELDS])
                sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        return {
            "CONFLICTS": sink_id,
            "RECORDED": len(result.recorded),
            "UNCHANGED": len(result.unchanged),
            "CONFLICT_COUNT": len(result.conflicts),
        }
