"""The work orders' web face in the hub (the domain is ``work_orders``): the API by area (``api_*``), pages, the
intake of other channels, and the parts that need the hub's call records and workers — filing from stored call
events (``hub_orders``, ``service``) and the automatic callbacks dispatcher (``callbacks``)."""
