"""Shared plumbing for the provider's algorithms: naming, help, core feedback, errors."""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterString,
)

from ..core.errors import Cancelled, RtsMapperError
from ..core.progress import Feedback
from ..qgis_layers.sources import layer_file, layer_table
from ..toolbelt.i18n import QT_TR_NOOP, tr


def file_of_layer(layer) -> str:
    """The file behind a raster or vector layer; RTS Mapper's core works on files only."""
    if layer is None:
        raise QgsProcessingException("the layer could not be loaded")
    path = layer_file(layer)
    if not Path(path).is_file():
        raise QgsProcessingException(
            f"{layer.name()}: not backed by a file ({layer.source()}); save it to a file first"
        )
    return path


def vector_uri(layer) -> str:
    """``path|layername=x`` for a file-backed vector layer (what the core reads)."""
    path, table = file_of_layer(layer), layer_table(layer)
    return f"{path}|layername={table}" if table else path


# the user guide's heading (docs/user_guide.md) that explains each group's algorithms
GROUP_SECTIONS = {  # group (translated where shown) -> its section of the user guide
    QT_TR_NOOP("Setup"): "Environment check",
    QT_TR_NOOP("Imagery"): "1. Prepare the imagery, one layer per year",
    QT_TR_NOOP("Model"): "2. Find candidates: the Inference dock",
    QT_TR_NOOP("Review"): "3. Review candidates: the Review dock",
    QT_TR_NOOP("Distribution analysis"): "8. Where slumps form: the distribution report",
}


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


class RtsAlgorithm(QgsProcessingAlgorithm):
    """Base for RTS Mapper algorithms: subclasses set the class attributes and ``run_core``."""

    algorithm_id = ""
    display_name = ""
    group_name = "Setup"
    help_text = ""
    help_section = ""  # the user guide's heading that explains it (default: its group's)
    keywords: tuple[str, ...] = ()  # more words the Toolbox search should find it by

    def name(self) -> str:
        return self.algorithm_id

    def displayName(self) -> str:  # noqa: N802
        return tr(self.display_name)

    def group(self) -> str:
        return tr(self.group_name)

    def groupId(self) -> str:  # noqa: N802
        return self.group_name.lower().replace(" ", "_")

    def shortHelpString(self) -> str:  # noqa: N802
        return self.help_text

    def helpUrl(self) -> str:  # noqa: N802
        """The user guide's section on this step (the dialog's Help button opens it)."""
        from ..__about__ import __uri_repository__

        section = self.help_section or GROUP_SECTIONS[self.group_name]
        return f"{__uri_repository__}/blob/main/docs/user_guide.md#{heading_anchor(section)}"

    def tags(self) -> list[str]:
        return ["rts", "thaw slump", "permafrost", self.group_name.lower(), *self.keywords]

    def createInstance(self):  # noqa: N802
        return type(self)()

    @staticmethod
    def core_feedback(feedback: QgsProcessingFeedback | None) -> Feedback:
        """A core Feedback that reports into Processing's progress bar and honours Cancel."""
        if feedback is None:
            return Feedback()
        return Feedback(
            progress=lambda f: feedback.setProgress(100.0 * f),
            is_cancelled=feedback.isCanceled,
            status=feedback.setProgressText,
        )

    def add_cluster_parameter(self) -> None:
        """An advanced, optional CLUSTER: where the job's blocks run (empty: in this process)."""
        cluster = QgsProcessingParameterString(
            "CLUSTER", "Dask cluster: local:N or a scheduler address (empty: this process)", optional=True
        )
        cluster.setFlags(cluster.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(cluster)

    def cluster(self, parameters, context, feedback) -> tuple[str | None, object]:
        """The CLUSTER given (None: this process), and what tells the log its dashboard link."""
        cluster = self.parameterAsString(parameters, "CLUSTER", context).strip() or None
        return cluster, lambda link: feedback.pushInfo(f"Dask dashboard: {link}")

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        try:
            return self.run_core(parameters, context, feedback)
        except RtsMapperError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except Cancelled as exc:
            raise QgsProcessingException("cancelled: nothing was left half-written") from exc

    def run_core(self, parameters, context, feedback) -> dict:
        raise NotImplementedError
