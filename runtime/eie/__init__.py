"""The EIE array at run time: the host driver (``host``), networks on the RTL (``network``) and
``sparsehw sim eie`` (``sim_command``)."""
