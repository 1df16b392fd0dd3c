"""Distribution and inventory: the confirmed RTSs exported, terrain, streams, classes, density and figures."""
