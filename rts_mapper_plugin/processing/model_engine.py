"""Processing algorithms for the model engine: chips, train, infer, evaluate (thin over core)."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)

from ..core.defaults import (
    BATCH_SIZE,
    CHIP_BUFFER_M,
    CHIP_SIZE,
    CHIP_SIZE_RANGE,
    DEVICE,
    DEVICES,
    ENCODER,
    ENCODERS,
    EPOCHS,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    THRESHOLD_RANGE,
    TTA_VIEWS,
)
from ..core.model.model_file import INFERENCE_MODEL_FILTER, MODEL_FILTER
from ..toolbelt.i18n import QT_TR_NOOP
from .base import RtsAlgorithm, file_of_layer, vector_uri


class MakeChipsAlgorithm(RtsAlgorithm):
    algorithm_id = "make_chips"
    display_name = QT_TR_NOOP("Make training chips")
    group_name = "Model"
    help_section = "4. Train or fine-tune: the Training dock"
    keywords = ("training", "chips", "deep learning")
    help_text = (
        "Cuts a chip around each RTS (positive) and non-RTS (negative) polygon over a prepared 8-bit "
        "image: the polygon buffered by 300 m, at least the chip size a side. Labels come from every "
        "RTS polygon a chip touches, so negatives teach background. Mostly-nodata chips are skipped; "
        "nearby polygons go to the same split (training or validation). Writes images/, labels/, "
        "index.json and chips.gpkg into the output folder."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("IMAGE", "Prepared image (8-bit RGB)"))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "POSITIVES", "RTS polygons", [QgsProcessing.SourceType.TypeVectorPolygon]
            )
        )
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "NEGATIVES", "Non-RTS polygons", [QgsProcessing.SourceType.TypeVectorPolygon], optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SIZE",
                "Smallest chip side (px)",
                defaultValue=CHIP_SIZE,
                minValue=CHIP_SIZE_RANGE[0],
                maxValue=CHIP_SIZE_RANGE[1],
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "BUFFER",
                "Buffer (m)",
                QgsProcessingParameterNumber.Type.Double,
                defaultValue=CHIP_BUFFER_M,
                minValue=0,
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Chip folder"))
        self.addOutput(QgsProcessingOutputString("SUMMARY", "Summary (JSON)"))

    def run_core(self, parameters, context, feedback):
        from ..core.model.chips import make_chips

        negatives = self.parameterAsVectorLayer(parameters, "NEGATIVES", context)
        out = self.parameterAsString(parameters, "OUTPUT", context)
        chip_set = make_chips(
            file_of_layer(self.parameterAsRasterLayer(parameters, "IMAGE", context)),
            vector_uri(self.parameterAsVectorLayer(parameters, "POSITIVES", context)),
            vector_uri(negatives) if negatives is not None else None,
            out,
            size=self.parameterAsInt(parameters, "SIZE", context),
            buffer_m=self.parameterAsDouble(parameters, "BUFFER", context),
            feedback=self.core_feedback(feedback),
        )
        feedback.pushInfo(json.dumps(chip_set.summary()))
        return {"OUTPUT": out, "SUMMARY": json.dumps(chip_set.summary())}


class TrainModelAlgorithm(RtsAlgorithm):
    algorithm_id = "train_model"
    display_name = QT_TR_NOOP("Train model")
    group_name = "Model"
    help_section = "4. Train or fine-tune: the Training dock"
    keywords = ("training", "deeplabv3+", "deep learning", "segmentation")
    help_text = (
        "Trains (or fine-tunes) DeepLabv3+ on a chip folder: augmentation, Dice + BCE loss, validation "
        "IoU each epoch, early stopping; the best model is saved as safetensors weights with a model "
        "card. ImageNet encoder weights come only from a local file. Uses CUDA when present."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile(
                "CHIPS", "Chip folder", behavior=QgsProcessingParameterFile.Behavior.Folder
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "ENCODER", "Encoder", options=list(ENCODERS), defaultValue=ENCODERS.index(ENCODER)
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "EPOCHS", "Epochs", defaultValue=EPOCHS, minValue=1, maxValue=MAX_EPOCHS
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "BATCH_SIZE", "Batch size", defaultValue=BATCH_SIZE, minValue=1, maxValue=MAX_BATCH_SIZE
            )
        )
        self.addParameter(
            QgsProcessingParameterFile("WEIGHTS", "Local ImageNet encoder weights", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "INIT_MODEL", "Fine-tune from model", extension="safetensors", optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "DEVICE", "Device", options=list(DEVICES), defaultValue=DEVICES.index(DEVICE)
            )
        )
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Model file", MODEL_FILTER))
        self.addOutput(QgsProcessingOutputNumber("BEST_VAL_IOU", "Best validation IoU"))

    def run_core(self, parameters, context, feedback):
        from ..core.model.training import TrainConfig, train_model

        config = TrainConfig(
            encoder=ENCODERS[self.parameterAsEnum(parameters, "ENCODER", context)],
            epochs=self.parameterAsInt(parameters, "EPOCHS", context),
            batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
            imagenet_weights=self.parameterAsFile(parameters, "WEIGHTS", context) or None,
            init_model=self.parameterAsFile(parameters, "INIT_MODEL", context) or None,
            device=DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)],
        )

        def on_epoch(entry):
            feedback.pushInfo(
                f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}, validation IoU {entry['val_iou']}"
            )

        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        result = train_model(
            self.parameterAsFile(parameters, "CHIPS", context),
            out,
            config,
            self.core_feedback(feedback),
            on_epoch,
        )
        return {"OUTPUT": str(result.model_path), "BEST_VAL_IOU": result.best_val_iou}


class InferAlgorithm(RtsAlgorithm):
    algorithm_id = "infer"
    display_name = QT_TR_NOOP("Detect RTS candidates")
    group_name = "Model"
    help_text = (
        "Runs DeepLabv3+ (an RTS Mapper model, or an ONNX segmentation model with Deepness metadata, "
        "run by onnxruntime) over a prepared image (or an extent of it) tile by tile with overlap, blends "
        "the probabilities, and turns them into candidate polygons (8-connected, holes filled, minimum "
        "area, simplified) with area, perimeter, mean and max probability. Candidates touching an "
        "already confirmed RTS are set aside."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(
            QgsProcessingParameterFile("MODEL", "Model file", fileFilter=INFERENCE_MODEL_FILTER)
        )
        self.addParameter(QgsProcessingParameterRasterLayer("IMAGE", "Prepared image (8-bit RGB)"))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent", optional=True))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "KNOWN",
                "Confirmed RTS (set aside)",
                [QgsProcessing.SourceType.TypeVectorPolygon],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                "Probability threshold (empty: the model's)",
                QgsProcessingParameterNumber.Type.Double,
                optional=True,
                minValue=THRESHOLD_RANGE[0],
                maxValue=THRESHOLD_RANGE[1],
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "MIN_AREA",
                "Minimum area (m², empty: the model's)",
                QgsProcessingParameterNumber.Type.Double,
                optional=True,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "DEVICE", "Device", options=list(DEVICES), defaultValue=DEVICES.index(DEVICE)
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                "TTA",
                "Test-time ensemble (views per tile; N views take N times the model time)",
                options=[str(v) for v in TTA_VIEWS],
                defaultValue=0,
            )
        )
        self.add_cluster_parameter()
        self.addParameter(
            QgsProcessingParameterBoolean("KEEP_PROBABILITY", "Keep the probability raster", True)
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination("PROBABILITY", "Probability (%)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                "OUTPUT", "Candidates", QgsProcessing.SourceType.TypeVectorPolygon
            )
        )
        self.addOutput(QgsProcessingOutputNumber("CANDIDATES", "Candidates found"))
        self.addOutput(QgsProcessingOutputNumber("SET_ASIDE", "Set aside as already known"))

    def run_core(self, parameters, context, feedback):
        from ..core.model.distributed import on_cluster
        from ..core.model.inference import InferConfig, infer_to_file

        image = self.parameterAsRasterLayer(parameters, "IMAGE", context)
        extent = None
        if parameters.get("EXTENT"):
            rectangle = self.parameterAsExtent(parameters, "EXTENT", context, image.crs())
            if not rectangle.isNull():
                extent = (
                    rectangle.xMinimum(),
                    rectangle.yMinimum(),
                    rectangle.xMaximum(),
                    rectangle.yMaximum(),
                )
        known = self.parameterAsVectorLayer(parameters, "KNOWN", context)
        probability = None
        if self.parameterAsBool(parameters, "KEEP_PROBABILITY", context):
            probability = self.parameterAsOutputLayer(parameters, "PROBABILITY", context)
        has_threshold = parameters.get("THRESHOLD") not in (None, "")
        has_min_area = parameters.get("MIN_AREA") not in (None, "")
        config = InferConfig(
            device=DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)],
            threshold=self.parameterAsDouble(parameters, "THRESHOLD", context) if has_threshold else None,
            min_area_m2=self.parameterAsDouble(parameters, "MIN_AREA", context) if has_min_area else None,
            tta=TTA_VIEWS[self.parameterAsEnum(parameters, "TTA", context)],
        )
        cluster, announce = self.cluster(parameters, context, feedback)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if not output.lower().endswith((".gpkg", ".geojson", ".shp")):
            raise QgsProcessingException("write the candidates to a .gpkg, .geojson or .shp file")
        result = infer_to_file(
            self.parameterAsFile(parameters, "MODEL", context),
            file_of_layer(image),
            output,
            config,
            prob_out=probability,
            extent=extent,
            known=vector_uri(known) if known is not None else None,
            feedback=self.core_feedback(feedback),
            predict=on_cluster(cluster, announce) if cluster else None,
        )
        feedback.pushInfo(
            f"{len(result.candidates)} candidates, {result.set_aside_known} set aside, "
            f"{result.area_km2:.2f} km² in {result.seconds:.1f} s"
        )
        outputs = {
            "OUTPUT": output,
            "CANDIDATES": len(result.candidates),
            "SET_ASIDE": result.set_aside_known,
        }
        if probability:
            outputs["PROBABILITY"] = probability
        return outputs


class EvaluateAlgorithm(RtsAlgorithm):
    algorithm_id = "evaluate"
    display_name = QT_TR_NOOP("Evaluate candidates against truth")
    group_name = "Model"
    help_text = (
        "Polygon-level precision, recall and F1 (Huang et al. 2020): a candidate is a true positive when "
        "its IoU with some truth polygon exceeds the threshold."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        polygons = [QgsProcessing.SourceType.TypeVectorPolygon]
        self.addParameter(QgsProcessingParameterVectorLayer("PRED", "Candidates", polygons))
        self.addParameter(QgsProcessingParameterVectorLayer("TRUTH", "Truth", polygons))
        self.addParameter(
            QgsProcessingParameterNumber(
                "IOU",
                "IoU threshold",
                QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.5,
                minValue=0.01,
                maxValue=0.99,
            )
        )
        for name in ("PRECISION", "RECALL", "F1"):
            self.addOutput(QgsProcessingOutputNumber(name, name.title()))
        self.addOutput(QgsProcessingOutputString("JSON", "All figures (JSON)"))

    def run_core(self, parameters, context, feedback):
        from ..core.model.evaluation import evaluate_files

        result = evaluate_files(
            vector_uri(self.parameterAsVectorLayer(parameters, "PRED", context)),
            vector_uri(self.parameterAsVectorLayer(parameters, "TRUTH", context)),
            self.parameterAsDouble(parameters, "IOU", context),
        )
        figures = result.as_dict()
        feedback.pushInfo(json.dumps(figures))
        return {
            "PRECISION": result.precision,
            "RECALL": result.recall,
            "F1": result.f1,
            "JSON": json.dumps(figures),
        }


class ExportOnnxAlgorithm(RtsAlgorithm):
    algorithm_id = "export_onnx"
    display_name = QT_TR_NOOP("Export model as ONNX (Deepness)")
    group_name = "Model"
    help_section = "A model outside RTS Mapper: ONNX"
    keywords = ("onnx", "deepness", "onnxruntime", "export")
    help_text = (
        "Writes a model as ONNX for the Deepness plugin, onnxruntime or any ONNX tool: RGB tiles in "
        "(channels first, values 0-1; the normalisation is inside the graph), the RTS probability out, "
        "with the metadata Deepness reads (model type, class names, resolution, tile size, overlap, "
        "threshold) and the model card. The export is checked by onnx.checker."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("MODEL", "Model file", extension="safetensors"))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "ONNX model", "ONNX (*.onnx)"))

    def run_core(self, parameters, context, feedback):
        from ..core.model.onnx_export import export_onnx

        out = export_onnx(
            self.parameterAsFile(parameters, "MODEL", context),
            self.parameterAsFileOutput(parameters, "OUTPUT", context),
        )
        feedback.pushInfo(f"{out}: ONNX with the Deepness metadata")
        return {"OUTPUT": str(out)}
