"""The PointAcc mapping unit at run time: the host driver (``host``)."""
