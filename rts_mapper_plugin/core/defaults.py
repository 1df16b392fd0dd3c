"""Every default, choice list and limit of the workflow, said once.

Every face (CLI, Processing, docks, the plugin's settings) and the core's configuration objects
(TrainConfig, ModelCard, make_chips, build_inventory) take their defaults from here. Plain
values only: this module imports nothing, so the plugin can read it at load without numpy,
rasterio, shapely or torch.
"""

# -- imagery --
# Which bands are R, G, B: "auto" reads the file's band descriptions, colour interpretation or
# the sensor's layout; else "R,G,B" as 1-based band numbers.
BANDS = "auto"

# -- training chips --
CHIP_SIZE = 480  # the smallest chip side in pixels
CHIP_BUFFER_M = 300.0  # around each training polygon, as in the authors' setup

# -- the training recipe (TrainConfig) --
# Encoders offered in the docks; any other segmentation-models-pytorch encoder name also works.
ENCODERS = ("resnet34", "resnet18", "resnet50", "mobilenet_v2", "efficientnet-b0")
# resnet18: on a CPU it runs a step in half the time of resnet34; see docs/benchmarks.md
ENCODER = "resnet18"
EPOCHS = 30
BATCH_SIZE = 8

# -- inference --
# Where a model runs: "auto" picks CUDA when present.
DEVICES = ("auto", "cpu", "cuda")
DEVICE = DEVICES[0]
# What runs a .safetensors model in inference. auto: onnxruntime on the CPU where onnx and
# onnxruntime are installed and the tile is the model's own (faster than the traced torch model
# on the CPUs measured, docs/benchmarks.md), torch otherwise (a GPU, another tile size).
BACKENDS = ("auto", "torch", "onnxruntime")
BACKEND = BACKENDS[0]
# Inference tiles and their overlap (probabilities are blended across it).
TILE_SIZE = 512
OVERLAP = 64
# The threshold a model starts with before training calibrates its own on the validation chips.
THRESHOLD = 0.5
# The smallest candidate kept, unless a card calibrated another (0.05 ha: the paper's smallest slump).
MIN_AREA_M2 = 500.0
# Views a test-time ensemble may average per tile (flips and rotations of a square tile).
TTA_VIEWS = (1, 2, 4, 8)

# -- the limits the docks and Processing offer --
YEAR_RANGE = (1970, 2100)
CHIP_SIZE_RANGE = (64, 2048)
MAX_EPOCHS = 500
MAX_BATCH_SIZE = 128
THRESHOLD_RANGE = (0.01, 0.99)

# -- inventory --
NEAR_ROAD_M = 500.0  # "near a road or railway": the centroid within this distance (the paper's)
# the ARTS fields of a contribution, when the year registry and the user say nothing
BASE_MAP_SOURCE = "PlanetScope"
BASE_MAP_RESOLUTION_M = 3.0
