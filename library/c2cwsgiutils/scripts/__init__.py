"""Console scripts of the library (``c2cwsgiutils-*``)."""
