"""The workflow in plain Python (numpy, rasterio, shapely, torch): no qgis and no Qt, ever.

Every step takes paths or arrays and returns results; long jobs take a progress callback and a
cancel check (see :mod:`.progress`). The QGIS faces (tasks, processing, gui) and the CLI are thin
wrappers over these functions.
"""
