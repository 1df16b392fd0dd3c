"""The Processing provider: one thin algorithm per workflow step, usable from the toolbox,
graphical models and ``qgis_process``."""
