"""The model: training chips, DeepLabv3+ training, model files, tiled inference, candidate polygons, scoring."""
